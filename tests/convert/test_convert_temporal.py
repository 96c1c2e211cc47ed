"""Filling missed detections: linear interpolation over gaps of at most max_gap frames, in a bounded stream."""
import numpy as np

from faceswap.convert.faces import fill_missed
from faceswap.convert.stream import Item
from faceswap.convert.temporal import GapFiller, fill_gaps, interpolate_landmarks

A = np.zeros((5, 2))
B = np.full((5, 2), 30.0)


def test_interpolate_landmarks_known_values():
    np.testing.assert_allclose(interpolate_landmarks(A, B, 0.0), A)
    np.testing.assert_allclose(interpolate_landmarks(A, B, 1.0), B)
    np.testing.assert_allclose(interpolate_landmarks(A, B, 1 / 3), 10.0)


def test_a_gap_between_two_hits_is_interpolated():
    out = fill_gaps([A, None, None, B], max_gap=2)
    assert [interp for _, interp in out] == [False, True, True, False]
    np.testing.assert_allclose(out[1][0], 10.0)
    np.testing.assert_allclose(out[2][0], 20.0)
    np.testing.assert_allclose(out[3][0], B)


def test_long_gaps_and_open_ends_stay_missed():
    out = fill_gaps([A, None, None, None, B], max_gap=2)
    assert [lm is None for lm, _ in out] == [False, True, True, True, False]
    out = fill_gaps([None, A, None, B, None], max_gap=3)
    assert [lm is None for lm, _ in out] == [True, False, False, False, True]
    assert out[2][1]
    np.testing.assert_allclose(out[2][0], 15.0)
    assert all(lm is None for lm, _ in fill_gaps([None, None], max_gap=5))
    out = fill_gaps([A, None, B], max_gap=0)
    assert out[1][0] is None


def test_the_filler_holds_at_most_max_gap_items():
    filler = GapFiller(3, lambda x: x, lambda x, lm: lm)
    filler.push(A)
    held = []
    for _ in range(10):
        filler.push(None)
        held.append(len(filler))
    assert max(held) <= 3


def _item(i, lm, in_range=True):
    return Item(i, f"{i:06d}", np.zeros((4, 4, 3), np.uint8), in_range=in_range,
                landmarks=None if lm is None else np.asarray(lm, float), how=None if lm is None else "file")


def test_a_missed_frame_in_the_stream_gets_interpolated_landmarks():
    items = [_item(0, A), _item(1, None), _item(2, B), _item(3, None)]
    out = list(fill_missed(items, max_gap=2))
    assert [x.index for x in out] == [0, 1, 2, 3]  # order kept
    assert out[1].how == "interpolated"
    np.testing.assert_allclose(out[1].landmarks, 15.0)
    assert out[3].landmarks is None  # nothing after it to interpolate towards


def test_frames_outside_the_range_break_a_gap():
    items = [_item(0, A), _item(1, None, in_range=False), _item(2, None), _item(3, B)]
    out = list(fill_missed(items, max_gap=5))
    assert out[1].landmarks is None and out[2].landmarks is None
