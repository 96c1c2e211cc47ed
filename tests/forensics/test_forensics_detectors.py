"""Each detector trains on a tiny toy set and beats chance; weights round-trip through safetensors + JSON."""
import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.forensics import detectors as D
from faceswap.forensics.data import samples_for, toy_faceset
from faceswap.forensics.features import roc_auc

# Small enough to train in seconds on one core; the toy fakes are separable by construction.
SETTINGS = {
    "spectral": {"bins": 32},
    "meso4": {"size": 64, "epochs": 25, "batch": 16},
    "xray": {"size": 64, "epochs": 30, "batch": 16, "width": 16},
    "temporal": {"window": 8, "stride": 4, "size": 32},
}


@pytest.fixture(autouse=True)
def _one_thread():
    # Small convolutions on a busy 2-core machine run several times faster on one thread than on two.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy():
    return toy_faceset(160, size=64, seed=0, clip=10)


def _fit_and_score(name, toy, seed=0):
    det = D.build_detector(name, SETTINGS[name])
    w, s = det.params.get("window", 16), det.params.get("stride", 8)
    xs, ys, _ = samples_for(det.unit, toy.part("train"), w, s)
    det.fit(xs, ys, seed=seed)
    xt, yt, _ = samples_for(det.unit, toy.part("test"), w, s)
    return det, det.score(xt), yt, xt


def test_logistic_regression_separates_a_separable_set():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 2 * x[:, 2] > 0).astype(int)
    lr = D.LogisticRegression(3, l2=1e-4)
    lr.fit(x * 50 + 7, y)  # standardisation makes scale and offset irrelevant
    p = lr.predict_proba(x * 50 + 7)
    assert np.mean((p > 0.5) == y) > 0.97
    assert lr.weight[0] > 0 and lr.weight[2] < 0 and abs(lr.weight[1]) < abs(lr.weight[0])


@pytest.mark.parametrize("name", ["spectral", "temporal"])
def test_fast_detectors_beat_chance_on_toy_swaps(name, toy):
    _, s, y, _ = _fit_and_score(name, toy)
    assert len(s) == len(y) and ((s >= 0) & (s <= 1)).all()
    assert roc_auc(s, y) > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("name", ["meso4", "xray"])
def test_cnn_detectors_beat_chance_on_toy_swaps(name, toy):
    det, s, y, _ = _fit_and_score(name, toy)
    assert roc_auc(s, y) > 0.8
    if name == "xray":
        # Trained on real faces only: it never saw a toy fake, yet its map lights up on their seams.
        assert det.meta["train_real_faces"] > 0 and det.meta["selfblend_auc"] > 0.8


@pytest.mark.parametrize("name", ["meso4", "xray"])
def test_same_data_and_seed_give_the_same_detector(name, toy):
    params = {**SETTINGS[name], "epochs": 1}
    tr, te = toy.part("train"), toy.part("test")
    scores = []
    for _ in range(2):
        det = D.build_detector(name, params)
        det.fit(tr.crops, tr.labels, seed=3)
        scores.append(det.score(te.crops))
    assert np.array_equal(scores[0], scores[1])


def test_meso4_has_about_28k_parameters():
    n = D.build_detector("meso4").n_parameters()
    assert 27_000 < n < 29_000
    import torch

    for size in (64, 128, 256):  # the adaptive last pool keeps the dense layer for any input size
        assert D.Meso4()(torch.zeros(2, 3, size, size)).shape == (2,)


def test_xray_predicts_quarter_resolution_maps():
    det = D.build_detector("xray", {"size": 64})
    maps = det.predict_maps(np.zeros((3, 80, 80, 3), np.uint8))
    assert maps.shape == (3, 16, 16) and (maps >= 0).all() and (maps <= 1).all()


@pytest.mark.parametrize("name", ["spectral", "temporal"])
def test_save_load_round_trip(name, toy, tmp_path):
    det, s, _, xt = _fit_and_score(name, toy)
    D.save_detector(det, tmp_path)
    assert (tmp_path / f"{name}.safetensors").is_file() and (tmp_path / f"{name}.json").is_file()
    back = D.load_detector(tmp_path, name)
    assert np.allclose(back.score(xt), s)
    assert set(D.load_detectors(tmp_path)) == {name}


def test_cnn_round_trip_without_training(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    for name in ("meso4", "xray"):
        det = D.build_detector(name, {"size": 64})
        D.save_detector(det, tmp_path)
        assert np.allclose(D.load_detector(tmp_path, name).score(x), det.score(x))


def test_bad_detector_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        D.load_detectors(tmp_path / "nope")
    with pytest.raises(UserError, match="no trained detectors"):
        D.load_detectors(tmp_path)
    det = D.build_detector("spectral")
    D.save_detector(det, tmp_path)
    (tmp_path / "spectral.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="could not be read"):
        D.load_detector(tmp_path, "spectral")
    D.save_detector(D.build_detector("spectral", {"bins": 12}), tmp_path)
    info = (tmp_path / "spectral.json").read_text().replace('"bins": 12', '"bins": 20')
    (tmp_path / "spectral.json").write_text(info)
    with pytest.raises(UserError, match="do not match"):
        D.load_detector(tmp_path, "spectral")
    with pytest.raises(UserError, match="unknown detector"):
        D.build_detector("nosuch")
    with pytest.raises(UserError, match="no setting"):
        D.build_detector("meso4", {"depth": 3})
