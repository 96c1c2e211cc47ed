"""Benchmark and acceptance check of `faceswap extract` on synthetic actors.

Speed: frames/s and the share of time in decode, detect, align and write, per device and detector batch
size, read from the stage's own timing counters. Accuracy (--accuracy): detection rate, target choice with
a second actor in view, landmark error at 256 px crops against the renderer's truth, and the jitter of a
still head with and without smoothing. Prints tables and writes JSON.

    PYTHONPATH=. .venv/bin/python scripts/bench_extract.py --frames 48 --batch-sizes 1,4,8,16
    PYTHONPATH=. .venv/bin/python scripts/bench_extract.py --accuracy --frames 150 --no-speed
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_take(folder: Path, frames: int, seed: int, second_face: float, width: int = 640, height: int = 480,
              noise: float = 0.0) -> Path:
    """A `faceswap synth` take (A.mp4, B.mp4, truth per frame) through the real synth stage."""
    from faceswap.cli import main

    args = ["synth", f"out={folder}", f"seed={seed}", f"synth.frames={frames}", f"synth.width={width}",
            f"synth.height={height}", f"synth.options.second_face={second_face}", f"synth.options.noise={noise}",
            "synth.workers=1", "progress=false"]
    rc = main(args)
    if rc != 0:
        raise SystemExit(f"faceswap synth failed ({rc})")
    return folder


def run_extract(src: Path, out: Path, device: str, **overrides):
    from faceswap.extract.detect import DetectorSettings
    from faceswap.extract.pipeline import ExtractSettings, extract
    from faceswap.extract.smooth import SmoothingSettings

    det = overrides.pop("detector", {})
    sm = overrides.pop("smoothing", {})
    overrides.setdefault("temporal", "true")  # the clips are folders of a video's frames
    settings = ExtractSettings(detector=DetectorSettings(**det), smoothing=SmoothingSettings(**sm), **overrides)
    shutil.rmtree(out, ignore_errors=True)
    return extract(src, out, settings, device=device, progress=False)


# --- speed ----------------------------------------------------------------------------------------------------

def bench_speed(take: Path, devices: list[str], batch_sizes: list[int], tmp: Path) -> list[dict]:
    rows = []
    for device in devices:
        run_extract(take / "A.mp4", tmp / "warmup", device, detector={"batch_size": batch_sizes[0]})
        for bs in batch_sizes:
            res = run_extract(take / "A.mp4", tmp / f"speed_{device}_{bs}", device, detector={"batch_size": bs})
            t = res.timings
            loop = t.decode + t.detect + t.align + t.write
            rows.append({"device": device, "batch_size": bs, "frames": t.frames,
                         "frames_per_s": round(t.frames / loop, 2) if loop else 0.0,
                         "seconds": round(loop, 3), **{f"share_{k}": round(v, 3) for k, v in t.shares().items()}})
    return rows


def print_speed(rows: list[dict]) -> None:
    print(f"\n{'device':<8}{'batch':>6}{'frames':>8}{'frames/s':>10}{'decode':>9}{'detect':>9}{'align':>9}{'write':>9}")
    for r in rows:
        print(f"{r['device']:<8}{r['batch_size']:>6}{r['frames']:>8}{r['frames_per_s']:>10.2f}"
              f"{r['share_decode']:>9.1%}{r['share_detect']:>9.1%}{r['share_align']:>9.1%}{r['share_write']:>9.1%}")


# --- accuracy -------------------------------------------------------------------------------------------------

def _truth(take: Path, video: str) -> list[dict]:
    return json.loads((take / video / "frames.json").read_text())


def _scale(lm: np.ndarray) -> float:
    from faceswap.extract.smooth import face_scale

    return face_scale(lm)


def score_take(alignments, truth: list[dict], crop_size: int = 256) -> dict:
    """Compare an extract run with the renderer's truth (frames.json)."""
    from faceswap.extract.align import alignment_matrix, transform_points

    visible = found = targets = second = second_ok = false_targets = 0
    err_raw, err_smooth, per_point = [], [], []
    for rec, tr in zip(alignments.frames, truth):
        true_lm = np.asarray(tr["landmarks"], dtype=np.float64) if tr.get("landmarks") is not None else None
        in_view = bool(tr.get("face_visible")) and true_lm is not None
        target = alignments.target_face(rec.index)
        if not in_view:
            false_targets += int(target is not None)
            continue
        visible += 1
        tol = 0.25 * _scale(true_lm)
        near = lambda lm: np.linalg.norm(np.asarray(lm) - true_lm, axis=1).mean() < tol  # noqa: E731
        found += int(any(near(f.landmarks) for f in rec.faces))
        extras = [np.asarray(e["landmarks"], dtype=np.float64) for e in tr.get("extra_faces") or [] if e.get("landmarks")]
        ok = bool(target is not None and near(target.landmarks))
        targets += ok
        if extras:
            second += 1
            second_ok += ok
        if ok:
            # crop pixels at crop_size: the frame's matrix, rescaled if the run used another size
            m = alignment_matrix(target.landmarks_smoothed, crop_size, alignments.coverage)
            d_raw = transform_points(target.landmarks, m) - transform_points(true_lm, m)
            d_smooth = transform_points(target.landmarks_smoothed, m) - transform_points(true_lm, m)
            err_raw.append(np.linalg.norm(d_raw, axis=1).mean())
            err_smooth.append(np.linalg.norm(d_smooth, axis=1).mean())
            per_point.append(d_raw)
    per_point = np.asarray(per_point)
    bias = per_point.mean(axis=0) if len(per_point) else np.zeros((5, 2))
    return {
        "frames": len(alignments.frames), "visible": visible, "detected": found, "target_ok": targets,
        "second_in_view": second, "second_target_ok": second_ok, "false_targets": false_targets,
        "err_raw_px": float(np.mean(err_raw)) if err_raw else float("nan"),
        "err_smoothed_px": float(np.mean(err_smooth)) if err_smooth else float("nan"),
        "err_raw_unbiased_px": float(np.linalg.norm(per_point - bias, axis=2).mean()) if len(per_point) else float("nan"),
        "bias_px": np.round(bias, 2).tolist(),
    }


