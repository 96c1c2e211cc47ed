"""Stamping one output frame: the visible label first, then the invisible watermark over the whole frame."""
from __future__ import annotations

import numpy as np

from faceswap.provenance.label import stamp_label
from faceswap.provenance.watermark import DEFAULT_KEY, Payload, default_codec


def stamp_frame(frame_rgb: np.ndarray, payload: Payload, label: bool = True, watermark: bool = True,
                text: str = "SYNTHETIC", corner: str = "bottom-right", key: int = DEFAULT_KEY,
                strength: float = 1.0) -> np.ndarray:
    """Label and watermark one RGB frame; ``payload`` is the run id (str, hashed) or a run tag (int/bytes).

    The watermark goes on last so the label's pixels carry it too and nothing later disturbs it.
    """
    out = stamp_label(frame_rgb, text, corner) if label else frame_rgb
    if watermark:
        out = default_codec(key).embed(out, payload, strength=strength)
    return out
