"""Benchmark of the synthetic actors: render speed, and how MTCNN sees them (detection rate, score, landmark error).

    python -m faceswap.synth.bench [--frames 200] [--actors A,B,random:3] [--json out.json]

Prints one table and writes JSON. Frames come from random_performance with the default ranges (every frame
has its face in view); MTCNN's detection matched to the truth is the one whose nose is nearest the true nose.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np


def match(boxes, probs, points, truth: np.ndarray, max_px: float) -> tuple[float, np.ndarray] | None:
    """(score, (5, 2) landmarks) of the detection whose nose is nearest the true nose, if within max_px."""
    if boxes is None:
        return None
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    d = np.linalg.norm(pts[:, 2] - truth[2], axis=1)
    k = int(np.argmin(d))
    if d[k] > max_px:
        return None
    return float(np.asarray(probs, dtype=np.float64)[k]), pts[k]


def measure(actor_name: str, frames: int, seed: int, width: int, height: int, detector) -> dict:
    from faceswap.synth import BUILTIN_ACTORS, random_performance, render
    from faceswap.synth.params import actor_by_name

    actor = BUILTIN_ACTORS.get(actor_name) or actor_by_name(actor_name)
    perfs = random_performance(frames, seed)
    t0 = time.perf_counter()
    renders = [render(actor, p, width, height) for p in perfs]
    render_s = time.perf_counter() - t0
    scores, errors, iod = [], [], []
    for i in range(0, frames, 16):
        batch = renders[i:i + 16]
        boxes, probs, points = detector.detect([r.image for r in batch], landmarks=True)
        for r, b, p, pt in zip(batch, boxes, probs, points):
            iod_px = float(np.linalg.norm(r.landmarks[1] - r.landmarks[0]))
            m = match(b, p, pt, r.landmarks, max_px=0.5 * iod_px)
            if m is None:
                continue
            scores.append(m[0])
            errors.append(np.linalg.norm(m[1] - r.landmarks, axis=1))
            iod.append(iod_px)
    err = np.array(errors) if errors else np.zeros((0, 5))
    return {
        "actor": actor_name, "frames": frames, "detected": len(scores), "rate": len(scores) / frames,
        "mean_score": float(np.mean(scores)) if scores else 0.0, "min_score": float(np.min(scores)) if scores else 0.0,
        "landmark_error_px": float(err.mean()) if len(err) else None,
        "landmark_error_px_per_point": err.mean(axis=0).round(2).tolist() if len(err) else None,
        "landmark_error_iod": float((err.mean(axis=1) / np.array(iod)).mean()) if len(err) else None,
        "render_fps": frames / render_s,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--actors", default="A,B", help="comma-separated: A..E or random:SEED")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--json", default="bench_synth.json")
    args = ap.parse_args(argv)

    import torch
    from facenet_pytorch import MTCNN

    torch.set_num_threads(1)
    detector = MTCNN(keep_all=True, device="cpu")
    rows = [measure(a, args.frames, args.seed + 17 * i, args.width, args.height, detector)
            for i, a in enumerate(args.actors.split(","))]
    print(f"{'actor':>9} {'frames':>6} {'detected':>9} {'rate':>7} {'score':>7} {'lm err px':>9} {'err/IOD':>8} {'render fps':>10}")
    for r in rows:
        print(f"{r['actor']:>9} {r['frames']:>6} {r['detected']:>9} {r['rate']:>7.1%} {r['mean_score']:>7.4f} "
              f"{r['landmark_error_px']:>9.2f} {r['landmark_error_iod']:>8.3f} {r['render_fps']:>10.1f}")
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump({"machine": platform.processor() or platform.machine(), "size": [args.width, args.height],
                   "rows": rows}, fh, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
