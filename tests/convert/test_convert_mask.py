"""Blend masks: the landmark hull, combining with the learned mask, erosion/dilation, feathering, smoothing."""
import numpy as np
import pytest

from faceswap.convert.mask import MaskEMA, combine_masks, erode_px, face_outline, feather, hull_mask, refine_mask

# A frontal face's 5 landmarks in a 128 px crop: eyes, nose, mouth corners.
LM = np.array([[48.0, 56.0], [80.0, 56.0], [64.0, 72.0], [51.0, 88.0], [77.0, 88.0]])


def test_hull_covers_the_landmarks_and_the_forehead_not_the_corners():
    m = hull_mask(LM, (128, 128), forehead=0.8)
    for x, y in LM:
        assert m[int(round(y)), int(round(x))] == 1.0
    eye_y, mouth_y = 56.0, 88.0
    forehead_y = int(eye_y - 0.6 * (mouth_y - eye_y))
    assert m[forehead_y, 64] == 1.0  # above the eyes: the forehead is in
    for y, x in ((2, 2), (2, 125), (125, 2), (125, 125)):
        assert m[y, x] == 0.0
    assert m[int(eye_y - 1.2 * (mouth_y - eye_y)), 64] == 0.0  # but not beyond the forehead setting


def test_hull_grows_with_the_forehead_setting_and_follows_the_face():
    small = hull_mask(LM, (128, 128), forehead=0.3).sum()
    large = hull_mask(LM, (128, 128), forehead=1.0).sum()
    assert large > small
    moved = hull_mask(LM + [10, 5], (128, 128))
    np.testing.assert_allclose(moved[5:, 10:], hull_mask(LM, (128, 128))[:-5, :-10], atol=1e-6)


def test_outline_rejects_degenerate_landmarks():
    with pytest.raises(ValueError):
        face_outline(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        face_outline(np.full((5, 2), np.nan))


def test_combine_both_is_the_minimum():
    learned = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    hull = np.zeros((4, 4), np.float32)
    hull[:, 2:] = 1
    np.testing.assert_array_equal(combine_masks("both", learned, hull), np.minimum(learned, hull))
    np.testing.assert_array_equal(combine_masks("learned", learned, None), learned)
    np.testing.assert_array_equal(combine_masks("hull", None, hull), hull)
    with pytest.raises(ValueError):
        combine_masks("sam", learned, hull)


def test_erosion_and_dilation_by_known_amounts():
    m = np.zeros((41, 41), np.float32)
    m[10:31, 10:31] = 1  # a 21 px square
    assert erode_px(m, 3).sum() == 15 * 15  # a disc fits where the square is shrunk by its radius
    assert erode_px(m, 0).sum() == 21 * 21
    grown = erode_px(m, -3)
    # Dilation by a disc: the square grows by 3 on each side, its corners rounded.
    assert 21 * 21 + 4 * 21 * 3 < grown.sum() < 27 * 27
    assert grown[10:31, 7:34].all() and grown[7:34, 10:31].all()


def test_erosion_keeps_a_face_cut_by_the_array_edge():
    m = np.zeros((20, 20), np.float32)
    m[:, :10] = 1  # touches the top, bottom and left edges
    e = erode_px(m, 2)
    assert e[:, :8].all() and not e[:, 8:].any()  # shrunk only away from the edges it touches


def test_feather_is_a_gaussian_of_the_edge():
    m = np.zeros((64, 64), np.float32)
    m[:, 32:] = 1
    f = feather(m, 3.0)
    row = f[32]
    assert row[0] == 0 and row[-1] == 1
    assert abs(row[31] + row[32] - 1.0) < 1e-3  # symmetric about the edge
    assert np.all(np.diff(row) >= -1e-6)
    np.testing.assert_array_equal(feather(m, 0), m)


def test_refine_scales_with_the_face_size():
    m = np.zeros((200, 200), np.float32)
    m[50:150, 50:150] = 1
    a = refine_mask(m, face_px=100, erode=0.1, blur=0)
    assert a.sum() == 80 * 80  # 10 px = 0.1 of a 100 px face


def test_mask_ema():
    ema = MaskEMA(0.5)
    a, b = np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)
    np.testing.assert_array_equal(ema(a), a)
    np.testing.assert_allclose(ema(b), 0.5)
    np.testing.assert_allclose(ema(b), 0.75)
    ema.reset()
    np.testing.assert_array_equal(ema(a), a)
    np.testing.assert_array_equal(MaskEMA(0.0)(b), b)
