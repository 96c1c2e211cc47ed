"""What training shows while it runs: the preview grid, the timelapse of the swap, validation SSIM."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from faceswap.train.losses import ssim

PREVIEW_ROWS = ("A", "A->A", "B", "B->B", "B->A", "mask B->A")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float NCHW in [0, 1] (1 or 3 channels) -> uint8 NHWC RGB."""
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return (x.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)


def grid(rows: list[np.ndarray], labels: list[str] | None = None, min_size: int = 64, pad: int = 2) -> np.ndarray:
    """Tile rows of equal-size faces (each NHWC uint8) into one RGB image, labels in a left column."""
    n_cols = max(len(r) for r in rows)
    size = rows[0].shape[1]
    scale = max(1, int(np.ceil(min_size / size)))
    cell = size * scale
    label_w = 0 if not labels else 8 * max(len(s) for s in labels) + 8
    h = len(rows) * (cell + pad) + pad
    w = label_w + n_cols * (cell + pad) + pad
    out = np.full((h, w, 3), 32, np.uint8)
    for r, row in enumerate(rows):
        y = pad + r * (cell + pad)
        for c, face in enumerate(row):
            if scale > 1:
                face = cv2.resize(face, (cell, cell), interpolation=cv2.INTER_NEAREST)
            x = label_w + pad + c * (cell + pad)
            out[y:y + cell, x:x + cell] = face
        if labels:
            cv2.putText(out, labels[r], (4, y + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (235, 235, 235), 1,
                        cv2.LINE_AA)
    return out


@torch.no_grad()
def preview_rows(model, faces_a: torch.Tensor, faces_b: torch.Tensor) -> list[np.ndarray]:
    """The preview's rows: A, A->A, B, B->B, B->A and the mask of B->A (what convert would blend with)."""
    za, zb = model.encode(faces_a), model.encode(faces_b)
    aa, _ = model.decode(za, "a")
    bb, _ = model.decode(zb, "b")
    ba, mask_ba = model.decode(zb, "a")
    return [to_uint8(t) for t in (faces_a, aa, faces_b, bb, ba, mask_ba)]


@torch.no_grad()
def timelapse_rows(model, faces_b: torch.Tensor) -> list[np.ndarray]:
    """B's fixed faces and their swap to A: the frames of the timelapse."""
    ba, _ = model.decode(model.encode(faces_b), "a")
    return [to_uint8(faces_b), to_uint8(ba)]


@torch.no_grad()
def reconstruction_ssim(model, faces: torch.Tensor, identity: str, window: int = 11, batch: int = 64) -> float:
    """Mean SSIM of an identity's own reconstruction on held-out faces."""
    scores = []
    for i in range(0, len(faces), batch):
        x = faces[i:i + batch]
        rgb, _ = model(x, identity)
        scores.append(ssim(rgb.float(), x.float(), window=window))
    return float(torch.cat(scores).mean()) if scores else float("nan")


__all__ = ["PREVIEW_ROWS", "to_uint8", "grid", "preview_rows", "timelapse_rows", "reconstruction_ssim"]
