"""Face alignment: the 5-point template, the Umeyama similarity fit, and the warps frame -> crop and crop -> frame."""
from __future__ import annotations

import cv2
import numpy as np

# The widely used 5-point template of 112x112 face crops (ArcFace, Deng et al. 2019), in MTCNN's order:
# left eye, right eye, nose tip, left mouth corner, right mouth corner (pixel-centre coordinates).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
# The same points in the unit face square [0, 1]^2 that the 112 px crop spans (continuous coordinates).
UNIT_TEMPLATE = (ARCFACE_112 + 0.5) / 112.0


def template_points(size: int, coverage: float) -> np.ndarray:
    """The template in crop pixels (pixel-centre coordinates) for a ``size`` px crop.

    ``coverage`` is the fraction of the crop's side taken by the template's face square (the region the
    template's 112 px frame spans: brow to chin). 1.0 reproduces the ArcFace crop; smaller values zoom out
    and show more of the head (hair, ears, chin), larger values zoom in on the inner face.
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if not 0 < coverage <= 2:
        raise ValueError(f"coverage must be in (0, 2], got {coverage}")
    continuous = size * (0.5 + (UNIT_TEMPLATE - 0.5) * coverage)
    return continuous - 0.5


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform (3x3, homogeneous) mapping ``src`` points onto ``dst`` points.

    Umeyama, "Least-squares estimation of transformation parameters between two point patterns", PAMI 1991.
    The sign fix on the smallest singular direction keeps the result a rotation, never a reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[0] < 2:
        raise ValueError(f"umeyama needs two (N, D) point sets of the same shape with N >= 2, got {src.shape} and {dst.shape}")
    n, dim = src.shape
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    t = np.eye(dim + 1)
    if rank == 0:
        raise ValueError("umeyama: the source points coincide; no transform is defined")
    if rank == dim - 1:
        # Collinear points: the determinant is ~0, so pick the reflection-free solution explicitly.
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            t[:dim, :dim] = u @ vt
        else:
            sign = d[-1]
            d[-1] = -1
            t[:dim, :dim] = u @ np.diag(d) @ vt
            d[-1] = sign
    else:
        t[:dim, :dim] = u @ np.diag(d) @ vt
    scale = float(s @ d) / (src_c ** 2).sum(axis=1).mean() if estimate_scale else 1.0
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean)
    t[:dim, :dim] *= scale
    return t


def alignment_matrix(landmarks: np.ndarray, size: int, coverage: float) -> np.ndarray:
    """The 2x3 frame -> crop similarity that puts the 5 ``landmarks`` onto the template."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(pts).all():
        raise ValueError("landmarks are not finite")
    return umeyama(pts, template_points(size, coverage))[:2]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def paste_matrix(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 frame -> crop matrix: crop -> frame."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64).reshape(2, 3))


def warp_to_crop(frame: np.ndarray, matrix: np.ndarray, size: int, interpolation: int = cv2.INTER_LINEAR,
                 border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Warp ``frame`` (HxW or HxWxC) into a ``size`` x ``size`` crop with the frame -> crop ``matrix``.

    The border is replicated by default so that a face at the frame's edge gets no black wedge to learn.
    """
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    return cv2.warpAffine(frame, m, (int(size), int(size)), flags=interpolation, borderMode=border)


def warp_from_crop(crop: np.ndarray, matrix: np.ndarray, frame_shape: tuple[int, ...],
                   interpolation: int = cv2.INTER_LINEAR, border_value: float = 0) -> np.ndarray:
    """Warp a crop back into frame coordinates (``frame_shape`` = (H, W, ...)); outside the crop is ``border_value``.

    ``matrix`` is the frame -> crop matrix the crop was made with; the inverse is taken here.
    """
    h, w = int(frame_shape[0]), int(frame_shape[1])
    return cv2.warpAffine(crop, paste_matrix(matrix), (w, h), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Aligned ``size`` px crop of the face with these 5 ``landmarks``, and its 2x3 frame -> crop matrix."""
    matrix = alignment_matrix(landmarks, size, coverage)
    return warp_to_crop(frame, matrix, size), matrix


def similarity_params(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(scale, rotation in radians, tx, ty) of a 2x3 similarity matrix."""
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    return scale, float(np.arctan2(m[1, 0], m[0, 0])), float(m[0, 2]), float(m[1, 2])


__all__ = [
    "ARCFACE_112", "UNIT_TEMPLATE", "template_points", "umeyama", "alignment_matrix", "transform_points",
    "paste_matrix", "warp_to_crop", "warp_from_crop", "align_face", "similarity_params",
]
