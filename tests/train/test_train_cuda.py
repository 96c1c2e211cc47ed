"""The CUDA paths (mixed precision, loss scaling, fused AdamW, side-stream prefetch, loader workers); skipped without a GPU."""
import json

import pytest
import torch

from faceswap.config import compose
from faceswap.models.checkpoint import load_checkpoint
from faceswap.train.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("amp", ["bf16", "fp16", "off"])
def test_cuda_training_with_mixed_precision(faces_ab, tmp_path, amp):
    a, b = faces_ab
    out = tmp_path / amp
    args = [f"data.a={a}", f"data.b={b}", f"out={out}", "+debug=tiny", "device=cuda", f"train.amp={amp}",
            "data.workers=2", "train.ema_decay=0.9", "train.log_every=1", "train.steps=6", "train.checkpoint_every=3"]
    summary = train(compose("train", args))
    assert summary["steps"] == 6
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    assert len(records) == 6 and all(r["loss"] == r["loss"] for r in records)  # finite, not NaN
    ckpt = load_checkpoint(out, device="cpu", training_state=True)  # a GPU checkpoint loads on the CPU
    assert ckpt.step == 6 and ckpt.weights == "ema"
    if amp == "fp16":
        assert ckpt.state["scaler"]["scale"] > 0
    resumed = train(compose("train", args[:-2] + ["train.steps=8", "resume=true"]))
    assert resumed["start_step"] == 6 and resumed["steps"] == 8
