"""Checkpoints on disk: safetensors weights + JSON state in a folder written atomically; rebuild a model from one alone."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from faceswap.errors import UserError
from faceswap.models.autoencoder import Autoencoder, AutoencoderConfig, describe
from faceswap.utils import atomic_path

SCHEMA = "faceswap.checkpoint"
VERSION = 1
MODEL_CLASS = "faceswap.models.autoencoder.Autoencoder"
# A checkpoint names the class that rebuilds it; only these are ever built (a name read from a file is never imported).
_BUILDERS = {MODEL_CLASS: Autoencoder}
_STEP_PREFIX = "step_"


def checkpoint_name(step: int) -> str:
    return f"{_STEP_PREFIX}{int(step):08d}"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses non-contiguous (channels_last) and shared storage; CPU copies also free the GPU early.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def flatten_optimizer_state(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer ``state_dict()`` into tensors (for safetensors) and the JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return _contiguous(tensors), {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, entry in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entry)
    return {"state": dict(sorted(state.items())), "param_groups": meta["param_groups"]}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file(_contiguous(tensors), str(path), metadata={"format": "pt"})


def save_checkpoint(root: str | os.PathLike, step: int, model: Autoencoder, *, optimizer_state: dict | None = None,
                    ema_state: dict[str, torch.Tensor] | None = None, state: dict | None = None,
                    keep: int | None = None) -> Path:
    """Write ``root/step_XXXXXXXX/`` (temp folder, fsync, rename), point ``root/latest`` at it, keep the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    final = root / name
    if is_complete(final):
        # Same step saved already (a periodic save right before a stop): its content is the same.
        _write_latest(root, name)
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp_{name}_", dir=root))
    try:
        _write_tensors(tmp / "model.safetensors", model.state_dict())
        if ema_state is not None:
            _write_tensors(tmp / "ema.safetensors", ema_state)
        meta = dict(state or {})
        if optimizer_state is not None:
            tensors, rest = flatten_optimizer_state(optimizer_state)
            _write_tensors(tmp / "optimizer.safetensors", tensors)
            meta["optimizer"] = rest
        meta.update({
            "schema": SCHEMA, "version": VERSION, "step": int(step), "model_class": MODEL_CLASS,
            "model": model.constructor_args(), "identities": list(model.config.identities),
            "files": sorted(p.name for p in tmp.iterdir()) + ["state.json"],
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__,
        })
        with open(tmp / "state.json", "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
        for p in tmp.iterdir():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if final.exists():  # an incomplete leftover of the same name
            _discard(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _write_latest(root, name)
    if keep is not None and keep > 0:
        for old in list_checkpoints(root)[:-keep]:
            _discard(old)
    return final


def _write_latest(root: Path, name: str) -> None:
    with atomic_path(root / "latest", suffix="") as tmp:
        tmp.write_text(name + "\n", encoding="utf-8")


def _discard(path: Path) -> None:
    # Rename first (atomic), delete after: a crash mid-delete leaves a hidden folder, never a half checkpoint.
    trash = path.with_name(f".trash_{path.name}_{os.getpid()}_{time.monotonic_ns()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clean_partial(root: str | os.PathLike) -> None:
    """Remove temp and trash folders left by a crash."""
    root = Path(root)
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and (p.name.startswith(".tmp_") or p.name.startswith(".trash_")):
                shutil.rmtree(p, ignore_errors=True)


def is_complete(path: Path) -> bool:
    return (path / "state.json").is_file() and (path / "model.safetensors").is_file()


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_STEP_PREFIX)
             and p.name[len(_STEP_PREFIX):].isdigit() and is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[len(_STEP_PREFIX):]))


