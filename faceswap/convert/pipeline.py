"""The convert stage: stream frames -> locate the face -> encode, decode with the other identity -> colour, paste back -> stamp -> write.

Three threads overlap the work: a reader (the ffmpeg decoder process feeds it), the main thread
(detection, model, blending) and a writer (stamping and the ffmpeg encoder process). Bounded
queues between them, and bounded buffers inside the main thread (a detector batch, a gap of at
most ``max_gap`` frames, a model batch), keep memory independent of the video's length.
"""
from __future__ import annotations

import glob
import math
import os
import queue
import re
import shutil
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from faceswap.convert.blend import paste_back
from faceswap.convert.color import StatsEMA, apply_transfer, color_stats
from faceswap.convert.mask import MaskEMA, combine_masks, hull_mask
from faceswap.convert.temporal import GapFiller, stream_fill
from faceswap.errors import UserError

SUMMARY_SCHEMA = "faceswap.convert"
SUMMARY_VERSION = 1
VIDEO_OUT_EXTS = (".mp4", ".mov", ".m4v")
TIMING_KEYS = ("decode", "detect", "align", "model", "blend", "stamp", "encode")


# --- settings -----------------------------------------------------------------------------------------------------

@dataclass
class ConvertSettings:
    """The validated knobs of one conversion (config group ``convert`` plus the top-level choices)."""

    source: str = "b"  # identity shown in the input
    target: str = "a"  # identity the output shows (whose decoder runs)
    mask: str = "both"
    erode: float = 0.03
    feather: float = 0.04
    forehead: float = 0.8
    blend: str = "alpha"
    color: str = "none"
    color_ema: float = 0.0
    mask_ema: float = 0.0
    max_gap: int = 5
    batch_size: int = 16
    amp: bool = True
    queue: int = 16
    workers: int = 1
    start: int = 0
    stop: int | None = None
    label: bool = True
    watermark: bool = True
    metadata: bool = True
    label_text: str = "SYNTHETIC"
    label_corner: str = "bottom-right"
    watermark_strength: float = 1.0

    @property
    def direction(self) -> str:
        return f"{self.source}_to_{self.target}"

    def record(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def parse_direction(direction: Any) -> tuple[str, str]:
    """``a_to_b`` -> ("a", "b"); anything else is a user error."""
    m = re.fullmatch(r"([a-z0-9]+)_to_([a-z0-9]+)", str(direction))
    if not m or m.group(1) == m.group(2):
        raise UserError(f"direction={direction!r} is not a swap direction; use b_to_a (input shows B, output shows A) "
                        "or a_to_b")
    return m.group(1), m.group(2)


def _number(value: Any, key: str, lo: float, hi: float, integer: bool = False, lo_open: bool = False,
            hi_open: bool = False) -> float | int:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        kind = "an integer" if integer else "a number"
        raise UserError(f"{key}={value!r} must be {kind} in {rng}")
    return int(value) if integer else float(value)


def settings_from_config(cfg: Any) -> ConvertSettings:
    """Validate the composed config; every bad value is one UserError naming the key and its choices."""
    from faceswap.convert.blend import BLEND_MODES
    from faceswap.convert.color import COLOR_MODES
    from faceswap.convert.mask import MASK_TYPES

    c = cfg.convert
    src, dst = parse_direction(cfg.get("direction", "b_to_a"))
    for key, value, allowed in (("convert.mask", c.mask, MASK_TYPES), ("convert.blend", c.blend, BLEND_MODES),
                                ("convert.color", c.color, COLOR_MODES)):
        if value not in allowed:
            raise UserError(f"{key}={value!r} is not a known mode; use one of {', '.join(allowed)}")
    start = _number(cfg.get("start", 0) or 0, "start", 0, 1e12, integer=True)
    stop = cfg.get("stop")
    if stop is not None:
        stop = _number(stop, "stop", 1, 1e12, integer=True)
        if stop <= start:
            raise UserError(f"stop={stop} must be greater than start={start} (or null for the end)")
    prov = cfg.get("provenance") or {}
    strength = _number(prov.get("strength", 1.0), "provenance.strength", 0.0, 1.0, lo_open=True)
    for key in ("label", "watermark", "metadata"):
        if not isinstance(prov.get(key, True), bool):
            raise UserError(f"provenance.{key}={prov.get(key)!r} must be true or false")
    return ConvertSettings(
        source=src, target=dst, mask=str(c.mask),
        erode=_number(c.erode, "convert.erode", -0.5, 0.5),
        feather=_number(c.feather, "convert.feather", 0.0, 0.5),
        forehead=_number(c.forehead, "convert.forehead", 0.0, 3.0),
        blend=str(c.blend), color=str(c.color),
        color_ema=_number(c.color_ema, "convert.color_ema", 0.0, 1.0, hi_open=True),
        mask_ema=_number(c.mask_ema, "convert.mask_ema", 0.0, 1.0, hi_open=True),
        max_gap=_number(c.max_gap, "convert.max_gap", 0, 1000, integer=True),
        batch_size=_number(c.batch_size, "convert.batch_size", 1, 4096, integer=True),
        amp=bool(c.amp), queue=_number(c.queue, "convert.queue", 1, 4096, integer=True),
        workers=default_workers() if c.get("workers", "auto") == "auto" else
        _number(c.workers, "convert.workers", 1, 64, integer=True),
        start=start, stop=stop,
        label=bool(prov.get("label", True)), watermark=bool(prov.get("watermark", True)),
        metadata=bool(prov.get("metadata", True)), label_text=str(prov.get("text", "SYNTHETIC")) or "SYNTHETIC",
        label_corner=str(prov.get("corner", "bottom-right")), watermark_strength=strength,
    )


def default_workers() -> int:
    """Paste-back threads for ``workers: auto``: half the CPU cores (the model and the codecs need the rest), 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def provenance_warnings(s: ConvertSettings) -> list[str]:
    """One WARNING line per provenance stamp that was turned off."""
    out = []
    if not s.label:
        out.append("WARNING: provenance.label=false: output frames carry NO visible 'synthetic' label")
    if not s.watermark:
        out.append("WARNING: provenance.watermark=false: swapped frames carry NO invisible watermark; "
                   "'faceswap verify' will not recognise this output")
    if not s.metadata:
        out.append("WARNING: provenance.metadata=false: the output file carries NO provenance metadata")
    return out


# --- checkpoint and crop geometry ---------------------------------------------------------------------------------

def training_crop(state: dict) -> tuple[int | None, float | None, str]:
    """(crop size, coverage, where it was found) of the faces a checkpoint was trained on.

    Looks at the checkpoint's own ``crop`` record first, then at the alignments.json of the extract
    folders its training config names (``config.data.a``/``b``).
    """
    crop = state.get("crop")
    if isinstance(crop, dict) and isinstance(crop.get("coverage"), (int, float)):
        size = crop.get("size")
        return (int(size) if isinstance(size, (int, float)) else None), float(crop["coverage"]), "checkpoint"
    data = ((state.get("config") or {}).get("data") or {}) if isinstance(state.get("config"), dict) else {}
    import json

    for key in ("a", "b"):
        folder = data.get(key)
        if not isinstance(folder, str):
            continue
        path = Path(folder) / "alignments.json"
        try:
            with open(path, "r", encoding="utf-8") as fh:
                crop = json.load(fh).get("crop") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(crop.get("coverage"), (int, float)):
            size = crop.get("size")
            return (int(size) if isinstance(size, (int, float)) else None), float(crop["coverage"]), str(path)
    return None, None, ""


class Swapper:
    """The model half of the swap: aligned crops of the source identity -> the target identity's face and mask."""

    def __init__(self, model, identity: str, device, amp: bool = True):
        import torch

        self.model, self.identity, self.device = model, identity, device
        self.autocast = device.type == "cuda" and amp
        self.pin = device.type == "cuda"
        self._torch = torch

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, R, R, 3) uint8 -> (N, R, R, 3) float32 RGB in [0, 1], (N, R, R) float32 mask."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(crops))
            if self.pin:
                x = x.pin_memory()
            x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=self.autocast):
                rgb, mask = self.model.decode(self.model.encode(x), self.identity)
            rgb = rgb.float().clamp_(0, 1).permute(0, 2, 3, 1).contiguous().cpu().numpy()
            mask = mask.float().clamp_(0, 1)[:, 0].contiguous().cpu().numpy()
        return rgb, mask


