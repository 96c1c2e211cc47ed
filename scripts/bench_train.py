"""Benchmark the training step: images/s per preset and batch, data-wait share, and achieved FLOP/s against peak.

It runs the loop's own code (faceswap.train.trainer.TrainStep, the real loader, warp and losses) on
synthetic in-memory faces, or on extract folders given with --data-a/--data-b. Prints one table and
writes JSON (--json PATH).

    python scripts/bench_train.py --presets lite,original --batch 16 --steps 20 --threads 1
    python scripts/bench_train.py --device cuda --presets lite,original,hires --batch 64 --amp off,bf16 --compile off,on
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable from a checkout without installing
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

# Dense peak TFLOP/s by (device-name fragment, precision); the first fragment found in the name wins.
# "tf32" is what fp32 training gets here: the trainer allows TF32 tensor cores for fp32 convs and matmuls.
GPU_PEAKS = [
    ("H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    ("H100", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM / HBM3
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("A10", {"bf16": 125.0, "fp16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    ("RTX 4090", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6}),
    ("RTX 3090", {"bf16": 71.0, "fp16": 71.0, "tf32": 35.6, "fp32": 35.6}),
    ("V100", {"bf16": 0.0, "fp16": 125.0, "tf32": 15.7, "fp32": 15.7}),
    ("T4", {"bf16": 0.0, "fp16": 65.0, "tf32": 8.1, "fp32": 8.1}),
]


def gpu_peak(name: str, precision: str) -> tuple[float | None, str]:
    for fragment, table in GPU_PEAKS:
        if fragment.lower() in name.lower():
            return table[precision] * 1e12, f"{fragment} dense {precision} {table[precision]} TFLOP/s (spec sheet)"
    return None, f"no peak known for {name!r}"


def cpu_peak(threads: int, ghz: float | None) -> tuple[float, str]:
    """cores x clock x FLOPs/cycle, with the assumption spelled out (an upper bound: boost clocks vary)."""
    flags, mhz = "", None
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((l for l in text.splitlines() if l.startswith("flags")), "")
        mhz = next((float(l.split(":")[1]) for l in text.splitlines() if l.startswith("cpu MHz")), None)
    except OSError:
        pass
    if " avx512f" in flags:
        per_cycle, why = 64, "AVX-512: 2 FMA pipes x 16 fp32 lanes x 2"
    elif " avx2" in flags and " fma" in flags:
        per_cycle, why = 32, "AVX2: 2 FMA pipes x 8 fp32 lanes x 2"
    else:
        per_cycle, why = 8, "SSE: 4 fp32 lanes x 2"
    clock = ghz if ghz else (mhz / 1000 if mhz else 3.0)
    src = "given" if ghz else ("/proc/cpuinfo 'cpu MHz'" if mhz else "guessed")
    peak = threads * clock * 1e9 * per_cycle
    return peak, f"{threads} cores x {clock:.2f} GHz ({src}) x {per_cycle} fp32 FLOPs/cycle ({why}) = {peak / 1e9:.0f} GFLOP/s"


def sgemm_gflops(device: torch.device, seconds: float = 1.0) -> float:
    """A practical ceiling beside the nominal peak: a large fp32 matrix product on the same threads."""
    n = 2048 if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    _sync(device)
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_image(model_args: dict) -> float:
    """Forward + backward FLOPs of one training image, counted on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    from faceswap.models.autoencoder import Autoencoder
    from faceswap.train.trainer import TrainPair

    r = model_args["resolution"]
    with torch.device("meta"):
        pair = TrainPair(Autoencoder(**model_args))
        x = torch.rand(1, 3, r, r)
    with FlopCounterMode(display=False) as counter:
        sum(o.float().mean() for o in pair(x, x)).backward()
    return counter.get_total_flops() / 2  # one image of A and one of B went through


