"""Temporal smoothing of the target's landmarks: the one-euro filter, per coordinate, reset after a miss."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SMOOTHING_METHODS = ("none", "one_euro")


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoothing weight of a first-order low-pass with this cutoff (Hz) at step ``dt`` (s)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The one-euro filter (Casiez, Roussel, Vogel, CHI 2012) on an array of coordinates.

    A low-pass whose cutoff rises with the signal's speed: ``cutoff = min_cutoff + beta * |speed|``, so
    a still signal is smoothed hard (no jitter) and a fast one barely (little lag). ``d_cutoff`` smooths
    the speed estimate itself. Units: Hz for the cutoffs, the signal's units per second for the speed.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"one-euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0 (got {min_cutoff}, {d_cutoff}, {beta})")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x_prev: np.ndarray | None = None
        self.dx_prev: np.ndarray | None = None

    def reset(self) -> None:
        self.x_prev = None
        self.dx_prev = None

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x_prev is None or self.x_prev.shape != x.shape:
            self.x_prev, self.dx_prev = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self.x_prev) / dt
        a_d = smoothing_factor(self.d_cutoff, dt)
        dx_hat = self.dx_prev + a_d * (dx - self.dx_prev)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = smoothing_factor(cutoff, dt)
        x_hat = self.x_prev + a * (x - self.x_prev)
        self.x_prev, self.dx_prev = x_hat, dx_hat
        return x_hat.copy()

    def state(self) -> dict | None:
        """The filter's memory as JSON-ready lists (None before the first sample), for resuming a run."""
        if self.x_prev is None:
            return None
        return {"x": self.x_prev.tolist(), "dx": self.dx_prev.tolist()}

    def load_state(self, state: dict | None) -> None:
        if not state:
            self.reset()
            return
        self.x_prev = np.asarray(state["x"], dtype=np.float64)
        self.dx_prev = np.asarray(state["dx"], dtype=np.float64)


def face_scale(landmarks: np.ndarray) -> float:
    """A size of the face in pixels (eye-to-mouth plus eye-to-eye distance) that does not depend on pose much."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    return float(np.hypot(*(mouth - eyes)) + np.hypot(*(p[1] - p[0])))


@dataclass
class SmoothingSettings:
    method: str = "one_euro"
    min_cutoff: float = 0.5  # Hz: how hard a still face is smoothed (lower = steadier)
    beta: float = 15.0  # per (face size / s): how fast the cutoff opens up when the face moves
    d_cutoff: float = 1.0  # Hz: smoothing of the speed estimate

    def __post_init__(self) -> None:
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(f"method must be one of {', '.join(SMOOTHING_METHODS)}, got {self.method!r}")
        self.min_cutoff, self.beta, self.d_cutoff = float(self.min_cutoff), float(self.beta), float(self.d_cutoff)
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"one-euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0 (got {self.min_cutoff}, "
                             f"{self.d_cutoff}, {self.beta})")


class LandmarkSmoother:
    """One-euro smoothing of one track's 5 landmarks.

    The filter runs on landmarks divided by the face's size at the start of the track, so ``beta`` means
    the same for a small and a large face (speed in face sizes per second). ``miss()`` ends the track: the
    next face starts fresh instead of being dragged from where the last one was.
    """

    def __init__(self, settings: SmoothingSettings | None = None, fps: float = 25.0):
        self.settings = settings or SmoothingSettings()
        self.dt = 1.0 / (fps if fps and fps > 0 else 25.0)
        s = self.settings
        self.filter = OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)
        self.scale: float | None = None

    def reset(self) -> None:
        self.filter.reset()
        self.scale = None

    miss = reset

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        if self.settings.method == "none":
            return pts.copy()
        if self.scale is None:
            self.scale = max(face_scale(pts), 1e-6)
        return self.filter(pts / self.scale, self.dt) * self.scale

    def state(self) -> dict | None:
        f = self.filter.state()
        return None if f is None or self.scale is None else {"scale": self.scale, **f}

    def load_state(self, state: dict | None) -> None:
        if not state:
            self.reset()
            return
        self.scale = float(state["scale"])
        self.filter.load_state(state)


def jitter(points: np.ndarray) -> float:
    """Mean absolute frame-to-frame motion of a (T, ..., 2) landmark sequence, in its units (per coordinate)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 2:
        return 0.0
    return float(np.abs(np.diff(p, axis=0)).mean())


__all__ = ["SMOOTHING_METHODS", "smoothing_factor", "OneEuroFilter", "face_scale", "SmoothingSettings",
           "LandmarkSmoother", "jitter"]
