"""Visible provenance label: a semi-opaque box with "SYNTHETIC" in a frame corner, sized to the frame."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class LabelLayout:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (x2, y2 exclusive) of the backing box
    origin: tuple[int, int]  # text baseline origin, as cv2.putText takes it
    scale: float
    thickness: int


def label_layout(height: int, width: int, text: str = "SYNTHETIC", corner: str = "bottom-right") -> LabelLayout:
    """Where the label goes and how big: cap height ~4.5% of the frame height (11 px at 240p, 49 px at 1080p)."""
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {', '.join(CORNERS)}, got {corner!r}")
    if not text:
        raise ValueError("label text must not be empty")
    # Measure on the shorter side so portrait frames get the same relative size as landscape ones.
    short = min(height, width)
    cap = max(9.0, 0.045 * short)
    (w1, h1), _ = cv2.getTextSize(text, _FONT, 1.0, 1)
    scale = cap / h1
    pad = max(3, round(0.45 * cap))
    margin = max(2, round(0.5 * cap))
    # Shrink long texts to fit the frame rather than running off its edge.
    room = width - 2 * margin - 2 * pad
    if w1 * scale > room:
        scale = max(room, 1) / w1
    thickness = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    x1 = width - margin - bw if corner.endswith("right") else margin
    y1 = height - margin - bh if corner.startswith("bottom") else margin
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(width, x1 + bw), min(height, y1 + bh)
    return LabelLayout((x1, y1, x2, y2), (x1 + pad, y1 + pad + th), scale, thickness)


def stamp_label(frame_rgb: np.ndarray, text: str = "SYNTHETIC", corner: str = "bottom-right",
                opacity: float = 0.6) -> np.ndarray:
    """Return a copy of ``frame_rgb`` with ``text`` in white on a semi-opaque dark box in ``corner``.

    Only pixels inside the box change; the box is see-through (``opacity`` of black) so it hides
    little of the picture, and the text is opaque white so it stays legible on any background.
    """
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
        raise ValueError(f"stamp_label takes an RGB uint8 HxWx3 frame, got {frame_rgb.dtype} {frame_rgb.shape}")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    h, w = frame_rgb.shape[:2]
    lay = label_layout(h, w, text, corner)
    out = frame_rgb.copy()
    x1, y1, x2, y2 = lay.box
    roi = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = np.round(roi * (1.0 - opacity)).astype(np.uint8)
    # Draw the text on a scratch layer clipped to the box, so anti-aliasing never leaks outside it.
    layer = out[y1:y2, x1:x2].copy()
    cv2.putText(layer, text, (lay.origin[0] - x1, lay.origin[1] - y1), _FONT, lay.scale, (255, 255, 255),
                lay.thickness, cv2.LINE_AA)
    out[y1:y2, x1:x2] = layer
    return out
