"""Hand-made forensic features and scores: radial spectra, blending-boundary maps, self-blending, flicker statistics, AUC."""
from __future__ import annotations

import cv2
import numpy as np

# ---------------------------------------------------------------- images


def to_gray(img: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) or float image -> float64 luma in [0, 1] (ITU-R BT.601 weights, as H.264 codes luma)."""
    x = np.asarray(img)
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    if x.ndim == 3:
        x = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
    return x


# ---------------------------------------------------------------- spectra (Durall et al. 2020)


def log_spectrum(gray: np.ndarray, window: bool = False) -> np.ndarray:
    """Centred log power spectrum ``20 log10 |F|`` of a 2-D image (DC at ``(H // 2, W // 2)``)."""
    g = np.asarray(gray, dtype=np.float64)
    if window:
        # A Hann window removes the cross that the crop's own borders put into the spectrum.
        g = g * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    f = np.fft.fftshift(np.fft.fft2(g))
    return 20.0 * np.log10(np.abs(f) + 1e-8)


def radius_map(shape: tuple[int, int]) -> np.ndarray:
    """Integer distance of every frequency from the centred DC term (the bin each coefficient falls in)."""
    h, w = shape
    y, x = np.indices((h, w))
    return np.rint(np.hypot(y - h // 2, x - w // 2)).astype(np.int64)


def azimuthal_average(image: np.ndarray, n_bins: int | None = None) -> np.ndarray:
    """Mean of ``image`` over rings of integer radius 0..n_bins-1 around the centre (``n_bins`` defaults to min(H, W)//2 + 1).

    Radii past the inscribed circle are left out: only rings that are complete in every direction count.
    """
    h, w = image.shape
    n_bins = n_bins or min(h, w) // 2 + 1
    r = radius_map((h, w)).ravel()
    keep = r < n_bins
    sums = np.bincount(r[keep], weights=image.ravel()[keep], minlength=n_bins)
    counts = np.bincount(r[keep], minlength=n_bins)
    return sums / np.maximum(counts, 1)


def spectral_profile(img: np.ndarray, n_bins: int = 48) -> np.ndarray:
    """The 1-D feature of Durall et al.: azimuthal average of the log power spectrum, min-max scaled, resampled to ``n_bins``.

    Resampling onto a fixed grid of normalised frequency (0 = DC, 1 = Nyquist) makes crops of any size comparable.
    """
    prof = azimuthal_average(log_spectrum(to_gray(img)))
    prof = (prof - prof.min()) / max(prof.max() - prof.min(), 1e-12)
    src = np.linspace(0.0, 1.0, len(prof))
    return np.interp(np.linspace(0.0, 1.0, n_bins), src, prof)


def spectral_features(crops: np.ndarray, n_bins: int = 48) -> np.ndarray:
    """``spectral_profile`` of every crop in an (N, H, W, 3) batch -> (N, n_bins) float32."""
    return np.stack([spectral_profile(c, n_bins) for c in crops]).astype(np.float32) if len(crops) else np.zeros((0, n_bins), np.float32)


def mean_log_spectrum(crops: np.ndarray) -> np.ndarray:
    """Average centred log power spectrum of a batch (for figures)."""
    return np.mean([log_spectrum(to_gray(c)) for c in crops], axis=0)


# ---------------------------------------------------------------- blending boundary (Face X-ray, Li et al. 2020)


def blending_map(mask: np.ndarray) -> np.ndarray:
    """Face X-ray target ``B = 4 M (1 - M)``: 0 where the image is wholly one source, 1 where the blend is half and half."""
    m = np.asarray(mask)
    m = m.astype(np.float32) / 255.0 if m.dtype == np.uint8 else m.astype(np.float32)
    m = np.clip(m, 0.0, 1.0)
    return 4.0 * m * (1.0 - m)


def random_feathered_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random soft face-like region in [0, 1]: a wobbly ellipse near the centre, feathered by a random Gaussian blur."""
    c = size / 2.0 + rng.uniform(-0.06, 0.06, size=2) * size
    ax = size * rng.uniform(0.22, 0.40, size=2)
    theta = rng.uniform(-0.5, 0.5)
    y, x = np.indices((size, size), dtype=np.float64)
    xr, yr = x - c[0], y - c[1]
    u = (xr * np.cos(theta) + yr * np.sin(theta)) / ax[0]
    v = (-xr * np.sin(theta) + yr * np.cos(theta)) / ax[1]
    ang = np.arctan2(v, u)
    # A few low harmonics of the angle bend the ellipse, so no two seams have the same shape.
    wobble = 1.0 + sum(rng.uniform(-0.08, 0.08) * np.cos(k * ang + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    hard = (np.hypot(u, v) <= wobble).astype(np.float32)
    sigma = size * rng.uniform(0.015, 0.07)
    soft = cv2.GaussianBlur(hard, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.clip(soft / max(float(soft.max()), 1e-6), 0.0, 1.0)


def perturb(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour-, blur- and resolution-perturbed copy of an RGB uint8 image: the 'other source' of a self-blend."""
    x = img.astype(np.float32)
    h, w = x.shape[:2]
    if rng.random() < 0.7:
        # Decoders output faces at a lower resolution than the frame: down-up sampling mimics that.
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(x, (max(4, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        x = cv2.GaussianBlur(x, (0, 0), sigmaX=rng.uniform(0.5, 1.5))
    gain = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    bias = rng.uniform(-12, 12, size=3).astype(np.float32)
    x = x * gain + bias
    if rng.random() < 0.5:
        # A sub-pixel shift and tiny scale: the pasted face never lands exactly where the old one was.
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, rng.uniform(0.97, 1.03))
        m[:, 2] += rng.uniform(-1.5, 1.5, size=2)
        x = cv2.warpAffine(x, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(x, 0, 255)


def self_blend(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Blend a perturbed copy of a real face into itself through a random feathered mask.

    Returns ``(blended uint8, mask float32 in [0, 1])``; ``blending_map(mask)`` is the Face X-ray target.
    A real face is its own training fake, so the detector never needs a swap made by our pipeline.
    """
    mask = random_feathered_mask(img.shape[0], rng) if img.shape[0] == img.shape[1] else cv2.resize(
        random_feathered_mask(max(img.shape[:2]), rng), (img.shape[1], img.shape[0]))
    src = perturb(img, rng)
    out = mask[..., None] * src + (1.0 - mask[..., None]) * img.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


# ---------------------------------------------------------------- temporal flicker


def face_rings(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the inner face disc and the outer border ring of a square crop."""
    y, x = np.indices((size, size))
    r = np.hypot(y - (size - 1) / 2, x - (size - 1) / 2) / size
    return r < 0.28, r > 0.40


FLICKER_NAMES = (
    "log_d1_inner", "log_d2_inner", "log_d2_over_d1_inner", "cv_d1_inner", "log_max_over_mean_d1_inner",
    "log_tstd_inner_over_outer", "log_d2_inner_over_outer", "log_brightness_jitter",
)


def flicker_features(clip: np.ndarray, size: int = 48) -> np.ndarray:
    """Frame-to-frame change statistics of one clip of aligned crops (T, H, W, 3) -> feature vector (len FLICKER_NAMES).

    A pasted face is decoded independently per frame, so it changes more from frame to frame than the
    head moves (second differences large relative to first differences), and more inside the face than
    around it.
    """
    t = len(clip)
    if t < 3:
        raise ValueError(f"a flicker clip needs at least 3 frames, got {t}")
    g = np.stack([cv2.resize(to_gray(c).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for c in clip])
    inner, outer = face_rings(size)
    d1 = np.abs(np.diff(g, axis=0))
    d2 = np.abs(g[2:] - 2 * g[1:-1] + g[:-2])
    eps = 1e-5
    d1_in = d1[:, inner].mean(axis=1)
    d2_in = d2[:, inner].mean(axis=1)
    d2_out = d2[:, outer].mean(axis=1)
    tstd = g.std(axis=0)
    bright = g[:, inner].mean(axis=1)
    jitter = np.abs(bright[2:] - 2 * bright[1:-1] + bright[:-2]).mean()
    return np.array([
        np.log(d1_in.mean() + eps),
        np.log(d2_in.mean() + eps),
        np.log((d2_in.mean() + eps) / (d1_in.mean() + eps)),
        d1_in.std() / (d1_in.mean() + eps),
        np.log((d1_in.max() + eps) / (d1_in.mean() + eps)),
        np.log((tstd[inner].mean() + eps) / (tstd[outer].mean() + eps)),
        np.log((d2_in.mean() + eps) / (d2_out.mean() + eps)),
        np.log(jitter + eps),
    ], dtype=np.float32)


# ---------------------------------------------------------------- scores


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random fake > score of a random real), ties counting one half.

    Computed from ranks (Mann-Whitney U); NaN when one class is missing.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # Average rank within each group of tied scores.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    for a, b in zip(starts, ends):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    tpr = np.r_[0.0, tp / max(int(y.sum()), 1)]
    fpr = np.r_[0.0, fp / max(int((~y).sum()), 1)]
    return fpr, tpr


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of samples whose ``score > threshold`` agrees with the label (1 = fake)."""
    s = np.asarray(scores).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    return float(np.mean((s > threshold) == y)) if len(s) else float("nan")


def balanced_accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of the accuracy on fakes and on reals: not fooled by a test set with more of one class."""
    s = np.asarray(scores).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if not y.any() or y.all():
        return float("nan")
    return float(0.5 * (np.mean(s[y] > threshold) + np.mean(s[~y] <= threshold)))
