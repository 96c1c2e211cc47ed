"""Where the package's Hydra configs (``conf/``) and shipped files (``assets/``) are, in every kind of install.

The repository keeps both at its top level; the wheel ships them inside the package as ``faceswap.conf`` and
``faceswap.assets`` (setuptools ``package-dir``). Every lookup of a shipped file goes through here.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _root(name: str) -> Path:
    # A wheel holds faceswap/<name>; a source tree (editable install, a checkout on sys.path) holds <repo>/<name>.
    for candidate in (_PKG / name, _PKG.parent / name):
        if (candidate / "__init__.py").is_file():
            return candidate
    spec = importlib.util.find_spec(f"faceswap.{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    raise FileNotFoundError(f"this faceswap install has no '{name}' folder; reinstall it (pip install faceswap)")


def conf_dir() -> Path:
    """The Hydra config tree: ``<stage>.yaml`` files and one folder per config group."""
    return _root("conf")


def assets_dir() -> Path:
    return _root("assets")


def asset(*parts: str) -> Path:
    """A shipped file or folder, e.g. ``asset("templates", "report.html")``; it may not exist (callers say what then)."""
    return assets_dir().joinpath(*parts)
