"""Known answers for the evaluation metrics."""
import math

import numpy as np
import pytest

from faceswap.evaluate import metrics as M


def _face(seed=0, size=48):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=2) % 256
    return np.clip(base + rng.integers(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)


def test_ssim_of_identical_images_is_one():
    img = _face()
    assert M.ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[10:30, 12:40] = 255
    assert M.ssim(img, img, mask) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_the_reference_formula_on_a_constant_pair():
    # Two flat images: variances and covariance are 0, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1).
    a = np.full((20, 20, 3), 0.25)
    b = np.full((20, 20, 3), 0.75)
    c1 = (0.01) ** 2
    want = (2 * 0.25 * 0.75 + c1) / (0.25 ** 2 + 0.75 ** 2 + c1)
    assert M.ssim(a, b) == pytest.approx(want, rel=1e-9)


def test_ssim_drops_with_noise_and_is_symmetric():
    img = _face()
    rng = np.random.default_rng(1)
    noisy = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    very = np.clip(img + rng.normal(0, 60, img.shape), 0, 255).astype(np.uint8)
    s1, s2 = M.ssim(img, noisy), M.ssim(img, very)
    assert 0 < s2 < s1 < 1
    assert M.ssim(noisy, img) == pytest.approx(s1, abs=1e-12)


def test_psnr_formula():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:5] = 51  # half the pixels off by 0.2: MSE = 0.5 * 0.04 = 0.02
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.02), rel=1e-12)
    assert M.psnr(a, a) == math.inf
    assert M.mean_psnr([math.inf, 20.0]) == pytest.approx((M.PSNR_CAP_DB + 20) / 2)


def test_masked_metrics_ignore_outside_pixels():
    img = _face(2)
    other = _face(3)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[8:40, 8:40] = 255
    # Change only what lies outside the mask: no masked metric may move.
    changed = other.copy()
    changed[mask == 0] = 255 - changed[mask == 0]
    assert M.ssim(img, changed, mask) == pytest.approx(M.ssim(img, other, mask), abs=1e-12)
    assert M.psnr(img, changed, mask) == pytest.approx(M.psnr(img, other, mask), abs=1e-12)
    # ...and an image that is right inside the mask scores perfectly whatever lies outside.
    inside_right = 255 - img
    inside_right[mask > 0] = img[mask > 0]
    assert M.ssim(img, inside_right, mask) == pytest.approx(1.0, abs=1e-12)
    assert M.psnr(img, inside_right, mask) == math.inf
    assert M.ssim(img, inside_right) < 0.5


def test_empty_mask_and_shape_mismatch_are_errors():
    img = _face()
    with pytest.raises(ValueError):
        M.ssim(img, img, np.zeros(img.shape[:2], np.uint8))
    with pytest.raises(ValueError):
        M.psnr(img, img[:10])


def test_flicker_of_a_static_clip_is_zero_and_of_a_blink_is_known():
    img = _face()
    assert M.flicker([img] * 5) == 0.0
    assert M.temporal_error([img] * 4, [img] * 4) == 0.0
    dark = np.zeros((8, 8, 3), np.uint8)
    light = np.full((8, 8, 3), 51, np.uint8)  # 0.2 apart
    assert M.flicker([dark, light, dark]) == pytest.approx(0.2)
    # A swap that stays still while the truth changes by 0.2 per frame is off by 0.2 per frame.
    assert M.temporal_error([dark, dark, dark], [dark, light, dark]) == pytest.approx(0.2)
    # The same change as the truth, on a different base image, is no flicker at all.
    assert M.temporal_error([light, light * 2, light], [dark, light, dark]) == pytest.approx(0.0)


def test_flicker_respects_the_mask():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:, 4:] = 255  # only the right half changes
    left = np.zeros((8, 8), np.uint8)
    left[:, :4] = 255
    assert M.flicker([a, b], [left, left]) == 0.0
    assert M.flicker([a, b], [255 - left, 255 - left]) == pytest.approx(1.0)


def test_normalised_errors():
    pred = np.array([[0.0, 10.0], [1.0, 20.0]])
    true = np.array([[1.0, 10.0], [1.0, 10.0]])
    np.testing.assert_allclose(M.normalised_errors(pred, true, np.array([0.5, 5.0])), [1.0, 1.0])
    with pytest.raises(ValueError):
        M.normalised_errors(pred, true, np.array([0.0, 1.0]))
