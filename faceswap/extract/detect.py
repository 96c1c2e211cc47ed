"""Face detection: MTCNN (weights from the facenet-pytorch wheel), batched over frames, on the configured device."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from faceswap.errors import UserError


@dataclass(frozen=True)
class Detection:
    """One detected face: box [x1, y1, x2, y2], score in [0, 1], 5 landmarks (5, 2) in MTCNN's order."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0))

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


@dataclass
class DetectorSettings:
    min_face_size: int = 40  # px; smaller faces are missed, and each halving adds pyramid levels (slower)
    thresholds: Sequence[float] = field(default_factory=lambda: (0.6, 0.7, 0.7))  # P-, R-, O-net
    factor: float = 0.709  # image pyramid scale step
    batch_size: int = 8  # frames per detector call
    min_score: float = 0.8  # drop final detections below this
    refine: int = 5  # most landmark refinement passes on the face re-aligned to ONet's frame (0 = MTCNN's landmarks)
    track_score: float = 0.7  # keep a tracked face the detector missed when ONet scores it this high (0 = off)

    def __post_init__(self) -> None:
        t = tuple(float(x) for x in self.thresholds)
        if len(t) != 3 or not all(0 < x < 1 for x in t):
            raise UserError(f"extract.detector.thresholds must be three numbers in (0, 1), got {list(self.thresholds)}")
        self.thresholds = t
        if int(self.min_face_size) < 12:
            raise UserError(f"extract.detector.min_face_size must be >= 12 px (the detector's smallest window), got {self.min_face_size}")
        if not 0.3 <= float(self.factor) < 0.95:
            raise UserError(f"extract.detector.factor must be in [0.3, 0.95), got {self.factor}")
        if int(self.batch_size) < 1:
            raise UserError(f"extract.detector.batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= int(self.refine) <= 10:
            raise UserError(f"extract.detector.refine must be between 0 and 10 passes, got {self.refine}")
        if not 0 <= float(self.track_score) < 1:
            raise UserError(f"extract.detector.track_score must be in [0, 1) (0 turns the fallback off), got {self.track_score}")
        if not 0 <= float(self.min_score) < 1:
            raise UserError(f"extract.detector.min_score must be in [0, 1), got {self.min_score}")


# Where MTCNN's output network (ONet, 48x48 input) sees the 5 landmarks of an upright frontal face: the mean
# of its landmarks within its own (squared) detection boxes on frontal photos, made left-right symmetric.
ONET_TEMPLATE = np.array([[15.85, 16.8], [33.65, 16.8], [24.75, 27.6], [16.15, 34.3], [33.35, 34.3]])
ONET_SIZE = 48
_REFINE_UPSAMPLE = 3  # warp at 3x, then area-downsample: no aliasing on large faces


def parse_detections(boxes, probs, points, min_score: float = 0.0) -> list[Detection]:
    """One image's MTCNN output (possibly object arrays, or None when nothing was found) -> detections.

    MTCNN returns numpy object arrays for batches with keep_all; everything is cast to float here.
    """
    if boxes is None or points is None:
        return []
    b = np.asarray(np.asarray(boxes, dtype=object).tolist(), dtype=np.float64).reshape(-1, 4)
    p = np.asarray(np.asarray(probs, dtype=object).tolist(), dtype=np.float64).reshape(-1)
    lm = np.asarray(np.asarray(points, dtype=object).tolist(), dtype=np.float64).reshape(-1, 5, 2)
    out = []
    for box, score, pts in zip(b, p, lm):
        if not (np.isfinite(box).all() and np.isfinite(pts).all() and np.isfinite(score)):
            continue
        if score < min_score:
            continue
        out.append(Detection(box.copy(), float(score), pts.copy()))
    return out


class Detector:
    """MTCNN over batches of same-size RGB uint8 frames; returns per frame a list of ``Detection``."""

    def __init__(self, settings: DetectorSettings | None = None, device: str = "auto"):
        from facenet_pytorch import MTCNN

        from faceswap.utils import resolve_device

        self.settings = settings or DetectorSettings()
        self.device = resolve_device(device)
        s = self.settings
        self.model = MTCNN(keep_all=True, device=self.device, min_face_size=int(s.min_face_size),
                           thresholds=list(s.thresholds), factor=float(s.factor), select_largest=False,
                           post_process=False)
        self.model.eval()

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detect in a list of frames; frames of different sizes (an image folder) are grouped per size."""
        results: list[list[Detection] | None] = [None] * len(frames)
        by_shape: dict[tuple, list[int]] = {}
        for i, f in enumerate(frames):
            by_shape.setdefault(f.shape, []).append(i)
        bs = int(self.settings.batch_size)
        for idx in by_shape.values():
            for start in range(0, len(idx), bs):
                chunk = idx[start:start + bs]
                for i, dets in zip(chunk, self._detect_same_size([frames[i] for i in chunk])):
                    results[i] = dets
        return [r if r is not None else [] for r in results]

    def _detect_same_size(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        import torch

        batch = np.stack([np.ascontiguousarray(f, dtype=np.uint8) for f in frames])
        with torch.inference_mode():
            boxes, probs, points = self.model.detect(batch, landmarks=True)
        dets = [parse_detections(b, p, lm, self.settings.min_score) for b, p, lm in zip(boxes, probs, points)]
        if self.settings.refine:
            dets = self._refine(frames, dets)
        return dets

    def _refine(self, frames: list[np.ndarray], dets: list[list[Detection]]) -> list[list[Detection]]:
        """Re-run MTCNN's landmark network on each face warped upright to its canonical frame, and map back.

        MTCNN's landmarks carry errors that depend on the face's rotation, scale and position in the
        detection box, so they wobble as a head moves. Seen upright at a fixed scale the errors no longer
        change from frame to frame: a moving face's crops agree better, and a still face jitters less.
        """
        flat = [(i, j) for i, faces in enumerate(dets) for j in range(len(faces))]
        if not flat:
            return dets
        lms = self.refine_landmarks([frames[i] for i, _ in flat], np.stack([dets[i][j].landmarks for i, j in flat]))
        out = [list(faces) for faces in dets]
        for (i, j), lm in zip(flat, lms):
            d = dets[i][j]
            out[i][j] = Detection(d.box, d.score, lm)
        return out

    def refine_landmarks(self, frames: Sequence[np.ndarray], landmarks: np.ndarray) -> np.ndarray:
        """Up to ``settings.refine`` passes of ONet on the upright faces; (N, 5, 2) in, (N, 5, 2) out."""
        from faceswap.extract.smooth import face_scale

        lms = np.asarray(landmarks, dtype=np.float64)
        scales = np.array([max(face_scale(lm), 1.0) for lm in lms])
        for _ in range(int(self.settings.refine)):
            _, new, _ = self.onet_aligned(frames, lms)
            ok = np.isfinite(new).all(axis=(1, 2))
            step = np.where(ok, np.abs(new - lms).max(axis=(1, 2)) / scales, 0.0)
            lms = np.where(ok[:, None, None], new, lms)
            if not (step > 1e-3).any():  # converged: no point moves by 0.1% of its face's size
                break
        return lms

    def redetect(self, frame: np.ndarray, landmarks: np.ndarray) -> Detection | None:
        """Look for the face again where it was (``landmarks`` of the last frame): the tracker's fallback.

        The pyramid detector misses some faces a frame after finding them (a turned or tilted head); its
        last network, shown the region upright and at its own scale, still scores them high (about 0.9)
        while a region the face has left scores near 0. Accept when that score reaches ``track_score``.
        """
        if not self.settings.track_score:
            return None
        probs, lms, boxes = self.onet_aligned([frame], np.asarray(landmarks, dtype=np.float64)[None])
        if not (probs[0] >= self.settings.track_score and np.isfinite(lms[0]).all()):
            return None
        lm = self.refine_landmarks([frame], lms)[0] if self.settings.refine else lms[0]
        return Detection(boxes[0], float(probs[0]), lm)

    def onet_aligned(self, frames: Sequence[np.ndarray], landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ONet on each face warped so its ``landmarks`` sit on ``ONET_TEMPLATE``.

        Returns (N,) face probabilities, (N, 5, 2) landmarks and (N, 4) boxes (axis-aligned), in frame pixels.
        """
        import cv2
        import torch

        from faceswap.extract.align import paste_matrix, transform_points, umeyama

        up = _REFINE_UPSAMPLE
        big = ONET_SIZE * up
        dst = (ONET_TEMPLATE + 0.5) * up - 0.5
        crops, mats = [], []
        for frame, lm in zip(frames, landmarks):
            m = umeyama(lm, dst)[:2]
            crop = cv2.warpAffine(frame, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            crops.append(cv2.resize(crop, (ONET_SIZE, ONET_SIZE), interpolation=cv2.INTER_AREA))
            mats.append(paste_matrix(m))
        x = torch.as_tensor(np.stack(crops), device=self.device).permute(0, 3, 1, 2).float()
        x = (x - 127.5) * 0.0078125  # MTCNN's input scaling
        with torch.inference_mode():
            reg, pts, prob = (t.float().cpu().numpy() for t in self.model.onet(x))
        # ONet gives x0..x4, y0..y4 and the box offsets as fractions of its input's side.
        pts = np.stack([pts[:, :5], pts[:, 5:]], axis=-1) * ONET_SIZE * up - 0.5
        edges = np.array([0.0, 0.0, 1.0, 1.0]) + reg  # box x1, y1, x2, y2 in input sides
        lms, boxes = [], []
        for q, e, back in zip(pts, edges, mats):
            lms.append(transform_points(q, back))
            corners = np.array([[e[0], e[1]], [e[2], e[1]], [e[0], e[3]], [e[2], e[3]]]) * big - 0.5
            c = transform_points(corners, back)
            boxes.append([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
        return prob[:, 1], np.stack(lms), np.asarray(boxes, dtype=np.float64)


__all__ = ["Detection", "DetectorSettings", "ONET_TEMPLATE", "parse_detections", "Detector"]
