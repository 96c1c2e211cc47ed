"""Benchmark of the invisible watermark: fidelity (PSNR), robustness to H.264 CRF 28 and half-size re-encoding, false positives, speed.

    PYTHONPATH=. python scripts/bench_watermark.py --sizes 320x240,640x480,1280x720 --frames 24 --json bench_watermark.json

Clips are made here from photos that ship with scikit-image (no download): ``pan`` (a photo
panned 1% of the width per frame: the hardest case, since H.264 drags a static mark along with
moving content), ``talk`` (a still photo background with a drawn face moving over it, like a
conversion's output), ``flat`` (a drawn face moving on a flat grey background). Each clip is
marked, written as the toolkit writes (H.264 CRF 18), then re-encoded with CRF 28, and
downscaled to half size with CRF 28. Prints one table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceswap.provenance.watermark import WatermarkCodec  # noqa: E402
from faceswap.video import VideoWriter, ffmpeg_exe, read_video  # noqa: E402


def drawn_face(frame: np.ndarray, cx: float, cy: float, r: float) -> None:
    cx, cy, r = int(cx), int(cy), max(int(r), 4)
    cv2.ellipse(frame, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (214, 170, 140), -1, cv2.LINE_AA)
    for dx in (-0.3, 0.3):
        cv2.circle(frame, (cx + int(dx * r), cy - int(0.2 * r)), max(2, int(0.09 * r)), (40, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(frame, (cx, cy + int(0.45 * r)), (int(0.3 * r), int(0.1 * r)), 0, 0, 180, (150, 60, 60), 2, cv2.LINE_AA)


def make_clip(kind: str, width: int, height: int, frames: int) -> list[np.ndarray]:
    import skimage.data

    if kind == "pan":
        step = max(1, width // 100)
        big = cv2.resize(skimage.data.astronaut(), (width + frames * step, height + frames * step // 2),
                         interpolation=cv2.INTER_AREA)
        return [big[i * step // 2: i * step // 2 + height, i * step: i * step + width].copy() for i in range(frames)]
    if kind == "talk":
        bg = cv2.resize(skimage.data.coffee(), (width, height), interpolation=cv2.INTER_AREA)
    elif kind == "flat":
        bg = np.full((height, width, 3), 118, np.uint8)
    else:
        raise ValueError(kind)
    out = []
    for i in range(frames):
        f = bg.copy()
        drawn_face(f, width * (0.5 + 0.08 * np.sin(i / 4)), height * (0.45 + 0.03 * np.cos(i / 3)), height * 0.22)
        out.append(f)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def write(path: Path, frames: list[np.ndarray]) -> None:
    with VideoWriter(path, fps=25) as w:
        for f in frames:
            w.write(f)


def evaluate(codec: WatermarkCodec, path: Path, payload: int) -> dict:
    soft = np.array([codec.soft_bits(f) for f in read_video(path)])
    video = codec.decide(soft, expected=payload)  # bit accuracies are per frame, against the true word
    alone = [codec.decode(s)[0] == payload for s in soft]
    ok = bool(video.present and video.payload == payload)
    return {
        "frame_bit_accuracy": video.bit_accuracy,  # the 48-bit word, each frame decoded alone
        "frame_raw_bit_accuracy": video.raw_bit_accuracy,  # the 108 coded bits, before error correction
        "frames_decoded": float(np.mean(alone)),
        "video_detected": ok,
        "video_corrected_bits": video.corrected if ok else None,
    }


def false_positives(frames_by_clip: dict[str, list[np.ndarray]], keys: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    trials = hits = video_trials = video_hits = 0
    t0 = time.perf_counter()
    for k in rng.integers(0, 2**31, keys):
        codec = WatermarkCodec(int(k))
        for frames in frames_by_clip.values():
            soft = np.array([codec.soft_bits(f) for f in frames])
            for s in soft:
                hits += codec.decide(s[None]).present
                trials += 1
            video_hits += codec.decide(soft).present
            video_trials += 1
    return {"frame_trials": trials, "frame_false_positives": int(hits), "video_trials": video_trials,
            "video_false_positives": int(video_hits), "seconds": time.perf_counter() - t0}


def random_words(codec: WatermarkCodec, words: int, seed: int) -> dict:
    """Decode Gaussian noise as soft bits: the chance that garbage passes the tool tag and the CRC."""
    rng = np.random.default_rng(seed)
    hits = sum(codec.decode(rng.standard_normal(codec.coded_bits))[0] is not None for _ in range(words))
    return {"words": words, "valid": int(hits), "expected": words * 2.0 ** -24}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="320x240,640x480")
    ap.add_argument("--clips", default="pan,talk,flat")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--fp-keys", type=int, default=20, help="random keys tried on each unmarked clip")
    ap.add_argument("--fp-words", type=int, default=20000, help="random soft words decoded to measure false accepts")
    ap.add_argument("--step", type=float, default=None)
    ap.add_argument("--json", default="bench_watermark.json")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    codec = WatermarkCodec() if args.step is None else WatermarkCodec(step=args.step)
    payload = 0xC0FFEE
    rows, unmarked = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes.split(","):
            w, h = (int(v) for v in size.split("x"))
            for kind in args.clips.split(","):
                clip = make_clip(kind, w, h, args.frames)
                t0 = time.perf_counter()
                marked = [codec.embed(f, payload) for f in clip]
                t_embed = (time.perf_counter() - t0) / len(clip)
                t0 = time.perf_counter()
                for f in marked:
                    codec.detect(f)
                t_detect = (time.perf_counter() - t0) / len(clip)
                src, crf, half = tmp / "src.mp4", tmp / "crf28.mp4", tmp / "half.mp4"
                write(src, marked)
                ffmpeg("-i", str(src), "-c:v", "libx264", "-crf", "28", str(crf))
                ffmpeg("-i", str(src), "-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28", str(half))
                row = {"size": size, "clip": kind, "psnr_db": float(np.mean([psnr(a, b) for a, b in zip(clip, marked)])),
                       "embed_ms": 1000 * t_embed, "detect_ms": 1000 * t_detect}
                for tag, path in (("written", src), ("crf28", crf), ("half_crf28", half)):
                    row[tag] = evaluate(codec, path, payload)
                rows.append(row)
                write(tmp / "plain.mp4", clip)
                unmarked[f"{size}/{kind}"] = list(read_video(tmp / "plain.mp4"))
                r = row
                print(f"{size:>9} {kind:5s} psnr {r['psnr_db']:5.1f} dB  embed {r['embed_ms']:6.1f} ms  "
                      f"detect {r['detect_ms']:5.1f} ms | " + " | ".join(
                          f"{t}: bits/frame {r[t]['frame_bit_accuracy']:.3f} raw {r[t]['frame_raw_bit_accuracy']:.3f} "
                          f"frames ok {r[t]['frames_decoded']:.2f} video "
                          + (f"OK ({r[t]['video_corrected_bits']} fixed)" if r[t]['video_detected'] else "MISSED")
                          for t in ("written", "crf28", "half_crf28")), flush=True)
    fp = false_positives(unmarked, args.fp_keys, seed=1)
    print(f"false positives on unmarked clips: {fp['frame_false_positives']}/{fp['frame_trials']} frames, "
          f"{fp['video_false_positives']}/{fp['video_trials']} videos ({args.fp_keys} random keys)")
    words = random_words(codec, args.fp_words, seed=2)
    print(f"random soft words decoding to a valid payload: {words['valid']}/{words['words']} "
          f"(expected {words['expected']:.2g})")
    result = {"codec": {"key": codec.key, "payload_bits": codec.payload_bits, "coded_bits": codec.coded_bits,
                        "word_bits": codec.word_bits, "step": codec.step, "grid": list(codec.grid)},
              "frames": args.frames, "rows": rows, "false_positives": fp, "random_words": words}
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
