"""Convert's settings: the validated knobs of one conversion, and what a checkpoint says about its crops."""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceswap.errors import UserError


@dataclass
class ConvertSettings:
    """The validated knobs of one conversion (config group ``convert`` plus the top-level choices)."""

    source: str = "b"  # identity shown in the input
    target: str = "a"  # identity the output shows (whose decoder runs)
    mask: str = "both"
    erode: float = 0.03
    feather: float = 0.04
    forehead: float = 0.8
    blend: str = "alpha"
    color: str = "none"
    color_ema: float = 0.0
    mask_ema: float = 0.0
    max_gap: int = 5
    batch_size: int = 16
    amp: bool = True
    queue: int = 16
    workers: int = 1
    start: int = 0
    stop: int | None = None
    label: bool = True
    watermark: bool = True
    metadata: bool = True
    label_text: str = "SYNTHETIC"
    label_corner: str = "bottom-right"
    watermark_strength: float = 1.0

    @property
    def direction(self) -> str:
        return f"{self.source}_to_{self.target}"

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, cfg: Any) -> "ConvertSettings":
        """Validate the composed ``convert`` config; every bad value is one UserError naming the key and its choices."""
        return _from_config(cls, cfg)


def parse_direction(direction: Any) -> tuple[str, str]:
    """``a_to_b`` -> ("a", "b"); anything else is a user error."""
    m = re.fullmatch(r"([a-z0-9]+)_to_([a-z0-9]+)", str(direction))
    if not m or m.group(1) == m.group(2):
        raise UserError(f"direction={direction!r} is not a swap direction; use b_to_a (input shows B, output shows A) "
                        "or a_to_b")
    return m.group(1), m.group(2)


def _number(value: Any, key: str, lo: float, hi: float, integer: bool = False, lo_open: bool = False,
            hi_open: bool = False) -> float | int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        kind = "an integer" if integer else "a number"
        raise UserError(f"{key}={value!r} must be {kind} in {rng}")
    return int(value) if integer else float(value)


def _from_config(cls, cfg: Any) -> ConvertSettings:
    from faceswap.convert.blend import BLEND_MODES
    from faceswap.convert.color import COLOR_MODES
    from faceswap.convert.mask import MASK_TYPES

    c = cfg.convert
    src, dst = parse_direction(cfg.get("direction", "b_to_a"))
    for key, value, allowed in (("convert.mask", c.mask, MASK_TYPES), ("convert.blend", c.blend, BLEND_MODES),
                                ("convert.color", c.color, COLOR_MODES)):
        if value not in allowed:
            raise UserError(f"{key}={value!r} is not a known mode; use one of {', '.join(allowed)}")
    start = _number(cfg.get("start", 0) or 0, "start", 0, 1e12, integer=True)
    stop = cfg.get("stop")
    if stop is not None:
        stop = _number(stop, "stop", 1, 1e12, integer=True)
        if stop <= start:
            raise UserError(f"stop={stop} must be greater than start={start} (or null for the end)")
    prov = cfg.get("provenance") or {}
    strength = _number(prov.get("strength", 1.0), "provenance.strength", 0.0, 1.0, lo_open=True)
    for key in ("label", "watermark", "metadata"):
        if not isinstance(prov.get(key, True), bool):
            raise UserError(f"provenance.{key}={prov.get(key)!r} must be true or false")
    return cls(
        source=src, target=dst, mask=str(c.mask),
        erode=_number(c.erode, "convert.erode", -0.5, 0.5),
        feather=_number(c.feather, "convert.feather", 0.0, 0.5),
        forehead=_number(c.forehead, "convert.forehead", 0.0, 3.0),
        blend=str(c.blend), color=str(c.color),
        color_ema=_number(c.color_ema, "convert.color_ema", 0.0, 1.0, hi_open=True),
        mask_ema=_number(c.mask_ema, "convert.mask_ema", 0.0, 1.0, hi_open=True),
        max_gap=_number(c.max_gap, "convert.max_gap", 0, 1000, integer=True),
        batch_size=_number(c.batch_size, "convert.batch_size", 1, 4096, integer=True),
        amp=bool(c.amp), queue=_number(c.queue, "convert.queue", 1, 4096, integer=True),
        workers=default_workers() if c.get("workers", "auto") == "auto" else
        _number(c.workers, "convert.workers", 1, 64, integer=True),
        start=start, stop=stop,
        label=bool(prov.get("label", True)), watermark=bool(prov.get("watermark", True)),
        metadata=bool(prov.get("metadata", True)), label_text=str(prov.get("text", "SYNTHETIC")) or "SYNTHETIC",
        label_corner=str(prov.get("corner", "bottom-right")), watermark_strength=strength,
    )


def default_workers() -> int:
    """Paste-back threads for ``workers: auto``: half the CPU cores (the model and the codecs need the rest), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def provenance_warnings(s: ConvertSettings) -> list[str]:
    """One WARNING line per provenance stamp that was turned off."""
    out = []
    if not s.label:
        out.append("WARNING: provenance.label=false: output frames carry NO visible 'synthetic' label")
    if not s.watermark:
        out.append("WARNING: provenance.watermark=false: swapped frames carry NO invisible watermark; "
                   "'faceswap verify' will not recognise this output")
    if not s.metadata:
        out.append("WARNING: provenance.metadata=false: the output file carries NO provenance metadata")
    return out


def training_crop(state: dict) -> tuple[int | None, float | None, str]:
    """(crop size, coverage, where it was found) of the faces a checkpoint was trained on.

    Looks at the checkpoint's own ``crop`` record first, then at the alignments.json of the extract
    folders its training config names (``config.data.a``/``b``).
    """
    crop = state.get("crop")
    if isinstance(crop, dict) and isinstance(crop.get("coverage"), (int, float)):
        size = crop.get("size")
        return (int(size) if isinstance(size, (int, float)) else None), float(crop["coverage"]), "checkpoint"
    data = ((state.get("config") or {}).get("data") or {}) if isinstance(state.get("config"), dict) else {}
    import json

    for key in ("a", "b"):
        folder = data.get(key)
        if not isinstance(folder, str):
            continue
        path = Path(folder) / "alignments.json"
        try:
            with open(path, "r", encoding="utf-8") as fh:
                crop = json.load(fh).get("crop") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(crop.get("coverage"), (int, float)):
            size = crop.get("size")
            return (int(size) if isinstance(size, (int, float)) else None), float(crop["coverage"]), str(path)
    return None, None, ""



def watermark_fits(shape: tuple[int, ...]) -> bool:
    """Whether a frame is big enough to carry the watermark (two pixels per cell of its grid)."""
    from faceswap.provenance.watermark import GRID

    return shape[0] >= 2 * GRID[0] and shape[1] >= 2 * GRID[1]


def frames_in_flight_bound(s: ConvertSettings, det_batch: int) -> int:
    """Most frames the pipeline can hold at once, whatever the video's length.

    Reader queue (+1 in the reader's hand, +1 in the consumer's), detector batch, gap buffer, model
    batch, writer queue of pending paste-back jobs (+1 being submitted, +1 being written).
    """
    return (s.queue + 2) + det_batch + (s.max_gap + 1) + s.batch_size + (s.queue + 2)
