"""Colour transfer known answers: rct matches LAB mean/std, mkl maps covariance exactly, hist matches CDFs."""
import numpy as np
import pytest

from faceswap.convert.color import (COLOR_MODES, StatsEMA, apply_transfer, channel_cdf, color_stats, mkl_matrix,
                                    rgb_to_lab, transfer_color, weighted_mean_std)


def _image(rng, mean, std, shape=(48, 48)):
    return np.clip(rng.normal(mean, std, (*shape, 3)), 0, 1).astype(np.float32)


def _disc(shape=(48, 48), r=18):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 2) ** 2 < r * r).astype(np.float32)


def test_rct_matches_masked_lab_mean_and_std():
    rng = np.random.default_rng(0)
    src = _image(rng, [0.45, 0.4, 0.35], 0.05)
    tgt = _image(rng, [0.6, 0.5, 0.42], 0.08)
    mask = _disc()
    # Outside the mask the target is something else entirely: it must not count.
    tgt[mask == 0] = [0.0, 1.0, 0.0]
    out = apply_transfer(src, color_stats(src, mask, "rct"), color_stats(tgt, mask, "rct"), clip=False)
    w = mask.reshape(-1).astype(np.float64)
    got_mean, got_std = weighted_mean_std(rgb_to_lab(out).reshape(-1, 3), w)
    want_mean, want_std = weighted_mean_std(rgb_to_lab(tgt).reshape(-1, 3), w)
    np.testing.assert_allclose(got_mean, want_mean, atol=1e-6)
    np.testing.assert_allclose(got_std, want_std, atol=1e-6)
    # And it did move: the source's own statistics were far from the target's.
    src_mean, _ = weighted_mean_std(rgb_to_lab(src).reshape(-1, 3), w)
    assert np.abs(src_mean - want_mean).max() > 5


def test_mkl_maps_covariance_exactly_on_a_gaussian_sample():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 3))
    b = rng.normal(size=(3, 3))
    cov_s, cov_t = a @ a.T * 0.01 + 0.001 * np.eye(3), b @ b.T * 0.02 + 0.001 * np.eye(3)
    src = rng.multivariate_normal([0.4, 0.5, 0.3], cov_s, size=4096).astype(np.float32).reshape(64, 64, 3)
    tgt = rng.multivariate_normal([0.6, 0.3, 0.5], cov_t, size=4096).astype(np.float32).reshape(64, 64, 3)
    s, t = color_stats(src, None, "mkl"), color_stats(tgt, None, "mkl")
    out = apply_transfer(src, s, t, clip=False).reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(out.mean(0), t.mean, atol=1e-5)
    np.testing.assert_allclose(np.cov(out.T, bias=True), t.cov, atol=1e-6)
    m = mkl_matrix(s.cov, t.cov)
    np.testing.assert_allclose(m, m.T, atol=1e-10)  # the Monge-Kantorovich map is symmetric
    np.testing.assert_allclose(m @ s.cov @ m, t.cov, rtol=1e-5, atol=1e-9)


def test_mkl_of_equal_covariances_is_the_identity():
    c = np.array([[0.02, 0.005, 0.0], [0.005, 0.03, 0.004], [0.0, 0.004, 0.01]])
    np.testing.assert_allclose(mkl_matrix(c, c), np.eye(3), atol=1e-6)


def test_hist_matches_the_target_cdf_inside_the_mask():
    rng = np.random.default_rng(2)
    src = rng.beta(2, 5, (64, 64, 3)).astype(np.float32)
    tgt = rng.beta(5, 2, (64, 64, 3)).astype(np.float32)
    mask = _disc((64, 64), 25)
    tgt[mask == 0] = 0.0
    out = transfer_color(src, tgt, mask, "hist")
    sel = mask.reshape(-1) > 0.5
    for c in range(3):
        want = channel_cdf(tgt.reshape(-1, 3)[sel, c], np.ones(sel.sum()))
        got = channel_cdf(out.reshape(-1, 3)[sel, c], np.ones(sel.sum()))
        before = channel_cdf(src.reshape(-1, 3)[sel, c], np.ones(sel.sum()))
        assert np.abs(got - want).max() < 0.02
        assert np.abs(before - want).max() > 0.3


def test_hist_keeps_order_and_none_is_identity():
    rng = np.random.default_rng(3)
    src = rng.random((32, 32, 3)).astype(np.float32)
    tgt = (rng.random((32, 32, 3)) ** 2).astype(np.float32)
    out = transfer_color(src, tgt, None, "hist")
    order = np.argsort(src[..., 0].ravel())
    assert np.all(np.diff(out[..., 0].ravel()[order]) >= -1e-6)  # monotone per channel
    np.testing.assert_array_equal(transfer_color(src, tgt, None, "none"), src)


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_transfer_onto_itself_changes_little(mode):
    rng = np.random.default_rng(4)
    img = _image(rng, [0.5, 0.4, 0.3], 0.1)
    mask = _disc()
    out = transfer_color(img, img, mask, mode)
    # Inside the region the statistics were taken from, matching an image to itself is (nearly) the identity.
    assert np.abs(out - img)[mask > 0].max() < 0.01


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_empty_and_flat_regions_do_not_crash(mode):
    flat = np.full((16, 16, 3), 0.5, np.float32)
    other = np.full((16, 16, 3), 0.7, np.float32)
    for mask in (np.zeros((16, 16), np.float32), np.ones((16, 16), np.float32)):
        out = transfer_color(flat, other, mask, mode)
        assert out.shape == flat.shape and np.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_stats_ema_is_a_running_average():
    a = color_stats(np.full((4, 4, 3), 0.2, np.float32), None, "mkl")
    b = color_stats(np.full((4, 4, 3), 0.6, np.float32), None, "mkl")
    ema = StatsEMA(0.75)
    np.testing.assert_allclose(ema(a).mean, 0.2, atol=1e-6)
    np.testing.assert_allclose(ema(b).mean, 0.75 * 0.2 + 0.25 * 0.6, atol=1e-6)
    ema.reset()
    np.testing.assert_allclose(ema(b).mean, 0.6, atol=1e-6)
    with pytest.raises(ValueError):
        StatsEMA(1.0)


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="colour mode"):
        color_stats(np.zeros((4, 4, 3), np.float32), None, "lab")


def test_lab_conversion_known_values_and_round_trip():
    from faceswap.convert.color import lab_to_rgb

    # White is L=100, a=b=0; black is 0; mid sRGB grey (0.5) is L ~53.39 (CIE definition).
    lab = rgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=1e-6)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(lab[2], [53.389, 0, 0], atol=1e-2)
    rgb = np.random.default_rng(5).random((100, 3))
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-10)