def merge(scores: list[dict]) -> dict:
    tot = {k: sum(s[k] for s in scores) for k in ("frames", "visible", "detected", "target_ok", "second_in_view",
                                                  "second_target_ok", "false_targets")}
    w = np.array([s["target_ok"] for s in scores], dtype=float)
    for k in ("err_raw_px", "err_smoothed_px", "err_raw_unbiased_px"):
        v = np.array([s[k] for s in scores])
        tot[k] = float(np.nansum(v * w) / w.sum()) if w.sum() else float("nan")
    tot["detection_rate"] = tot["detected"] / tot["visible"] if tot["visible"] else float("nan")
    tot["target_rate"] = tot["target_ok"] / tot["visible"] if tot["visible"] else float("nan")
    tot["second_target_rate"] = tot["second_target_ok"] / tot["second_in_view"] if tot["second_in_view"] else float("nan")
    return tot


def still_head_jitter(tmp: Path, device: str, frames: int, noise: float, seed: int = 0, width: int = 640,
                      height: int = 480) -> dict:
    """Jitter of the aligned crop on a still head (pixel noise only), with and without smoothing."""
    from faceswap.extract.align import transform_points
    from faceswap.synth import BUILTIN_ACTORS, random_performance, render
    from faceswap.video import write_image

    perf = replace(random_performance(64, seed)[0], mouth_open=0.0, blink=0.0, shake_x=0.0, shake_y=0.0)
    r = render(BUILTIN_ACTORS["A"], perf, width=width, height=height)
    rng = np.random.default_rng(seed)
    folder = tmp / "still"
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(frames):
        img = np.clip(r.image + rng.normal(0, noise, r.image.shape), 0, 255).astype(np.uint8)
        write_image(folder / f"{i:04d}.png", img)
    out = {}
    for method in ("none", "one_euro"):
        res = run_extract(folder, tmp / f"still_{method}", device, size=256, smoothing={"method": method})
        crop_pts = np.array([transform_points(r.landmarks, res.alignments.target_face(i).matrix)
                             for i in range(len(res.alignments)) if res.alignments.target_face(i) is not None])
        out[method] = float(np.abs(np.diff(crop_pts, axis=0)).mean())
        out[f"{method}_frames_with_target"] = len(crop_pts)
    out["ratio"] = out["none"] / out["one_euro"] if out["one_euro"] else float("inf")
    return out


