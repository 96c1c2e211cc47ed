"""Test inputs for extract: real photos moved by known similarity transforms, written as videos or image folders."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def photo(name: str) -> np.ndarray:
    """The real photos the project may use in tests, as RGB uint8."""
    from skimage import data

    if name == "astronaut":
        return data.astronaut()
    if name == "camera":
        return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)
    if name == "grace_hopper":
        import matplotlib.cbook

        from faceswap.video import read_image

        return read_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    raise KeyError(name)


def similarity(scale: float, angle_deg: float, centre: tuple[float, float], to: tuple[float, float]) -> np.ndarray:
    """2x3 matrix: rotate by ``angle_deg`` and scale about ``centre`` (photo px), then move ``centre`` to ``to``."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle_deg), float(scale))
    m[:, 2] += np.asarray(to, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
    return m


def moving_clip(img: np.ndarray, n: int, face_centre: tuple[float, float], scale: float, size=(640, 480),
                shift: float = 40.0, angle: float = 12.0, zoom: float = 0.15, noise: float = 0.0,
                seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` frames of ``img`` moved smoothly (shift px, angle deg, zoom as a fraction of ``scale``) on a
    black canvas, with the face kept near the canvas centre. Returns the frames and the photo -> frame matrices."""
    rng = np.random.default_rng(seed)
    w, h = size
    frames, mats = [], []
    for t in range(n):
        ph = 2 * np.pi * t / max(n, 2)
        m = similarity(scale * (1 + zoom * np.sin(ph)), angle * np.sin(ph + 1.0),
                       face_centre, (w / 2 + shift * np.cos(ph), h / 2 + 0.6 * shift * np.sin(2 * ph)))
        f = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if noise:
            f = np.clip(f + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8)
        frames.append(f)
        mats.append(m)
    return frames, mats


def write_images(folder: Path, frames: list[np.ndarray], ext: str = ".png") -> Path:
    from faceswap.video import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        write_image(folder / f"frame_{i:03d}{ext}", f)
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    from faceswap.video import VideoWriter

    with VideoWriter(path, fps, crf=12, preset="ultrafast") as w:
        for f in frames:
            w.write(f)
    return path


def synth_frames(n: int, seed: int = 0, width: int = 320, height: int = 240, still: bool = False,
                 second_face: bool = False, noise: float = 0.0, actor: str = "A", **options):
    """Render ``n`` frames of a built-in synthetic actor; returns the ``Render`` list (image, landmarks, mask, ...).

    ``still``: the first frame's pose held (a still head). ``second_face``: actor B stands beside, smaller and
    behind. ``noise``: Gaussian pixel noise (sigma, 0..255) so that the detector jitters on a still head.
    """
    from dataclasses import replace

    from faceswap.synth import BUILTIN_ACTORS, random_performance, render

    # drawn from a performance of at least 64 frames, so a clip's motion does not depend on its length
    perfs = random_performance(max(n, 64), seed, **options)[:n]
    if still:
        perfs = [replace(perfs[0], mouth_open=0.0, blink=0.0)] * n
    other = random_performance(max(n, 64), seed + 1000, x=(0.78, 0.86), y=(0.4, 0.5), scale=(0.3, 0.36), yaw=20,
                               roll=8)[:n] if second_face else None
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(perfs):
        extra = [(BUILTIN_ACTORS["B"], other[i])] if other else None
        r = render(BUILTIN_ACTORS[actor], p, width=width, height=height, extra=extra)
        if noise:
            r.image = np.clip(r.image + rng.normal(0, noise, r.image.shape), 0, 255).astype(np.uint8)
        out.append(r)
    return out


def write_synth_clip(folder: Path, renders, name: str = "A", fps: float = 25.0) -> Path:
    """``folder/A.mp4`` plus ``folder/A/masks/000000.png ...``, the layout ``faceswap synth`` writes."""
    from faceswap.video import write_image

    video = write_video(folder / f"{name}.mp4", [r.image for r in renders], fps)
    for i, r in enumerate(renders):
        write_image(folder / name / "masks" / f"{i:06d}.png", r.mask)
    return video
