"""The alignments file (docs/formats.md): per frame every face, its landmarks and matrix, and the target; validated on load."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import UserError
from faceswap.utils import read_json, write_json_atomic

SCHEMA = "faceswap.alignments"
VERSION = 1


@dataclass
class Face:
    box: np.ndarray  # (4,) x1, y1, x2, y2 in frame pixels
    score: float
    landmarks: np.ndarray  # (5, 2) detector output, frame pixels
    landmarks_smoothed: np.ndarray  # (5, 2) after temporal smoothing (= landmarks off the target track)
    matrix: np.ndarray  # (2, 3) frame -> crop similarity, from landmarks_smoothed

    def to_dict(self) -> dict:
        return {"box": _round(self.box), "score": round(float(self.score), 6), "landmarks": _round(self.landmarks),
                "landmarks_smoothed": _round(self.landmarks_smoothed), "matrix": _round(self.matrix, 8)}


@dataclass
class FrameRecord:
    index: int
    name: str
    faces: list[Face] = field(default_factory=list)
    target: int | None = None
    error: str | None = None  # why the frame could not be read (it is kept, with no faces)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"index": self.index, "name": self.name, "target": self.target,
                             "faces": [f.to_dict() for f in self.faces]}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class Alignments:
    source: dict  # path, kind ("video" | "images"), frames, width, height, fps
    crop: dict  # size, coverage, template
    settings: dict = field(default_factory=dict)
    frames: list[FrameRecord] = field(default_factory=list)

    # --- accessors for later stages ---

    @property
    def size(self) -> int:
        return int(self.crop["size"])

    @property
    def coverage(self) -> float:
        return float(self.crop["coverage"])

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> FrameRecord:
        return self.frames[index]

    def target_face(self, index: int) -> Face | None:
        """The target face of frame ``index``, or None when the frame has none."""
        rec = self.frames[index]
        return rec.faces[rec.target] if rec.target is not None else None

    def landmarks_in_crop(self, index: int) -> np.ndarray | None:
        """The target's smoothed landmarks in its crop's pixels (5, 2), or None."""
        from faceswap.extract.align import transform_points

        face = self.target_face(index)
        return None if face is None else transform_points(face.landmarks_smoothed, face.matrix)

    def by_name(self) -> dict[str, FrameRecord]:
        return {r.name: r for r in self.frames}

    def summary(self) -> dict:
        return {
            "frames": len(self.frames),
            "faces": sum(len(r.faces) for r in self.frames),
            "targets": sum(r.target is not None for r in self.frames),
            "misses": sum(r.target is None for r in self.frames),
            "errors": sum(bool(r.error) for r in self.frames),
        }

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "version": VERSION, "source": self.source, "crop": self.crop,
                "settings": self.settings, "frames": [r.to_dict() for r in self.frames]}


def _round(a: np.ndarray, digits: int = 3) -> list:
    return np.round(np.asarray(a, dtype=np.float64), digits).tolist()


# --- validation ---------------------------------------------------------------------------------------------

class _Invalid(Exception):
    pass


def _array(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Invalid(f"{where} is not a list of numbers") from None
    if arr.shape != shape:
        raise _Invalid(f"{where} has shape {list(arr.shape)}, expected {list(shape)}")
    if not np.isfinite(arr).all():
        raise _Invalid(f"{where} holds a non-finite number")
    return arr


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"{where} is not a finite number")
    return float(value)


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _Invalid(f"{where} is not an integer >= {minimum}")
    return value


def _face(d: Any, where: str) -> Face:
    if not isinstance(d, dict):
        raise _Invalid(f"{where} is not an object")
    for key in ("box", "score", "landmarks", "matrix"):
        if key not in d:
            raise _Invalid(f"{where} has no '{key}'")
    landmarks = _array(d["landmarks"], (5, 2), f"{where}.landmarks")
    smoothed = d.get("landmarks_smoothed")
    return Face(
        box=_array(d["box"], (4,), f"{where}.box"),
        score=_number(d["score"], f"{where}.score"),
        landmarks=landmarks,
        landmarks_smoothed=landmarks.copy() if smoothed is None else _array(smoothed, (5, 2), f"{where}.landmarks_smoothed"),
        matrix=_array(d["matrix"], (2, 3), f"{where}.matrix"),
    )


def _frame(d: Any, i: int) -> FrameRecord:
    where = f"frames[{i}]"
    if not isinstance(d, dict):
        raise _Invalid(f"{where} is not an object")
    index = _int(d.get("index"), f"{where}.index")
    if index != i:
        raise _Invalid(f"{where}.index is {index}; frames must be listed in order, one per frame")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise _Invalid(f"{where}.name is not a non-empty string")
    faces_raw = d.get("faces")
    if not isinstance(faces_raw, list):
        raise _Invalid(f"{where}.faces is not a list")
    faces = [_face(f, f"{where}.faces[{j}]") for j, f in enumerate(faces_raw)]
    target = d.get("target")
    if target is not None:
        target = _int(target, f"{where}.target")
        if target >= len(faces):
            raise _Invalid(f"{where}.target is {target} but the frame has {len(faces)} face(s)")
    error = d.get("error")
    if error is not None and not isinstance(error, str):
        raise _Invalid(f"{where}.error is not a string")
    return FrameRecord(index, name, faces, target, error)


def alignments_from_dict(data: Any, complete: bool = True) -> Alignments:
    """Validate a parsed alignments document; raises ValueError naming the first problem.

    ``complete``: the frame list must cover every frame of the source (a final file, not a partial one).
    """
    try:
        if not isinstance(data, dict):
            raise _Invalid("the top level is not an object")
        if data.get("schema") != SCHEMA:
            raise _Invalid(f"schema is {data.get('schema')!r}, expected {SCHEMA!r}")
        version = data.get("version")
        if version != VERSION:
            raise _Invalid(f"version is {version!r}; this faceswap reads version {VERSION}")
        source, crop = data.get("source"), data.get("crop")
        if not isinstance(source, dict):
            raise _Invalid("source is not an object")
        n = _int(source.get("frames"), "source.frames")
        for key in ("width", "height"):
            _int(source.get(key), f"source.{key}", 1)
        if not isinstance(crop, dict):
            raise _Invalid("crop is not an object")
        _int(crop.get("size"), "crop.size", 1)
        cov = _number(crop.get("coverage"), "crop.coverage")
        if cov <= 0:
            raise _Invalid("crop.coverage is not positive")
        if "template" in crop:
            _array(crop["template"], (5, 2), "crop.template")
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise _Invalid("settings is not an object")
        frames_raw = data.get("frames")
        if not isinstance(frames_raw, list):
            raise _Invalid("frames is not a list")
        if complete and len(frames_raw) != n:
            raise _Invalid(f"it lists {len(frames_raw)} frames but source.frames is {n}")
        if len(frames_raw) > n:
            raise _Invalid(f"it lists {len(frames_raw)} frames, more than source.frames ({n})")
        frames = [_frame(f, i) for i, f in enumerate(frames_raw)]
    except _Invalid as exc:
        raise ValueError(str(exc)) from None
    return Alignments(source=source, crop=crop, settings=settings, frames=frames)


def load_alignments(path: str | os.PathLike, complete: bool = True) -> Alignments:
    """Read and validate an alignments file; any problem is a ``UserError`` naming the file and the problem."""
    path = Path(path)
    data = read_json(path, "alignments file")
    try:
        return alignments_from_dict(data, complete=complete)
    except ValueError as exc:
        raise UserError(f"alignments file {path} is invalid: {exc}; re-run 'faceswap extract' to re-create it") from None


def save_alignments(alignments: Alignments, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write atomically (a crash leaves the previous file). ``extra``: more top-level keys (e.g. resume state)."""
    data = alignments.to_dict()
    if extra:
        data.update(extra)
    write_json_atomic(path, data, indent=None)


__all__ = ["SCHEMA", "VERSION", "Face", "FrameRecord", "Alignments", "alignments_from_dict", "load_alignments",
           "save_alignments"]
