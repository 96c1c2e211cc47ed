"""conf/ and assets/ sit at the repository's top level and ship inside the package: a wheel and an editable
install, each in a fresh venv and run from a folder outside the repository, compose every stage and find every asset."""
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run inside the fresh venv, from outside the repository: every stage and group option composes, every asset is found.
PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import faceswap
    from faceswap.cli import STAGES
    from faceswap.config import compose, group_options
    from faceswap import resources
    composed = 0
    for name, stage in STAGES.items():
        compose(name)
        composed += 1
        for group in stage.groups:
            for option in group_options(group):
                compose(name, [("+" if group == "experiment" else "") + f"{group}={option}"])
                composed += 1
    from faceswap.evaluate import report, probe
    from faceswap.forensics import lecture, scan
    from faceswap import demo
    assets = [report.TEMPLATE, lecture.TEMPLATE, probe.SHIPPED_DIR, scan.SHIPPED, demo.SHIPPED_RUN]
    missing = [str(p) for p in assets if not p.exists()]
    print(json.dumps({"package": faceswap.__file__, "conf": str(resources.conf_dir()),
                      "assets": str(resources.assets_dir()), "composed": composed, "missing": missing,
                      "files": sorted(str(p.relative_to(resources.assets_dir())) for p in resources.assets_dir().rglob("*")
                                      if p.is_file() and "__pycache__" not in p.parts)}))
""")


def _repo_files(folder: str) -> set[str]:
    base = ROOT / folder
    return {p.relative_to(base).as_posix() for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _fresh_venv(where: Path) -> Path:
    """A venv without the project: it sees this interpreter's dependencies through a path entry (no .pth of theirs
    runs, so the editable install of the checkout under test stays out), and gets faceswap only from what we install."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    py = where / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _pip(py: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _probe(py: Path, cwd: Path) -> dict:
    import json

    proc = subprocess.run([str(py), "-c", PROBE], capture_output=True, text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pyproject_lists_every_package():
    # Packages are listed by hand (automatic discovery cannot map conf/ and assets/): a new subpackage must be added.
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "faceswap").rglob("__init__.py")}
    assert on_disk | {"faceswap.conf", "faceswap.assets"} == listed


@pytest.mark.slow
def test_wheel_in_a_fresh_venv(tmp_path):
    # Built in isolation: the declared build requirements, not this venv's setuptools.
    # From a copy of the sources, so that no build/ folder left in the checkout can leak stale files into the wheel.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "outputs", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", "demo_out", ".whl"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("faceswap-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("conf", "assets"):
        shipped = {f"faceswap/{folder}/{f}" for f in _repo_files(folder)}
        assert shipped <= names, sorted(shipped - names)[:10]
    py = _fresh_venv(tmp_path / "venv")
    _pip(py, str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    got = _probe(py, elsewhere)
    assert not got["missing"], got["missing"]
    assert str(ROOT) not in got["package"] and str(ROOT) not in got["conf"], got
    assert set(got["files"]) == _repo_files("assets")
    assert got["composed"] > 30


@pytest.mark.slow
def test_editable_install_in_a_fresh_venv(tmp_path):
    py = _fresh_venv(tmp_path / "venv")
    _pip(py, "-e", str(ROOT))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    got = _probe(py, elsewhere)
    assert not got["missing"], got["missing"]
    assert got["conf"] == str(ROOT / "conf") and got["assets"] == str(ROOT / "assets"), got
    assert re.match(re.escape(str(ROOT / "faceswap")), got["package"]), got
