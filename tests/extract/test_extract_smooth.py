"""One-euro smoothing: known responses, jitter reduction on a still face, small lag on a moving one, reset, resume."""
import math

import numpy as np
import pytest

from faceswap.extract.smooth import (LandmarkSmoother, OneEuroFilter, SmoothingSettings, face_scale, jitter,
                                     smoothing_factor)

FACE = np.array([[100.0, 100], [140, 100], [120, 125], [104, 150], [136, 150]])


def test_smoothing_factor_known_values():
    # tau = 1 / (2 pi f); alpha = 1 / (1 + tau / dt)
    assert smoothing_factor(1.0, 0.04) == pytest.approx(1 / (1 + 1 / (2 * math.pi) / 0.04))
    assert smoothing_factor(1e9, 0.04) == pytest.approx(1.0)


def test_one_euro_first_sample_passes_and_constant_stays():
    f = OneEuroFilter(1.0, 0.0, 1.0)
    np.testing.assert_array_equal(f(np.array([3.0, -2.0]), 0.04), [3.0, -2.0])
    for _ in range(10):
        out = f(np.array([3.0, -2.0]), 0.04)
    np.testing.assert_allclose(out, [3.0, -2.0])


def test_one_euro_with_zero_beta_is_an_exponential_low_pass():
    f = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    a = smoothing_factor(2.0, 0.04)
    f(np.array([0.0]), 0.04)
    y = 0.0
    for _ in range(5):
        y = y + a * (1.0 - y)
        np.testing.assert_allclose(f(np.array([1.0]), 0.04), [y])


def test_beta_reduces_lag_on_a_ramp():
    t = np.arange(50)
    x = 2.0 * t  # 2 units per step
    lags = {}
    for beta in (0.0, 1.0):
        f = OneEuroFilter(1.0, beta, 1.0)
        out = np.array([f(np.array([v]), 0.04)[0] for v in x])
        lags[beta] = x[-1] - out[-1]
    assert lags[0.0] > 0 and lags[1.0] < lags[0.0] / 3


def test_face_scale_known_value():
    # eye-mouth 50 + eye-eye 40
    assert face_scale(FACE) == pytest.approx(90.0)


def _still(n, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return FACE + rng.normal(0, sigma, (n, 5, 2))


def test_still_face_jitter_drops_at_least_3x():
    raw = _still(100, 0.5)
    sm = LandmarkSmoother(SmoothingSettings())
    out = np.array([sm(p) for p in raw])
    assert jitter(raw) / jitter(out) >= 3


def test_moving_face_is_followed_with_small_lag():
    # a face that sweeps 4 px per frame (2.2 face sizes per second at 25 fps) and turns around
    t = np.arange(60)
    shift = np.where(t < 30, 4.0 * t, 4.0 * (60 - t))
    truth = FACE[None] + np.stack([shift, 0.5 * shift], axis=-1)[:, None, :]
    rng = np.random.default_rng(3)
    raw = truth + rng.normal(0, 0.5, truth.shape)
    sm = LandmarkSmoother(SmoothingSettings())
    out = np.array([sm(p) for p in raw])
    err = np.linalg.norm(out - truth, axis=-1).mean()
    raw_err = np.linalg.norm(raw - truth, axis=-1).mean()
    assert err < raw_err + 0.03 * face_scale(FACE)  # within a few percent of the face size


def test_none_method_passes_through():
    sm = LandmarkSmoother(SmoothingSettings(method="none"))
    raw = _still(5, 1.0)
    for p in raw:
        np.testing.assert_array_equal(sm(p), p)


def test_reset_starts_fresh():
    sm = LandmarkSmoother(SmoothingSettings())
    for p in _still(10, 0.5):
        sm(p)
    sm.reset()
    far = FACE + 300
    np.testing.assert_allclose(sm(far), far)


def test_state_round_trip_continues_identically():
    raw = _still(30, 0.7, seed=5)
    a = LandmarkSmoother(SmoothingSettings())
    full = [a(p) for p in raw]
    b = LandmarkSmoother(SmoothingSettings())
    for p in raw[:12]:
        b(p)
    c = LandmarkSmoother(SmoothingSettings())
    import json

    c.load_state(json.loads(json.dumps(b.state())))
    rest = [c(p) for p in raw[12:]]
    np.testing.assert_allclose(rest, full[12:], atol=1e-9)


def test_bad_settings():
    with pytest.raises(ValueError):
        SmoothingSettings(method="kalman")
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)
