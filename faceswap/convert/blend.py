"""Paste-back of a swapped face: inverse alignment warp into the face's region of the frame, then alpha or Poisson blend.

Only the region the crop covers (plus a margin) is touched, so the cost follows the face's size,
not the frame's.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceswap.convert.mask import refine_mask

BLEND_MODES = ("alpha", "poisson")
# A Poisson solve needs an interior: masks with fewer pixels (or a thinner box) than this are alpha-blended.
MIN_POISSON_PIXELS = 16
MIN_POISSON_SIDE = 4
# Poisson's binary region is where the feathered mask exceeds this; the feather then fades the seam.
POISSON_THRESHOLD = 0.02


def check_blend_mode(mode: str) -> str:
    if mode not in BLEND_MODES:
        raise ValueError(f"blend must be one of {', '.join(BLEND_MODES)}, got {mode!r}")
    return mode


def crop_side_px(matrix: np.ndarray, crop_size: int) -> float:
    """The crop's side length in frame pixels (the frame -> crop matrix scales by crop px per frame px)."""
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    return float(crop_size / max(np.hypot(m[0, 0], m[1, 0]), 1e-12))


def face_roi(matrix: np.ndarray, crop_size: int, frame_shape: tuple[int, ...], margin: int = 2
             ) -> tuple[int, int, int, int] | None:
    """Box (x1, y1, x2, y2; end exclusive) of the frame that the crop maps onto, plus ``margin`` px, clipped to the frame.

    None when the crop lies wholly outside the frame.
    """
    from faceswap.extract.align import paste_matrix, transform_points

    s = float(crop_size)
    corners = np.array([[-0.5, -0.5], [s - 0.5, -0.5], [s - 0.5, s - 0.5], [-0.5, s - 0.5]])
    pts = transform_points(corners, paste_matrix(matrix))
    h, w = int(frame_shape[0]), int(frame_shape[1])
    x1 = max(0, int(np.floor(pts[:, 0].min())) - margin)
    y1 = max(0, int(np.floor(pts[:, 1].min())) - margin)
    x2 = min(w, int(np.ceil(pts[:, 0].max())) + 1 + margin)
    y2 = min(h, int(np.ceil(pts[:, 1].max())) + 1 + margin)
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def shift_matrix(matrix: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """The frame -> crop matrix re-expressed for a sub-image whose top-left pixel is frame pixel (x0, y0)."""
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return m


def to_float01(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def alpha_blend(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``dst * (1 - mask) + src * mask`` on uint8 RGB images of one size (rounded); exact where the mask is 0 or 1."""
    m = np.ascontiguousarray(np.clip(mask, 0.0, 1.0), dtype=np.float32)
    # OpenCV's weighted blend runs on uint8 directly: several times faster than a float round trip in numpy.
    return cv2.blendLinear(np.ascontiguousarray(src), np.ascontiguousarray(dst), m, 1.0 - m)


def poisson_blend(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """Poisson (gradient-domain) clone of ``src`` into ``dst`` where ``mask`` > POISSON_THRESHOLD, feathered by ``mask``.

    Perez, Gangnet, Blake, "Poisson image editing", SIGGRAPH 2003: inside the region the result keeps
    the source's gradients and meets the destination at the boundary, so lighting and skin tone follow
    the frame. Same-size uint8 RGB inputs. The images are padded before cloning, so a region that
    touches the array's edge (a face at the frame border) stays put. Returns (result, True), or
    (alpha blend, False) when the region is too small to solve.
    """
    region = (np.asarray(mask) > POISSON_THRESHOLD).astype(np.uint8) * 255
    if int(np.count_nonzero(region)) < MIN_POISSON_PIXELS:
        return alpha_blend(dst, src, mask), False
    pad = 2
    # The clone solves inside the region and needs a ring of known destination around it: replicate the
    # edge outward and keep the region off the padded ring.
    dst_p = cv2.copyMakeBorder(dst, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    src_p = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    region_p = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(region_p)
    if w < MIN_POISSON_SIDE or h < MIN_POISSON_SIDE:
        return alpha_blend(dst, src, mask), False
    # seamlessClone places the centre of the region's bounding box at ``p``: this p leaves it where it is.
    centre = (x + w // 2, y + h // 2)
    try:
        cloned = cv2.seamlessClone(src_p, dst_p, region_p, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return alpha_blend(dst, src, mask), False
    cloned = cloned[pad:pad + dst.shape[0], pad:pad + dst.shape[1]]
    return alpha_blend(dst, cloned, mask), True


@dataclass
class PasteResult:
    frame: np.ndarray  # the new frame (a copy; the input is not modified)
    roi: tuple[int, int, int, int] | None  # the box that changed (x1, y1, x2, y2), None when nothing did
    mask: np.ndarray | None  # the final (eroded, feathered) mask inside roi
    poisson: bool  # whether the Poisson solve ran (False for alpha and for the alpha fallback)


def paste_back(frame: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, blend: str = "alpha",
               erode: float = 0.0, blur: float = 0.0, face_px: float | None = None) -> PasteResult:
    """Warp the crop ``face`` (RGB, uint8 or float [0, 1]) and its ``mask`` (crop-space, float [0, 1]) back
    into ``frame`` with the inverse of the frame -> crop ``matrix``, and blend them in.

    ``erode``/``blur``: erosion (negative: dilation) and Gaussian feather sigma, as fractions of
    ``face_px`` (default: the crop's side in the frame). Pixels outside the warped mask are unchanged.
    """
    check_blend_mode(blend)
    size = face.shape[0]
    if face.shape[:2] != mask.shape[:2] or face.shape[0] != face.shape[1]:
        raise ValueError(f"face {face.shape} and mask {mask.shape} must be the same square size")
    out = frame.copy()
    fpx = float(face_px) if face_px is not None else crop_side_px(matrix, size)
    # Room around the crop's box for a dilated, feathered mask to fade out (3 sigma of the Gaussian).
    margin = 2 + max(0, int(np.ceil(-erode * fpx))) + int(np.ceil(3 * max(blur, 0.0) * fpx))
    roi = face_roi(matrix, size, frame.shape, margin=margin)
    if roi is None:
        return PasteResult(out, None, None, False)
    x1, y1, x2, y2 = roi
    rw, rh = x2 - x1, y2 - y1
    inv = cv2.invertAffineTransform(shift_matrix(matrix, x1, y1))
    face8 = face if face.dtype == np.uint8 else to_uint8(face)
    warped = cv2.warpAffine(np.ascontiguousarray(face8), inv, (rw, rh), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_REPLICATE)
    m = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.float32), inv, (rw, rh), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if not np.any(m > 0.5):
        return PasteResult(out, None, None, False)
    m = refine_mask(m, fpx, erode, blur)
    dst = frame[y1:y2, x1:x2]
    src = warped
    if blend == "poisson":
        patch, solved = poisson_blend(dst, src, m)
    else:
        patch, solved = alpha_blend(dst, src, m), False
    out[y1:y2, x1:x2] = patch
    return PasteResult(out, roi, m, solved)


__all__ = ["BLEND_MODES", "check_blend_mode", "crop_side_px", "face_roi", "shift_matrix", "alpha_blend",
           "poisson_blend", "PasteResult", "paste_back"]
