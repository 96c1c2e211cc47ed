"""The `faceswap demo` stage: end to end on the synthetic actors (today: render them and say where to look)."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def run(cfg) -> int:
    from faceswap.synth.dataset import run as synth_run

    out = Path(str(cfg.out))
    synth_cfg = OmegaConf.create({"out": str(out / "synth"), "seed": cfg.get("seed", 0),
                                  "progress": cfg.get("progress", True), "synth": cfg.synth})
    rc = synth_run(synth_cfg)
    if rc:
        return rc
    print(f"demo: the synthetic actors are in {out / 'synth'}:")
    print(f"  A.mp4 and B.mp4 are the two actors; truth_B_as_A.mp4 is the perfect swap a model should approach")
    print(f"  */frames.json holds each frame's true landmarks and box; */masks/ the true face masks")
    return 0
