"""The evaluate stage: held-out frames, crops cut with one matrix, and the whole stage on a small synth folder."""
import json
import shutil

import numpy as np
import pytest

from faceswap.cli import main
from faceswap.errors import UserError
from faceswap.evaluate import swap_eval as S

TINY_PROBE = ["probe.random_actors=1", "probe.train_per_actor=30", "probe.test_per_actor=8", "probe.epochs=3",
              "probe.frame_size=96"]


def test_held_out_is_the_tail_by_time():
    assert S.held_out(list(range(10)), 0.2) == [8, 9]
    assert S.held_out([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20], 0.1) == [18, 20]  # ceil(11 * 0.1) = 2


def test_consecutive_runs():
    assert S.consecutive_runs([3, 4, 5, 9, 10]) == [[0, 1, 2], [3, 4]]
    assert S.consecutive_runs([7]) == [[0]]
    assert S.consecutive_runs([]) == []


def test_runs_temporal_error_never_pairs_across_a_gap():
    a = np.zeros((3, 8, 8, 3), np.uint8)
    a[1] = 200  # frame 1 and 2 are not neighbours of frame 0 in time: no pair (0, 1) is counted
    a[2] = 200
    masks = np.full((3, 8, 8), 255, np.uint8)
    assert S.runs_temporal_error(a, a * 0, masks, [[0], [1, 2]]) == 0.0
    assert S.runs_temporal_error(a, a * 0, masks, [[0, 1, 2]]) == pytest.approx(200 / 255 / 2)
    assert S.runs_temporal_error(a, a, masks, [[0], [1], [2]]) is None


def test_crop_face_matches_a_plain_warp_at_the_same_size():
    from faceswap.extract.align import warp_to_crop

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (50, 60, 3), dtype=np.uint8)
    m = np.array([[0.9, 0.1, -3.0], [-0.1, 0.9, 2.0]])
    np.testing.assert_array_equal(S.crop_face(frame, m, 32, 32), warp_to_crop(frame, m, 32))
    assert S.crop_face(frame, m, 32, 16).shape == (16, 16, 3)


def test_pixel_scores_of_the_truth_itself_are_perfect():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    masks = np.full((3, 16, 16), 255, np.uint8)
    scores = S.pixel_scores(truth, truth, masks)
    assert scores["ssim"] == pytest.approx(1.0) and scores["psnr"] == pytest.approx(100.0)
    one = S.pixel_scores(truth[0], truth, masks)  # one image for every frame (the mean-face baseline)
    assert one["ssim"] < 1.0


def test_missing_inputs_are_user_errors(tmp_path, synth_folder, tiny_run):
    with pytest.raises(UserError, match="synth_dir"):
        S.load_synth(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(synth_folder, broken)
    (broken / "B.mp4").unlink()
    with pytest.raises(UserError, match="B.mp4"):
        S.load_synth(broken)
    assert main(["evaluate", f"checkpoint={tmp_path / 'no_run'}", f"synth_dir={synth_folder}",
                 f"out={tmp_path / 'o'}"]) == 2
    assert main(["evaluate", f"checkpoint={tiny_run}", f"out={tmp_path / 'o'}"]) == 2


@pytest.mark.slow
def test_evaluate_stage_writes_metrics_samples_and_report(tmp_path, synth_folder, tiny_run, probe_cache, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", f"checkpoint={tiny_run}", f"synth_dir={synth_folder}", f"out={out}",
               f"probe.cache_dir={probe_cache}", "progress=false", *TINY_PROBE])
    assert rc == 0
    assert "held-out frames" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    # The minimum shape the README documents.
    for key in ("ssim", "psnr", "identity_a_rate", "expression_error", "flicker"):
        assert key in m["swap"]
    for base in ("input_b", "mean_a"):
        for key in ("ssim", "psnr", "expression_error"):
            assert isinstance(m["baselines"][base][key], float)
    assert set(m["probe"]) >= {"identity_accuracy", "expression_error_on_renders"}
    assert set(m["reconstruction"]) >= {"a_ssim", "b_ssim"}
    # 12 frames, the run held out 25%: the last 3 frames of B.
    assert m["frames"]["count"] == 3 and m["frames"]["first"] == 9 and m["frames"]["align"] == "truth"
    assert 0 <= m["swap"]["identity_a_rate"] <= 1 and -1 <= m["swap"]["ssim"] <= 1
    for name in ("stills.png", "masks.png", "mean_a.png", "compare.gif"):
        assert (out / "samples" / name).stat().st_size > 0
    assert (out / "report.html").is_file() and (out / ".faceswap" / "evaluate.yaml").is_file()
    # The second time, the probe comes from the cache.
    rc = main(["evaluate", f"checkpoint={tiny_run}", f"synth_dir={synth_folder}", f"out={out}", "report=false",
               f"probe.cache_dir={probe_cache}", "progress=false", *TINY_PROBE])
    assert rc == 0 and json.loads((out / "metrics.json").read_text())["probe"]["source"] == "cache"


@pytest.mark.slow
def test_the_true_swap_scores_perfectly_against_itself(tmp_path, synth_folder, tiny_run, probe_cache, monkeypatch):
    """Feed the truth in as the 'swap': SSIM 1, the best PSNR, and the best flicker, whatever the model."""
    monkeypatch.setattr(S, "run_model", _truth_model)
    m = S.evaluate(tiny_run, synth_folder, tmp_path / "eval", test_fraction=0.5, progress=False,
                   probe_settings=dict(random_actors=1, train_per_actor=30, test_per_actor=8, epochs=3, frame_size=96),
                   probe_cache=probe_cache, log=lambda s: None)
    assert m["swap"]["ssim"] == pytest.approx(1.0)
    assert m["swap"]["psnr"] == pytest.approx(100.0)
    assert m["swap"]["flicker"] == pytest.approx(0.0)
    assert m["swap"]["ssim"] > m["baselines"]["input_b"]["ssim"] and m["swap"]["ssim"] > m["baselines"]["mean_a"]["ssim"]


_TRUTH = {}


def _truth_model(model, crops, identity, device, batch=32):
    # The test set's truth crops, in order: gather_crops stored them next to the B crops it was handed.
    ts = _TRUTH["ts"]
    if identity == "a" and crops is ts.b:
        return ts.truth.copy(), ts.mask.copy()
    return crops.copy(), np.zeros(crops.shape[:3], np.uint8)


@pytest.fixture(autouse=True)
def _remember_test_set(monkeypatch):
    real = S.gather_crops

    def spy(*args, **kwargs):
        ts = real(*args, **kwargs)
        _TRUTH["ts"] = ts
        return ts

    monkeypatch.setattr(S, "gather_crops", spy)
