"""Forensic data sets: aligned crops of real and swapped faces, split by time, re-encoded at several H.264 levels; toy fakes for tests."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceswap.errors import UserError

REAL, FAKE = 0, 1
# FaceForensics++ names its compression levels after the x264 CRF used to re-encode.
LEVELS = {"raw": None, "c23": 23, "c40": 40}


@dataclass
class FaceSet:
    """Aligned face crops with, per crop, its label (1 = swapped), source video, frame index and split."""

    crops: np.ndarray  # (N, S, S, 3) uint8 RGB
    labels: np.ndarray  # (N,) int
    source: np.ndarray  # (N,) str: which video the crop came from
    frame: np.ndarray  # (N,) int: frame index in that video
    split: np.ndarray = field(default=None)  # (N,) str: "train", "test" or "gap"

    def __post_init__(self):
        n = len(self.crops)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.source = np.asarray(self.source, dtype=str)
        self.frame = np.asarray(self.frame, dtype=np.int64)
        self.split = np.full(n, "", dtype="<U8") if self.split is None else np.asarray(self.split, dtype="<U8")
        if not (len(self.labels) == len(self.source) == len(self.frame) == len(self.split) == n):
            raise ValueError("FaceSet fields must all have one entry per crop")

    def __len__(self) -> int:
        return len(self.crops)

    def subset(self, keep: np.ndarray) -> "FaceSet":
        return FaceSet(self.crops[keep], self.labels[keep], self.source[keep], self.frame[keep], self.split[keep])

    def part(self, split: str) -> "FaceSet":
        return self.subset(self.split == split)

    def counts(self) -> dict:
        out = {}
        for s in ("train", "test"):
            m = self.split == s
            out[s] = {"real": int(((self.labels == REAL) & m).sum()), "fake": int(((self.labels == FAKE) & m).sum())}
        return out

    @staticmethod
    def concat(sets: list["FaceSet"]) -> "FaceSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ValueError("nothing to concatenate")
        return FaceSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in ("crops", "labels", "source", "frame", "split")))

    def save(self, path: str | Path) -> None:
        from faceswap.utils import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, crops=self.crops, labels=self.labels, source=self.source, frame=self.frame, split=self.split)

    @staticmethod
    def load(path: str | Path) -> "FaceSet":
        try:
            with np.load(path, allow_pickle=False) as z:
                return FaceSet(z["crops"], z["labels"], z["source"], z["frame"], z["split"])
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"face set {path} could not be read ({exc}); delete it to rebuild it") from None


# ---------------------------------------------------------------- splits and clips


def split_by_time(frames: np.ndarray, train_fraction: float = 0.6, gap: int = 16,
                  span: tuple[int, int] | None = None) -> np.ndarray:
    """Label frames of ONE timeline "train" (the first ``train_fraction`` of its span), "gap", or "test".

    Contiguous blocks, not random frames: neighbouring frames are near copies, so a random split would
    test on frames the detector has all but seen. ``gap`` frames after the cut are dropped for the same reason.
    ``span`` (first, last frame) fixes the cut for every video sharing the timeline; default: the frames' own range.
    """
    frames = np.asarray(frames, dtype=np.int64)
    out = np.full(len(frames), "test", dtype="<U8")
    if not len(frames):
        return out
    lo, hi = span if span is not None else (int(frames.min()), int(frames.max()))
    cut = lo + int(round(train_fraction * (hi - lo + 1)))
    out[frames < cut] = "train"
    out[(frames >= cut) & (frames < cut + gap)] = "gap"
    return out


def assign_splits(fs: FaceSet, train_fraction: float = 0.6, gap: int = 16, time_key: dict[str, str] | None = None) -> FaceSet:
    """Split every source video by time. ``time_key`` maps sources that share one timeline (B's swap and its true
    rendering) to a common key, so the same moment of B's performance never sits on both sides of the cut."""
    split = np.empty(len(fs), dtype="<U8")
    keys = np.array([(time_key or {}).get(s, s) for s in fs.source])
    for key in np.unique(keys):
        m = keys == key
        split[m] = split_by_time(fs.frame[m], train_fraction, gap)
    return FaceSet(fs.crops, fs.labels, fs.source, fs.frame, split)


def clip_windows(fs: FaceSet, window: int, stride: int) -> list[np.ndarray]:
    """Index arrays of ``window`` consecutive frames of one source and one split (no missing frame inside).

    "Consecutive" means the source's sampling step (1 when every frame was cut, n for every n-th).
    """
    out = []
    for src in np.unique(fs.source):
        for sp in np.unique(fs.split):
            idx = np.flatnonzero((fs.source == src) & (fs.split == sp))
            idx = idx[np.argsort(fs.frame[idx], kind="stable")]
            fr = fs.frame[idx]
            step = int(np.diff(fr).min()) if len(fr) > 1 else 1
            # Runs of evenly spaced frames; a frame without a face breaks the run.
            breaks = np.flatnonzero(np.diff(fr) != step) + 1
            for run in np.split(idx, breaks):
                for a in range(0, len(run) - window + 1, stride):
                    out.append(run[a:a + window])
    return out