def accuracy(tmp: Path, device: str, frames: int, takes: int, seed: int = 0) -> dict:
    result = {"takes": []}
    scores = {"default": [], "mtcnn_only": []}
    for k in range(takes):
        take = make_take(tmp / f"take{k}", frames, seed=seed + k, second_face=0.3)
        for video in ("A", "B"):
            truth = _truth(take, video)
            for name, det in (("default", {}), ("mtcnn_only", {"refine": 0, "track_score": 0.0})):
                res = run_extract(take / f"{video}.mp4", tmp / f"acc_{k}_{video}_{name}", device, size=256, detector=det)
                s = score_take(res.alignments, truth)
                s.update(take=k, video=video, config=name)
                result["takes"].append(s)
                scores[name].append(s)
    result["summary"] = {name: merge(v) for name, v in scores.items()}
    result["still_head"] = still_head_jitter(tmp, device, frames=min(frames, 60), noise=4.0, seed=seed)
    return result


def print_accuracy(acc: dict) -> None:
    print(f"\n{'config':<12}{'visible':>8}{'detected':>10}{'target ok':>11}{'2nd in view':>12}{'right one':>11}"
          f"{'false tgt':>10}{'err raw':>9}{'err smooth':>11}{'err-bias':>9}  (px at 256)")
    for name, s in acc["summary"].items():
        print(f"{name:<12}{s['visible']:>8}{s['detection_rate']:>10.1%}{s['target_rate']:>11.1%}{s['second_in_view']:>12}"
              f"{s['second_target_rate']:>11.1%}{s['false_targets']:>10}{s['err_raw_px']:>9.2f}{s['err_smoothed_px']:>11.2f}"
              f"{s['err_raw_unbiased_px']:>9.2f}")
    st = acc["still_head"]
    print(f"\nstill head (noise sigma 4): crop jitter {st['none']:.3f} px unsmoothed, {st['one_euro']:.3f} px one-euro "
          f"-> {st['ratio']:.1f}x lower")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48, help="frames per clip")
    p.add_argument("--batch-sizes", default="1,4,8,16")
    p.add_argument("--devices", default=None, help="comma list; default: cpu, and cuda when available")
    p.add_argument("--accuracy", action="store_true", help="also measure accuracy against the synthetic truth")
    p.add_argument("--takes", type=int, default=2, help="synth takes for --accuracy (each gives an A and a B clip)")
    p.add_argument("--seed", type=int, default=0, help="first synth seed for --accuracy (take k uses seed + k)")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", default=None, help="output JSON (default outputs/bench_extract.json)")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    report = {"host": {"python": platform.python_version(), "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                       "cpus": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "frames": args.frames, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp_s:
        tmp = Path(tmp_s)
        if not args.no_speed:
            take = make_take(tmp / "speed_take", args.frames, seed=1, second_face=0.1)
            report["speed"] = bench_speed(take, devices, batch_sizes, tmp)
            print_speed(report["speed"])
        if args.accuracy:
            report["accuracy"] = accuracy(tmp, devices[-1], args.frames, args.takes, args.seed)
            print_accuracy(report["accuracy"])
    path = Path(args.json) if args.json else Path(__file__).resolve().parents[1] / "outputs" / "bench_extract.json"
    from faceswap.utils import write_json_atomic

    write_json_atomic(path, report)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
