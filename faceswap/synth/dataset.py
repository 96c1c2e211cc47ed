"""The `faceswap synth` stage: render actors A and B, the true swap (B's performance played by A) and per-frame truth."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap.errors import UserError
from faceswap.synth.params import Appearance, Performance, actor_by_name, on_set_of
from faceswap.synth.performance import no_face_segments, random_performance
from faceswap.synth.render import Render, render

SCHEMA, VERSION = "faceswap.synth", 1
VIDEOS = ("A", "B", "truth_B_as_A")


@dataclass(frozen=True)
class Options:
    second_face: float = 0.0      # fraction of frames with a second actor in view
    second_actor: str = "C"
    no_face_fraction: float = 0.0
    no_face_mode: str = "mixed"   # away | out | mixed
    noise: float = 0.0            # gaussian sensor noise, sigma in 0..255 levels
    blur: float = 0.0             # gaussian blur sigma, pixels
    crf: int = 18


@dataclass(frozen=True)
class Settings:
    frames: int
    fps: float
    width: int
    height: int
    actor_a: str
    actor_b: str
    seed: int
    seed_a: int
    seed_b: int
    workers: int
    options: Options = field(default_factory=Options)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("frames", "fps", "width", "height", "seed", "seed_a", "seed_b")}
        d["actors"] = {"a": self.actor_a, "b": self.actor_b}
        d["options"] = dict(vars(self.options))
        return d


def _num(cfg, key: str, kind, lo=None, hi=None, what: str = ""):
    """Read synth.<key> as int/float within [lo, hi]; anything else is a UserError naming the override."""
    value = cfg.get(key)
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        num = kind(value)
        if kind is int and float(value) != num:
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"synth.{key}={value!r} is not {'an integer' if kind is int else 'a number'}; {what}") from None
    if (lo is not None and num < lo) or (hi is not None and num > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise UserError(f"synth.{key}={value} is out of range: it must be {rng}; {what}")
    return num


def settings_from_config(cfg) -> Settings:
    """Validate the composed config (the `synth` group plus top-level seed) into Settings."""
    s = cfg.synth
    frames = _num(s, "frames", int, 1, None, "give the number of frames to render, e.g. synth.frames=300")
    fps = _num(s, "fps", float, 1, 240, "e.g. synth.fps=25")
    width = _num(s, "width", int, 32, 4096, "e.g. synth.width=640")
    height = _num(s, "height", int, 32, 4096, "e.g. synth.height=480")
    for key, v in (("width", width), ("height", height)):
        if v % 2:
            raise UserError(f"synth.{key}={v} is odd; H.264 needs even frame sizes, e.g. synth.{key}={v + 1}")
    actors = s.get("actors") or {}
    names = []
    for role in ("a", "b"):
        name = str(actors.get(role, ""))
        try:
            actor_by_name(name)
        except KeyError as exc:
            raise UserError(f"synth.actors.{role}={name!r}: {exc.args[0]}") from None
        names.append(name)
    o = s.get("options") or {}
    second = o.get("second_face", 0.0)
    second = 0.1 if second is True else 0.0 if second is False else second
    opts = Options(
        second_face=_num({"options.second_face": second}, "options.second_face", float, 0, 1,
                         "the fraction of frames with a second actor, e.g. 0.1"),
        second_actor=str(o.get("second_actor", "C")),
        no_face_fraction=_num({"options.no_face_fraction": o.get("no_face_fraction", 0.0)}, "options.no_face_fraction",
                              float, 0, 0.9, "the fraction of frames without a face, e.g. 0.05"),
        no_face_mode=str(o.get("no_face_mode", "mixed")),
        noise=_num({"options.noise": o.get("noise", 0.0)}, "options.noise", float, 0, 100, "sigma in 0..255 levels"),
        blur=_num({"options.blur": o.get("blur", 0.0)}, "options.blur", float, 0, 50, "sigma in pixels, 0 = off"),
        crf=_num({"options.crf": o.get("crf", 18)}, "options.crf", int, 0, 51, "H.264 quality, 0 (lossless) .. 51"),
    )
    if opts.no_face_mode not in ("away", "out", "mixed"):
        raise UserError(f"synth.options.no_face_mode={opts.no_face_mode!r} must be away, out or mixed")
    try:
        actor_by_name(opts.second_actor)
    except KeyError as exc:
        raise UserError(f"synth.options.second_actor={opts.second_actor!r}: {exc.args[0]}") from None
    return Settings(
        frames=frames, fps=fps, width=width, height=height, actor_a=names[0], actor_b=names[1],
        seed=_num(cfg, "seed", int, 0, None, "any integer >= 0"),
        seed_a=_num(s, "seed_a", int, 0, None, "any integer >= 0"),
        seed_b=_num(s, "seed_b", int, 0, None, "any integer >= 0"),
        workers=_num(s, "workers", int, 0, 64, "0 renders in this process"),
        options=opts,
    )


# ----------------------------------------------------------------------------- the script of a take

def second_face_track(n: int, fps: float, fraction: float, seed: int, main: list[Performance]) -> list[Performance | None]:
    """A second actor who walks into the back of the shot for a few seconds at a time (None: not in the shot)."""
    if fraction <= 0 or n == 0:
        return [None] * n
    rng = np.random.default_rng([seed, 0x2ACE])
    perf = random_performance(n, int(rng.integers(2**31)), fps=fps, yaw=20.0, pitch=10.0, roll=8.0,
                              x=(0.0, 0.0), y=(0.27, 0.33), scale=(0.26, 0.3), fast_moves=False)
    track: list[Performance | None] = [None] * n
    for a, b in no_face_segments(rng, n, fps, fraction, first=0, seconds=(1.0, 3.0)):
        side = 1.0 if np.mean([p.x for p in main[a:b]]) < 0.5 else -1.0  # opposite the main actor
        for i in range(a, b):
            track[i] = perf[i].replace(x=0.5 + side * 0.37)
    return track


def degrade(image: np.ndarray, noise: float, blur: float, rng: np.random.Generator | None) -> np.ndarray:
    """Optical blur then sensor noise, both optional; the same rng state gives the same noise."""
    out = image
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise > 0:
        n = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(noise)
        out = np.clip(out.astype(np.float32) + n + np.float32(0.5), 0, 255).astype(np.uint8)
    return out


@dataclass
class Take:
    """Everything needed to render any frame of the three videos, and nothing else (it is sent to workers)."""

    settings: Settings
    app_a: Appearance
    app_b: Appearance
    app_second: Appearance
    perf_a: list[Performance]
    perf_b: list[Performance]
    second_a: list[Performance | None]
    second_b: list[Performance | None]

    @property
    def app_truth(self) -> Appearance:
        return on_set_of(self.app_a, self.app_b)

    @classmethod
    def plan(cls, st: Settings) -> "Take":
        n, o = st.frames, st.options
        kw = dict(fps=st.fps, no_face_fraction=o.no_face_fraction, no_face_mode=o.no_face_mode)
        perf_a = random_performance(n, int(np.random.SeedSequence([st.seed, st.seed_a]).generate_state(1)[0]), **kw)
        perf_b = random_performance(n, int(np.random.SeedSequence([st.seed, st.seed_b]).generate_state(1)[0]), **kw)
        return cls(st, actor_by_name(st.actor_a), actor_by_name(st.actor_b), actor_by_name(o.second_actor),
                   perf_a, perf_b, second_face_track(n, st.fps, o.second_face, st.seed * 7919 + st.seed_a, perf_a),
                   second_face_track(n, st.fps, o.second_face, st.seed * 7919 + st.seed_b, perf_b))

    def frame(self, video: str, i: int) -> tuple[np.ndarray, Render]:
        """Render frame i of a video; truth_B_as_A shares B's performance, second face and noise exactly."""
        st = self.settings
        app = {"A": self.app_a, "B": self.app_b}.get(video) or self.app_truth
        perf, second = (self.perf_a, self.second_a) if video == "A" else (self.perf_b, self.second_b)
        extra = [(self.app_second, second[i])] if second[i] is not None else None
        r = render(app, perf[i], st.width, st.height, extra)
        noise_stream = 0 if video == "A" else 1  # B and its true swap get the same noise
        rng = np.random.default_rng([st.seed, noise_stream, i]) if st.options.noise > 0 else None
        return degrade(r.image, st.options.noise, st.options.blur, rng), r