def samples_for(unit: str, fs: FaceSet, window: int = 16, stride: int = 8):
    """What a detector of ``unit`` ("frame" or "clip") eats: (samples, labels, frame indices of each sample)."""
    if unit == "frame":
        return fs.crops, fs.labels, [np.array([i]) for i in range(len(fs))]
    wins = clip_windows(fs, window, stride)
    return [fs.crops[w] for w in wins], np.array([int(fs.labels[w[0]]) for w in wins], dtype=np.int64), wins


# ---------------------------------------------------------------- crops from the pipeline's files


def load_targets(alignments_path: str | Path) -> tuple[dict[int, np.ndarray], int]:
    """Frame index -> 2x3 frame-to-crop matrix of the target face, and the crop size, from a validated alignments.json."""
    from faceswap.extract.alignments import load_alignments

    al = load_alignments(alignments_path)
    out = {}
    for rec in al.frames:
        face = al.target_face(rec.index)
        if face is not None:
            out[int(rec.index)] = np.asarray(face.matrix, dtype=np.float64)
    return out, al.size


def rescale_matrix(matrix: np.ndarray, crop_size: int, out_size: int, margin: float) -> np.ndarray:
    """Turn a frame->crop matrix for ``crop_size`` into one for ``out_size`` that also shows ``margin`` x crop_size
    more context on every side (the paste-back seam lies at the crop's edge, so a detector needs to see past it)."""
    s = out_size / (crop_size * (1.0 + 2.0 * margin))
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] += margin * crop_size
    return m * s