# --- the frames in flight -----------------------------------------------------------------------------------------

@dataclass
class Item:
    """One frame on its way through the pipeline."""

    index: int
    name: str
    image: np.ndarray | None
    error: str | None = None
    in_range: bool = True
    landmarks: np.ndarray | None = None  # (smoothed) target landmarks in frame pixels
    how: str | None = None  # "file" | "detected" | "interpolated" (where the landmarks came from)
    face: np.ndarray | None = None  # the colour-matched swapped face (crop, uint8) ready to paste
    mask: np.ndarray | None = None  # its crop-space mask
    matrix: np.ndarray | None = None  # frame -> crop
    out: np.ndarray | None = None
    swapped: bool = False
    poisson: bool = False


class Counter:
    """Frames alive between the reader and the writer, and the peak: the memory bound, measured."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.now += n
            self.peak = max(self.peak, self.now)


class Timings(dict):
    """Busy seconds per step, summed over the threads that run it."""

    def __init__(self):
        super().__init__({k: 0.0 for k in TIMING_KEYS})
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self[key] += seconds


_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher:
    """Iterate ``source`` in a thread into a queue of ``maxsize``; exceptions reach the consumer."""

    def __init__(self, source: Iterable, maxsize: int, timings: Timings | None = None, key: str = "decode",
                 on_item: Callable[[Any], None] | None = None):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.stop = threading.Event()
        self.source, self.timings, self.key, self.on_item = source, timings, key, on_item
        self.thread = threading.Thread(target=self._run, name="convert-reader", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self.source)
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                if self.timings is not None:
                    self.timings.add(self.key, time.perf_counter() - t0)
                if self.on_item is not None:
                    self.on_item(item)
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(_Failure(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class BackgroundSink:
    """Call ``consume(item)`` in a thread for each item put, through a queue of ``maxsize``; errors reach the producer."""

    def __init__(self, consume: Callable[[Any], None], maxsize: int):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.consume = consume
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="convert-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            try:
                self.consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                self.error = exc
                return

    def put(self, item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self.thread.is_alive() and self.error is None:
                    raise RuntimeError("the writer thread stopped")

    def finish(self) -> None:
        """Wait for every queued item to be consumed; re-raise the writer's error, if any."""
        if self.thread.is_alive():
            self.put(_END)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        if self.thread.is_alive():
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self.queue.put_nowait(_END)
            except queue.Full:
                pass
            self.thread.join(timeout=10)


