"""The visible label: in the asked corner, only there, legible at every frame size."""
import numpy as np
import pytest

from faceswap.provenance import stamp_label
from faceswap.provenance.label import CORNERS, label_layout


def _changed(a, b):
    return np.any(a != b, axis=2)


@pytest.mark.parametrize("corner", CORNERS)
def test_label_changes_pixels_in_its_corner_only(corner):
    rng = np.random.default_rng(0)
    frame = rng.integers(40, 216, (240, 320, 3), dtype=np.uint8)
    out = stamp_label(frame, corner=corner)
    x1, y1, x2, y2 = label_layout(240, 320, corner=corner).box
    changed = _changed(out, frame)
    inside = np.zeros_like(changed)
    inside[y1:y2, x1:x2] = True
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.95  # the box darkens every pixel under it
    cy, cx = (y1 + y2) / 2, (x1 + x2) / 2
    assert (cy > 120) == corner.startswith("bottom") and (cx > 160) == corner.endswith("right")
    assert frame.sum() and out is not frame


def test_label_text_is_bright_on_a_dark_box():
    frame = np.full((240, 320, 3), 200, np.uint8)
    out = stamp_label(frame)
    x1, y1, x2, y2 = label_layout(240, 320).box
    box = out[y1:y2, x1:x2].astype(int)
    assert (box.min(axis=2) >= 250).sum() > 50  # white strokes
    assert (box.max(axis=2) <= 90).mean() > 0.5  # the rest is darkened (60% black over 200 -> 80)


@pytest.mark.parametrize("h,w", [(240, 320), (480, 640), (720, 1280), (1080, 1920), (1920, 1080)])
def test_label_scales_with_the_frame(h, w):
    x1, y1, x2, y2 = label_layout(h, w).box
    box_h = y2 - y1
    assert 0.06 * min(h, w) <= box_h <= 0.12 * min(h, w)
    assert box_h >= 18  # cap height >= 9 px even at 240p
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def test_long_text_shrinks_to_fit_a_narrow_frame():
    x1, _, x2, _ = label_layout(240, 96, text="SYNTHETIC MEDIA - FACE SWAPPED").box
    assert x1 >= 0 and x2 <= 96


def test_bad_arguments():
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="corner"):
        stamp_label(frame, corner="middle")
    with pytest.raises(ValueError, match="RGB uint8"):
        stamp_label(frame.astype(np.float32))
