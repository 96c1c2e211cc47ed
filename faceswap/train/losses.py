"""Training losses: SSIM in torch, mask-weighted reconstruction, mask loss, extra weight on eyes and mouth."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def gaussian_window(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Separable Gaussian, 'valid' region only: the same region skimage averages over.
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0,
             k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-pixel SSIM (Wang et al. 2004) of NCHW images, Gaussian-weighted, over the valid region.

    Output is (N, C, H - window + 1, W - window + 1). Computed in float32 whatever the input dtype,
    since the variance terms cancel badly in half precision.
    """
    x, y = x.float(), y.float()
    g = gaussian_window(window, sigma, x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mu_x**2
    syy = _blur(y * y, g) - mu_y**2
    sxy = _blur(x * y, g) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image, shape (N,)."""
    return ssim_map(x, y, window, sigma, data_range).mean(dim=(1, 2, 3))


def _crop_to(w: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    dh, dw = (w.shape[-2] - size[0]) // 2, (w.shape[-1] - size[1]) // 2
    return w[..., dh:dh + size[0], dw:dw + size[1]]


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (N, C, H, W) under a per-pixel ``weight`` (N, 1, H, W), over every image and channel."""
    return (values * weight).sum() / (weight.sum() * values.shape[1]).clamp_min(1e-8)


def landmark_weights(landmarks: torch.Tensor, size: int, eyes: float, mouth: float, radius: float = 0.12) -> torch.Tensor:
    """A (N, 1, size, size) map of 1 + ``eyes`` near each eye + ``mouth`` near the mouth.

    ``landmarks`` (N, 5, 2) are in crop pixels of this size; a face without landmarks (NaN) gets 1
    everywhere. ``radius`` is the Gaussian's sigma as a fraction of the size.
    """
    n = landmarks.shape[0]
    out = torch.ones(n, 1, size, size, device=landmarks.device)
    if eyes == 0 and mouth == 0:
        return out
    yy, xx = torch.meshgrid(torch.arange(size, device=landmarks.device, dtype=torch.float32),
                            torch.arange(size, device=landmarks.device, dtype=torch.float32), indexing="ij")
    sigma2 = 2 * (radius * size) ** 2
    # Mouth centre: midpoint of the two corners, which is where the lips are.
    centres = torch.stack([landmarks[:, 0], landmarks[:, 1], (landmarks[:, 3] + landmarks[:, 4]) / 2], 1).float()
    gains = torch.tensor([eyes, eyes, mouth], device=landmarks.device)
    d2 = (xx - centres[..., 0, None, None]) ** 2 + (yy - centres[..., 1, None, None]) ** 2  # (N, 3, H, W)
    blobs = torch.exp(-d2 / sigma2) * gains.view(1, 3, 1, 1)
    blobs = torch.nan_to_num(blobs, nan=0.0)
    return out + blobs.amax(1, keepdim=True)


@dataclass
class LossConfig:
    pixel: str = "l1"  # l1 | mse
    pixel_weight: float = 1.0
    ssim_weight: float = 1.0
    ssim_window: int = 11
    mask: str = "bce"  # bce | l1
    mask_weight: float = 0.5
    background_weight: float = 0.1  # reconstruction weight outside the face (1 = no masking)
    eyes_weight: float = 1.0  # extra weight near the eyes (0 = off)
    mouth_weight: float = 1.0
    region_radius: float = 0.08

    def __post_init__(self):
        if self.pixel not in ("l1", "mse"):
            raise ValueError(f"loss.pixel must be l1 or mse, got {self.pixel!r}")
        if self.mask not in ("bce", "l1"):
            raise ValueError(f"loss.mask must be bce or l1, got {self.mask!r}")


def face_loss(pred: torch.Tensor, pred_mask: torch.Tensor, target: torch.Tensor, target_mask: torch.Tensor,
              landmarks: torch.Tensor | None, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Loss terms of one identity's reconstruction; ``total`` is their weighted sum. Computed in float32."""
    # Outside autocast: BCE and SSIM's variance terms are not safe in half precision.
    with torch.autocast(device_type=pred.device.type, enabled=False):
        return _face_loss(pred, pred_mask, target, target_mask, landmarks, cfg)


def _face_loss(pred, pred_mask, target, target_mask, landmarks, cfg: LossConfig) -> dict[str, torch.Tensor]:
    pred, pred_mask, target, target_mask = pred.float(), pred_mask.float(), target.float(), target_mask.float()
    weight = cfg.background_weight + (1 - cfg.background_weight) * target_mask
    if landmarks is not None and (cfg.eyes_weight or cfg.mouth_weight):
        weight = weight * landmark_weights(landmarks, pred.shape[-1], cfg.eyes_weight, cfg.mouth_weight, cfg.region_radius)
    err = (pred - target).abs() if cfg.pixel == "l1" else (pred - target) ** 2
    terms = {"pixel": weighted_mean(err, weight)}
    if cfg.ssim_weight:
        smap = ssim_map(pred, target, window=cfg.ssim_window)
        terms["ssim"] = weighted_mean(1 - smap, _crop_to(weight, smap.shape[-2:]))
    if cfg.mask_weight:
        if cfg.mask == "bce":
            # The sigmoid output is clamped: BCE of an exactly saturated mask is infinite.
            terms["mask"] = F.binary_cross_entropy(pred_mask.clamp(1e-6, 1 - 1e-6), target_mask)
        else:
            terms["mask"] = (pred_mask - target_mask).abs().mean()
    terms["total"] = (cfg.pixel_weight * terms["pixel"] + cfg.ssim_weight * terms.get("ssim", 0.0)
                      + cfg.mask_weight * terms.get("mask", 0.0))
    return terms


__all__ = ["ssim", "ssim_map", "gaussian_window", "landmark_weights", "weighted_mean", "LossConfig", "face_loss"]
