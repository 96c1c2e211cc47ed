"""Seeded performances: smooth head motion with occasional quick turns, talking, blinks, saccades, light and camera drift."""
from __future__ import annotations

import numpy as np

from faceswap.synth.params import Performance

DEFAULTS = dict(
    fps=25.0,
    yaw=35.0, pitch=20.0, roll=15.0,     # +- limits, degrees
    x=(0.4, 0.6), y=(0.45, 0.55), scale=(0.45, 0.62),
    fast_moves=True,                     # quick head turns now and then (~every 4 s)
    talk=True, smile=0.8, brow_raise=0.8, blink_every=3.5,  # seconds between blinks, on average
    gaze=12.0,                           # +- eye rotation, degrees
    light=True, camera=True,             # drifting light; camera zoom and shake
    no_face_fraction=0.0, no_face_mode="mixed",  # frames cut away: "away" (back of the head), "out" (empty set) or both
)


def smooth_signal(rng: np.random.Generator, n: int, fps: float, f_lo: float, f_hi: float, k: int = 4) -> np.ndarray:
    """A smooth signal in [-1, 1]: a sum of k sinusoids with random frequencies in [f_lo, f_hi] Hz and phases."""
    t = np.arange(n) / fps
    freqs = rng.uniform(f_lo, f_hi, k)
    phases = rng.uniform(0, 2 * np.pi, k)
    amps = rng.uniform(0.5, 1.0, k)
    s = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None])).sum(axis=0)
    return np.clip(1.4 * s / amps.sum(), -1.0, 1.0)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def quick_moves(rng: np.random.Generator, n: int, fps: float, every_s: float, frames: int) -> np.ndarray:
    """Steps to new random levels in [-1, 1] at random times, each taken in `frames` frames (a fast head turn)."""
    out = np.zeros(n)
    level, i = 0.0, int(rng.exponential(every_s * fps))
    while i < n:
        new = float(rng.uniform(-1, 1))
        ramp = _smoothstep((np.arange(n - i) + 1) / frames)
        out[i:] = level + (new - level) * ramp
        level = new
        i += frames + int(rng.exponential(every_s * fps)) + 1
    return out


def events(rng: np.random.Generator, n: int, fps: float, every_s: float, shape: np.ndarray) -> np.ndarray:
    """Add `shape` (a 1-D profile) at random times, on average every `every_s` seconds; peaks overlap with max."""
    out = np.zeros(n)
    i = int(rng.uniform(0.2, 1.0) * every_s * fps)
    while i < n:
        seg = shape[: n - i]
        out[i:i + len(seg)] = np.maximum(out[i:i + len(seg)], seg)
        i += len(shape) + int(rng.exponential(every_s * fps) + 0.3 * fps)
    return out