def frame_record(i: int, perf: Performance, r: Render) -> dict[str, Any]:
    def arr(a):
        return None if a is None else np.round(np.asarray(a, dtype=np.float64), 3).tolist()

    return {"index": i, "performance": perf.to_dict(), "face_visible": bool(r.face_visible),
            "landmarks": arr(r.landmarks), "box": arr(r.box),
            "extra_faces": [{"landmarks": arr(lm), "box": arr(b)} for lm, b in zip(r.extra_landmarks, r.extra_boxes)]}


# ----------------------------------------------------------------------------- workers

_TAKE: Take | None = None
_OUT: Path | None = None


def _init_worker(take: Take, out: str) -> None:
    global _TAKE, _OUT
    cv2.setNumThreads(1)
    _TAKE, _OUT = take, Path(out)


def _render_index(i: int):
    """Render frame i of all three videos, write their masks; return the images and the per-frame records."""
    from faceswap.video import write_image

    images, records = [], []
    for video in VIDEOS:
        img, r = _TAKE.frame(video, i)
        write_image(_OUT / video / "masks" / f"{i:06d}.png", r.mask)
        perf = _TAKE.perf_a[i] if video == "A" else _TAKE.perf_b[i]
        images.append(img)
        records.append(frame_record(i, perf, r))
    return i, images, records