def find_latest(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint: the one ``latest`` names if it is complete, else the highest step."""
    root = Path(root)
    latest = root / "latest"
    complete = list_checkpoints(root)
    if latest.is_file():
        named = root / latest.read_text(encoding="utf-8").strip()
        if named.name and is_complete(named) and (not complete or named == complete[-1]):
            return named
    return complete[-1] if complete else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint folder, a file inside one, a ``checkpoints`` folder or a run folder."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"checkpoint {p} does not exist; give a run folder, its checkpoints/ folder or a step_* folder")
    if p.is_file():
        p = p.parent
    if (p / "state.json").exists():
        return p
    for root in (p, p / "checkpoints"):
        if (root / "latest").exists() or list_checkpoints(root):
            found = find_latest(root)
            if found is not None:
                return found
    raise UserError(f"no complete checkpoint found in {p}; train first ('faceswap train out=...') or give a step_* folder")


def _read_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"checkpoint file {path} is missing; the checkpoint is incomplete, use another one")
    try:
        return load_file(str(path), device=str(device))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for any corruption
        raise UserError(f"checkpoint file {path} is corrupt or truncated ({exc}); delete that checkpoint folder "
                        "and use an older one") from None


def read_state(path: Path) -> dict:
    state_path = path / "state.json"
    if not state_path.is_file():
        raise UserError(f"{path} is not a checkpoint (no state.json); give a step_* folder written by 'faceswap train'")
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"checkpoint file {state_path} is corrupt ({exc}); delete that checkpoint folder and use an older one") from None
    if not isinstance(state, dict) or state.get("schema") != SCHEMA:
        raise UserError(f"{state_path} is not a faceswap checkpoint state (schema {SCHEMA!r} expected)")
    if int(state.get("version", 0)) > VERSION:
        raise UserError(f"checkpoint {path} has format version {state.get('version')}, newer than this faceswap "
                        f"reads ({VERSION}); upgrade faceswap")
    return state


def architecture_mismatch(have: dict, want: dict) -> list[str]:
    """Constructor arguments that differ in a way that changes the weights' shapes (the label ``name`` does not)."""
    keys = sorted((set(have) | set(want)) - {"name"})
    return [f"{k} {have.get(k)} vs {want.get(k)}" for k in keys if have.get(k) != want.get(k)]


def build_model(model_class: str, args: dict) -> Autoencoder:
    builder = _BUILDERS.get(model_class)
    if builder is None:
        raise UserError(f"checkpoint model class {model_class!r} is not one faceswap builds ({', '.join(_BUILDERS)})")
    try:
        return builder(AutoencoderConfig.from_dict(dict(args)))
    except (TypeError, ValueError) as exc:
        raise UserError(f"checkpoint model arguments are invalid ({exc}); the checkpoint is damaged or from another version") from None


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode) and everything needed to resume."""

    path: Path
    model: Autoencoder
    state: dict
    weights: str  # "ema" or "model": which tensors the model holds
    ema: dict[str, torch.Tensor] | None = None
    optimizer: dict | None = None
    model_tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.state["step"])

    @property
    def identities(self) -> list[str]:
        return list(self.state.get("identities", self.model.config.identities))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", weights: str = "auto",
                    expect: dict | None = None, training_state: bool = False) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights; no training config needed.

    ``weights``: ``auto`` (EMA weights when the checkpoint has them), ``ema`` or ``model``.
    ``expect``: constructor arguments the caller needs; another architecture or resolution is a ``UserError``.
    ``training_state``: also read the optimizer and EMA tensors (for resuming).
    """
    if weights not in ("auto", "ema", "model"):
        raise ValueError(f"weights must be auto, ema or model, got {weights!r}")
    path = resolve_checkpoint(path)
    state = read_state(path)
    args = state.get("model")
    if not isinstance(args, dict):
        raise UserError(f"checkpoint {path} records no model arguments; it is damaged or from another version")
    if expect is not None:
        diff = architecture_mismatch(args, expect)
        if diff:
            raise UserError(f"checkpoint {path} holds model {describe(args)}, but model {describe(expect)} was asked for "
                            f"({'; '.join(diff)}); pick the matching model= preset or another out= folder")
    model = build_model(state.get("model_class", MODEL_CLASS), args)
    tensors = _read_tensors(path / "model.safetensors")
    ema_path = path / "ema.safetensors"
    use_ema = weights == "ema" or (weights == "auto" and ema_path.is_file())
    if weights == "ema" and not ema_path.is_file():
        raise UserError(f"checkpoint {path} has no EMA weights; use weights=model")
    ema = _read_tensors(ema_path) if (use_ema or (training_state and ema_path.is_file())) else None
    try:
        model.load_state_dict(ema if use_ema else tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"checkpoint {path} weights do not match the architecture it records ({first}); "
                        "it is damaged or from another version") from None
    optimizer = None
    if training_state and (path / "optimizer.safetensors").is_file():
        optimizer = unflatten_optimizer_state(_read_tensors(path / "optimizer.safetensors"), state.get("optimizer", {}))
    model.to(device).eval()
    return Checkpoint(path=path, model=model, state=state, weights="ema" if use_ema else "model", ema=ema,
                      optimizer=optimizer, model_tensors=tensors if training_state else {})


__all__ = [
    "save_checkpoint", "load_checkpoint", "Checkpoint", "find_latest", "list_checkpoints", "resolve_checkpoint",
    "clean_partial", "checkpoint_name", "architecture_mismatch", "build_model", "read_state",
    "flatten_optimizer_state", "unflatten_optimizer_state",
]