def talking(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """Mouth opening: phrases of syllables (~4 per second) separated by pauses; smooth between syllables."""
    env = np.zeros(n)
    i = int(rng.uniform(0, 1.5) * fps)
    while i < n:
        length = int(rng.uniform(1.0, 4.0) * fps)
        env[i:i + length] = 1.0
        i += length + int(rng.uniform(0.4, 2.0) * fps)
    step = max(int(fps / 4.0), 2)
    knots = np.arange(0, n + step, step)
    vals = rng.uniform(0.05, 0.85, len(knots))
    syl = np.interp(np.arange(n), knots, vals)
    kernel = np.hanning(step + 2)
    off = (len(kernel) - 1) // 2
    env = np.convolve(env, kernel / kernel.sum())[off:off + n]
    return np.clip(syl * env + 0.02, 0.0, 1.0)


def no_face_segments(rng: np.random.Generator, n: int, fps: float, fraction: float, first: int = 1,
                     seconds: tuple[float, float] = (0.4, 1.2)) -> list[tuple[int, int]]:
    """Non-overlapping [start, stop) runs of `seconds` length covering about `fraction` of the frames, none before `first`."""
    want = int(round(fraction * n))
    if want <= 0 or n - first < 1:
        return []
    segs: list[tuple[int, int]] = []
    covered = np.zeros(n, bool)
    covered[:first] = True
    done, tries = 0, 0
    while done < want and tries < 1000:
        tries += 1
        length = max(min(int(rng.uniform(*seconds) * fps), want - done), 1)
        start = int(rng.integers(first, max(n - length, first) + 1))
        stop = min(start + length, n)
        if covered[max(start - 2, 0):min(stop + 2, n)].any():
            continue
        covered[start:stop] = True
        done += stop - start
        segs.append((start, stop))
    return sorted(segs)


def random_performance(n_frames: int, seed: int, **options) -> list[Performance]:
    """`n_frames` performances, smooth over time and deterministic in `seed`; see DEFAULTS for the options."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"random_performance() got unknown options {unknown}; known: {sorted(DEFAULTS)}")
    o = {**DEFAULTS, **options}
    n, fps = int(n_frames), float(o["fps"])
    if n < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if n == 0:
        return []
    if o["no_face_mode"] not in ("away", "out", "mixed"):
        raise ValueError(f"no_face_mode must be 'away', 'out' or 'mixed', got {o['no_face_mode']!r}")
    rng = np.random.default_rng([int(seed), 0x9E4F])

    def span(lo_hi, sig):
        lo, hi = lo_hi
        return (lo + hi) / 2 + (hi - lo) / 2 * sig

    quick = (lambda: quick_moves(rng, n, fps, 4.0, int(rng.integers(4, 8)))) if o["fast_moves"] else (lambda: np.zeros(n))
    yaw = np.clip(o["yaw"] * (0.75 * smooth_signal(rng, n, fps, 0.03, 0.25) + 0.45 * quick()), -o["yaw"], o["yaw"])
    pitch = np.clip(o["pitch"] * (0.8 * smooth_signal(rng, n, fps, 0.04, 0.3) + 0.3 * quick()), -o["pitch"], o["pitch"])
    roll = o["roll"] * smooth_signal(rng, n, fps, 0.03, 0.2)
    x = span(o["x"], smooth_signal(rng, n, fps, 0.02, 0.12))
    y = span(o["y"], smooth_signal(rng, n, fps, 0.02, 0.12))
    scale = span(o["scale"], smooth_signal(rng, n, fps, 0.01, 0.08))
    mouth = talking(rng, n, fps) if o["talk"] else np.zeros(n)
    smile = o["smile"] * np.clip(0.5 * smooth_signal(rng, n, fps, 0.02, 0.1) + 0.5, 0, 1) ** 1.5
    bump = np.sin(np.linspace(0, np.pi, int(fps * 1.2))) ** 2
    brow = o["brow_raise"] * events(rng, n, fps, 5.0, bump) if o["brow_raise"] else np.zeros(n)
    blink_shape = np.array([0.35, 0.8, 1.0, 0.95, 0.7, 0.4, 0.15])
    blink = events(rng, n, fps, o["blink_every"], blink_shape) if o["blink_every"] else np.zeros(n)
    gx = o["gaze"] * (0.75 * quick_moves(rng, n, fps, 1.2, 2) + 0.25 * smooth_signal(rng, n, fps, 0.05, 0.3))
    gy = o["gaze"] * 0.6 * (0.75 * quick_moves(rng, n, fps, 1.5, 2) + 0.25 * smooth_signal(rng, n, fps, 0.05, 0.3))
    if o["light"]:
        az = 40.0 * smooth_signal(rng, n, fps, 0.01, 0.06)
        el = 28.0 + 18.0 * smooth_signal(rng, n, fps, 0.01, 0.06)
        inten = 1.0 + 0.15 * smooth_signal(rng, n, fps, 0.02, 0.1)
    else:
        az, el, inten = np.full(n, 20.0), np.full(n, 30.0), np.ones(n)
    if o["camera"]:
        zoom = 1.0 + 0.04 * smooth_signal(rng, n, fps, 0.01, 0.05)
        sx = 0.003 * smooth_signal(rng, n, fps, 0.5, 3.0, 6)
        sy = 0.003 * smooth_signal(rng, n, fps, 0.5, 3.0, 6)
    else:
        zoom, sx, sy = np.ones(n), np.zeros(n), np.zeros(n)

    cut_yaw = yaw.copy()
    cut_x = x.copy()
    for a, b in no_face_segments(rng, n, fps, float(o["no_face_fraction"])):
        mode = o["no_face_mode"] if o["no_face_mode"] != "mixed" else ("away", "out")[int(rng.integers(2))]
        if mode == "away":
            cut_yaw[a:b] = 180.0 + 20.0 * smooth_signal(rng, b - a, fps, 0.1, 0.3)
        else:
            cut_x[a:b] = -1.5  # the actor has left the set
    return [
        Performance(yaw=float(cut_yaw[i]), pitch=float(pitch[i]), roll=float(roll[i]), x=float(cut_x[i]),
                    y=float(y[i]), scale=float(scale[i]), mouth_open=float(mouth[i]), smile=float(smile[i]),
                    brow_raise=float(brow[i]), blink=float(blink[i]), gaze_x=float(gx[i]), gaze_y=float(gy[i]),
                    light_azimuth=float(az[i]), light_elevation=float(el[i]), light_intensity=float(inten[i]),
                    zoom=float(zoom[i]), shake_x=float(sx[i]), shake_y=float(sy[i]))
        for i in range(n)
    ]