def crops_from_video(video: str | Path, matrices: dict[int, np.ndarray], crop_size: int, size: int, margin: float,
                     frames: set[int] | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Warp the target face of every frame that has a matrix into a ``size`` crop; returns (crops, frame indices)."""
    from tqdm import tqdm

    from faceswap.video import read_video

    wanted = sorted(i for i in matrices if frames is None or i in frames)
    if not wanted:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64)
    crops, idx = [], []
    last = wanted[-1]
    want = set(wanted)
    bar = tqdm(total=len(wanted), desc=f"crops {Path(video).name}", leave=False, disable=not progress)
    for i, frame in enumerate(read_video(video, 0, last + 1)):
        if i in want:
            m = rescale_matrix(matrices[i], crop_size, size, margin)
            crops.append(cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
            idx.append(i)
            bar.update(1)
    bar.close()
    if not crops:
        raise UserError(f"video {video} yielded no frames that its alignments name; check that the alignments belong to it")
    return np.stack(crops), np.array(idx, dtype=np.int64)


def reencode(src: str | Path, dst: str | Path, crf: int, preset: str = "medium") -> Path:
    """Re-encode a video with H.264 at ``crf`` (video only, yuv420p), as FaceForensics++ makes its c23/c40 sets."""
    from faceswap.utils import atomic_path
    from faceswap.video import ffmpeg_exe

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise UserError(f"video {src} does not exist")
    with atomic_path(dst, suffix=".mp4") as tmp:
        proc = subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(src), "-map", "0:v:0", "-c:v", "libx264",
                               "-preset", preset, "-crf", str(int(crf)), "-pix_fmt", "yuv420p", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"video {src} could not be re-encoded ({proc.stderr.strip().splitlines()[-1:] or '?'}); check the file")
    return dst


def passthrough(src: str | Path, dst: str | Path, crf: int = 18, preset: str = "medium") -> Path:
    """Decode a video and write it again exactly as convert writes its output, without changing a pixel in between.

    A swap's frame has been H.264-encoded twice (once by whoever made the source video, once by convert);
    a real frame straight from its source only once. Passing the real videos through the same second
    encoding leaves the swapped face as the only difference, not the encoding history of the background.
    """
    from faceswap.video import VideoWriter, probe, read_video

    src, dst = Path(src), Path(dst)
    info = probe(src, count=False)
    with VideoWriter(dst, fps=info.fps, crf=int(crf), preset=preset) as writer:
        for frame in read_video(src):
            writer.write(frame)
    return dst


@dataclass
class VideoSource:
    """One video that feeds the face set: its file, the alignments that place its crops, its label and name."""

    name: str
    video: Path
    alignments: Path
    label: int
    timeline: str = ""  # sources on one timeline (B's swap and B's true rendering) are cut at the same frame
    second_encode: int | None = None  # real videos: pass through H.264 at this CRF first, as convert does to the swaps


def source_faces(src: VideoSource, size: int, margin: float, level: str = "raw", work: Path | None = None, every: int = 1,
                 train_fraction: float = 0.6, gap: int = 16, progress: bool = False) -> FaceSet:
    """Crops of one source at one compression level, split by time over its alignments' whole span.

    Re-encoded copies of the video go to ``work``; the split depends only on the alignments, so it is
    the same at every level and for every video cut from the same alignments.
    """
    base = Path(src.video)
    if (LEVELS[level] is not None or src.second_encode is not None) and work is None:
        raise ValueError("re-encoded videos need a work folder")
    if src.second_encode is not None:
        base = Path(work) / f"{src.name}_raw_crf{int(src.second_encode)}.mp4"
        if not base.is_file():
            passthrough(src.video, base, int(src.second_encode))
    video = base
    if LEVELS[level] is not None:
        tag = "" if src.second_encode is None else f"_after_crf{int(src.second_encode)}"
        video = Path(work) / f"{src.name}_{level}{tag}.mp4"
        if not video.is_file():
            reencode(base, video, LEVELS[level])
    mats, crop_size = load_targets(src.alignments)
    if not mats:
        raise UserError(f"alignments {src.alignments} hold no face; re-run 'faceswap extract' on {src.video}")
    span = (min(mats), max(mats))
    frames = {i for i in mats if i % max(1, every) == 0}
    crops, idx = crops_from_video(video, mats, crop_size, size, margin, frames, progress)
    split = split_by_time(idx, train_fraction, gap, span)
    keep = split != "gap"
    return FaceSet(crops[keep], np.full(int(keep.sum()), src.label), np.full(int(keep.sum()), src.name), idx[keep], split[keep])


# ---------------------------------------------------------------- toy data (tests and quick checks)


def _toy_face(size: int, rng: np.random.Generator, pose: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """A drawn face (skin ellipse, eyes, mouth, soft shading) on a textured background, float RGB 0..255."""
    y, x = np.indices((size, size), dtype=np.float32)
    cx, cy, light = size / 2 + pose[0], size / 2 + pose[1], pose[2]
    bg = 90 + 40 * np.sin(x / size * 3.0 + pose[3])[..., None] * np.array([1.0, 0.8, 0.6], np.float32)
    face = (((x - cx) / (0.30 * size)) ** 2 + ((y - cy) / (0.38 * size)) ** 2) < 1.0
    shade = 1.0 + light * (x - cx) / size
    img = np.where(face[..., None], skin[None, None] * shade[..., None], bg)
    for ex in (-0.11, 0.11):
        eye = (((x - cx - ex * size) / (0.05 * size)) ** 2 + ((y - cy + 0.08 * size) / (0.025 * size)) ** 2) < 1.0
        img[eye] = (40, 30, 30)
    mouth = (((x - cx) / (0.10 * size)) ** 2 + ((y - cy - 0.18 * size) / (0.02 * size)) ** 2) < 1.0
    img[mouth] = (150, 50, 60)
    return img.astype(np.float32)


def _camera(img: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    # A real camera leaves fine, frame-fresh grain everywhere; the decoder of a swap cannot reproduce it.
    return np.clip(np.rint(img + rng.normal(0, noise, img.shape)), 0, 255).astype(np.uint8)


def _toy_paste(img: np.ndarray, rng: np.random.Generator, factor: float, jitter: float) -> np.ndarray:
    """Swap-like fake: the face re-made at low resolution, colour-shifted, pasted through a feathered mask."""
    size = img.shape[0]
    small = cv2.resize(img, (int(size * factor), int(size * factor)), interpolation=cv2.INTER_AREA)
    dec = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)
    m = np.float32([[1, 0, rng.normal(0, jitter)], [0, 1, rng.normal(0, jitter)]])
    dec = cv2.warpAffine(dec, m, (size, size), borderMode=cv2.BORDER_REFLECT) * rng.uniform(0.97, 1.03)
    y, x = np.indices((size, size), dtype=np.float32)
    hard = ((((x - size / 2) / (0.33 * size)) ** 2 + ((y - size / 2) / (0.41 * size)) ** 2) < 1.0).astype(np.float32)
    mask = cv2.GaussianBlur(hard, (0, 0), sigmaX=size * 0.03)[..., None]
    return mask * dec + (1 - mask) * img


def toy_faceset(n_per_class: int, size: int = 64, seed: int = 0, clip: int = 1, noise: float = 6.0) -> FaceSet:
    """Drawn faces (real) and the same faces pasted back at low resolution (fake), in clips of ``clip`` frames.

    Within a clip the head drifts smoothly; a fake's pasted face also jitters a little per frame (flicker).
    Split: the first 60 % of clips train, the rest test.
    """
    rng = np.random.default_rng(seed)
    crops, labels, source, frame = [], [], [], []
    n_clips = max(1, n_per_class // clip)
    for label in (REAL, FAKE):
        f = 0
        for k in range(n_clips):
            skin = rng.uniform([170, 120, 100], [230, 180, 150]).astype(np.float32)
            pose = np.array([rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-0.4, 0.4), rng.uniform(0, 6)], np.float32)
            vel = rng.normal(0, 0.15, 4).astype(np.float32)
            for t in range(clip):
                img = _toy_face(size, rng, pose + t * vel, skin)
                if label == FAKE:
                    img = _toy_paste(img, rng, factor=0.5, jitter=0.6)
                crops.append(_camera(img, rng, noise))
                labels.append(label)
                source.append(f"toy_{'fake' if label else 'real'}")
                frame.append(f)
                f += 1
            f += 2  # a gap between clips, so no window spans two of them
    fs = FaceSet(np.stack(crops), np.array(labels), np.array(source), np.array(frame))
    return assign_splits(fs, 0.6, gap=0)
