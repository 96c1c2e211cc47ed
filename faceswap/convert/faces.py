"""Convert's per-frame face work: locate the target face, encode and decode it as the other identity, blend it back."""
from __future__ import annotations

import time
from itertools import islice
from typing import Iterable, Iterator

import cv2
import numpy as np

from faceswap.convert.blend import paste_back
from faceswap.convert.color import StatsEMA, apply_transfer, color_stats
from faceswap.convert.mask import MaskEMA, combine_masks, hull_mask
from faceswap.convert.settings import ConvertSettings
from faceswap.convert.stream import Item, Timings
from faceswap.convert.temporal import GapFiller, stream_fill


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
