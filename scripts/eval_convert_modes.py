"""Compare convert's blend and colour modes against the true swap of the synthetic actors: face SSIM and flicker.

Given a `faceswap synth` folder (B.mp4, truth_B_as_A.mp4 and its per-frame masks) and a checkpoint
trained on A and B, it converts B -> A once per mode and compares each output, frame by frame, with
truth_B_as_A.mp4 inside the true face region (truth_B_as_A/masks/):

* ``ssim``/``psnr``: masked SSIM (Wang et al. 2004) and PSNR per frame, averaged over frames with a face;
* ``flicker``: mean |frame_t - frame_t-1| inside the face (pixels that are face in both frames), in
  grey levels, beside the same figure for the truth (``truth_flicker``) and their ratio;
* ``temporal``: mean |(s_t - s_t-1) - (g_t - g_t-1)| inside the face: flicker that the truth does not have.

A first row scores the unswapped input (B itself) against the truth, as the floor a swap must beat.
Provenance stamps are off for these outputs (the label and the watermark would be scored as error);
convert prints a WARNING for each, as it must.

    python scripts/eval_convert_modes.py --synth SYNTH_DIR --checkpoint RUN_DIR --alignments EXTRACT_B_DIR \\
        --frames 100 --json eval_convert.json
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MODES = ["alpha/none", "alpha/rct", "alpha/mkl", "alpha/hist", "poisson/none", "poisson/rct",
                 "poisson/mkl", "poisson/hist"]


class Scores:
    """Streaming per-frame scores of one video against the truth inside the truth's face masks."""

    def __init__(self):
        self.ssim, self.psnr = [], []
        self.flick = [0.0, 0.0]  # sum of weighted |diff|, sum of weights
        self.truth_flick = [0.0, 0.0]
        self.temporal = [0.0, 0.0]
        self.prev = None

    def add(self, frame, truth, mask) -> None:
        import numpy as np

        from faceswap.evaluate.metrics import psnr, ssim, to_float, to_weights

        w = to_weights(mask, frame.shape) if mask is not None else None
        if w is not None and w.sum() > 0:
            self.ssim.append(ssim(frame, truth, w))
            self.psnr.append(psnr(frame, truth, w))
        cur = (to_float(frame), to_float(truth), w)
        if self.prev is not None and w is not None and self.prev[2] is not None:
            pw = np.minimum(w, self.prev[2])
            ds, dg = cur[0] - self.prev[0], cur[1] - self.prev[1]
            for acc, d in ((self.flick, np.abs(ds)), (self.truth_flick, np.abs(dg)), (self.temporal, np.abs(ds - dg))):
                acc[0] += float((pw * d.mean(axis=2)).sum())
                acc[1] += float(pw.sum())
        self.prev = cur

    def result(self) -> dict:
        import numpy as np

        from faceswap.evaluate.metrics import mean_psnr

        def ratio(acc):
            return 255.0 * acc[0] / acc[1] if acc[1] > 0 else float("nan")

        flick, truth = ratio(self.flick), ratio(self.truth_flick)
        return {"frames_scored": len(self.ssim), "ssim": float(np.mean(self.ssim)) if self.ssim else float("nan"),
                "psnr": mean_psnr(self.psnr) if self.psnr else float("nan"),
                "flicker": flick, "truth_flicker": truth, "flicker_ratio": flick / truth if truth else float("nan"),
                "temporal": ratio(self.temporal)}


def score(video: Path, truth: Path, mask_dir: Path, frames: int) -> dict:
    from faceswap.video import read_image, read_video

    s = Scores()
    for i, (a, g) in enumerate(zip(read_video(video, 0, frames), read_video(truth, 0, frames))):
        m = mask_dir / f"{i:06d}.png"
        s.add(a, g, read_image(m)[..., 0] if m.is_file() else None)
    return s.result()


