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
    iou_min: float = 0.3  # a face continues the track when its box overlaps the predicted target's this much
    landmark_max: float = 0.5  # ... or its landmarks lie within this many face sizes of the predicted target's
    max_gap: int = 5  # frames a lost target is waited for before the rule may pick another face (0: at once)
    rejoin_similarity: float = 0.7  # while waiting, a face this similar in appearance to the lost target rejoins
    switch_ratio: float = 1.3  # largest/central: the rule's pick takes over when this much bigger / nearer the centre (0 = never)
    reference_margin: float = 0.05  # target=reference: another face must be this much more similar to take over
    reference_min: float = 0.0  # target=reference: faces less similar than this are never the target

    def __post_init__(self) -> None:
        for name in ("iou_min", "landmark_max", "rejoin_similarity", "switch_ratio", "reference_margin", "reference_min"):
            setattr(self, name, float(getattr(self, name)))
        self.max_gap = int(self.max_gap)
        if not 0 < self.iou_min <= 1 or self.landmark_max < 0 or self.max_gap < 0:
            raise ValueError("iou_min must be in (0, 1], landmark_max and max_gap >= 0")
        if self.switch_ratio and self.switch_ratio < 1:
            raise ValueError(f"switch_ratio must be >= 1 (or 0 for never), got {self.switch_ratio}")


class TargetTracker:
    """Chooses the target face per frame and keeps it consistent over time.

    The face that continues the target's track (box overlap with, else landmark distance to, where the target
    should be now given its last motion) stays the target. When nothing continues it the target is waited for
    up to ``max_gap`` frames; a face that looks like it (``rejoin_similarity``, the appearance descriptor)
    rejoins the track, others are not given the target. Then the rule picks again. The rule also takes the
    target over when its pick is clearly better (``switch_ratio``): a track that started on a bystander while
    the main face was not found does not keep the target once the main face is back. With
    ``target=reference`` every face is compared with the reference each frame, so a tracker that jumped to
    the wrong person when two faces crossed is corrected (``reference_margin`` keeps it from flickering).
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
        self.reset()

    def reset(self) -> None:
        self.last: Detection | None = None  # the target when it was last seen
        self.velocity = np.zeros(2)  # its centre's motion per frame
        self.appearance: np.ndarray | None = None  # its descriptor when it was last seen
        self.gap = 0  # frames since it was last seen
        self.continued = False  # whether the last update's target continued the track

    # --- state, for resuming a run ---

    def state(self) -> dict:
        last = None if self.last is None else {"box": self.last.box.tolist(), "score": self.last.score,
                                                "landmarks": self.last.landmarks.tolist()}
        return {"last": last, "velocity": self.velocity.tolist(), "gap": self.gap,
                "appearance": None if self.appearance is None else self.appearance.tolist()}

    def load_state(self, state: dict | None) -> None:
        self.reset()
        if not state:
            return
        last = state.get("last")
        if last:
            self.last = Detection(np.asarray(last["box"], dtype=np.float64), float(last["score"]),
                                  np.asarray(last["landmarks"], dtype=np.float64))
        self.velocity = np.asarray(state.get("velocity") or [0.0, 0.0], dtype=np.float64)
        self.gap = int(state.get("gap", 0))
        app = state.get("appearance")
        self.appearance = None if app is None else np.asarray(app, dtype=np.float64)

    # --- matching ---

    def predicted(self) -> Detection | None:
        """Where the target should be in the coming frame (its last box and landmarks moved by its velocity)."""
        if self.last is None:
            return None
        shift = self.velocity * (self.gap + 1)
        return Detection(self.last.box + np.tile(shift, 2), self.last.score, self.last.landmarks + shift)

    def continues(self, faces: Sequence[Detection]) -> bool:
        """Whether one of ``faces`` would continue the current track (False when there is none)."""
        return bool(faces) and self._continuation(faces) is not None

    def _continuation(self, faces: Sequence[Detection]) -> int | None:
        pred = self.predicted()
        if pred is None or not faces:
            return None
        s = self.settings
        ious = [iou(pred.box, f.box) for f in faces]
        best = int(np.argmax(ious))
        if ious[best] >= s.iou_min:
            return best
        dists = [landmark_distance(pred.landmarks, f.landmarks) for f in faces]
        best = int(np.argmin(dists))
        return best if dists[best] <= s.landmark_max else None

    def _rejoin(self, frame: np.ndarray | None, faces: Sequence[Detection]) -> int | None:
        if self.appearance is None or frame is None:
            return None
        sims = [descriptor_similarity(self.appearance, face_descriptor(frame, f.landmarks)) for f in faces]
        best = int(np.argmax(sims))
        return best if sims[best] >= self.settings.rejoin_similarity else None

    def _miss(self) -> None:
        self.continued = False
        self.gap += 1
        if self.gap > self.settings.max_gap:
            self.last, self.appearance = None, None
            self.velocity = np.zeros(2)
        return None

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

    def _accept(self, frame: np.ndarray | None, face: Detection, continued: bool) -> None:
        if continued and self.last is not None:
            step = (face.centre - self.last.centre) / (self.gap + 1)
            self.velocity = 0.5 * self.velocity + 0.5 * step  # a little smoothing against detector jitter
        else:
            self.velocity = np.zeros(2)
        self.last, self.gap, self.continued = face, 0, continued
        if frame is not None:
            self.appearance = face_descriptor(frame, face.landmarks)

    def update(self, frame: np.ndarray | None, faces: Sequence[Detection]) -> int | None:
        """The target's index in ``faces`` for this frame (None when there is none)."""
        self.continued = False
        if not faces:
            return self._miss()
        pick = cont = self._continuation(faces)
        if self.rule == "reference":
            if frame is None:
                raise ValueError("target=reference needs the frame to compare faces with the reference")
            sims = [descriptor_similarity(self.reference, face_descriptor(frame, f.landmarks)) for f in faces]
            best = int(np.argmax(sims))
            if sims[best] < self.settings.reference_min:
                return self._miss()  # only other people in view: a miss for this target
            if pick is None or sims[pick] < self.settings.reference_min or sims[best] > sims[pick] + self.settings.reference_margin:
                pick = best
        else:
            shape = frame.shape if frame is not None else (0, 0)
            best = select_by_rule(faces, self.rule, shape)
            if pick is None and self.last is not None and self.gap < self.settings.max_gap:
                # The target was just lost (a fast move, a turned head, a missed detection): take back a face
                # that looks like it, and do not hand the target to whoever else is in view meanwhile.
                pick = self._rejoin(frame, faces)
                if pick is None and not self._clearly_better(faces[best], self.last, shape):
                    return self._miss()
            if pick is None or self._clearly_better(faces[best], faces[pick], shape):
                pick = best
        self._accept(frame, faces[pick], continued=cont is not None and pick == cont)
        return pick


__all__ = ["TARGET_RULES", "iou", "landmark_distance", "appearance_descriptor", "descriptor_similarity",
           "face_descriptor", "select_by_rule", "TrackerSettings", "TargetTracker"]
