"""Per-identity textures of the synthetic actors, baked once: skin albedo detail, hair strands and the backdrop."""
from __future__ import annotations

import json
import zlib
from functools import lru_cache

import cv2
import numpy as np

from faceswap.synth.params import Appearance

# Skin texture: head-local (x, y) on a regular grid; sampled with cv2.remap at the ray-cast surface points.
SKIN_X0, SKIN_Y0, SKIN_STEP = -1.3, -1.9, 0.01
SKIN_SHAPE = (340, 260)  # rows (y), cols (x)
# Hair texture: head-local (x, y), finer, so single strands show at ~100 px per head unit.
HAIR_X0, HAIR_Y0, HAIR_STEP = -1.8, -2.2, 0.005
HAIR_SHAPE = (960, 720)


def appearance_seed(app: Appearance) -> int:
    """A stable seed from an appearance (Python's hash() is salted per process)."""
    return zlib.crc32(json.dumps(app.to_dict(), sort_keys=True).encode())


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Value noise: unit-variance-ish random values on a coarse grid (one per `cell` pixels), cubic-upsampled."""
    gh, gw = max(2, int(shape[0] / cell) + 2), max(2, int(shape[1] / cell) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(coarse, (int((gw - 1) * cell) + 1, int((gh - 1) * cell) + 1), interpolation=cv2.INTER_CUBIC)
    return big[: shape[0], : shape[1]]


def _grid(x0: float, y0: float, step: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys = (y0 + step * np.arange(shape[0], dtype=np.float32))[:, None]
    xs = (x0 + step * np.arange(shape[1], dtype=np.float32))[None, :]
    return np.broadcast_to(xs, shape), np.broadcast_to(ys, shape)


def _gauss(x, y, cx, cy, sx, sy):
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


@lru_cache(maxsize=16)
def skin_detail(app: Appearance) -> np.ndarray:
    """(rows, cols, 3) float32 albedo offsets from the plain skin tone: cheeks, eye sockets, pores, freckles, beard."""
    rng = np.random.default_rng(appearance_seed(app))
    x, y = _grid(SKIN_X0, SKIN_Y0, SKIN_STEP, SKIN_SHAPE)
    ax = np.abs(x)
    skin = np.array(app.skin, dtype=np.float32)
    mult = np.ones(SKIN_SHAPE + (3,), np.float32)
    blush = _gauss(ax, y, 0.42, 0.36, 0.17, 0.14)[..., None]
    mult *= 1.0 - blush * np.array([0.0, 0.09, 0.11], np.float32)
    socket = (_gauss(ax, y, 0.34, -0.01, 0.2, 0.11) + 0.6 * _gauss(ax, y, 0.2, -0.06, 0.08, 0.08))[..., None]
    mult *= 1.0 - socket * np.array([0.13, 0.17, 0.13], np.float32)
    brow_ridge = _gauss(ax, y, 0.32, -0.27, 0.22, 0.05)[..., None]
    mult *= 1.0 + 0.04 * brow_ridge
    # Lips sit in a slightly redder, darker area; the philtrum under the nose is a faint groove.
    mouth = _gauss(x, y, 0.0, 0.7, 0.32, 0.12)[..., None]
    mult *= 1.0 - mouth * np.array([0.0, 0.05, 0.05], np.float32)
    philtrum = _gauss(x, y, 0.0, 0.57, 0.035, 0.05)[..., None]
    mult *= 1.0 - 0.08 * philtrum
    mult *= 1.0 + 0.012 * smooth_noise(rng, SKIN_SHAPE, 8.0)[..., None] + 0.01 * smooth_noise(rng, SKIN_SHAPE, 2.0)[..., None]
    albedo = skin * mult
    if app.freckles > 0:
        n = int(200 * app.freckles)
        fx, fy = rng.normal(0, 0.28, n), rng.normal(0.22, 0.12, n)
        dots = np.zeros(SKIN_SHAPE, np.float32)
        for px, py in zip(fx, fy):
            cv2.circle(dots, (int((px - SKIN_X0) / SKIN_STEP), int((py - SKIN_Y0) / SKIN_STEP)), 1, 1.0, -1, cv2.LINE_AA)
        albedo *= 1.0 - 0.25 * cv2.GaussianBlur(dots, (3, 3), 0)[..., None] * np.array([0.6, 1.0, 1.2], np.float32)
    if app.beard > 0:
        # Beard line: under the nose, around the mouth, along the jaw up to the sideburns.
        edge = np.interp(ax, [0.0, 0.2, 0.32, 0.5, 0.62, 0.8], [0.52, 0.54, 0.44, 0.32, 0.1, -0.1]).astype(np.float32)
        region = np.clip((y - edge) / 0.05, 0.0, 1.0)
        grain = np.clip(0.6 + 0.4 * rng.standard_normal(SKIN_SHAPE).astype(np.float32), 0, 1)
        dens = np.clip(region * app.beard * (0.75 + 0.35 * smooth_noise(rng, SKIN_SHAPE, 4.0)), 0, 0.95) * grain
        beard_col = np.array(app.hair_color, np.float32) * 0.8
        albedo = albedo * (1 - dens[..., None]) + beard_col * dens[..., None]
    return (albedo - skin).astype(np.float32)


@lru_cache(maxsize=16)
def hair_pattern(app: Appearance) -> np.ndarray:
    """(rows, cols) float32 brightness around 1: combed strands, curls or stubble, depending on the style."""
    rng = np.random.default_rng(appearance_seed(app) + 1)
    rows, cols = HAIR_SHAPE
    if app.hair_style == "curly":
        tex = 1.0 + 0.22 * smooth_noise(rng, HAIR_SHAPE, 7.0) + 0.12 * smooth_noise(rng, HAIR_SHAPE, 3.0)
        spots = np.abs(smooth_noise(rng, HAIR_SHAPE, 5.0))
        tex += 0.18 * (spots < 0.25)
    elif app.hair_style in ("buzz", "bald"):
        tex = 1.0 + 0.25 * rng.standard_normal(HAIR_SHAPE).astype(np.float32) + 0.05 * smooth_noise(rng, HAIR_SHAPE, 20)
    else:
        # Strands run down the head: noise stretched along y, wavering slowly across x.
        strands = cv2.resize(rng.standard_normal((rows // 24, cols)).astype(np.float32), (cols, rows),
                             interpolation=cv2.INTER_CUBIC)
        clumps = cv2.resize(rng.standard_normal((rows // 60, cols // 8)).astype(np.float32), (cols, rows),
                            interpolation=cv2.INTER_CUBIC)
        tex = 1.0 + 0.16 * strands + 0.1 * clumps
    return np.clip(tex, 0.4, 1.6).astype(np.float32)


def _pattern(kind: str, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A soft, low-contrast 0..1 pattern: nothing a face detector could mistake for a face."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scale = h / 480.0
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(xx / (26 * scale) * np.pi) ** 2
    if kind == "dots":
        period = 40 * scale
        d = np.hypot((xx % period) - period / 2, (yy % period) - period / 2)
        return np.clip(1.0 - d / (9 * scale), 0, 1)
    if kind == "tiles":
        period = 64 * scale
        lines = np.minimum(np.abs((xx % period) - period / 2), np.abs((yy % period) - period / 2))
        return np.clip((lines - period / 2 + 3 * scale) / (3 * scale), 0, 1)
    if kind == "blobs":
        out = np.zeros((h, w), np.float32)
        for _ in range(14):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(30, 90) * scale
            out += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        return np.clip(out, 0, 1)
    return np.zeros((h, w), np.float32)


def backdrop(app: Appearance, width: int, height: int) -> np.ndarray:
    """The actor's set: RGB uint8, a vertical gradient with a soft pattern and a gentle vignette.

    It depends on the set's fields only, so a swapped actor on the same set stands in the very same room.
    """
    return _backdrop(tuple(app.background), tuple(app.background2), app.background_pattern, int(width), int(height))


@lru_cache(maxsize=8)
def _backdrop(c1, c2, pattern: str, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(json.dumps([c1, c2, pattern]).encode()))
    c1, c2 = np.array(c1, np.float32), np.array(c2, np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grad = (yy / max(height - 1, 1))[..., None]
    img = c1 * (1 - grad) + c2 * grad
    pat = _pattern(pattern, width, height, rng)[..., None]
    img = img * (1 - 0.12 * pat) + (c2 * 0.85) * (0.12 * pat)
    r = np.hypot((xx - width / 2) / width, (yy - height / 2) / height)[..., None]
    img *= 1.0 - 0.35 * r**2
    img += 0.012 * smooth_noise(rng, (height, width), 40.0 * height / 480)[..., None]
    out = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    out.flags.writeable = False  # shared by every frame: callers copy
    return out
