"""Target selection among several faces (largest, central, or like a reference photo) and keeping it over time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from faceswap.errors import UserError
from faceswap.extract.detect import Detection

TARGET_RULES = ("largest", "central", "reference")

# The descriptor looks at a small aligned crop that holds the inner face and a little around it.
DESCRIPTOR_SIZE = 48
DESCRIPTOR_COVERAGE = 0.9


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def landmark_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance between two 5-point sets, in units of the first set's face size."""
    from faceswap.extract.smooth import face_scale

    a, b = np.asarray(a, dtype=np.float64).reshape(5, 2), np.asarray(b, dtype=np.float64).reshape(5, 2)
    return float(np.linalg.norm(a - b, axis=1).mean() / max(face_scale(a), 1e-6))


# --- appearance descriptor (no learned weights) ---------------------------------------------------------------

def appearance_descriptor(aligned: np.ndarray) -> np.ndarray:
    """A cheap identity-ish descriptor of an aligned RGB face crop: a colour histogram and a tiny grayscale face.

    The histogram (hue x saturation, plus value) carries skin, hair and eye colour; the 12x12 grayscale
    thumbnail, normalised to zero mean and unit norm, carries the layout of the features and ignores
    global brightness and contrast. Both halves are unit vectors, so the cosine of two descriptors is in [-1, 1].
    """
    img = cv2.resize(aligned, (DESCRIPTOR_SIZE, DESCRIPTOR_SIZE), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hs = cv2.calcHist([hsv], [0, 1], None, [12, 4], [0, 180, 0, 256]).ravel()
    v = cv2.calcHist([hsv], [2], None, [8], [0, 256]).ravel()
    hist = np.sqrt(np.concatenate([hs, v]).astype(np.float64))  # Hellinger: the cosine of sqrt-histograms
    hist /= max(np.linalg.norm(hist), 1e-12)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    thumb = cv2.resize(gray, (12, 12), interpolation=cv2.INTER_AREA).ravel()
    thumb -= thumb.mean()
    thumb /= max(np.linalg.norm(thumb), 1e-12)
    return np.concatenate([hist, thumb]) / np.sqrt(2.0)


def descriptor_similarity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def face_descriptor(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    from faceswap.extract.align import align_face

    crop, _ = align_face(frame, landmarks, DESCRIPTOR_SIZE, DESCRIPTOR_COVERAGE)
    return appearance_descriptor(crop)


# --- selection ------------------------------------------------------------------------------------------------

def select_by_rule(faces: Sequence[Detection], rule: str, frame_shape: tuple[int, ...],
                   similarity: Callable[[int], float] | None = None) -> int | None:
    """Index of the face the rule picks (None when there is no face).

    ``largest``: biggest box. ``central``: box centre nearest the frame centre. ``reference``: the highest
    ``similarity(i)`` to the reference photo.
    """
    if not faces:
        return None
    if rule == "largest":
        return int(np.argmax([f.area for f in faces]))
    if rule == "central":
        c = np.array([frame_shape[1] / 2, frame_shape[0] / 2])
        return int(np.argmin([np.linalg.norm(f.centre - c) for f in faces]))
    if rule == "reference":
        if similarity is None:
            raise ValueError("target=reference needs a similarity function")
        return int(np.argmax([similarity(i) for i in range(len(faces))]))
    raise UserError(f"extract.target must be one of {', '.join(TARGET_RULES)}, got {rule!r}")


@dataclass
class TrackerSettings:
    iou_min: float = 0.3  # a face continues the track when its box overlaps the last target's this much
    landmark_max: float = 0.5  # ... or its landmarks lie within this many face sizes of the last target's
    max_gap: int = 0  # frames a track survives without a face (0: re-acquire by the rule after any miss)
    switch_ratio: float = 1.5  # largest/central: the rule's pick takes over when this much bigger / nearer the centre (0 = never)
    reference_margin: float = 0.05  # target=reference: another face must be this much more similar to take over
    reference_min: float = 0.0  # target=reference: faces less similar than this are never the target


class TargetTracker:
    """Chooses the target face per frame and keeps it consistent over time.

    The face that continues the previous target (box overlap, else landmark distance) stays the target; after
    a miss, or when nothing continues it, the rule picks again. The rule also takes the target over when its
    pick is clearly better (``switch_ratio``): a track that started on the only face in view, a bystander,
    does not keep the target once the main face is back. With ``target=reference`` the appearance of
    every face is compared to the reference each frame as well, so a tracker that jumped to the wrong person
    when two faces crossed is corrected (``reference_margin`` keeps it from flickering between near-ties).
    """

    def __init__(self, rule: str = "largest", settings: TrackerSettings | None = None,
                 reference: np.ndarray | None = None):
        if rule not in TARGET_RULES:
            raise UserError(f"extract.target must be one of {', '.join(TARGET_RULES)}, got {rule!r}")
        if rule == "reference" and reference is None:
            raise UserError("extract.target=reference needs extract.reference=IMAGE (a photo of the person to extract)")
        self.rule = rule
        self.settings = settings or TrackerSettings()
        self.reference = reference
        self.last: Detection | None = None
        self.gap = 0
        self.continued = False  # whether the last update's target continued the previous track

    def reset(self) -> None:
        self.last, self.gap, self.continued = None, 0, False

    def seed(self, last: Detection | None, gap: int = 0) -> None:
        """Restore the state after a resume: the last target seen and the frames missed since."""
        self.last, self.gap = last, gap

    def continues(self, faces: Sequence[Detection]) -> bool:
        """Whether one of ``faces`` would continue the current track (False when there is none)."""
        return bool(faces) and self._continuation(faces) is not None

    def _continuation(self, faces: Sequence[Detection]) -> int | None:
        if self.last is None:
            return None
        s = self.settings
        ious = [iou(self.last.box, f.box) for f in faces]
        best = int(np.argmax(ious))
        if ious[best] >= s.iou_min:
            return best
        dists = [landmark_distance(self.last.landmarks, f.landmarks) for f in faces]
        best = int(np.argmin(dists))
        return best if dists[best] <= s.landmark_max else None

    def _clearly_better(self, new: Detection, held: Detection, shape: tuple[int, ...]) -> bool:
        """Whether the rule's pick beats the tracked face by the switch margin (hysteresis against flicker)."""
        r = self.settings.switch_ratio
        if not r or new is held:
            return False
        if self.rule == "largest":
            return new.area > (r * r) * held.area  # r is a ratio of sides, areas go as its square
        c = np.array([shape[1] / 2, shape[0] / 2])
        d_new, d_held = np.linalg.norm(new.centre - c), np.linalg.norm(held.centre - c)
        return d_held > r * d_new + 0.05 * min(shape[0], shape[1])

    def update(self, frame: np.ndarray | None, faces: Sequence[Detection]) -> int | None:
        """The target's index in ``faces`` for this frame (None when there is none)."""
        self.continued = False
        if not faces:
            self.gap += 1
            if self.gap > self.settings.max_gap:
                self.last = None
            return None
        pick = cont = self._continuation(faces)
        if self.rule == "reference":
            sims = [descriptor_similarity(self.reference, face_descriptor(frame, f.landmarks)) for f in faces]
            best = int(np.argmax(sims))
            if sims[best] < self.settings.reference_min:
                return self.update(frame, [])  # only other people in view: a miss for this target
            if pick is None or sims[pick] < self.settings.reference_min or sims[best] > sims[pick] + self.settings.reference_margin:
                pick = best
        else:
            shape = frame.shape if frame is not None else (0, 0)
            best = select_by_rule(faces, self.rule, shape)
            if pick is None or self._clearly_better(faces[best], faces[pick], shape):
                pick = best
        self.last, self.gap, self.continued = faces[pick], 0, pick == cont and cont is not None
        return pick


__all__ = ["TARGET_RULES", "iou", "landmark_distance", "appearance_descriptor", "descriptor_similarity",
           "face_descriptor", "select_by_rule", "TrackerSettings", "TargetTracker"]
