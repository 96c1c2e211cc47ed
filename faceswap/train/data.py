"""Training data: faces of A and B from extract folders, masks, augmentation, a resumable infinite sampler, prefetch."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from faceswap.errors import UserError
from faceswap.video import list_images, read_image

# Flipping a face swaps left and right eye, and left and right mouth corner.
FLIP_ORDER = [1, 0, 2, 4, 3]


@dataclass
class FaceSet:
    """One identity's faces, preloaded at the model's resolution (uint8), in time order."""

    folder: Path
    names: list[str]
    faces: np.ndarray  # (N, R, R, 3) uint8 RGB
    masks: np.ndarray  # (N, R, R) uint8: the true mask where extract wrote one, else fitted to the landmarks
    landmarks: np.ndarray  # (N, 5, 2) float32 in crop pixels at resolution R; NaN where unknown
    true_masks: int  # how many masks came from masks/

    def __len__(self) -> int:
        return len(self.names)


# --- alignments -------------------------------------------------------------------------------------------

def read_crop_landmarks(path: Path) -> tuple[int, dict[str, tuple[int, np.ndarray]]]:
    """``alignments.json`` -> (crop size, {frame name: (frame index, 5 target landmarks in crop pixels)})."""
    from faceswap.extract.alignments import load_alignments

    alignments = load_alignments(path)  # validated: a bad file is a UserError naming it
    out: dict[str, tuple[int, np.ndarray]] = {}
    for i, rec in enumerate(alignments.frames):
        points = alignments.landmarks_in_crop(i)
        if points is not None:
            out[rec.name] = (int(rec.index), np.asarray(points, np.float32))
    return alignments.size, out


def crop_geometry(folder: str | Path) -> dict | None:
    """The crop size/coverage/template the faces in an extract folder were aligned with (None without alignments)."""
    from faceswap.extract.alignments import load_alignments

    path = Path(folder) / "alignments.json"
    return dict(load_alignments(path).crop) if path.is_file() else None


# --- small pure functions ---------------------------------------------------------------------------------

def scale_landmarks(points: np.ndarray, src_size: int, dst_size: int) -> np.ndarray:
    """Map pixel-centre coordinates between square sizes (origin at the first pixel's centre)."""
    s = dst_size / src_size
    return (points + 0.5) * s - 0.5


def landmark_mask(landmarks: np.ndarray, size: int, feather: float = 0.15) -> np.ndarray:
    """A soft face mask (uint8 HxW) from 5 landmarks: an ellipse over forehead to chin, feathered at the edge.

    The ellipse's proportions are rough face anthropometry: the hairline sits about 1.1 eye-to-mouth
    distances above the eyes, the chin 0.8 below the mouth, and the face is about 2.2 eye distances wide.
    ``feather`` is the soft border's width as a fraction of the ellipse's radius.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes, mouth = (pts[0] + pts[1]) / 2, (pts[3] + pts[4]) / 2
    down = mouth - eyes
    d = float(np.hypot(*down))
    e = float(np.hypot(*(pts[1] - pts[0])))
    if not np.isfinite(pts).all() or d < 1e-3 or e < 1e-3:
        raise ValueError("landmarks are degenerate (eyes and mouth coincide)")
    u = down / d  # unit vector from eyes towards mouth
    top, bottom = eyes - 1.1 * d * u, mouth + 0.8 * d * u
    centre = (top + bottom) / 2
    b = float(np.hypot(*(bottom - top))) / 2
    a = 1.1 * e
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    along = dx * u[0] + dy * u[1]  # down the face
    across = -dx * u[1] + dy * u[0]
    r = np.sqrt((across / a) ** 2 + (along / b) ** 2)
    t = np.clip((1 - r) / max(feather, 1e-6), 0, 1)
    soft = t * t * (3 - 2 * t)  # smoothstep: no hard step at the feather's edges
    return np.round(soft * 255).astype(np.uint8)


def flip_face(face: np.ndarray, mask: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror a face, its mask and its landmarks (which also swap left and right)."""
    w = face.shape[1]
    lm = landmarks[FLIP_ORDER].copy()
    lm[:, 0] = (w - 1) - lm[:, 0]
    return face[:, ::-1].copy(), mask[:, ::-1].copy(), lm


def split_by_time(n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train on the first frames, validate on the last ``val_fraction`` (neighbouring frames are near-copies,
    so a random split would validate on faces the model has practically seen)."""
    if not 0 <= val_fraction < 1:
        raise UserError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(math.ceil(n * val_fraction)) if n > 1 else 0
    n_val = min(n_val, n - 1)
    return np.arange(n - n_val), np.arange(n - n_val, n)


def _mix64(z: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: a cheap, well-mixed 64-bit hash (uint64 arithmetic wraps, as intended).
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sample_seeds(seed: int, rank: int, identity: int, positions) -> np.ndarray:
    """32-bit seeds that depend only on where each sample sits in the stream: workers and resumes agree.

    A hash rather than a seeded generator, because the sampler makes one per image in the main process.
    """
    pos = np.atleast_1d(np.asarray(positions, dtype=np.int64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        h = np.zeros_like(pos)
        for v in (seed, rank, identity):
            h = _mix64(h ^ np.uint64(int(v) & 0xFFFFFFFFFFFFFFFF))
        h = _mix64(h ^ pos)
    return (h >> np.uint64(32)).astype(np.int64)


def sample_seed(seed: int, rank: int, identity: int, position: int) -> int:
    return int(sample_seeds(seed, rank, identity, [position])[0])


# --- loading ----------------------------------------------------------------------------------------------

def load_faces(folder: str | os.PathLike, resolution: int, what: str, progress: bool = False) -> FaceSet:
    """Read an extract output folder (docs/formats.md) and resize its faces to ``resolution``."""
    folder = Path(str(folder)).expanduser()
    hint = "give a folder written by 'faceswap extract' (with faces/ and alignments.json)"
    if not folder.is_dir():
        raise UserError(f"{what}={folder} does not exist; {hint}")
    face_dir = folder / "faces"
    if not face_dir.is_dir():
        raise UserError(f"{what}={folder} has no faces/ folder; {hint}")
    files = list_images(face_dir)
    if not files:
        raise UserError(f"{what}={folder}: faces/ holds no images; run 'faceswap extract' on a video with a visible face")
    crop_size, aligned = (None, {})
    if (folder / "alignments.json").is_file():
        crop_size, aligned = read_crop_landmarks(folder / "alignments.json")
    else:
        print(f"note: {what}={folder} has no alignments.json; masks fall back to a centred ellipse and eyes/mouth "
              "get no extra weight")
    # Time order: the frame index from the alignments file, else the (zero-padded) file name.
    files.sort(key=lambda p: (aligned[p.stem][0] if p.stem in aligned else math.inf, p.stem))
    mask_dir = folder / "masks"
    n, r = len(files), int(resolution)
    faces = np.empty((n, r, r, 3), np.uint8)
    masks = np.empty((n, r, r), np.uint8)
    lms = np.full((n, 5, 2), np.nan, np.float32)
    true_masks = 0
    size = crop_size
    from tqdm import tqdm

    for i, path in enumerate(tqdm(files, desc=f"loading {what}", unit="face", disable=not progress, leave=False)):
        img = read_image(path)
        if img.shape[0] != img.shape[1]:
            raise UserError(f"face {path} is {img.shape[1]}x{img.shape[0]}, not square; re-run extract")
        if size is None:
            size = img.shape[0]
        if img.shape[0] != size:
            src = f"the alignments file's crop size {crop_size}" if crop_size else f"the first face's size {size}"
            raise UserError(f"face {path} is {img.shape[0]} px but {src}; the folder mixes extract runs, re-run extract into an empty folder")
        interp = cv2.INTER_AREA if size > r else cv2.INTER_CUBIC
        faces[i] = cv2.resize(img, (r, r), interpolation=interp) if size != r else img
        if path.stem in aligned:
            lms[i] = scale_landmarks(aligned[path.stem][1], size, r)
        mask_path = mask_dir / (path.stem + ".png")
        if mask_path.is_file():
            m = read_image(mask_path)[..., 0]
            if m.shape != img.shape[:2]:
                raise UserError(f"mask {mask_path} is {m.shape[1]}x{m.shape[0]} but its face is {size} px; re-run extract")
            masks[i] = cv2.resize(m, (r, r), interpolation=cv2.INTER_AREA) if size != r else m
            true_masks += 1
        elif np.isfinite(lms[i]).all():
            try:
                masks[i] = landmark_mask(lms[i], r)
            except ValueError:
                masks[i] = _centred_mask(r)
        else:
            masks[i] = _centred_mask(r)
    return FaceSet(folder, [p.stem for p in files], faces, masks, lms, true_masks)


def _centred_mask(size: int) -> np.ndarray:
    c = (size - 1) / 2
    pts = np.array([[c - 0.2 * size, c - 0.1 * size], [c + 0.2 * size, c - 0.1 * size], [c, c + 0.05 * size],
                    [c - 0.15 * size, c + 0.2 * size], [c + 0.15 * size, c + 0.2 * size]])
    return landmark_mask(pts, size)


# --- augmentation -----------------------------------------------------------------------------------------

class Augmenter:
    """Photometric augmentation of one face.

    Colour, brightness and contrast change input and target alike (the decoder must reproduce the input's
    light, not a mean light); blur and noise degrade the input only (the target stays sharp). The geometric
    random warp runs later, batched on the device (faceswap.train.warp).
    """

    def __init__(self, hue: float = 5, saturation: float = 15, value: float = 10, brightness: float = 0.15,
                 contrast: float = 0.15, colour_p: float = 0.8, blur_p: float = 0.1, noise_p: float = 0.1,
                 noise_std: float = 0.03):
        import albumentations as A

        self.colour = A.Compose([
            A.HueSaturationValue(hue_shift_limit=hue, sat_shift_limit=saturation, val_shift_limit=value, p=colour_p),
            A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=colour_p),
        ], seed=0)
        self.degrade = A.Compose([
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.2), p=blur_p),
            A.GaussNoise(std_range=(noise_std / 3, noise_std), p=noise_p),
        ], seed=0)

    def reseed(self, seed: int) -> None:
        # Reseeding costs more than augmenting a small face, so the loader reseeds once per batch.
        self.colour.set_random_seed(int(seed))
        self.degrade.set_random_seed(int(seed) + 1)

    def __call__(self, face: np.ndarray, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(input, target) for one face; ``seed`` reseeds first (else the sequence continues)."""
        if seed is not None:
            self.reseed(seed)
        target = self.colour(image=face)["image"]
        return self.degrade(image=target)["image"], target


class PairDataset(torch.utils.data.Dataset):
    """Item key ``((index_a, seed_a), (index_b, seed_b))`` -> one augmented face of A and one of B (uint8, HWC).

    The loader fetches whole batches (``__getitems__``): one worker makes a whole batch, reseeding the
    augmentation once from the batch's first key, so a batch depends on its keys alone, whatever the
    number of workers.
    """

    def __init__(self, sets: dict[str, FaceSet], augment: Augmenter | None, flip: float):
        self.sets, self.augment, self.flip = sets, augment, float(flip)

    def __len__(self) -> int:  # only for DataLoader bookkeeping: the sampler is infinite
        return max(len(s) for s in self.sets.values())

    def _sample(self, fs: FaceSet, index: int, seed: int) -> tuple[np.ndarray, ...]:
        face, mask, lm = fs.faces[index], fs.masks[index], fs.landmarks[index]
        if (seed & 0xFFFF) / 65536.0 < self.flip:  # the seed's low bits are uniform: a free coin
            face, mask, lm = flip_face(face, mask, lm)
        if self.augment is not None:
            inp, target = self.augment(np.ascontiguousarray(face))
        else:
            inp = target = face
        return inp, target, mask, lm

    def __getitems__(self, keys: list) -> dict[str, dict[str, np.ndarray]]:
        if self.augment is not None:
            self.augment.reseed(keys[0][0][1])
        out = {}
        for j, (name, fs) in enumerate(self.sets.items()):
            samples = [self._sample(fs, int(key[j][0]), int(key[j][1])) for key in keys]
            inp, target, mask, lm = (np.stack(x) for x in zip(*samples))
            out[name] = {"input": inp, "target": target, "mask": mask, "landmarks": lm.astype(np.float32)}
        return out

    def __getitem__(self, key) -> dict[str, dict[str, np.ndarray]]:
        batch = self.__getitems__([key])
        return {name: {k: v[0] for k, v in item.items()} for name, item in batch.items()}


def collate_batch(batch: dict) -> dict:
    """The dataset already stacked the batch (``__getitems__``): numpy -> tensors, nothing else."""
    return {name: {k: torch.from_numpy(v) for k, v in item.items()} for name, item in batch.items()}


class PairBatchSampler(torch.utils.data.Sampler):
    """Infinite batches of keys for ``PairDataset``, a pure function of (seed, rank, step).

    Each identity has its own stream: a fresh permutation of its training faces every pass, sharded across
    ranks like a DistributedSampler. Starting at ``start_step`` gives exactly the batches an uninterrupted
    run would have seen from that step on, whatever the worker count.
    """

    def __init__(self, indices: dict[str, np.ndarray], batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 start_step: int = 0):
        self.indices = {k: np.asarray(v) for k, v in indices.items()}
        self.batch_size, self.seed, self.rank, self.world = int(batch_size), int(seed), int(rank), int(world)
        self.start_step = int(start_step)
        if any(len(v) == 0 for v in self.indices.values()):
            raise UserError("no training faces left for an identity after the validation split; lower data.val_fraction")
        # A rank's share of one pass; the same every pass (fewer faces than ranks: one face each).
        self._per_epoch = [max(1, len(range(self.rank, len(v), self.world))) for v in self.indices.values()]
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def _shard(self, ident: int, epoch: int) -> np.ndarray:
        key = (ident, epoch)
        if key not in self._cache:
            idx = list(self.indices.values())[ident]
            rng = np.random.default_rng([self.seed, ident, epoch])
            perm = idx[rng.permutation(len(idx))]
            shard = perm[self.rank::self.world]
            if len(shard) == 0:  # fewer faces than ranks: every rank still gets faces
                shard = perm[self.rank % len(perm):][:1]
            # Keep the two newest passes per identity: a batch spans at most two.
            stale = sorted(k for k in self._cache if k[0] == ident)[:-1]
            for k in stale:
                del self._cache[k]
            self._cache[key] = shard
        return self._cache[key]

    def batch(self, step: int) -> list[tuple]:
        pos = step * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        columns = []
        for ident in range(len(self.indices)):
            epochs, offsets = np.divmod(pos, self._per_epoch[ident])
            idx = np.empty(len(pos), np.int64)
            for epoch in np.unique(epochs):
                sel = epochs == epoch
                idx[sel] = self._shard(ident, int(epoch))[offsets[sel]]
            columns.append(zip(idx.tolist(), sample_seeds(self.seed, self.rank, ident, pos).tolist()))
        return [tuple(item) for item in zip(*columns)]

    def __iter__(self) -> Iterator[list[tuple]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1

    def __len__(self) -> int:  # DataLoader asks; the stream never ends
        return 2**62


def make_loader(dataset: PairDataset, sampler: PairBatchSampler, workers: int, pin_memory: bool,
                prefetch: int) -> torch.utils.data.DataLoader:
    kwargs = {}
    if workers > 0:
        kwargs = {"prefetch_factor": max(1, int(prefetch)), "persistent_workers": True}
        if "fork" in torch.multiprocessing.get_all_start_methods():
            # Fork shares the preloaded face arrays with the workers instead of pickling them to each.
            kwargs["multiprocessing_context"] = "fork"
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                                       collate_fn=collate_batch, **kwargs)


def to_device(batch: dict, device: torch.device, channels_last: bool, non_blocking: bool = True) -> dict:
    """uint8 NHWC from the loader -> float NCHW in [0, 1] on the device (uint8 travels: 4x less to copy)."""
    out = {}
    for name, item in batch.items():
        d = {}
        for key in ("input", "target"):
            x = item[key].to(device, non_blocking=non_blocking).permute(0, 3, 1, 2)
            # NHWC permuted to NCHW already has channels_last strides; contiguous() makes it plain NCHW.
            x = x.float().div_(255)
            d[key] = x if channels_last else x.contiguous()
        m = item["mask"].to(device, non_blocking=non_blocking).unsqueeze(1).float().div_(255)
        d["mask"] = m
        d["landmarks"] = item["landmarks"].to(device, non_blocking=non_blocking)
        out[name] = d
    return out


class Prefetcher:
    """Keeps the next batch on its way to the device while the current step runs.

    On CUDA the host-to-device copy runs on a side stream; ``wait_s`` adds up the time the step
    waited for the loader (the share of step time spent waiting for data).
    """

    def __init__(self, loader, device: torch.device, channels_last: bool):
        self.it = iter(loader)
        self.device, self.channels_last = device, channels_last
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.wait_s = 0.0
        self._next = self._fetch()

    def _fetch(self):
        t = time.perf_counter()
        batch = next(self.it)
        self.wait_s += time.perf_counter() - t
        if self.stream is None:
            return to_device(batch, self.device, self.channels_last, non_blocking=False)
        with torch.cuda.stream(self.stream):
            return to_device(batch, self.device, self.channels_last)

    def next(self) -> dict:
        if self.stream is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.stream)
            for item in self._next.values():
                for t in item.values():
                    t.record_stream(current)  # the caching allocator must not reuse it while the step reads it
        batch = self._next
        self._next = self._fetch()
        return batch


def preview_indices(n: int, count: int) -> np.ndarray:
    """``count`` evenly spaced indices into ``n`` items (fixed faces for previews and the timelapse)."""
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


__all__ = [
    "FaceSet", "read_crop_landmarks", "scale_landmarks", "landmark_mask", "flip_face", "split_by_time", "sample_seed",
    "sample_seeds", "load_faces", "Augmenter", "PairDataset", "collate_batch", "PairBatchSampler", "make_loader", "to_device", "Prefetcher",
    "preview_indices",
]
