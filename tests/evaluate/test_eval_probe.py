"""The identity probe and expression/pose reader: known answers, a tiny training run, files and the cache."""
import math

import numpy as np
import pytest
import torch

from faceswap.errors import UserError
from faceswap.evaluate import probe as P
from faceswap.extract.align import alignment_matrix, template_points
from faceswap.synth import BUILTIN_ACTORS

TINY = dict(random_actors=1, train_per_actor=40, test_per_actor=12, epochs=6, frame_size=96)


@pytest.fixture(scope="module")
def tiny_probe():
    torch.manual_seed(0)
    spec = P.make_spec(BUILTIN_ACTORS["A"], BUILTIN_ACTORS["B"], **TINY)
    return P.train_probe(spec)


def test_crop_roll_removes_the_alignment_rotation():
    pts = template_points(64, 0.75)
    c = pts.mean(axis=0)
    for deg in (-20.0, 0.0, 15.0):
        t = math.radians(deg)
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        tilted = (pts - c) @ rot.T + c  # the face turned by +deg on screen
        m = alignment_matrix(tilted, 64, 0.75)  # the alignment turns it back by -deg
        assert P.crop_roll(deg, m) == pytest.approx(0.0, abs=1e-6)
        assert P.crop_roll(deg + 5, m) == pytest.approx(5.0, abs=1e-6)


def test_targets_follow_the_parameter_order():
    perf = {"mouth_open": 0.5, "smile": 0.2, "brow_raise": 0.1, "blink": 1.0, "yaw": 10.0, "pitch": -5.0, "roll": 3.0}
    m = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_allclose(P.targets_of(perf, m), [0.5, 0.2, 0.1, 1.0, 10.0, -5.0, 3.0], rtol=1e-6)


def test_probe_input_is_grey_outside_the_fixed_face_ellipse():
    ellipse = P.face_ellipse(64, 0.75)
    assert ellipse[32, 32] == pytest.approx(1.0) and ellipse[0, 0] == 0.0
    x = P.to_probe_input(np.zeros((2, 32, 32, 3), np.uint8), 0.75)  # resized to the probe's size
    assert x.shape == (2, 3, 64, 64)
    assert float(x[0, :, 0, 0].min()) == pytest.approx(P.NEUTRAL)
    with pytest.raises(ValueError):
        P.to_probe_input(np.zeros((2, 32, 30, 3), np.uint8), 0.75)


def test_spec_hash_changes_with_what_decides_the_weights():
    a, b = BUILTIN_ACTORS["A"], BUILTIN_ACTORS["B"]
    base = P.make_spec(a, b, **TINY)
    assert base.key() == P.make_spec(a, b, **TINY).key()
    assert base.key() != P.make_spec(a, BUILTIN_ACTORS["C"], **TINY).key()
    assert base.key() != P.make_spec(a, b, **{**TINY, "epochs": 7}).key()
    assert base.key() != P.make_spec(a, b, coverage=0.8, **TINY).key()
    assert P.ProbeSpec.from_dict(base.to_dict()) == base


@pytest.mark.slow
def test_tiny_probe_beats_chance(tiny_probe):
    rep = tiny_probe.report
    chance = 1 / len(tiny_probe.spec.names)
    assert rep["identity_accuracy"] >= chance + 0.3
    assert rep["nonface_rejection"] >= 0.5  # noise and scrambled faces are nobody
    assert tiny_probe.names == ("A", "B", "random:1000", P.NONE)
    assert set(rep["expression_error_per_param"]) == set(P.EXPRESSION_PARAMS)
    # A or B's own renders are recognised as themselves.
    crops, ids, _ = P.render_set(tiny_probe.spec, "test")
    probs, params = tiny_probe.predict(crops)
    assert probs.shape == (len(crops), 4) and params.shape == (len(crops), 7)
    assert np.mean(probs.argmax(1) == ids) == pytest.approx(rep["identity_accuracy"])


@pytest.mark.slow
def test_probe_round_trips_through_safetensors_and_the_cache(tiny_probe, tmp_path, monkeypatch):
    meta = tiny_probe.save(tmp_path)
    loaded = P.Probe.load(meta)
    crops, _, _ = P.render_set(tiny_probe.spec, "test")
    for got, want in zip(loaded.predict(crops[:6]), tiny_probe.predict(crops[:6])):
        np.testing.assert_allclose(got, want, atol=1e-5)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached probe must not be retrained")

    monkeypatch.setattr(P, "train_probe", no_training)
    probe, where = P.get_probe(tiny_probe.spec, cache_dir=tmp_path)
    assert where == "cache" and probe.names == tiny_probe.names


@pytest.mark.slow
def test_damaged_probe_file_is_a_user_error(tiny_probe, tmp_path):
    meta = tiny_probe.save(tmp_path)
    meta.with_suffix(".safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="damaged"):
        P.Probe.load(meta)


def test_nonfaces_are_not_faces():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    negs = P.nonfaces(crops, 6, rng)
    assert negs.shape == (6, 64, 64, 3) and negs.dtype == np.uint8
    # A scrambled face keeps the face's colours (the same multiset of blocks, in another order).
    assert any(sorted(n.reshape(-1, 3).sum(1)) == sorted(c.reshape(-1, 3).sum(1)) for n in negs[2::3] for c in crops)
