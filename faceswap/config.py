"""Hydra config composition for every stage: conf/ at the top, shipped inside the package as faceswap.conf."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf

from faceswap.errors import UserError
from faceswap.resources import conf_dir

CONF_DIR = conf_dir()


def compose(stage: str, overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """Compose ``conf/<stage>.yaml`` with Hydra ``overrides`` (``key=value``, ``group=option``, ``+key=value``).

    Any composition problem (unknown key, unknown group option, syntax) becomes one ``UserError``.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (CONF_DIR / f"{stage}.yaml").is_file():
        raise UserError(f"no config for stage '{stage}' in {CONF_DIR}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name=stage):
            cfg = hydra_compose(config_name=stage, overrides=list(overrides), return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if msg.startswith("Ambiguous value"):
            msg += " (to run one job per value, add -m; for a list, key=[a,b])"
        raise UserError(
            f"bad override for '{stage}' ({' '.join(overrides) or 'no overrides'}): {msg}. "
            f"Run 'faceswap {stage} --cfg job' to see the keys and 'faceswap {stage} --help' for the groups"
        ) from None
    finally:
        GlobalHydra.instance().clear()
    return cfg


def require(cfg: DictConfig, key: str, stage: str, hint: str) -> object:
    """Read a mandatory (``???``) key, dotted keys included (``data.a``), with a one-line error naming the override to add."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if node is None or leaf not in node or OmegaConf.is_missing(node, leaf):
        raise UserError(f"'{stage}' needs {key}=...: {hint}")
    return node[leaf]


def group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def save_config(cfg: DictConfig, out_dir: str | Path, stage: str) -> Path:
    """Save the composed config beside a stage's outputs, so every result says how it was made."""
    from faceswap.utils import atomic_path

    path = Path(out_dir) / ".faceswap" / f"{stage}.yaml"
    with atomic_path(path, suffix=".yaml") as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    return path
