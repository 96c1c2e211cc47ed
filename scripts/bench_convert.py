"""Benchmark of `faceswap convert`: frames/s at 480p and 720p, the time split per step, and the ratio to the I/O floor.

For each resolution and device it renders a clip (a real photo's face moving by known transforms, so
the landmarks, and hence an alignments file, are known), then times:

* ``io``: decode + encode only (the same reader and writer, no face work): the floor any convert sits on;
* ``convert``: the full stage with the alignments file (no detection);
* ``convert+detect``: the full stage detecting faces on the fly (``--detect``, on by default).

The per-step seconds are busy time summed inside each step (decode and encode run in their own
threads, overlapped with the model, so they add up to more than the wall time).
The model is built untrained from a preset unless ``--checkpoint`` is given: speed does not depend on
the weights.

    python scripts/bench_convert.py --frames 60 --json bench_convert.json
    python scripts/bench_convert.py --sizes 480p 720p --devices cpu cuda --model lite
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"480p": (854, 480), "720p": (1280, 720)}


def make_clip(folder: Path, size: tuple[int, int], frames: int, fps: float = 25.0) -> tuple[Path, Path]:
    """A clip whose face spans about a third of the frame height, and its alignments.json."""
    import cv2
    import numpy as np

    from faceswap.video import VideoWriter
    from tests.convert.media import ASTRONAUT_FACE_CENTRE, ASTRONAUT_LANDMARKS, astronaut, similarity, write_alignments

    img = astronaut()
    w, h = size
    scale = h / 3 / 95.0  # the photo's face is ~95 px from brow to chin
    video = folder / f"clip_{w}x{h}.mp4"
    lms = []
    with VideoWriter(video, fps, crf=18, preset="veryfast") as writer:
        for t in range(frames):
            ph = 2 * np.pi * t / max(frames, 2)
            m = similarity(scale, 8 * np.sin(ph), ASTRONAUT_FACE_CENTRE,
                           (w / 2 + 0.05 * w * np.cos(ph), h / 2 + 0.03 * h * np.sin(ph)))
            writer.write(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
            lms.append(ASTRONAUT_LANDMARKS @ m[:, :2].T + m[:, 2])
    al = folder / f"align_{w}x{h}"
    write_alignments(al / "alignments.json", video, lms, size, crop_size=256)
    return video, al


def make_checkpoint(folder: Path, preset: str) -> Path:
    import torch
    from omegaconf import OmegaConf

    from faceswap.config import CONF_DIR
    from faceswap.models import Autoencoder, save_checkpoint

    args = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{preset}.yaml"))
    args.pop("_target_", None)
    torch.manual_seed(0)
    run = folder / f"run_{preset}"
    save_checkpoint(run / "checkpoints", 0, Autoencoder(args), state={"crop": {"size": 256, "coverage": 0.75}})
    return run


def io_floor(video: Path, out: Path, crf: int, preset: str) -> dict:
    """Decode and re-encode with the same reader and writer as convert (threads included), no face work."""
    from faceswap.convert.stream import BackgroundSink, Prefetcher, Timings
    from faceswap.video import FrameSource, VideoWriter

    t0 = time.perf_counter()
    timings = Timings()
    source = FrameSource(video)
    writer = VideoWriter(out, fps=source.info.fps, crf=crf, preset=preset, audio_from=video)

    def consume(frame):
        t = time.perf_counter()
        writer.write(frame.image)
        timings.add("encode", time.perf_counter() - t)

    reader = Prefetcher(source, 16, timings, "decode")
    sink = BackgroundSink(consume, 16)
    n = 0
    try:
        for f in reader:
            sink.put(f)
            n += 1
        sink.finish()
        writer.close()
    finally:
        reader.close()
    wall = time.perf_counter() - t0
    return {"frames": n, "wall": wall, "fps": n / wall, "timings": {k: v for k, v in timings.items() if v}}


def run_convert(video: Path, run: Path, out: Path, device: str, alignments: str, crf: int, preset: str,
                extra: list[str]) -> dict:
    from faceswap.config import compose
    from faceswap.convert.pipeline import convert

    cfg = compose("convert", [f"input={video}", f"checkpoint={run}", f"out={out}", f"alignments={alignments}",
                              f"device={device}", f"crf={crf}", f"preset={preset}", "overwrite=true",
                              "progress=false", *extra])
    r = convert(cfg).summary
    return {"frames": r["frames"], "swapped": r["swapped"], "wall": r["timings"]["wall"],
            "fps": r["frames_per_s"], "timings": {k: v for k, v in r["timings"].items() if k != "wall"},
            "peak_frames_in_flight": r["memory"]["peak_frames_in_flight"]}


def warm_up(device: str) -> None:
    """Start the device (CUDA context, kernels) outside the timed runs: a one-off cost, not a per-frame one."""
    import torch

    if device.startswith("cuda"):
        torch.zeros(1, device=device)
        torch.nn.functional.conv2d(torch.zeros(16, 3, 64, 64, device=device), torch.zeros(8, 3, 5, 5, device=device))
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)"


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["480p", "720p"], choices=sorted(SIZES))
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when available")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--model", default="lite", help="model preset (conf/model/*.yaml) when no --checkpoint")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--no-detect", dest="detect", action="store_false", help="skip the on-the-fly detection run")
    p.add_argument("--crf", type=int, default=18)
    p.add_argument("--preset", default="medium", help="x264 preset of the output (both convert and the I/O floor)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--work", default=None, help="folder for the clips and outputs (default: a temp folder)")
    p.add_argument("convert_overrides", nargs="*", help="extra convert overrides, e.g. convert.blend=poisson")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])

    tmp = tempfile.TemporaryDirectory(prefix="bench_convert_") if args.work is None else None
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.checkpoint) if args.checkpoint else make_checkpoint(work, args.model)
    rows, results = [], []
    for size_name in args.sizes:
        size = SIZES[size_name]
        video, al = make_clip(work, size, args.frames)
        floor = io_floor(video, work / f"io_{size_name}.mp4", args.crf, args.preset)
        for device in devices:
            warm_up(device)
            runs = {"convert": run_convert(video, run, work / f"out_{size_name}_{device}.mp4", device, str(al),
                                           args.crf, args.preset, args.convert_overrides)}
            if args.detect:
                runs["convert+detect"] = run_convert(video, run, work / f"det_{size_name}_{device}.mp4", device, "none",
                                                     args.crf, args.preset, args.convert_overrides)
            entry = {"size": size_name, "width": size[0], "height": size[1], "device": device,
                     "device_name": device_name(device), "io_floor": floor, **runs}
            results.append(entry)
            rows.append((size_name, device, "io floor", floor, floor["fps"]))
            for name, r in runs.items():
                r["ratio_to_io_floor"] = floor["fps"] / r["fps"] if r["fps"] else None
                rows.append((size_name, device, name, r, floor["fps"]))

    keys = ("decode", "detect", "align", "model", "blend", "stamp", "encode")
    head = f"{'size':<5} {'device':<6} {'run':<15} {'frames/s':>8} {'x floor':>7}  " + " ".join(f"{k:>7}" for k in keys)
    print(head + "   (busy seconds per step)")
    print("-" * len(head))
    for size_name, device, name, r, floor_fps in rows:
        slow = floor_fps / r["fps"] if r["fps"] else float("nan")
        split = " ".join(f"{r['timings'].get(k, 0.0):7.2f}" for k in keys)
        print(f"{size_name:<5} {device:<6} {name:<15} {r['fps']:8.1f} {slow:7.2f}  {split}")
    print(f"({args.frames} frames per clip; model {'from ' + str(run) if args.checkpoint else args.model + ' (untrained)'}; "
          f"x264 preset {args.preset}, crf {args.crf}; 'x floor' = I/O-floor frames/s / run frames/s)")
    report = {"frames": args.frames, "model": args.model if not args.checkpoint else str(run), "preset": args.preset,
              "crf": args.crf, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "overrides": args.convert_overrides, "results": results}
    if args.json:
        from faceswap.utils import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
