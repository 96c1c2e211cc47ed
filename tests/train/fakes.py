"""Tiny fake extract output folders (docs/formats.md): coloured ellipse faces, masks, an alignments file."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

# Landmarks of a frontal face in a 64 px crop (left eye, right eye, nose, mouth left, mouth right).
TEMPLATE_64 = np.array([[22.0, 26.0], [42.0, 26.0], [32.0, 36.0], [24.0, 46.0], [40.0, 46.0]])


def draw_face(size: int, skin: tuple[int, int, int], dx: float, dy: float, mouth_open: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A drawn face (RGB uint8), its mask (uint8) and its 5 landmarks in crop pixels."""
    s = size / 64
    lm = (TEMPLATE_64 + [dx, dy]) * s
    img = np.full((size, size, 3), (40, 60, 90), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    centre = (int(round((32 + dx) * s)), int(round((36 + dy) * s)))
    axes = (int(20 * s), int(27 * s))
    cv2.ellipse(img, centre, axes, 0, 0, 360, skin, -1)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    for x, y in lm[:2]:
        cv2.circle(img, (int(round(x)), int(round(y))), max(1, int(3 * s)), (20, 20, 20), -1)
    cv2.circle(img, (int(round(lm[2, 0])), int(round(lm[2, 1]))), max(1, int(2 * s)), tuple(int(c * 0.8) for c in skin), -1)
    mx, my = lm[3:].mean(0)
    cv2.ellipse(img, (int(round(mx)), int(round(my))), (int(8 * s), max(1, int(mouth_open * s))), 0, 0, 360, (150, 30, 40), -1)
    return img, mask, lm


def make_extract_folder(root: Path, n: int = 16, size: int = 64, skin=(220, 180, 150), seed: int = 0,
                        masks: bool = True, alignments: bool = True) -> Path:
    """Write ``root/faces``, ``root/masks`` and ``root/alignments.json`` with the identity matrix frame->crop."""
    rng = np.random.default_rng(seed)
    (root / "faces").mkdir(parents=True, exist_ok=True)
    if masks:
        (root / "masks").mkdir(exist_ok=True)
    frames = []
    for i in range(n):
        name = f"{i:06d}"
        img, mask, lm = draw_face(size, skin, *rng.uniform(-3, 3, 2), rng.uniform(1, 5))
        cv2.imwrite(str(root / "faces" / f"{name}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if masks:
            cv2.imwrite(str(root / "masks" / f"{name}.png"), mask)
        # Frame pixels = crop pixels + (100, 50): the matrix maps them back.
        frame_lm = (lm + [100, 50]).tolist()
        frames.append({"index": i, "name": name, "target": 0, "faces": [{
            "box": [100, 50, 100 + size, 50 + size], "score": 0.99, "landmarks": frame_lm,
            "landmarks_smoothed": frame_lm, "matrix": [[1, 0, -100], [0, 1, -50]]}]})
    if alignments:
        doc = {"schema": "faceswap.alignments", "version": 1,
               "source": {"path": "fake.mp4", "kind": "video", "frames": n, "width": 640, "height": 480, "fps": 25.0},
               "crop": {"size": size, "coverage": 0.75, "template": (TEMPLATE_64 * size / 64).tolist()},
               "settings": {}, "frames": frames}
        (root / "alignments.json").write_text(json.dumps(doc), encoding="utf-8")
    return root
