"""Colour transfer of the swapped face onto the original's colours, measured inside the face mask: none, rct, mkl, hist.

Each mode splits into *statistics* of an image inside a mask (``color_stats``) and a *mapping* from
the source's statistics to the target's (``apply_transfer``), so a video can smooth the statistics
over time (``StatsEMA``) before mapping. Images are float32 RGB in [0, 1], HxWx3; masks are float
weights in [0, 1], HxW.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOR_MODES = ("none", "rct", "mkl", "hist")
HIST_BINS = 256
_EPS = 1e-6


@dataclass
class ColorStats:
    """What a mode needs to know about an image inside a mask.

    rct: ``mean``/``std`` of L*a*b* (3,). mkl: ``mean`` (3,) and ``cov`` (3, 3) of RGB. hist: ``cdf``
    (3, HIST_BINS), the per-channel cumulative distribution over HIST_BINS equal bins of [0, 1].
    """

    mode: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    cov: np.ndarray | None = None
    cdf: np.ndarray | None = None

    def blend(self, other: "ColorStats", keep: float) -> "ColorStats":
        """``keep * self + (1 - keep) * other``, field by field.

        Convex combinations stay valid: covariances stay positive semi-definite, CDFs stay monotone.
        """
        def mix(a, b):
            return None if a is None else keep * a + (1.0 - keep) * b

        return ColorStats(self.mode, mix(self.mean, other.mean), mix(self.std, other.std), mix(self.cov, other.cov),
                          mix(self.cdf, other.cdf))


def check_mode(mode: str) -> str:
    if mode not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {mode!r}")
    return mode


def _weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape[0] * shape[1], dtype=np.float64)
    w = np.asarray(mask, dtype=np.float64).reshape(-1)
    if w.size != shape[0] * shape[1]:
        raise ValueError(f"mask has {w.size} pixels but the image has {shape[0] * shape[1]}")
    return np.clip(w, 0.0, 1.0)


# sRGB (D65) <-> CIE XYZ <-> CIE L*a*b*, computed exactly in float64 (an exact inverse is what lets a known-answer
# test check that the transferred statistics land where they should; OpenCV's float path approximates the gamma).
_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
_XYZ2RGB = np.linalg.inv(_RGB2XYZ)
_WHITE = _RGB2XYZ.sum(axis=1)  # D65 white of this matrix (R = G = B = 1)
_DELTA = 6.0 / 29.0


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    a = np.abs(c)
    return np.sign(c) * np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    a = np.abs(c)
    return np.sign(c) * np.where(a <= 0.0031308, 12.92 * a, 1.055 * a ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """float RGB [0, 1] (sRGB, D65) -> CIE L*a*b* (L in [0, 100]), float64; exact inverse of ``lab_to_rgb``."""
    xyz = _srgb_to_linear(np.asarray(rgb, dtype=np.float64)) @ _RGB2XYZ.T / _WHITE
    f = np.where(xyz > _DELTA ** 3, np.cbrt(xyz), xyz / (3 * _DELTA ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0)) * _WHITE
    return _linear_to_srgb(xyz @ _XYZ2RGB.T)


def weighted_mean_std(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel weighted mean and (population) standard deviation of (N, C) samples."""
    total = max(w.sum(), _EPS)
    mean = (w[:, None] * x).sum(0) / total
    var = (w[:, None] * (x - mean) ** 2).sum(0) / total
    return mean, np.sqrt(np.maximum(var, 0.0))