# --- locating the face in each frame --------------------------------------------------------------------------------

def from_alignments(items: Iterable[Item], alignments) -> Iterator[Item]:
    """Landmarks of each frame's target from an alignments file (the smoothed ones, which its matrices use)."""
    for it in items:
        if it.in_range and it.image is not None:
            face = alignments.target_face(it.index)
            if face is not None:
                it.landmarks, it.how = np.asarray(face.landmarks_smoothed, dtype=np.float64), "file"
        yield it


def by_detection(items: Iterable[Item], locator, batch_size: int, timings: Timings, temporal: bool = True) -> Iterator[Item]:
    """Detect, pick the target and smooth its landmarks with the extract stage's own per-frame logic, a batch at a time.

    ``temporal=False`` (an image folder of unrelated photos): each frame is judged on its own.
    """
    it = iter(items)
    while True:
        batch = list(islice(it, batch_size))
        if not batch:
            return
        t0 = time.perf_counter()
        todo = [x for x in batch if x.in_range and x.image is not None]
        found = locator.detector.detect([x.image for x in todo]) if todo else []
        faces = {x.index: f for x, f in zip(todo, found)}
        for x in batch:
            usable = x.in_range and x.image is not None
            if not temporal:
                locator.reset()
            _, target, smoothed = locator.locate(x.image if usable else None, faces.get(x.index, []))
            if target is not None:
                x.landmarks, x.how = np.asarray(smoothed, dtype=np.float64), "detected"
        timings.add("detect", time.perf_counter() - t0)
        yield from batch


def fill_missed(items: Iterable[Item], max_gap: int) -> Iterator[Item]:
    """Interpolate the landmarks of frames missed between two hits (gaps of at most ``max_gap`` frames)."""
    def fill(x: Item, lm: np.ndarray) -> Item:
        x.landmarks, x.how = lm, "interpolated"
        return x

    def is_break(x: Item) -> bool:
        return not x.in_range or x.image is None

    return stream_fill(items, GapFiller(max_gap, lambda x: x.landmarks, fill), is_break)


# --- the swap itself ---------------------------------------------------------------------------------------------

