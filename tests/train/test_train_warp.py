"""Random warp: identity at strength 0, reproducible from a seed, stronger with strength, batched per image."""
import torch
import torch.nn.functional as F

from faceswap.train.warp import random_warp, warp_grid


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_zero_strength_grid_is_the_identity():
    x = torch.rand(2, 3, 16, 20)
    grid = warp_grid(2, 16, 20, 0.0, gen(0))
    assert torch.allclose(F.grid_sample(x, grid, align_corners=False), x, atol=1e-5)
    assert random_warp(x, 0.0, gen(0)) is x


def test_same_seed_same_warp_and_each_image_differs():
    x = torch.rand(1, 3, 32, 32).expand(4, -1, -1, -1).contiguous()
    a, b = random_warp(x, 1.0, gen(3)), random_warp(x, 1.0, gen(3))
    assert torch.equal(a, b)
    assert not torch.allclose(a, random_warp(x, 1.0, gen(4)))
    assert not torch.allclose(a[0], a[1])  # each image gets its own warp
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def mean_displacement(strength, **kw):
    ident = warp_grid(64, 32, 32, 0.0)
    return (warp_grid(64, 32, 32, strength, gen(1), **kw) - ident).abs().mean().item()


def test_displacement_grows_with_strength_and_respects_bounds():
    d = [mean_displacement(s) for s in (0.25, 0.5, 1.0)]
    assert 0 < d[0] < d[1] < d[2]
    # Pure shift: every pixel moves by the same amount, at most 2 * shift in normalised units.
    g = warp_grid(8, 16, 16, 1.0, gen(2), rotation=0, scale=0, shift=0.1, local=0)
    delta = g - warp_grid(8, 16, 16, 0.0)
    assert torch.allclose(delta, delta[:, :1, :1].expand_as(delta), atol=1e-6)
    assert delta.abs().max() <= 0.2 + 1e-6


def test_local_deformation_is_smooth():
    g = warp_grid(4, 64, 64, 1.0, gen(5), rotation=0, scale=0, shift=0, local=0.05) - warp_grid(4, 64, 64, 0.0)
    # Neighbouring pixels move almost together: no tearing.
    step = (g[:, 1:] - g[:, :-1]).abs().max().item()
    assert 0 < step < 0.02
