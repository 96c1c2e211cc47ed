"""Paste-back: an unchanged crop reproduces the frame inside the mask; alpha and Poisson survive border and tiny faces."""
import cv2
import numpy as np
import pytest

from faceswap.convert.blend import alpha_blend, face_roi, paste_back, poisson_blend
from faceswap.extract.align import align_face, warp_to_crop

from tests.convert.media import ASTRONAUT_LANDMARKS, astronaut


def _frame():
    return astronaut()[:384, 64:448].copy()  # 384 x 384, face near the centre


def _landmarks():
    return ASTRONAUT_LANDMARKS - [64, 0]


def test_integer_shift_crop_pastes_back_exactly():
    frame = _frame()
    x0, y0, s = 100, 40, 96
    matrix = np.array([[1.0, 0, -x0], [0, 1.0, -y0]])
    crop = warp_to_crop(frame, matrix, s)
    np.testing.assert_array_equal(crop, frame[y0:y0 + s, x0:x0 + s])
    mask = np.zeros((s, s), np.float32)
    mask[10:86, 12:80] = 1
    # Paste a different picture to see exactly which pixels change.
    res = paste_back(frame, 255 - crop, mask, matrix, "alpha")
    changed = np.any(res.frame != frame, axis=2)
    expect = np.zeros(frame.shape[:2], bool)
    expect[y0 + 10:y0 + 86, x0 + 12:x0 + 80] = True
    np.testing.assert_array_equal(changed & ~expect, np.zeros_like(changed))  # nothing outside the mask
    np.testing.assert_array_equal(res.frame[expect], 255 - frame[expect])
    # And the unchanged crop reproduces the frame exactly.
    np.testing.assert_array_equal(paste_back(frame, crop, mask, matrix, "alpha").frame, frame)


@pytest.mark.parametrize("blend", ["alpha", "poisson"])
def test_unchanged_crop_reproduces_the_frame_inside_the_mask(blend):
    frame = cv2.GaussianBlur(_frame(), (0, 0), 1.5)  # resampling twice blurs fine detail; compare on smooth content
    crop, matrix = align_face(frame, _landmarks(), 192, 0.75)
    mask = np.zeros((192, 192), np.float32)
    cv2.circle(mask, (96, 100), 60, 1.0, -1)
    res = paste_back(frame, crop, mask, matrix, blend, erode=0.02, blur=0.03)
    inside = res.mask > 0.99
    assert inside.sum() > 3000
    x1, y1, x2, y2 = res.roi
    err = np.abs(res.frame[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2].astype(int))[inside]
    assert err.mean() < 1.5 and np.percentile(err, 99) <= 6
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    np.testing.assert_array_equal(res.frame[outside], frame[outside])


def _border_matrix(frame_shape, where, size=96):
    """A frame -> crop matrix whose crop hangs half over the given border of the frame."""
    h, w = frame_shape[:2]
    cx = {"left": 0, "right": w, "top": w / 2, "bottom": w / 2, "corner": w}[where]
    cy = {"left": h / 2, "right": h / 2, "top": 0, "bottom": h, "corner": h}[where]
    scale = 0.8  # crop px per frame px: the face is 120 px in the frame
    return np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])


@pytest.mark.parametrize("where", ["left", "right", "top", "bottom", "corner"])
@pytest.mark.parametrize("blend", ["alpha", "poisson"])
def test_faces_at_the_frame_border(where, blend):
    frame = _frame()[:240, :320].copy()
    matrix = _border_matrix(frame.shape, where)
    face = np.full((96, 96, 3), (200, 40, 40), np.uint8)
    face[30:60, 20:76] = (40, 200, 40)
    mask = np.zeros((96, 96), np.float32)
    cv2.circle(mask, (48, 48), 40, 1.0, -1)
    res = paste_back(frame, face, mask, matrix, blend, erode=0.02, blur=0.03)
    assert res.frame.shape == frame.shape and res.frame.dtype == np.uint8
    assert res.roi is not None
    x1, y1, x2, y2 = res.roi
    assert 0 <= x1 < x2 <= frame.shape[1] and 0 <= y1 < y2 <= frame.shape[0]
    changed = np.any(res.frame != frame, axis=2)
    assert changed.sum() > 500  # the visible part of the face went in
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert not changed[outside].any()
    if blend == "poisson":
        assert res.poisson
        # The face's own pattern survives (gradients are kept): its two colours stay apart.
        assert np.abs(res.frame.astype(int) - frame.astype(int))[changed].max() > 40


def test_poisson_of_the_frame_itself_is_the_frame():
    frame = cv2.GaussianBlur(_frame(), (0, 0), 1.0)[:200, :200]
    mask = np.zeros((200, 200), np.float32)
    cv2.circle(mask, (0, 100), 70, 1.0, -1)  # cut by the left border
    out, solved = poisson_blend(frame, frame.copy(), mask)
    assert solved
    assert np.abs(out.astype(int) - frame.astype(int)).max() <= 2


@pytest.mark.parametrize("pixels", [0, 1, 3, 12])
def test_tiny_masks_do_not_crash(pixels):
    frame = _frame()[:120, :160].copy()
    mask = np.zeros((120, 160), np.float32)
    mask.reshape(-1)[np.arange(pixels) * 7 + 5000] = 1.0
    src = np.full_like(frame, 255)
    out, solved = poisson_blend(frame, src, mask)
    assert not solved
    np.testing.assert_array_equal(out, alpha_blend(frame, src, mask))


def test_empty_mask_and_offscreen_crop_change_nothing():
    frame = _frame()[:120, :160].copy()
    face = np.zeros((64, 64, 3), np.uint8)
    matrix = np.array([[1.0, 0, -20], [0, 1.0, -20]])
    res = paste_back(frame, face, np.zeros((64, 64), np.float32), matrix, "poisson")
    assert res.roi is None
    np.testing.assert_array_equal(res.frame, frame)
    away = np.array([[1.0, 0, 1000], [0, 1.0, 1000]])  # the crop lies far outside the frame
    assert face_roi(away, 64, frame.shape) is None
    res = paste_back(frame, face, np.ones((64, 64), np.float32), away, "alpha")
    np.testing.assert_array_equal(res.frame, frame)


def test_bad_mode_is_refused():
    frame = _frame()[:64, :64]
    with pytest.raises(ValueError, match="blend"):
        paste_back(frame, frame, np.ones((64, 64), np.float32), np.array([[1.0, 0, 0], [0, 1.0, 0]]), "laplacian")