def _frames(take: Take, out: Path, workers: int):
    if workers <= 1:
        _init_worker(take, str(out))
        for i in range(take.settings.frames):
            yield _render_index(i)
        return
    import multiprocessing as mp

    # spawn: the parent may hold torch/OpenMP threads, which a fork would copy in a broken state.
    with mp.get_context("spawn").Pool(workers, _init_worker, (take, str(out))) as pool:
        yield from pool.imap(_render_index, range(take.settings.frames), chunksize=4)


# ----------------------------------------------------------------------------- the stage

def _complete(out: Path, settings: dict[str, Any]) -> bool:
    from faceswap.utils import read_json

    if not (out / "synth.json").is_file():
        return False
    try:
        old = read_json(out / "synth.json", "synth summary")
    except UserError:
        return False
    if old.get("settings") != settings:
        return False
    n = settings["frames"]
    return all((out / f).is_file() for f in old.get("files", [])) and all(
        (out / v / "masks" / f"{n - 1:06d}.png").is_file() for v in VIDEOS)


def _clear_stale(out: Path) -> None:
    """Remove what a previous run left that this one would not overwrite (mask files beyond the new length)."""
    for v in VIDEOS:
        folder = out / v / "masks"
        if folder.is_dir():
            for p in folder.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
                p.unlink()


def synthesize(out: str | os.PathLike, st: Settings, progress: bool = True) -> dict[str, Any]:
    """Render the whole take into `out` (see docs/formats.md); returns the summary written to synth.json."""
    from tqdm import tqdm

    from faceswap.utils import write_json_atomic
    from faceswap.video import VideoWriter

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder for the synthetic actors")
    out.mkdir(parents=True, exist_ok=True)
    _clear_stale(out)
    take = Take.plan(st)
    t0 = time.perf_counter()
    writers = {v: VideoWriter(out / f"{v}.mp4", st.fps, (st.width, st.height), crf=st.options.crf, preset="fast")
               for v in VIDEOS}
    records: dict[str, list] = {v: [] for v in VIDEOS}
    bar = tqdm(total=st.frames, desc="synth", unit="frame", disable=not progress or not sys.stderr.isatty())
    try:
        for i, images, recs in _frames(take, out, st.workers):
            for v, img, rec in zip(VIDEOS, images, recs):
                writers[v].write(img)
                records[v].append(rec)
            bar.update(1)
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    finally:
        bar.close()
    for v in VIDEOS:
        write_json_atomic(out / v / "frames.json", records[v], indent=None)
    actors = {"A": take.app_a.to_dict(), "B": take.app_b.to_dict(),
              "truth_B_as_A": take.app_truth.to_dict()}
    if st.options.second_face > 0:
        actors["second"] = take.app_second.to_dict()
    write_json_atomic(out / "actors.json", actors)
    files = ["actors.json"] + [f"{v}.mp4" for v in VIDEOS] + [f"{v}/frames.json" for v in VIDEOS]
    summary = {
        "schema": SCHEMA, "version": VERSION, "settings": st.to_dict(), "files": files,
        "masks": {v: f"{v}/masks" for v in VIDEOS},
        "visible_frames": {v: sum(r["face_visible"] for r in records[v]) for v in VIDEOS},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_json_atomic(out / "synth.json", summary)  # last: its presence marks a complete output
    return summary


def run(cfg) -> int:
    """`faceswap synth out=DIR`: re-running with the same settings into a complete DIR skips; otherwise it overwrites."""
    from faceswap.config import require, save_config

    out = Path(str(require(cfg, "out", "synth", "the folder to write the actors' videos and truth into")))
    st = settings_from_config(cfg)
    if _complete(out, st.to_dict()):
        print(f"synth: {out} is already complete with these settings; nothing to do (delete it to re-render)")
        return 0
    summary = synthesize(out, st, progress=bool(cfg.get("progress", True)))
    save_config(cfg, out, "synth")
    print(f"synth: {st.frames} frames x 3 videos at {st.width}x{st.height} in {summary['seconds']:.1f} s -> {out}")
    print(f"  A.mp4, B.mp4, truth_B_as_A.mp4 (B's performance played by A); truth per frame in */frames.json")
    return 0
