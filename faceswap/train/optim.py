"""Optimisation pieces of the loop: AdamW parameter groups, the learning-rate schedule, an EMA of the weights."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


def lr_at(step: int, base_lr: float, warmup: int = 0, total: int | None = None, min_ratio: float = 0.1,
          schedule: str = "cosine") -> float:
    """Learning rate for ``step`` (0-based): linear warm-up over ``warmup`` steps, then cosine down to
    ``min_ratio * base_lr`` at ``total``; constant after warm-up when ``schedule`` is constant or ``total`` unknown.

    A pure function of the step, so a resumed run needs no scheduler state to follow the same curve.
    """
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be cosine or constant, got {schedule!r}")
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    if schedule == "constant" or not total or total <= warmup:
        return base_lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999), fused: bool | None = None):
    """AdamW with decay on weight matrices and kernels only: decaying norms' scales and biases only hurts."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), **kwargs)


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load optimizer state read from disk, laid out like the parameters it belongs to.

    Saved tensors come back contiguous while channels_last parameters are not; CUDA's fused and foreach
    AdamW kernels need a parameter, its gradient and its moments to share strides.
    """
    optimizer.load_state_dict(state)
    for param, entry in optimizer.state.items():
        for key, value in entry.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                entry[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging): smoother previews and converts."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_p = [p for p in self.module.parameters()]
        cur_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, cur_p, 1.0 - self.decay)
        for e, c in zip(self.module.buffers(), model.buffers()):
            e.copy_(c)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(tensors, strict=True)


__all__ = ["lr_at", "make_optimizer", "restore_optimizer", "EMA"]