def synthetic_faces(n: int, res: int, seed: int):
    """Drawn faces (an ellipse, eyes, mouth) with masks and landmarks: enough texture for the loader and losses."""
    from faceswap.train.data import FaceSet

    rng = np.random.default_rng(seed)
    faces = np.empty((n, res, res, 3), np.uint8)
    masks = np.zeros((n, res, res), np.uint8)
    lms = np.empty((n, 5, 2), np.float32)
    s = res / 64
    for i in range(n):
        img = np.full((res, res, 3), rng.integers(20, 90, 3), np.uint8)
        dx, dy = rng.uniform(-3, 3, 2) * s
        c = (int(32 * s + dx), int(36 * s + dy))
        cv2.ellipse(img, c, (int(20 * s), int(27 * s)), 0, 0, 360, tuple(int(v) for v in rng.integers(90, 240, 3)), -1)
        cv2.ellipse(masks[i], c, (int(20 * s), int(27 * s)), 0, 0, 360, 255, -1)
        lm = np.array([[22, 26], [42, 26], [32, 36], [24, 46], [40, 46]], np.float32) * s + [dx, dy]
        for x, y in lm[:2]:
            cv2.circle(img, (int(x), int(y)), max(1, int(3 * s)), (20, 20, 20), -1)
        cv2.line(img, tuple(int(v) for v in lm[3]), tuple(int(v) for v in lm[4]), (150, 30, 40), max(1, int(2 * s)))
        faces[i], lms[i] = img, lm
    return FaceSet(Path("synthetic"), [f"{i:06d}" for i in range(n)], faces, masks, lms, n)


