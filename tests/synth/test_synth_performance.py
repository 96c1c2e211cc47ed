"""random_performance: deterministic, smooth, within its ranges, with the cuts it is asked for."""
import numpy as np
import pytest

from faceswap.synth import random_performance
from faceswap.synth.performance import no_face_segments, smooth_signal


def _series(perfs, key):
    return np.array([getattr(p, key) for p in perfs])


def test_deterministic_and_seeded():
    assert random_performance(50, 3) == random_performance(50, 3)
    assert random_performance(50, 3) != random_performance(50, 4)
    assert random_performance(0, 1) == []


def test_ranges_and_smoothness():
    perfs = random_performance(500, 11)
    yaw, pitch, roll = (_series(perfs, k) for k in ("yaw", "pitch", "roll"))
    assert np.abs(yaw).max() <= 35 and np.abs(pitch).max() <= 20 and np.abs(roll).max() <= 15
    assert yaw.std() > 5  # it does move
    # smooth: even a quick turn spreads over several frames
    assert np.abs(np.diff(yaw)).max() < 12 and np.abs(np.diff(roll)).max() < 3
    for key in ("mouth_open", "smile", "brow_raise", "blink"):
        v = _series(perfs, key)
        assert v.min() >= 0 and v.max() <= 1, key
    assert _series(perfs, "blink").max() > 0.9  # blinks happen
    assert _series(perfs, "mouth_open").max() > 0.5  # talking happens
    assert np.all((_series(perfs, "x") >= 0.4 - 1e-9) & (_series(perfs, "x") <= 0.6 + 1e-9))


def test_options_change_the_ranges():
    perfs = random_performance(300, 2, yaw=10, fast_moves=False, talk=False, camera=False)
    assert np.abs(_series(perfs, "yaw")).max() <= 10
    assert _series(perfs, "mouth_open").max() == 0
    assert set(_series(perfs, "zoom")) == {1.0}
    with pytest.raises(TypeError, match="wobble"):
        random_performance(10, 1, wobble=3)
    with pytest.raises(ValueError):
        random_performance(10, 1, no_face_mode="sideways")


def test_no_face_cuts():
    perfs = random_performance(400, 5, no_face_fraction=0.1)
    away = (np.abs(_series(perfs, "yaw")) > 150) | (_series(perfs, "x") < -1)
    assert abs(away.mean() - 0.1) < 0.02
    assert not away[0]
    only_out = random_performance(200, 5, no_face_fraction=0.1, no_face_mode="out")
    assert (np.abs(_series(only_out, "yaw")) <= 35).all() and (_series(only_out, "x") < -1).sum() == 20


def test_segments_and_signal_helpers():
    rng = np.random.default_rng(0)
    segs = no_face_segments(rng, 200, 25, 0.2)
    assert sum(b - a for a, b in segs) == 40
    assert all(a >= 1 and b <= 200 for a, b in segs)
    assert all(b1 < a2 for (_, b1), (a2, _) in zip(segs, segs[1:]))
    s = smooth_signal(np.random.default_rng(1), 1000, 25, 0.05, 0.2)
    assert np.abs(s).max() <= 1 and np.abs(np.diff(s)).max() < 0.2
