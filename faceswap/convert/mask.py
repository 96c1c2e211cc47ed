"""The blend mask of a swapped face: learned, landmark hull or both; erosion, feathering and smoothing over time.

Masks are float32 in [0, 1]. The choice and the temporal smoothing happen in crop coordinates (the
face is pose-normalised there, so averaging over frames compares like with like); erosion and
feathering happen in frame coordinates, scaled by the face's size in the frame.
"""
from __future__ import annotations

import cv2
import numpy as np

MASK_TYPES = ("learned", "hull", "both")


def check_mask_type(kind: str) -> str:
    if kind not in MASK_TYPES:
        raise ValueError(f"mask must be one of {', '.join(MASK_TYPES)}, got {kind!r}")
    return kind


def face_outline(landmarks: np.ndarray, forehead: float = 0.8, chin: float = 0.7) -> np.ndarray:
    """Points around the face derived from its 5 landmarks (eyes, nose, mouth corners): the hull's corners.

    Five points span only eyes to mouth, so the outline adds points at rough face proportions, in the
    face's own axes (``down``: eyes to mouth, ``across``: left to right eye): the forehead ``forehead``
    eye-to-mouth distances above the eyes, the chin ``chin`` distances below the mouth, temples and
    cheeks a little outside the eyes and mouth corners. Returns (K, 2) points in the landmarks' pixels.
    """
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(p).all():
        raise ValueError("landmarks are not finite")
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    down = mouth - eyes
    d = float(np.hypot(*down))
    e = float(np.hypot(*(p[1] - p[0])))
    if d < 1e-6 or e < 1e-6:
        raise ValueError("landmarks are degenerate (eyes and mouth coincide)")
    u = down / d
    a = (p[1] - p[0]) / e  # across, left eye to right eye
    top = eyes - forehead * d * u
    bottom = mouth + chin * d * u
    pts = [
        p[0] - 0.45 * e * a, p[1] + 0.45 * e * a,  # temples, level with the eyes
        top - 0.55 * e * a, top + 0.55 * e * a, top,  # forehead
        p[3] - 0.35 * e * a + 0.25 * d * u, p[4] + 0.35 * e * a + 0.25 * d * u,  # cheeks beside the mouth
        bottom - 0.3 * e * a, bottom + 0.3 * e * a, bottom,  # chin
    ]
    return np.concatenate([p, np.array(pts)])


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int], forehead: float = 0.8, chin: float = 0.7) -> np.ndarray:
    """The filled convex hull of ``face_outline`` (float32 0/1, ``shape`` = (H, W)), anti-aliased at the edge."""
    pts = face_outline(landmarks, forehead, chin)
    hull = cv2.convexHull(pts.astype(np.float32))
    # Sub-pixel vertices (4 fractional bits) so the hull moves smoothly with the landmarks between frames.
    shift = 4
    out = np.zeros(tuple(int(v) for v in shape[:2]), dtype=np.uint8)
    cv2.fillConvexPoly(out, np.round(hull * (1 << shift)).astype(np.int32), 255, cv2.LINE_AA, shift)
    return out.astype(np.float32) / 255.0


def combine_masks(kind: str, learned: np.ndarray | None, hull: np.ndarray | None) -> np.ndarray:
    """``learned``, ``hull``, or ``both`` (their minimum: a pixel is face only where both agree)."""
    check_mask_type(kind)
    if kind == "learned":
        if learned is None:
            raise ValueError("mask=learned needs the decoder's mask")
        return np.clip(learned, 0.0, 1.0).astype(np.float32)
    if kind == "hull":
        if hull is None:
            raise ValueError("mask=hull needs landmarks")
        return hull.astype(np.float32)
    if learned is None or hull is None:
        raise ValueError("mask=both needs the decoder's mask and landmarks")
    return np.minimum(np.clip(learned, 0.0, 1.0), hull).astype(np.float32)


def erode_px(mask: np.ndarray, px: int) -> np.ndarray:
    """Binary mask (``mask > 0.5``) eroded by ``px`` pixels (negative: dilated), float32 0/1."""
    binary = (np.asarray(mask) > 0.5).astype(np.uint8)
    if px == 0:
        return binary.astype(np.float32)
    k = 2 * abs(int(px)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    # Replicate the border: where the array ends at the frame's edge, a face cut by the edge stays swapped up
    # to it (the crop's own edge is already 0 inside the array).
    op = cv2.erode if px > 0 else cv2.dilate
    out = op(binary, kernel, borderType=cv2.BORDER_REPLICATE)
    return out.astype(np.float32)


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the mask's edge with ``sigma`` px (0: unchanged)."""
    m = np.asarray(mask, dtype=np.float32)
    if sigma <= 0:
        return m.copy()
    return cv2.GaussianBlur(m, (0, 0), float(sigma), borderType=cv2.BORDER_REPLICATE)


def refine_mask(mask: np.ndarray, face_px: float, erode: float, blur: float) -> np.ndarray:
    """Erode (or dilate, ``erode`` < 0) then feather; both sizes are fractions of ``face_px``, the face's size in pixels.

    Erosion goes first so the feathered edge lies inside the face: the blend then fades to the original
    frame before the swapped crop's own border, where its background does not match.
    """
    px = int(round(erode * face_px))
    return feather(erode_px(mask, px), blur * face_px)


class MaskEMA:
    """Exponential moving average of the crop-space mask across frames (``keep``: the past's share; 0 = off)."""

    def __init__(self, keep: float = 0.0):
        if not 0.0 <= keep < 1.0:
            raise ValueError(f"mask EMA must be in [0, 1), got {keep}")
        self.keep = float(keep)
        self.state: np.ndarray | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        m = np.asarray(mask, dtype=np.float32)
        if self.keep == 0.0 or self.state is None or self.state.shape != m.shape:
            self.state = m.copy()
        else:
            self.state = self.keep * self.state + (1.0 - self.keep) * m
        return self.state.copy()


__all__ = ["MASK_TYPES", "check_mask_type", "face_outline", "hull_mask", "combine_masks", "erode_px", "feather",
           "refine_mask", "MaskEMA"]
