"""Random warp of training inputs: batched affine jitter plus a smooth local deformation, on the batch's device."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device) * 2 - 1


def warp_grid(n: int, height: int, width: int, strength: float, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu", rotation: float = 10.0, scale: float = 0.05, shift: float = 0.05,
              local: float = 0.03, grid: int = 5) -> torch.Tensor:
    """The sampling grid (N, H, W, 2) of a random warp, in grid_sample's normalised coordinates.

    ``rotation`` is in degrees, ``scale``/``shift``/``local`` are fractions of the face size; all are
    multiplied by ``strength`` (0 gives the identity grid exactly).
    """
    device = torch.device(device)
    s = float(strength)
    angle = _uniform((n,), generator, device) * math.radians(rotation) * s
    zoom = 1 + _uniform((n,), generator, device) * scale * s
    # Normalised coordinates span 2 units across the image, so a shift of f of the size is 2f.
    trans = _uniform((n, 2), generator, device) * 2 * shift * s
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin * height / width, trans[:, 0]], 1),
                         torch.stack([sin * width / height, cos, trans[:, 1]], 1)], 1)
    base = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    # Coarse random offsets, upsampled smoothly: a local rubber-sheet deformation (the classic 5x5 warp).
    coarse = _uniform((n, 2, grid, grid), generator, device) * 2 * local * s
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    return base + fine.permute(0, 2, 3, 1)


def random_warp(batch: torch.Tensor, strength: float, generator: torch.Generator | None = None, **params) -> torch.Tensor:
    """Warp a float NCHW batch in [0, 1]; each image gets its own random warp. ``params`` go to ``warp_grid``."""
    if strength <= 0:
        return batch
    n, _, h, w = batch.shape
    grid = warp_grid(n, h, w, strength, generator, batch.device, **params).to(batch.dtype)
    # Border padding: a shifted face shows stretched edge pixels, not black bars the decoder would learn to undo.
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0, 1)


__all__ = ["random_warp", "warp_grid"]
