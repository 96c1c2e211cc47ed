"""Small clips for the provenance tests: a drawn face moving over a photo or a flat background."""
import cv2
import numpy as np
import pytest


def drawn_face(frame, cx, cy, r):
    cx, cy, r = int(cx), int(cy), int(r)
    cv2.ellipse(frame, (cx, cy), (int(r * 0.8), r), 0, 0, 360, (214, 170, 140), -1, cv2.LINE_AA)
    for dx in (-0.3, 0.3):
        cv2.circle(frame, (cx + int(dx * r), cy - int(0.2 * r)), max(2, int(0.09 * r)), (40, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(frame, (cx, cy + int(0.45 * r)), (int(0.3 * r), int(0.1 * r)), 0, 0, 180, (150, 60, 60), 2, cv2.LINE_AA)


def moving_face_clip(background, frames=24):
    h, w = background.shape[:2]
    out = []
    for i in range(frames):
        f = background.copy()
        drawn_face(f, w * (0.5 + 0.08 * np.sin(i / 4)), h * (0.45 + 0.03 * np.cos(i / 3)), h * 0.22)
        out.append(f)
    return out


@pytest.fixture(scope="session")
def photo_clip():
    """24 frames, 320x240: a face moving over a still photo (what a conversion writes)."""
    import skimage.data

    bg = cv2.resize(skimage.data.coffee(), (320, 240), interpolation=cv2.INTER_AREA)
    return moving_face_clip(bg)


@pytest.fixture(scope="session")
def flat_clip():
    """24 frames, 320x240: a face moving over a uniform grey background."""
    return moving_face_clip(np.full((240, 320, 3), 118, np.uint8))
