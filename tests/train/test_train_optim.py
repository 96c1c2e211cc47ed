"""Optimisation pieces: the learning-rate schedule, restoring optimizer state, the EMA."""
import math

import pytest
import torch

from faceswap.models.checkpoint import flatten_optimizer_state, unflatten_optimizer_state
from faceswap.train.optim import EMA, lr_at, make_optimizer, restore_optimizer


def test_warmup_then_cosine_known_values():
    assert lr_at(0, 1.0, warmup=4, total=104) == pytest.approx(0.25)
    assert lr_at(3, 1.0, warmup=4, total=104) == pytest.approx(1.0)
    assert lr_at(4, 1.0, warmup=4, total=104, min_ratio=0.1) == pytest.approx(1.0)
    # Halfway through the decay the cosine is at the mean of max and min.
    assert lr_at(54, 1.0, warmup=4, total=104, min_ratio=0.1) == pytest.approx(0.55)
    assert lr_at(104, 1.0, warmup=4, total=104, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_at(500, 1.0, warmup=4, total=104, min_ratio=0.1) == pytest.approx(0.1)
    assert lr_at(50, 2.0, warmup=4, total=None) == 2.0  # no horizon: constant after warm-up
    assert lr_at(50, 2.0, warmup=4, total=104, schedule="constant") == 2.0
    with pytest.raises(ValueError):
        lr_at(0, 1.0, schedule="step")
    assert all(not math.isnan(lr_at(s, 1.0, 0, 10)) for s in range(20))


def test_weight_decay_spares_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4))
    groups = make_optimizer(model, 1e-3, 0.1).param_groups
    assert [len(g["params"]) for g in groups] == [1, 3] and [g["weight_decay"] for g in groups] == [0.1, 0.0]


def test_restored_state_matches_channels_last_params():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
    opt = make_optimizer(model, 1e-3, 0.0)
    model(torch.rand(2, 3, 8, 8)).mean().backward()
    opt.step()
    tensors, meta = flatten_optimizer_state(opt.state_dict())  # contiguous on disk
    fresh = make_optimizer(model, 1e-3, 0.0)
    restore_optimizer(fresh, unflatten_optimizer_state(tensors, meta))
    state = fresh.state[model.weight]
    assert state["exp_avg"].stride() == model.weight.stride() == state["exp_avg_sq"].stride()
    assert torch.equal(state["exp_avg"], opt.state[model.weight]["exp_avg"])


def test_ema_follows_the_weights():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.5))
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.75))
    with pytest.raises(ValueError):
        EMA(model, 1.0)