def bench_one(preset: str, batch: int, device: torch.device, amp: str, compile_: bool, steps: int, warmup: int,
              workers: int, channels_last: bool, data: dict | None) -> dict:
    from faceswap.config import compose
    from faceswap.train import data as D
    from faceswap.train.trainer import _model_from_cfg, build_step

    cfg = compose("train", [f"model={preset}", "data.a=-", "data.b=-", "out=-", f"train.batch_size={batch}",
                            f"train.amp={amp}", f"train.compile={str(compile_).lower()}",
                            f"train.channels_last={str(channels_last).lower()}"])
    torch.manual_seed(0)
    model = _model_from_cfg(cfg)
    res = model.config.resolution
    model.to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    stepper = build_step(model, cfg, device)
    sets = ({k: D.load_faces(v, res, f"data.{k}") for k, v in data.items()} if data
            else {"a": synthetic_faces(256, res, 1), "b": synthetic_faces(256, res, 2)})
    aug = D.Augmenter(**{k: v for k, v in cfg.data.augment.items() if k != "enabled"})
    sampler = D.PairBatchSampler({k: np.arange(len(s)) for k, s in sets.items()}, batch, seed=0)
    loader = D.make_loader(D.PairDataset(sets, aug, 0.5), sampler, workers, device.type == "cuda", 4)
    prefetch = D.Prefetcher(loader, device, channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def one(step: int) -> None:
        values = stepper.forward_backward(prefetch.next(), step)
        values.tolist()  # the loop's one host sync per step (non-finite check and logging)
        stepper.update()

    t_compile = time.perf_counter()
    for i in range(warmup):
        one(i)
    _sync(device)
    warm_s = time.perf_counter() - t_compile
    wait0, t0 = prefetch.wait_s, time.perf_counter()
    for i in range(warmup, warmup + steps):
        one(i)
    _sync(device)
    elapsed = time.perf_counter() - t0
    images = steps * batch * 2
    row = {
        "preset": preset, "params_m": round(model.num_params() / 1e6, 2), "resolution": res, "batch": batch,
        "device": str(device), "amp": amp if device.type == "cuda" else "off", "compile": compile_,
        "channels_last": channels_last, "workers": workers, "steps": steps, "warmup_s": round(warm_s, 2),
        "images_per_s": images / elapsed, "steps_per_s": steps / elapsed,
        "data_wait_share": (prefetch.wait_s - wait0) / elapsed,
        "flops_per_image": flops_per_image(model.constructor_args()),
        "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    row["achieved_flops"] = row["flops_per_image"] * row["images_per_s"]
    del prefetch, loader, stepper, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="lite,original")
    p.add_argument("--batch", default="16", help="comma-separated batch sizes (per identity)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="off", help="comma-separated: off,bf16,fp16 (CUDA only)")
    p.add_argument("--compile", default="off", help="comma-separated: off,on")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default 20 on CPU, 50 on GPU)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=None, help="loader processes (default: 0 on CPU, 6 on GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--cpu-ghz", type=float, default=None, help="clock for the CPU peak (default: /proc/cpuinfo)")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--data-a", default=None)
    p.add_argument("--data-b", default=None)
    p.add_argument("--json", default=None, help="write the rows and the assumptions here")
    args = p.parse_args(argv)

    from faceswap.utils import resolve_device, write_json_atomic

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    steps = args.steps or (50 if device.type == "cuda" else 20)
    workers = args.workers if args.workers is not None else (6 if device.type == "cuda" else 0)
    data = {"a": args.data_a, "b": args.data_b} if args.data_a and args.data_b else None
    threads = torch.get_num_threads()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peaks = {amp: gpu_peak(name, {"off": "tf32"}.get(amp, amp)) for amp in ("off", "bf16", "fp16")}
        assumption = "; ".join(f"amp={k}: {v[1]}" for k, v in peaks.items())
    else:
        name = platform.processor() or platform.machine()
        peak, assumption = cpu_peak(threads, args.cpu_ghz)
        peaks = {amp: (peak, assumption) for amp in ("off", "bf16", "fp16")}
    sgemm = sgemm_gflops(device)
    print(f"device: {name} ({device}), torch {torch.__version__}, {threads} CPU threads, load {os.getloadavg()[0]:.1f}")
    print(f"peak assumption: {assumption}")
    print(f"measured fp32 sgemm: {sgemm:.0f} GFLOP/s (a practical ceiling on this device)\n")

    rows = []
    header = (f"{'preset':<9}{'params':>8}{'px':>5}{'batch':>6}{'amp':>6}{'compile':>8}{'img/s':>9}{'step/s':>8}"
              f"{'wait%':>7}{'GFLOP/img':>10}{'TFLOP/s':>9}{'MFU%':>7}{'mem GiB':>8}{'warm s':>8}")
    print(header)
    print("-" * len(header))
    for preset in args.presets.split(","):
        for batch in (int(b) for b in args.batch.split(",")):
            for amp in args.amp.split(","):
                if device.type != "cuda" and amp != "off":
                    continue
                for comp in args.compile.split(","):
                    row = bench_one(preset, batch, device, amp, comp == "on", steps, args.warmup, workers,
                                    not args.no_channels_last, data)
                    peak = peaks[row["amp"]][0]
                    row["peak_flops"] = peak
                    row["mfu"] = row["achieved_flops"] / peak if peak else None
                    rows.append(row)
                    mem = f"{row['max_memory_gib']:.1f}" if row["max_memory_gib"] is not None else "-"
                    mfu = f"{100 * row['mfu']:.1f}" if row["mfu"] is not None else "-"
                    print(f"{preset:<9}{row['params_m']:>7.1f}M{row['resolution']:>5}{batch:>6}{row['amp']:>6}"
                          f"{'on' if row['compile'] else 'off':>8}{row['images_per_s']:>9.1f}{row['steps_per_s']:>8.2f}"
                          f"{100 * row['data_wait_share']:>7.1f}{row['flops_per_image'] / 1e9:>10.2f}"
                          f"{row['achieved_flops'] / 1e12:>9.3f}{mfu:>7}{mem:>8}{row['warmup_s']:>8.1f}", flush=True)
    if args.json:
        write_json_atomic(args.json, {
            "device": name, "device_type": device.type, "torch": torch.__version__, "threads": threads,
            "load_average": os.getloadavg()[0], "peak_assumption": assumption, "sgemm_gflops": sgemm,
            "images_per_step": "2 x batch (one batch of A and one of B)", "rows": rows,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