class FaceBlender:
    """Mask choice and colour matching of each swapped face, holding the temporal smoothing state across frames.

    ``prepare`` runs in frame order (the smoothing depends on the previous frames); the paste-back that
    follows (``paste``) depends on nothing but its own frame, so frames can be pasted in parallel.
    """

    def __init__(self, s: ConvertSettings, resolution: int):
        self.s, self.r = s, resolution
        self.mask_ema = MaskEMA(s.mask_ema)
        self.src_ema, self.tgt_ema = StatsEMA(s.color_ema), StatsEMA(s.color_ema)

    def reset(self) -> None:
        """The track ended (no face, a cut): the next face starts its smoothing afresh."""
        self.mask_ema.reset()
        self.src_ema.reset()
        self.tgt_ema.reset()

    def prepare(self, crop: np.ndarray, face: np.ndarray, learned: np.ndarray, landmarks: np.ndarray,
                matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(colour-matched face as uint8, crop-space mask) for one frame's swapped ``face`` (float [0, 1])."""
        from faceswap.convert.blend import to_uint8
        from faceswap.extract.align import transform_points

        s = self.s
        hull = None
        if s.mask != "learned":
            hull = hull_mask(transform_points(landmarks, matrix), (self.r, self.r), forehead=s.forehead)
        m = self.mask_ema(combine_masks(s.mask, learned, hull))
        if s.color != "none":
            src = self.src_ema(color_stats(face, m, s.color))
            tgt = self.tgt_ema(color_stats(crop.astype(np.float32) / 255.0, m, s.color))
            face = apply_transfer(face, src, tgt)
        return to_uint8(face), m

    def paste(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray):
        s = self.s
        return paste_back(frame, face, mask, matrix, s.blend, s.erode, s.feather)

    def __call__(self, frame: np.ndarray, crop: np.ndarray, face: np.ndarray, learned: np.ndarray,
                 landmarks: np.ndarray, matrix: np.ndarray):
        """Prepare and paste one frame's face (sequentially): the frame with the face blended in."""
        face8, m = self.prepare(crop, face, learned, landmarks, matrix)
        return self.paste(frame, face8, m, matrix)


def aligned_crop(image: np.ndarray, landmarks: np.ndarray, resolution: int, coverage: float,
                 work_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned crop at the model's resolution and its frame -> crop matrix.

    The face is warped at ``work_size`` (the size training faces were extracted at) and area-resized,
    as training data was: a direct warp to a much smaller size would alias. Degenerate landmarks
    raise ValueError.
    """
    from faceswap.extract.align import align_face, alignment_matrix

    if work_size <= resolution:
        return align_face(image, landmarks, resolution, coverage)
    matrix = alignment_matrix(landmarks, resolution, coverage)
    big, _ = align_face(image, landmarks, work_size, coverage)
    return cv2.resize(big, (resolution, resolution), interpolation=cv2.INTER_AREA), matrix


def swap_stream(items: Iterable[Item], swapper: Swapper, blender: FaceBlender, s: ConvertSettings, coverage: float,
                work_size: int, timings: Timings) -> Iterator[Item]:
    """Batches of up to ``batch_size`` frames through the model; frames leave in order.

    A frame with a face leaves with ``face``/``mask``/``matrix`` set, ready for ``finish_frame``.
    """
    it = iter(items)
    r = blender.r
    while True:
        batch = list(islice(it, s.batch_size))
        if not batch:
            return
        # 1. Align: one crop per frame with a face.
        t0 = time.perf_counter()
        crops, mats = [], []
        for x in batch:
            if x.landmarks is None or x.image is None:
                continue
            try:
                crop, matrix = aligned_crop(x.image, x.landmarks, r, coverage, work_size)
            except ValueError:  # degenerate landmarks (all points coincide): not a usable face
                x.landmarks, x.how = None, None
                continue
            crops.append(crop)
            mats.append(matrix)
        t1 = time.perf_counter()
        timings.add("align", t1 - t0)
        # 2. Encode, decode with the other identity: one model call for the batch.
        rgb, masks = swapper(np.stack(crops)) if crops else (None, None)
        t2 = time.perf_counter()
        timings.add("model", t2 - t1)
        # 3. Mask and colour, in frame order (they are smoothed over time); a frame without a face ends the track.
        k = 0
        for x in batch:
            if x.image is None or x.landmarks is None:
                blender.reset()
                continue
            x.face, x.mask = blender.prepare(crops[k], rgb[k], masks[k], x.landmarks, mats[k])
            x.matrix = mats[k]
            k += 1
        timings.add("blend", time.perf_counter() - t2)
        yield from batch


def finish_frame(x: Item, blender: FaceBlender, timings: Timings) -> Item:
    """Paste the prepared face back into its frame (``out``); frames without one pass through."""
    if x.image is None:
        return x
    if x.face is None:
        x.out = x.image
        return x
    t0 = time.perf_counter()
    res = blender.paste(x.image, x.face, x.mask, x.matrix)
    x.out, x.swapped, x.poisson = res.frame, res.roi is not None, res.poisson
    x.face = x.mask = None
    timings.add("blend", time.perf_counter() - t0)
    return x


# --- output ---------------------------------------------------------------------------------------------------------

class ImageFolderWriter:
    """Writes frames as images into a hidden temp folder beside ``out``; ``close`` renames it onto ``out``."""

    def __init__(self, out: Path, overwrite: bool):
        self.out, self.overwrite = out, overwrite
        # What a killed run left: its temp folder, or the old output it was swapping out.
        for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in out.parent.glob(f".{glob.escape(out.name)}.trash-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
        self.frames = 0

    def write(self, name: str, frame: np.ndarray) -> None:
        from faceswap.video import write_image

        self.tmp.mkdir(parents=True, exist_ok=True)  # on the first frame: nothing is left behind before it
        write_image(self.tmp / name, frame)
        self.frames += 1

    def close(self) -> None:
        trash = None
        if self.out.exists():
            trash = self.out.parent / f".{self.out.name}.trash-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, trash)
        os.replace(self.tmp, self.out)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def summary_path(out: Path, is_video: bool) -> Path:
    return out.with_suffix(".json") if is_video else out / "convert.json"


def check_output(out: Path, input_path: Path, is_video: bool, overwrite: bool) -> None:
    if out.resolve() == input_path.resolve():
        raise UserError(f"out={out} is the input; give another path for the output")
    if is_video:
        if out.suffix.lower() not in VIDEO_OUT_EXTS:
            raise UserError(f"out={out}: a video input makes a video; give a file name ending in "
                            f"{' or '.join(VIDEO_OUT_EXTS)}")
        if out.is_dir():
            raise UserError(f"out={out} is a folder; give the output video's file name (e.g. {out / 'swapped.mp4'})")
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"out={out} is a file; an image folder input makes an image folder, give a folder path")
        try:
            out.resolve().relative_to(input_path.resolve())
            raise UserError(f"out={out} lies inside the input folder; give a folder outside it")
        except ValueError:
            pass
    if out.exists() and not overwrite and (is_video or any(out.iterdir())):
        raise UserError(f"out={out} exists; remove it, pick another name or add overwrite=true")


# --- alignments -----------------------------------------------------------------------------------------------------

def _same_input(al, input_path: Path) -> bool:
    try:
        return Path(str(al.source.get("path", ""))).resolve() == input_path.resolve()
    except OSError:
        return False


def find_alignments(setting: Any, input_path: Path):
    """The Alignments to use (or None: detect on the fly) and where they came from.

    ``none``: detect. A path: that file, or ``alignments.json`` inside that (extract output) folder.
    ``auto``: an ``alignments.json`` inside the input folder, beside the input video, or in a folder
    named like the video beside it, whose recorded source is this input.
    """
    from faceswap.extract.alignments import load_alignments

    if setting is None or str(setting).lower() in ("none", "null", "false", "detect"):
        return None, None
    if str(setting).lower() == "auto":
        candidates = [input_path / "alignments.json"] if input_path.is_dir() else \
            [input_path.parent / "alignments.json", input_path.with_suffix("") / "alignments.json"]
        for path in candidates:
            if path.is_file():
                try:
                    al = load_alignments(path)
                except UserError:
                    continue
                if _same_input(al, input_path):
                    return al, path
        return None, None
    path = Path(str(setting)).expanduser()
    if path.is_dir():
        path = path / "alignments.json"
        if not path.is_file():
            raise UserError(f"alignments={setting}: that folder holds no alignments.json; give an extract output "
                            "folder, an alignments.json, or alignments=none to detect faces on the fly")
    elif not path.is_file():
        raise UserError(f"alignments={setting} does not exist; give an extract output folder, an alignments.json, "
                        "or alignments=none to detect faces on the fly")
    return load_alignments(path), path


def check_alignments(al, path: Path, source, names: list[str]) -> None:
    """An alignments file must describe this input: same frame count, size (video) and frame names (images)."""
    src = al.source
    n = len(source)
    if len(al) != n:
        raise UserError(f"alignments file {path} lists {len(al)} frames but {source.path} has {n}; it belongs to "
                        "another input: re-run 'faceswap extract' on this input or use alignments=none")
    if source.is_video and (int(src.get("width", -1)), int(src.get("height", -1))) != (source.info.width, source.info.height):
        raise UserError(f"alignments file {path} is for {src.get('width')}x{src.get('height')} frames but "
                        f"{source.path} is {source.info.width}x{source.info.height}; it belongs to another input: "
                        "re-run 'faceswap extract' on this input or use alignments=none")
    if not source.is_video:
        bad = next((i for i, (r, nm) in enumerate(zip(al.frames, names)) if r.name != nm), None)
        if bad is not None:
            raise UserError(f"alignments file {path} names frame {bad} {al.frames[bad].name!r} but the input's image "
                            f"is {names[bad]!r}; it belongs to another folder: re-run 'faceswap extract' or use alignments=none")


# --- the stage --------------------------------------------------------------------------------------------------------

@dataclass
class ConvertResult:
    out: Path
    summary_path: Path
    summary: dict = field(default_factory=dict)


def _progress_enabled(flag: bool) -> bool:
    return bool(flag) and sys.stderr.isatty()


def convert(cfg) -> ConvertResult:
    """Run the convert stage for a composed ``convert`` config; returns the output and its summary."""
    from faceswap.config import require
    from faceswap.extract.pipeline import frame_names
    from faceswap.utils import resolve_device
    from faceswap.video import FrameSource

    t_start = time.perf_counter()
    input_path = Path(str(require(cfg, "input", "convert", "the video or image folder whose face is replaced"))).expanduser()
    ckpt_arg = require(cfg, "checkpoint", "convert", "a run folder of 'faceswap train' (or one of its step_* folders)")
    out = Path(str(require(cfg, "out", "convert", "the output video (.mp4) or, for an image folder, the output folder"))).expanduser()
    s = settings_from_config(cfg)
    weights = str(cfg.get("weights", "auto"))
    if weights not in ("auto", "ema", "model"):
        raise UserError(f"weights={weights!r} must be auto, ema or model")
    overwrite = bool(cfg.get("overwrite", False))
    for line in provenance_warnings(s):
        print(line, file=sys.stderr)

    # 1. The input, and where the output goes.
    timings = Timings()
    t0 = time.perf_counter()
    source = FrameSource(input_path)
    timings.add("decode", time.perf_counter() - t0)
    info = source.info
    check_output(out, input_path, source.is_video, overwrite)
    if source.is_video and (info.width % 2 or info.height % 2):
        raise UserError(f"input {input_path} is {info.width}x{info.height}; H.264 output needs an even width and height: "
                        "crop or pad the input first")
    if s.start >= len(source):
        raise UserError(f"start={s.start} is past the input's last frame ({len(source) - 1})")

    # 2. The model, and the crop geometry it was trained on.
    from faceswap.models import load_checkpoint

    device = resolve_device(str(cfg.get("device", "auto")))
    ckpt = load_checkpoint(str(ckpt_arg), device=device, weights=weights)
    model = ckpt.model
    identities = list(model.config.identities)
    for ident in (s.source, s.target):
        if ident not in identities:
            raise UserError(f"direction={s.direction}: the checkpoint {ckpt.path} has no identity {ident!r} "
                            f"(it has {', '.join(identities)})")
    resolution = int(model.config.resolution)
    names = frame_names(source)
    alignments, al_path = find_alignments(cfg.get("alignments", "auto"), input_path)
    if alignments is not None:
        check_alignments(alignments, al_path, source, names)
    crop_size, coverage, coverage_from = training_crop(ckpt.state)
    cov_setting = cfg.get("coverage", "auto")
    if cov_setting not in (None, "auto"):
        coverage = float(_number(cov_setting, "coverage", 0.1, 2.0))
        coverage_from = "coverage="
    elif coverage is None and alignments is not None:
        coverage, crop_size, coverage_from = alignments.coverage, alignments.size, str(al_path)
        print(f"note: checkpoint {ckpt.path} records no crop coverage; using the alignments file's ({coverage:g})",
              file=sys.stderr)
    if coverage is None:
        raise UserError(f"checkpoint {ckpt.path} records no crop coverage and its training faces are not found; give "
                        "coverage=<the extract.coverage the training faces were extracted with, e.g. 0.75>")
    if alignments is not None and not math.isclose(alignments.coverage, coverage, rel_tol=1e-6):
        print(f"note: the alignments file's coverage {alignments.coverage:g} differs from the checkpoint's {coverage:g}; "
              "faces are re-aligned from the file's landmarks at the checkpoint's coverage", file=sys.stderr)
    work_size = max(resolution, int(crop_size or resolution))

    # 3. How faces are found. An image folder is usually unrelated photos: no tracking, no gap filling.
    temporal = source.is_video
    if alignments is None:
        from faceswap.extract.pipeline import ExtractSettings, TargetLocator

        es = ExtractSettings.from_config(cfg.detect)
        locator = TargetLocator.from_settings(es, str(device), fps=info.fps)
        temporal = source.is_video if es.temporal == "auto" else es.temporal == "true"
        det_batch = int(es.detector.batch_size)
    else:
        det_batch = 0

    # 4. Provenance for this run.
    run_id = str(uuid.uuid4())
    tags: dict[str, str] = {}
    if s.metadata:
        from faceswap.provenance import provenance_metadata

        tags = provenance_metadata(run_id, {"stage": "convert", "direction": s.direction,
                                            "checkpoint_step": ckpt.step, "source_name": input_path.name})
    stamp_payload = run_id
    from faceswap.provenance.content_credentials import c2pa_signer

    sign_c2pa = c2pa_signer(cfg, run_id, s.watermark, ckpt, s.direction)  # None (and a WARNING) when turned off

    # 5. The stream: reader thread -> locate -> fill gaps -> swap -> writer thread.
    stop = len(source) if s.stop is None else min(s.stop, len(source))
    alive = Counter()
    frames_out = {"read": 0, "n": 0, "swapped": 0, "interpolated": 0, "poisson": 0, "no_face": 0, "out_of_range": 0,
                  "too_small": 0}
    unreadable: list[str] = []

    def frames() -> Iterator[Item]:
        it = iter(source)
        while True:
            try:
                f = next(it)
            except StopIteration:
                return
            except (RuntimeError, OSError) as exc:
                raise UserError(f"input {input_path} failed to decode after frame {frames_out['read']} ({exc}); "
                                "check the file or re-encode it") from None
            frames_out["read"] += 1
            yield Item(f.index, f.name, f.image, f.error, in_range=s.start <= f.index < stop)

    from faceswap.provenance import run_tag, stamp_frame

    if source.is_video:
        from faceswap.video import VideoWriter

        writer = VideoWriter(out, fps=info.fps, size=(info.width, info.height), crf=int(cfg.get("crf", 18)),
                             preset=str(cfg.get("preset", "medium")), audio_from=input_path, metadata=tags)
    else:
        writer = ImageFolderWriter(out, overwrite)

    def render(x: Item) -> tuple[Item, np.ndarray | None, bool]:
        """Paste back and stamp one frame (in a worker thread): (item, output frame or None, too small to mark)."""
        finish_frame(x, blender, timings)
        if x.image is None:
            return x, None, False
        t0 = time.perf_counter()
        frame = x.out
        mark = s.watermark and x.swapped
        too_small = mark and not watermark_fits(frame.shape)
        mark = mark and not too_small
        if s.label or mark:
            frame = stamp_frame(frame, stamp_payload, label=s.label, watermark=mark,
                                text=s.label_text, corner=s.label_corner, strength=s.watermark_strength)
        timings.add("stamp", time.perf_counter() - t0)
        return x, frame, too_small

    def consume(job) -> None:
        try:
            x, frame, too_small = job.result()
            if frame is None:
                unreadable.append(x.name)
                return
            frames_out["too_small"] += int(too_small)
            t1 = time.perf_counter()
            if source.is_video:
                writer.write(frame)
            else:
                writer.write(x.name, frame)
            timings.add("encode", time.perf_counter() - t1)
            frames_out["n"] += 1
            frames_out["swapped"] += int(x.swapped)
            frames_out["interpolated"] += int(x.swapped and x.how == "interpolated")
            frames_out["poisson"] += int(x.poisson)
            frames_out["out_of_range"] += int(not x.in_range)
            frames_out["no_face"] += int(x.in_range and not x.swapped)
        finally:
            alive.add(-1)

    swapper = Swapper(model, s.target, device, s.amp)
    blender = FaceBlender(s, resolution)
    from tqdm import tqdm

    bar = tqdm(total=len(source), unit="frame", desc="convert", disable=not _progress_enabled(cfg.get("progress", True)),
               dynamic_ncols=True)
    reader = Prefetcher(frames(), s.queue, timings, "decode", on_item=lambda _: alive.add(1))
    sink = BackgroundSink(consume, s.queue)
    # Paste-back and stamping depend only on their own frame: a few threads do them side by side (OpenCV and
    # numpy release the GIL), in order, since the writer takes the results in the order they were submitted.
    pool = ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="convert-paste")
    print(f"convert: {input_path} ({'video' if source.is_video else 'images'} {info.width}x{info.height}, "
          f"{len(source)} frames, {info.fps:g} fps{', audio' if info.has_audio else ''}) -> {out}")
    print(f"convert: checkpoint {ckpt.path} (step {ckpt.step}, {resolution} px, coverage {coverage:g} from "
          f"{coverage_from}), {s.direction} (decoder {s.target!r}), device {device}; faces "
          f"{'from ' + str(al_path) if alignments is not None else 'detected on the fly'}")
    try:
        stream: Iterable[Item] = reader
        if alignments is not None:
            stream = from_alignments(stream, alignments)
        else:
            stream = by_detection(stream, locator, det_batch, timings, temporal)
        stream = fill_missed(stream, s.max_gap if temporal else 0)
        for x in swap_stream(stream, swapper, blender, s, coverage, work_size, timings):
            sink.put(pool.submit(render, x))
            bar.update(1)
        sink.finish()
        pool.shutdown()
        bar.close()
        if source.is_video:
            if writer.frames == 0:
                raise UserError(f"no frame of {input_path} could be written")
        elif writer.frames == 0:
            raise UserError(f"no image in {input_path} could be read; nothing was written")
        wall = time.perf_counter() - t_start
        n = frames_out["n"]
        summary = {
            "schema": SUMMARY_SCHEMA, "version": SUMMARY_VERSION, "run_id": run_id,
            "input": str(input_path.resolve()), "output": str(out.resolve()),
            "kind": "video" if source.is_video else "images",
            "frames": n, "input_frames": len(source),
            # a truncated or corrupt input: the output is as short or as patched as what decoded
            "input_shortfall": info.shortfall.record() if getattr(info, "shortfall", None) else None,
            "swapped": frames_out["swapped"],
            "interpolated": frames_out["interpolated"], "passed_through": n - frames_out["swapped"],
            "no_face": frames_out["no_face"], "out_of_range": frames_out["out_of_range"],
            "unreadable": unreadable, "poisson_solved": frames_out["poisson"],
            "too_small_for_watermark": frames_out["too_small"],
            "range": [s.start, stop],
            "faces_from": str(al_path) if alignments is not None else "detection",
            "checkpoint": {"path": str(ckpt.path), "step": ckpt.step, "weights": ckpt.weights,
                           "resolution": resolution, "identities": identities},
            "coverage": coverage, "coverage_from": coverage_from, "work_size": work_size,
            "device": str(device), "size": [info.width, info.height], "fps": info.fps, "audio": info.has_audio,
            "settings": s.record(),
            "provenance": {"label": s.label, "watermark": s.watermark, "metadata": s.metadata,
                           "watermark_payload": stamp_payload if s.watermark else None,
                           "watermark_run_tag": f"{run_tag(stamp_payload):06x}" if s.watermark else None, "tags": tags,
                           "c2pa": sign_c2pa.record if sign_c2pa else None},
            "timings": {**{k: round(v, 4) for k, v in timings.items()}, "wall": round(wall, 4)},
            "frames_per_s": round(n / wall, 3) if wall > 0 else 0.0,
            "memory": {"peak_frames_in_flight": alive.peak, "bound": frames_in_flight_bound(s, det_batch)},
        }
        from omegaconf import OmegaConf

        summary["config"] = OmegaConf.to_container(cfg, resolve=True)
        spath = summary_path(out, source.is_video)
        from faceswap.config import save_config
        from faceswap.utils import write_json_atomic

        if source.is_video:
            # The video's rename is the commit point: its record is in place first, so a kill at any moment
            # leaves either no video (a re-run redoes it) or a whole one with its summary. The C2PA manifest
            # goes into the temp file before the rename (a final file always carries it), and before the
            # summary, which records the signing.
            def finish(tmp: Path) -> None:
                if sign_c2pa:
                    sign_c2pa(tmp, title=out.name, source=input_path)
                save_config(cfg, out.parent, "convert")
                write_json_atomic(spath, summary)

            try:
                writer.close(before_rename=finish)
            except BaseException:
                spath.unlink(missing_ok=True)  # no video, so no record of one
                raise
        else:
            if sign_c2pa:
                sign_c2pa(writer.tmp, source=input_path)
            write_json_atomic(writer.tmp / "convert.json", summary)
            save_config(cfg, writer.tmp, "convert")
            writer.close()
        return ConvertResult(out, spath, summary)
    except BaseException:
        reader.close()
        pool.shutdown(wait=True, cancel_futures=True)
        sink.abandon()
        bar.close()
        writer.abort()
        raise
    finally:
        reader.close()


def watermark_fits(shape: tuple[int, ...]) -> bool:
    """Whether a frame is big enough to carry the watermark (two pixels per cell of its grid)."""
    from faceswap.provenance.watermark import GRID

    return shape[0] >= 2 * GRID[0] and shape[1] >= 2 * GRID[1]


def frames_in_flight_bound(s: ConvertSettings, det_batch: int) -> int:
    """Most frames the pipeline can hold at once, whatever the video's length.

    Reader queue (+1 in the reader's hand, +1 in the consumer's), detector batch, gap buffer, model
    batch, writer queue of pending paste-back jobs (+1 being submitted, +1 being written).
    """
    return (s.queue + 2) + det_batch + (s.max_gap + 1) + s.batch_size + (s.queue + 2)


def summary_line(r: ConvertResult) -> str:
    d = r.summary
    t = d["timings"]
    split = ", ".join(f"{k} {t[k]:.1f}" for k in TIMING_KEYS if t.get(k))
    unread = f", {len(d['unreadable'])} unreadable skipped" if d["unreadable"] else ""
    short = d.get("input_shortfall")
    if short:
        unread += (f"; the input is damaged: {short['decoded']} of {short['promised']} promised frames decoded"
                   if short["promised"] else "; the input is damaged: the decoder reported corrupt data")
    return (f"convert: wrote {r.out}: {d['frames']} frames ({d['swapped']} swapped, {d['interpolated']} of them "
            f"interpolated, {d['passed_through']} passed through{unread}) in {t['wall']:.1f} s "
            f"({d['frames_per_s']:.1f} frames/s; busy s: {split}); run id {d['run_id']}; summary {r.summary_path}")


def run(cfg) -> int:
    """`faceswap convert INPUT checkpoint=RUN_DIR out=OUTPUT [direction=b_to_a] ...`: the CLI entry point."""
    result = convert(cfg)
    print(summary_line(result))
    return 0


__all__ = ["ConvertSettings", "parse_direction", "settings_from_config", "provenance_warnings", "training_crop",
           "Swapper", "Item", "FaceBlender", "aligned_crop", "swap_stream", "finish_frame", "from_alignments", "by_detection",
           "fill_missed", "find_alignments", "check_alignments", "check_output", "ImageFolderWriter", "convert",
           "ConvertResult", "summary_line", "frames_in_flight_bound", "run", "Prefetcher", "BackgroundSink"]