def trim(src: Path, alignments: str, frames: int, work: Path) -> tuple[Path, str]:
    """The first ``frames`` frames of ``src`` (stream copy: the very same coded frames) and its alignments, cut to match."""
    import subprocess

    from faceswap.extract.alignments import load_alignments, save_alignments
    from faceswap.video import ffmpeg_exe, probe

    out = work / f"{src.stem}_first{frames}.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src), "-frames:v", str(frames), "-c", "copy",
                    "-an", str(out)], check=True)
    n = probe(out).frames
    if alignments.lower() == "none":
        return out, "none"
    path = Path(alignments)
    al = load_alignments(path / "alignments.json" if path.is_dir() else path)
    al.frames = al.frames[:n]
    al.source = {**al.source, "path": str(out.resolve()), "frames": n}
    al_out = work / f"{src.stem}_first{frames}.alignments.json"
    save_alignments(al, al_out)
    return out, str(al_out)


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synth", required=True, help="a 'faceswap synth' output folder")
    p.add_argument("--checkpoint", required=True, help="a run folder trained on the synth's A and B")
    p.add_argument("--alignments", default="none", help="the extract output folder of B.mp4 (default: detect)")
    p.add_argument("--frames", type=int, default=100, help="frames converted and scored (from the start)")
    p.add_argument("--modes", nargs="+", default=DEFAULT_MODES, help="BLEND/COLOUR pairs")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--work", default=None, help="keep the outputs here (default: a temp folder)")
    p.add_argument("overrides", nargs="*", help="extra convert overrides for every mode, e.g. convert.mask=learned")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from faceswap.config import compose
    from faceswap.convert.pipeline import convert

    synth = Path(args.synth)
    src, truth, masks = synth / "B.mp4", synth / "truth_B_as_A.mp4", synth / "truth_B_as_A" / "masks"
    for path in (src, truth, masks):
        if not path.exists():
            sys.exit(f"error: {path} is missing; give a 'faceswap synth' output folder")
    tmp = tempfile.TemporaryDirectory(prefix="eval_convert_") if args.work is None else None
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)

    rows = [{"mode": "input (no swap)", **score(src, truth, masks, args.frames)}]
    # Convert only the frames that are scored: a cut copy of the input (and of its alignments).
    src, alignments = trim(src, args.alignments, args.frames, work)
    for mode in args.modes:
        blend, color = mode.split("/")
        out = work / f"{blend}_{color}.mp4"
        cfg = compose("convert", [f"input={src}", f"checkpoint={args.checkpoint}", f"out={out}", "direction=b_to_a",
                                  f"alignments={alignments}", f"device={args.device}",
                                  f"convert.blend={blend}", f"convert.color={color}", "overwrite=true",
                                  "progress=false", "provenance.label=false", "provenance.watermark=false",
                                  "provenance.metadata=false", "preset=veryfast", *args.overrides])
        t0 = time.perf_counter()
        summary = convert(cfg).summary
        seconds = time.perf_counter() - t0
        rows.append({"mode": mode, **score(out, truth, masks, args.frames), "swapped": summary["swapped"],
                     "convert_s": round(seconds, 2), "blend_s": summary["timings"]["blend"]})

    print(f"{'mode':<16} {'SSIM':>6} {'PSNR':>6} {'flicker':>8} {'truth':>6} {'ratio':>6} {'temporal':>8} {'blend s':>7}")
    for r in rows:
        print(f"{r['mode']:<16} {r['ssim']:6.4f} {r['psnr']:6.2f} {r['flicker']:8.3f} {r['truth_flicker']:6.3f} "
              f"{r['flicker_ratio']:6.3f} {r['temporal']:8.3f} {r.get('blend_s', float('nan')):7.2f}")
    print(f"(first {args.frames} frames of {synth / 'B.mp4'} vs {truth}, inside the true face masks; flicker and temporal in grey "
          f"levels per pixel per frame; checkpoint {args.checkpoint})")
    report = {"synth": str(synth), "checkpoint": str(args.checkpoint), "alignments": args.alignments,
              "frames": args.frames, "overrides": args.overrides, "rows": rows}
    if args.json:
        from faceswap.utils import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
