"""Forensic features against known answers: radial spectra, blending maps, self-blends, flicker, AUC."""
import numpy as np
import pytest

from faceswap.forensics import features as F


@pytest.mark.parametrize("kx,ky", [(5, 0), (0, 9), (6, 8)])
def test_azimuthal_spectrum_of_a_cosine_peaks_at_its_frequency(kx, ky):
    n = 64
    y, x = np.indices((n, n))
    img = np.cos(2 * np.pi * (kx * x + ky * y) / n)
    prof = F.azimuthal_average(F.log_spectrum(img))
    assert len(prof) == n // 2 + 1
    assert int(np.argmax(prof)) == round(np.hypot(kx, ky))


def test_azimuthal_average_of_the_radius_is_the_radius():
    r = F.radius_map((32, 32)).astype(float)
    assert np.allclose(F.azimuthal_average(r), np.arange(17))


def test_spectral_profile_is_scaled_and_resampled():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    prof = F.spectral_profile(img, n_bins=30)
    assert prof.shape == (30,) and prof.min() >= 0 and prof[0] == pytest.approx(1)  # DC dominates a positive image
    assert F.spectral_features(np.stack([img, img]), 30).shape == (2, 30)


def test_blurring_removes_high_frequencies_from_the_profile():
    import cv2

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    assert F.spectral_profile(blurred)[-8:].mean() < F.spectral_profile(img)[-8:].mean()


def test_blending_map_known_values():
    m = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    assert np.allclose(F.blending_map(m), [0, 0.75, 1, 0.75, 0])
    assert np.allclose(F.blending_map(np.array([0, 128, 255], np.uint8)), [0, 4 * (128 / 255) * (127 / 255), 0], atol=1e-6)


def test_blending_map_of_a_feathered_mask_is_zero_away_from_the_seam():
    rng = np.random.default_rng(2)
    m = F.random_feathered_mask(96, rng)
    b = F.blending_map(m)
    assert b.max() == pytest.approx(1.0, abs=0.05)  # the seam passes through M = 0.5
    assert b[0, 0] == pytest.approx(0, abs=1e-6) and b[-1, -1] == pytest.approx(0, abs=1e-6)
    inner = m > 0.999
    outer = m < 0.001
    assert inner.any() and outer.any()
    assert b[inner].max() < 0.005 and b[outer].max() < 0.005


def test_self_blend_keeps_the_image_outside_the_mask():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out, mask = F.self_blend(img, rng)
    assert out.shape == img.shape and out.dtype == np.uint8 and mask.shape == (64, 64)
    far = mask < 1e-4
    assert far.any() and np.abs(out[far].astype(int) - img[far]).max() <= 1
    assert np.abs(out[mask > 0.99].astype(int) - img[mask > 0.99]).mean() > 1  # the pasted part did change


def _clip(flicker: float, rng, t=12, n=48):
    y, x = np.indices((n, n))
    frames = []
    for k in range(t):
        face = 120 + 60 * np.exp(-((x - n / 2 - 0.3 * k) ** 2 + (y - n / 2) ** 2) / 150.0)
        inner = np.hypot(x - n / 2, y - n / 2) < 12
        face = face + inner * rng.normal(0, flicker)  # per-frame brightness jump of the face only
        frames.append(np.repeat(np.clip(face, 0, 255)[..., None], 3, axis=2).astype(np.uint8))
    return np.stack(frames)


def test_flicker_features_see_per_frame_jitter():
    rng = np.random.default_rng(4)
    steady, flick = F.flicker_features(_clip(0.0, rng)), F.flicker_features(_clip(8.0, rng))
    names = list(F.FLICKER_NAMES)
    assert steady.shape == (len(names),)
    for key in ("log_d2_inner", "log_brightness_jitter", "log_d2_inner_over_outer"):
        assert flick[names.index(key)] > steady[names.index(key)] + 1.0, key
    with pytest.raises(ValueError):
        F.flicker_features(_clip(0.0, rng, t=2))


def test_auc_hand_computed():
    # Pairs (fake, real): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, 0.1) yes, (0.8, 0.4) yes -> 3/4.
    assert F.roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert F.roc_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)  # a tie counts one half
    assert F.roc_auc([0.2, 0.3, 0.7], [1, 0, 0]) == pytest.approx(0.0)
    assert np.isnan(F.roc_auc([0.1, 0.2], [1, 1]))


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(5)
    s = np.round(rng.random(200), 2)
    y = rng.random(200) < 0.4
    fpr, tpr = F.roc_curve(s, y)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(F.roc_auc(s, y))


def test_accuracy_and_balanced_accuracy():
    s, y = np.array([0.9, 0.8, 0.7, 0.2]), np.array([1, 1, 1, 0])
    assert F.accuracy(s, y) == 1.0
    assert F.accuracy(s, y, threshold=0.75) == 0.75
    assert F.balanced_accuracy(s, y, threshold=0.75) == pytest.approx(0.5 * (2 / 3 + 1))
