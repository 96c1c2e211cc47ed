"""A small synth folder written straight from the renderer (docs/formats.md), and an untrained tiny checkpoint."""
import json
from pathlib import Path

import numpy as np
import pytest


def write_synth_folder(out: Path, frames: int = 12, width: int = 160, height: int = 128, seed: int = 3) -> Path:
    from faceswap.synth import BUILTIN_ACTORS, random_performance, render
    from faceswap.video import VideoWriter, write_image

    actors = {"A": BUILTIN_ACTORS["A"], "B": BUILTIN_ACTORS["B"]}
    perf = {"A": random_performance(frames, seed), "B": random_performance(frames, seed + 1)}
    jobs = {"A": ("A", perf["A"]), "B": ("B", perf["B"]), "truth_B_as_A": ("A", perf["B"])}
    for name, (actor, perfs) in jobs.items():
        entries = []
        with VideoWriter(out / f"{name}.mp4", fps=25, crf=12, preset="ultrafast") as writer:
            for i, p in enumerate(perfs):
                r = render(actors[actor], p, width, height)
                writer.write(r.image)
                write_image(out / name / "masks" / f"{i:06d}.png", r.mask)
                entries.append({"index": i, "performance": p.to_dict(), "face_visible": bool(r.face_visible),
                                "landmarks": None if r.landmarks is None else np.asarray(r.landmarks).tolist(),
                                "box": None if r.box is None else np.asarray(r.box).tolist(), "extra_faces": []})
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / "frames.json").write_text(json.dumps(entries))
    (out / "actors.json").write_text(json.dumps({k: v.to_dict() for k, v in actors.items()}))
    return out


def write_tiny_checkpoint(run: Path, val_fraction: float = 0.25) -> Path:
    import torch

    from faceswap.models import Autoencoder, save_checkpoint

    torch.manual_seed(0)
    model = Autoencoder(name="tiny", resolution=32, encoder_channels=(8, 16, 32), latent_dim=32, bottleneck_channels=16,
                        encoder_upscale=16, decoder_channels=(16, 8), norm="group", groups=4)
    save_checkpoint(run / "checkpoints", 1, model, state={"config": {"data": {"val_fraction": val_fraction}}})
    with open(run / "metrics.jsonl", "w") as fh:
        for step in range(1, 6):
            fh.write(json.dumps({"kind": "train", "step": step, "time": step * 0.5, "loss": 1.0 / step,
                                 "loss_a": 1.1 / step, "loss_b": 0.9 / step}) + "\n")
        fh.write(json.dumps({"kind": "val", "step": 5, "val_ssim_a": 0.3, "val_ssim_b": 0.35}) + "\n")
    return run


@pytest.fixture(scope="session")
def synth_folder(tmp_path_factory):
    return write_synth_folder(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory):
    """One probe cache for the session: the tiny probe is trained once."""
    return tmp_path_factory.mktemp("probe_cache")
