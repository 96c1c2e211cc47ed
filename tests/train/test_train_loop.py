"""The loop on tiny data: outputs, determinism, exact resume, one-line errors."""
import json
import os

import numpy as np
import pytest
import torch

from faceswap.cli import main
from faceswap.config import compose
from faceswap.errors import UserError
from faceswap.models.checkpoint import list_checkpoints, load_checkpoint
from faceswap.train import trainer
from faceswap.train.trainer import train


def cfg_of(overrides, *extra):
    return compose("train", list(overrides) + list(extra))


def losses(run_dir):
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if r["kind"] == "train"}


def test_tiny_run_writes_every_output(tiny_overrides, tmp_path):
    summary = train(cfg_of(tiny_overrides, "train.ema_decay=0.9", "train.tensorboard=true"))
    run = tmp_path / "run"
    assert summary["steps"] == 8 and summary["stopped_by"] == "steps"
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000004", "step_00000008"]
    assert sorted(p.name for p in (run / "checkpoints" / "step_00000008").iterdir()) == [
        "ema.safetensors", "model.safetensors", "optimizer.safetensors", "state.json"]
    assert (run / "previews" / "step_00000008.png").is_file() and (run / "timelapse" / "00000004.png").is_file()
    assert (run / ".faceswap" / "train.yaml").is_file() and list((run / "tb").iterdir())
    records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    train_rec = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_rec] == [2, 4, 6, 8]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 and 0 <= r["data_wait"] <= 1 for r in train_rec)
    assert any(r["kind"] == "val" and 0 < r["val_ssim_a"] <= 1 for r in records)
    # The checkpoint alone rebuilds the model (no training config needed).
    ckpt = load_checkpoint(run)
    assert ckpt.step == 8 and ckpt.weights == "ema" and ckpt.model.config.name == "tiny"
    rgb, mask = ckpt.model(torch.rand(1, 3, 32, 32), "a")
    assert rgb.shape == (1, 3, 32, 32) and mask.shape == (1, 1, 32, 32)


def test_same_seed_same_curve_and_workers_do_not_change_it(tiny_overrides, tmp_path):
    train(cfg_of(tiny_overrides, "train.steps=6", "train.preview_every=100", "train.timelapse_every=100"))
    first = losses(tmp_path / "run")
    other = [o for o in tiny_overrides if not o.startswith("out=")] + [f"out={tmp_path / 'run2'}"]
    train(cfg_of(other, "train.steps=6", "data.workers=1", "train.preview_every=100", "train.timelapse_every=100"))
    assert losses(tmp_path / "run2") == first
    other = [o for o in tiny_overrides if not o.startswith("out=")] + [f"out={tmp_path / 'run3'}", "seed=1"]
    train(cfg_of(other, "train.steps=6"))
    assert losses(tmp_path / "run3") != first


def test_resume_follows_the_uninterrupted_curve(tiny_overrides, tmp_path):
    base = [o for o in tiny_overrides if not o.startswith("out=")]
    # The cosine schedule's horizon stays at 10 steps: the short run stands for a run cut off halfway.
    common = ["train.ema_decay=0.5", "train.checkpoint_every=5", "train.log_every=1", "train.decay_steps=10"]
    train(cfg_of(base, f"out={tmp_path / 'full'}", "train.steps=10", *common))
    train(cfg_of(base, f"out={tmp_path / 'split'}", "train.steps=5", *common))
    summary = train(cfg_of(base, f"out={tmp_path / 'split'}", "train.steps=10", "resume=true", *common))
    assert summary["start_step"] == 5 and summary["steps"] == 10
    full, split = losses(tmp_path / "full"), losses(tmp_path / "split")
    assert list(split) == list(range(1, 11))
    assert np.allclose([split[s] for s in range(1, 11)], [full[s] for s in range(1, 11)], rtol=1e-6, atol=0)
    a = load_checkpoint(tmp_path / "full", weights="model").model.state_dict()
    b = load_checkpoint(tmp_path / "split", weights="model").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_existing_run_needs_resume_and_the_same_architecture(tiny_overrides, tmp_path):
    train(cfg_of(tiny_overrides, "train.steps=2"))
    with pytest.raises(UserError, match="train.resume=true"):
        train(cfg_of(tiny_overrides, "train.steps=2"))
    with pytest.raises(UserError) as exc:
        train(cfg_of(tiny_overrides, "train.steps=4", "train.resume=true", "model=lite"))
    msg = str(exc.value)
    assert "'tiny' (32 px" in msg and "'lite' (64 px" in msg and "\n" not in msg


def test_non_finite_loss_stops_with_a_clear_message(tiny_overrides, monkeypatch, tmp_path):
    real = trainer.face_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 4:  # from the third step on
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(trainer, "face_loss", poisoned)
    with pytest.raises(UserError, match=r"non-finite \(nan\) at step 3.*train.lr"):
        train(cfg_of(tiny_overrides, "train.checkpoint_every=2"))
    # The good checkpoint before it is untouched and nothing later was written.
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002"]


@pytest.mark.parametrize("override,needle", [
    ("data.a=/nonexistent/faces", "data.a=/nonexistent/faces does not exist"),
    ("model=nosuchpreset", "nosuchpreset"),
    ("train.batch_size=0", "train.batch_size"),
    ("model.resolution=36", "model settings are invalid"),
    ("train.amp=fp8", "train.amp"),
])
def test_cli_bad_input_is_one_line_exit_2(tiny_overrides, capsys, override, needle):
    args = [o for o in tiny_overrides if not o.startswith(override.split("=")[0] + "=")] + [override]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err


def test_cli_missing_data_is_one_line(capsys, tmp_path):
    assert main(["train", f"out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.a=" in err and "\n" not in err


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one(tiny_overrides, tmp_path):
    # torch.compile on CPU needs a C++ compiler and ~30 s for this tiny model.
    import shutil

    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("torch.compile on CPU needs a C++ compiler (g++), which this machine lacks")
    common = ["train.steps=3", "train.log_every=1", "train.preview_every=100", "train.timelapse_every=100"]
    train(cfg_of(tiny_overrides, *common))
    other = [o for o in tiny_overrides if not o.startswith("out=")] + [f"out={tmp_path / 'compiled'}"]
    train(cfg_of(other, "train.compile=true", *common))
    eager, compiled = losses(tmp_path / "run"), losses(tmp_path / "compiled")
    assert list(compiled) == [1, 2, 3]
    assert np.allclose(list(compiled.values()), list(eager.values()), rtol=1e-3)
    assert load_checkpoint(tmp_path / "compiled").step == 3  # plain state-dict keys, no compile wrapper prefix
