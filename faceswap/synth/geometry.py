"""Head geometry of the synthetic actors: canonical feature positions, head pose, weak-perspective projection, true landmarks.

Head-local units: x to the actor's image-right when frontal, y down, z toward the camera; the eyes lie on
y = 0 and the head is HEAD_HEIGHT units from crown to chin. Features sit at canonical positions that
no appearance parameter moves, so a performance fixes the five landmarks whoever plays it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceswap.synth.params import Performance

HEAD_HEIGHT = 2.35              # crown (y = -1.2) to chin (y = 1.15): human proportions, eyes halfway
PIVOT = np.array([0.0, 0.35, 0.0])  # the face centre: rotations turn about it and (x, y) place it
EYE_X, EYE_Y = 0.34, 0.0
EYEBALL_RADIUS = 0.15
EYE_HALF_WIDTH, EYE_HALF_HEIGHT = 0.13, 0.058
IRIS_RADIUS, PUPIL_RADIUS = 0.058, 0.024
BROW_Y = -0.2
NOSE_TIP_XY = (0.0, 0.40)
NOSE_PROTRUSION = 0.17
MOUTH_X, MOUTH_Y = 0.23, 0.70
SMILE_WIDEN, SMILE_LIFT = 0.03, 0.04
MOUTH_CORNER_DEPTH = -0.07

# Canonical skin: a cranium and a jaw ellipsoid, smoothly unioned. (centre, semi-axes)
CRANIUM = (np.array([0.0, -0.1, -0.05]), np.array([0.76, 1.1, 0.96]))
JAW = (np.array([0.0, 0.5, -0.1]), np.array([0.6, 0.65, 0.9]))
SKIN_BLEND = 0.08  # smooth-union width between cranium and jaw, head units

# Points a face detector's box would hug: brows, cheeks, jaw, chin.
_BOX_POINTS_XY = np.array([[-0.55, -0.3], [0.55, -0.3], [0.0, -0.32], [-0.72, 0.15], [0.72, 0.15],
                           [-0.56, 0.85], [0.56, 0.85], [-0.3, 1.08], [0.3, 1.08], [0.0, 1.15]])


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-local to camera rotation (degrees): pitch about x, then yaw about y, then roll about z."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def smooth_max(a, b, k: float):
    """Polynomial smooth maximum: equals max(a, b) when they differ by more than k, rounds the crease otherwise."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.maximum(a, b) + h * h * (k * 0.25)


def ellipsoid_front_z(x, y, centre: np.ndarray, axes: np.ndarray):
    """z of an axis-aligned ellipsoid's camera-facing surface at (x, y); the centre's z where (x, y) is outside."""
    r = 1.0 - ((x - centre[0]) / axes[0]) ** 2 - ((y - centre[1]) / axes[1]) ** 2
    return centre[2] + axes[2] * np.sqrt(np.maximum(r, 0.0))


def canonical_depth(x, y):
    """z of the canonical skin surface at head-local (x, y): where features are drawn, whatever the face shape."""
    return smooth_max(ellipsoid_front_z(x, y, *CRANIUM), ellipsoid_front_z(x, y, *JAW), SKIN_BLEND)


def _lift(xy: np.ndarray, dz: float = 0.0) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([xy, canonical_depth(xy[:, 0], xy[:, 1]) + dz])


@dataclass(frozen=True)
class Pose:
    """Where a head is: rotation R (local -> camera), face-centre pixel (cx, cy), pixels per head unit s."""

    R: np.ndarray
    cx: float
    cy: float
    s: float

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Head-local (N, 3) points -> (N, 2) frame pixels and (N,) camera depth (larger is nearer)."""
        cam = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - PIVOT) @ self.R.T
        return np.column_stack([self.cx + self.s * cam[:, 0], self.cy + self.s * cam[:, 1]]), cam[:, 2]

    def facing(self, normal) -> float:
        """Camera-facing component of a head-local direction (1 toward the camera, <= 0 turned away)."""
        return float((self.R @ np.asarray(normal, dtype=np.float64))[2])


def camera_affine(perf: Performance, width: int, height: int) -> np.ndarray:
    """The camera's zoom and shake as a 2x3 map from scene pixels to frame pixels."""
    z = float(perf.zoom)
    return np.array([[z, 0.0, (1 - z) * width / 2 + perf.shake_x * height],
                     [0.0, z, (1 - z) * height / 2 + perf.shake_y * height]])


def head_pose(perf: Performance, width: int, height: int) -> Pose:
    cam = camera_affine(perf, width, height)
    cx, cy = cam @ np.array([perf.x * width, perf.y * height, 1.0])
    s = perf.scale * height * perf.zoom / HEAD_HEIGHT
    return Pose(rotation(perf.yaw, perf.pitch, perf.roll), float(cx), float(cy), float(s))


def mouth_corners(perf: Performance) -> np.ndarray:
    """Head-local (2, 3) mouth corners (image-left first): a smile widens and lifts them."""
    smile = float(np.clip(perf.smile, 0.0, 1.0))
    mx, my = MOUTH_X + SMILE_WIDEN * smile, MOUTH_Y - SMILE_LIFT * smile
    # The corners sit in a small recess beside the lips (seen from the side, the cheek covers them first).
    return _lift(np.array([[-mx, my], [mx, my]]), MOUTH_CORNER_DEPTH)


def eye_centres() -> np.ndarray:
    """Head-local (2, 3) centres of the irises at rest (the eyeball's front pole), image-left first."""
    return np.array([[-EYE_X, EYE_Y, eyeball_centre_z() + EYEBALL_RADIUS],
                     [EYE_X, EYE_Y, eyeball_centre_z() + EYEBALL_RADIUS]])


def eyeball_centre_z() -> float:
    # The cornea sits a little behind the brow and cheek surface, in the socket.
    return float(canonical_depth(EYE_X, EYE_Y)) - 0.015 - EYEBALL_RADIUS


def nose_tip() -> np.ndarray:
    x, y = NOSE_TIP_XY
    return np.array([x, y, float(canonical_depth(x, y)) + NOSE_PROTRUSION])


def landmark_points(perf: Performance) -> np.ndarray:
    """The five head-local landmark points in MTCNN's order: left eye, right eye, nose, left/right mouth corner."""
    return np.vstack([eye_centres(), nose_tip()[None], mouth_corners(perf)])


def true_landmarks(perf: Performance, width: int, height: int) -> np.ndarray:
    """The five landmarks in frame pixels (float64, (5, 2)), whether or not they are in view."""
    px, _ = head_pose(perf, width, height).project(landmark_points(perf))
    return px


def face_visible(perf: Performance, width: int, height: int) -> bool:
    """True when the face is turned toward the camera (within ~70 degrees) and all five landmarks are in the frame."""
    pose = head_pose(perf, width, height)
    if pose.facing([0.0, 0.0, 1.0]) < 0.34:
        return False
    px, _ = pose.project(landmark_points(perf))
    return bool(np.all((px[:, 0] >= 0) & (px[:, 0] <= width - 1) & (px[:, 1] >= 0) & (px[:, 1] <= height - 1)))


def face_box(perf: Performance, width: int, height: int) -> np.ndarray:
    """[x1, y1, x2, y2] around brows, cheeks and chin of the canonical face through the head pose (clipped to the frame)."""
    px, _ = head_pose(perf, width, height).project(_lift(_BOX_POINTS_XY))
    x1, y1 = px.min(axis=0)
    x2, y2 = px.max(axis=0)
    return np.array([max(x1, 0.0), max(y1, 0.0), min(x2, width - 1.0), min(y2, height - 1.0)])