def weighted_cov(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (C,) and population covariance (C, C) of (N, C) samples."""
    total = max(w.sum(), _EPS)
    mean = (w[:, None] * x).sum(0) / total
    d = x - mean
    return mean, (w[:, None] * d).T @ d / total


def channel_cdf(values: np.ndarray, w: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """Weighted cumulative distribution of values in [0, 1] at the upper edge of each of ``bins`` bins."""
    idx = np.clip((values * bins).astype(np.int64), 0, bins - 1)
    hist = np.bincount(idx, weights=w, minlength=bins)
    cdf = np.cumsum(hist)
    return cdf / max(cdf[-1], _EPS)


def color_stats(image: np.ndarray, mask: np.ndarray | None, mode: str) -> ColorStats:
    """The statistics ``mode`` maps with, of ``image`` (float RGB [0, 1]) weighted by ``mask``."""
    check_mode(mode)
    img = np.asarray(image, dtype=np.float32)
    w = _weights(mask, img.shape)
    if mode == "none":
        return ColorStats(mode)
    if mode == "rct":
        mean, std = weighted_mean_std(rgb_to_lab(img).reshape(-1, 3), w)
        return ColorStats(mode, mean=mean, std=std)
    x = img.reshape(-1, 3).astype(np.float64)
    if mode == "mkl":
        mean, cov = weighted_cov(x, w)
        return ColorStats(mode, mean=mean, cov=cov)
    # hist: a pixel is in the region when it is mostly inside the mask; soft edges would smear the CDF.
    sel = w > 0.5
    if not sel.any():
        sel = w > 0
    return ColorStats(mode, cdf=np.stack([channel_cdf(x[sel, c], np.ones(int(sel.sum()))) for c in range(3)]))


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def mkl_matrix(cov_src: np.ndarray, cov_tgt: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """The linear Monge-Kantorovich map T (symmetric) with ``T cov_src T = cov_tgt``.

    Pitie & Kokaram, "The linear Monge-Kantorovitch linear colour mapping for example-based colour
    transfer", CVMP 2007: T = S^-1/2 (S^1/2 C S^1/2)^1/2 S^-1/2 with S, C the source and target
    covariances. Of all linear maps that carry one covariance onto the other it moves colours least.
    ``eps`` regularises a flat (rank-deficient) source.
    """
    s = np.asarray(cov_src, dtype=np.float64) + eps * np.eye(3)
    c = np.asarray(cov_tgt, dtype=np.float64)
    vals, vecs = np.linalg.eigh((s + s.T) / 2)
    vals = np.clip(vals, eps, None)
    s_half = (vecs * np.sqrt(vals)) @ vecs.T
    s_inv_half = (vecs / np.sqrt(vals)) @ vecs.T
    return s_inv_half @ _sqrtm_psd(s_half @ c @ s_half) @ s_inv_half


def match_cdf(values: np.ndarray, cdf_src: np.ndarray, cdf_tgt: np.ndarray) -> np.ndarray:
    """Histogram matching of one channel: ``F_tgt^-1(F_src(v))`` with both CDFs piecewise linear over the bins.

    Linear within a bin keeps smooth gradients smooth (no banding). A flat stretch of the target CDF (bins
    with no target pixels) is skipped over, as it holds no probability.
    """
    bins = len(cdf_src)
    edges = np.arange(bins + 1, dtype=np.float64) / bins
    f_src = np.concatenate([[0.0], np.maximum.accumulate(np.asarray(cdf_src, dtype=np.float64))])
    f_tgt = np.concatenate([[0.0], np.maximum.accumulate(np.asarray(cdf_tgt, dtype=np.float64))])
    if f_tgt[-1] <= 0 or f_src[-1] <= 0:  # an empty region has no distribution to match
        return np.asarray(values, dtype=np.float64).copy()
    f_tgt /= f_tgt[-1]
    p = np.interp(values, edges, f_src / f_src[-1])
    # The target's range: from the last edge where its CDF is still 0 to the first where it reaches 1, so
    # that p = 0 and p = 1 land on its darkest and brightest values, not on an empty end of [0, 1].
    lo = int(np.flatnonzero(f_tgt <= 0.0)[-1])
    hi = int(np.flatnonzero(f_tgt >= 1.0 - 1e-12)[0])
    # np.interp's binary search needs xp non-decreasing only; inside a rising bin the inverse is exact.
    return np.interp(p, f_tgt[lo:hi + 1], edges[lo:hi + 1])


def apply_transfer(image: np.ndarray, src: ColorStats, tgt: ColorStats, clip: bool = True) -> np.ndarray:
    """Map ``image`` (float RGB [0, 1]) so that statistics ``src`` become ``tgt``; float32 RGB out.

    ``clip=False`` keeps out-of-gamut values (what the known-answer tests check); the pipeline clips.
    """
    mode = check_mode(src.mode)
    if tgt.mode != mode:
        raise ValueError(f"statistics of different modes: {src.mode} and {tgt.mode}")
    img = np.asarray(image, dtype=np.float32)
    if mode == "none":
        return img.copy()
    if mode == "rct":
        lab = rgb_to_lab(np.clip(img, 0, 1))
        scale = tgt.std / np.maximum(src.std, 1e-3)
        out = lab_to_rgb((lab - src.mean) * scale + tgt.mean).astype(np.float32)
    elif mode == "mkl":
        t = mkl_matrix(src.cov, tgt.cov)
        x = img.reshape(-1, 3).astype(np.float64)
        out = ((x - src.mean) @ t + tgt.mean).reshape(img.shape).astype(np.float32)
    else:
        out = np.empty_like(img)
        x = np.clip(img, 0, 1)
        for c in range(3):
            out[..., c] = match_cdf(x[..., c], src.cdf[c], tgt.cdf[c])
    return np.clip(out, 0.0, 1.0) if clip else out


def transfer_color(source: np.ndarray, target: np.ndarray, mask: np.ndarray | None, mode: str) -> np.ndarray:
    """``source`` recoloured so that inside ``mask`` its colour statistics match ``target``'s (one frame, no smoothing)."""
    return apply_transfer(source, color_stats(source, mask, mode), color_stats(target, mask, mode))


class StatsEMA:
    """Exponential moving average of colour statistics across frames: ``keep`` of the past, the rest new.

    ``keep=0`` is no smoothing. ``reset()`` after a shot cut or a lost face, so one person's colours
    never bleed into another's.
    """

    def __init__(self, keep: float = 0.0):
        if not 0.0 <= keep < 1.0:
            raise ValueError(f"colour EMA must be in [0, 1), got {keep}")
        self.keep = float(keep)
        self.state: ColorStats | None = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, stats: ColorStats) -> ColorStats:
        if self.keep == 0.0 or self.state is None or self.state.mode != stats.mode:
            self.state = stats
        else:
            self.state = self.state.blend(stats, self.keep)
        return self.state


__all__ = ["COLOR_MODES", "ColorStats", "check_mode", "rgb_to_lab", "lab_to_rgb", "weighted_mean_std", "weighted_cov",
           "channel_cdf", "color_stats", "mkl_matrix", "match_cdf", "apply_transfer", "transfer_color", "StatsEMA"]
