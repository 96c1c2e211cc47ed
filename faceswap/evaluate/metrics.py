"""Image metrics against ground truth: masked SSIM and PSNR, temporal flicker, normalised parameter errors."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

# Wang et al., "Image quality assessment: from error visibility to structural similarity", IEEE TIP 2004:
# an 11-tap Gaussian window of sigma 1.5 and these stabilising constants.
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# A perfect match has infinite PSNR; averages over frames cap each frame here so one exact frame cannot
# make the mean infinite (and JSON cannot hold infinity).
PSNR_CAP_DB = 100.0


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] HxW(xC) -> float64 [0, 1] HxWxC."""
    img = np.asarray(image)
    out = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    return out[..., None] if out.ndim == 2 else out


def to_weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A mask (uint8 0..255, bool or float 0..1, HxW) -> float weights HxW in [0, 1]; None -> all ones."""
    if mask is None:
        return np.ones(shape[:2], dtype=np.float64)
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match the image's {tuple(shape[:2])}")
    if m.dtype == np.uint8:
        return m.astype(np.float64) / 255.0
    return np.clip(m.astype(np.float64), 0.0, 1.0)


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = to_float(a), to_float(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in shape: {x.shape} vs {y.shape}")
    return x, y


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over channels and the pixels the mask weights (images scaled to [0, 1])."""
    x, y = _check_pair(a, b)
    w = to_weights(mask, x.shape)
    total = w.sum() * x.shape[2]
    if total <= 0:
        raise ValueError("the mask is empty: no pixel to compare")
    return float((w[..., None] * (x - y) ** 2).sum() / total)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(1 / MSE)`` for images in [0, 1]; ``inf`` when identical."""
    err = mse(a, b, mask)
    return math.inf if err == 0 else 10.0 * math.log10(1.0 / err)


def _masked_blur(x: np.ndarray, w: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    # Normalised convolution: a local mean over the weighted pixels only, so pixels outside the mask
    # never enter a window's statistics.
    return gaussian_filter(x * w, SSIM_SIGMA, truncate=3.5, mode="reflect") / wsum


def ssim_map(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel SSIM (mean over channels), local statistics from a Gaussian window restricted to the mask."""
    x, y = _check_pair(a, b)
    w = to_weights(mask, x.shape)
    # truncate=3.5 at sigma 1.5 gives the paper's 11-tap window.
    wsum = np.maximum(gaussian_filter(w, SSIM_SIGMA, truncate=3.5, mode="reflect"), 1e-12)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    maps = []
    for c in range(x.shape[2]):
        xc, yc = x[..., c], y[..., c]
        mx, my = _masked_blur(xc, w, wsum), _masked_blur(yc, w, wsum)
        vx = np.maximum(_masked_blur(xc * xc, w, wsum) - mx * mx, 0.0)
        vy = np.maximum(_masked_blur(yc * yc, w, wsum) - my * my, 0.0)
        cov = _masked_blur(xc * yc, w, wsum) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Structural similarity (1 = identical), averaged over the pixels the mask weights."""
    x, _ = _check_pair(a, b)
    w = to_weights(mask, x.shape)
    if w.sum() <= 0:
        raise ValueError("the mask is empty: no pixel to compare")
    return float((ssim_map(a, b, mask) * w).sum() / w.sum())


def mean_psnr(values: Iterable[float]) -> float:
    """Mean of per-frame PSNRs, each capped at ``PSNR_CAP_DB``."""
    vals = [min(float(v), PSNR_CAP_DB) for v in values]
    if not vals:
        raise ValueError("no frames to average")
    return float(np.mean(vals))


def _pair_weights(masks: Sequence[np.ndarray] | None, frames: Sequence[np.ndarray], t: int) -> np.ndarray:
    shape = to_float(frames[t]).shape
    if masks is None:
        return np.ones(shape[:2])
    # A pixel counts for a frame pair when it is face in both frames.
    return np.minimum(to_weights(masks[t - 1], shape), to_weights(masks[t], shape))


def flicker(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None = None) -> float:
    """Mean absolute change between consecutive frames inside the mask (0 for a static clip), in [0, 1] units."""
    if len(frames) < 2:
        raise ValueError("flicker needs at least two frames")
    num = den = 0.0
    for t in range(1, len(frames)):
        w = _pair_weights(masks, frames, t)
        d = np.abs(to_float(frames[t]) - to_float(frames[t - 1])).mean(axis=2)
        num += float((w * d).sum())
        den += float(w.sum())
    if den <= 0:
        raise ValueError("the masks are empty: no pixel to compare")
    return num / den


def temporal_error(frames: Sequence[np.ndarray], truth: Sequence[np.ndarray],
                   masks: Sequence[np.ndarray] | None = None) -> float:
    """Flicker of a swap against the truth: mean |(s_t - s_t-1) - (g_t - g_t-1)| inside the mask.

    0 when the swap changes from frame to frame exactly as the true swap does; a swap that jitters
    where the truth is still, or stays still where the truth moves, scores above 0.
    """
    if len(frames) != len(truth):
        raise ValueError(f"{len(frames)} swapped frames but {len(truth)} true frames")
    if len(frames) < 2:
        raise ValueError("temporal_error needs at least two frames")
    num = den = 0.0
    for t in range(1, len(frames)):
        w = _pair_weights(masks, frames, t)
        ds = to_float(frames[t]) - to_float(frames[t - 1])
        dg = to_float(truth[t]) - to_float(truth[t - 1])
        d = np.abs(ds - dg).mean(axis=2)
        num += float((w * d).sum())
        den += float(w.sum())
    if den <= 0:
        raise ValueError("the masks are empty: no pixel to compare")
    return num / den


def normalised_errors(pred: np.ndarray, true: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-parameter mean absolute error divided by that parameter's scale: (N, P) arrays -> (P,)."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2 or pred.shape[1] != scale.shape[0]:
        raise ValueError(f"shapes do not match: pred {pred.shape}, true {true.shape}, scale {scale.shape}")
    if (scale <= 0).any():
        raise ValueError("every parameter scale must be positive")
    return np.abs(pred - true).mean(axis=0) / scale


__all__ = [
    "to_float", "to_weights", "mse", "psnr", "ssim_map", "ssim", "mean_psnr", "flicker", "temporal_error",
    "normalised_errors", "PSNR_CAP_DB",
]
