"""Render one frame of a synthetic actor: ray-cast ellipsoids for skull, jaw, nose and hair, shade them, draw the features.

Every surface is an ellipsoid ray-cast per pixel under weak perspective (its silhouette coverage gives the
anti-aliasing); skin normals come from the smooth union of the depth maps, so the jaw and nose blend into
the face. Eyes, brows, lips, nostrils, ears, neck and body are polygons of 3D points projected through the
same pose and drawn with OpenCV's anti-aliased fills. Per-pixel work is done only inside each layer's box.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from faceswap.synth import geometry as geo
from faceswap.synth.params import Appearance, Performance
from faceswap.synth.textures import (HAIR_STEP, HAIR_X0, HAIR_Y0, SKIN_STEP, SKIN_X0, SKIN_Y0, backdrop,
                                     hair_pattern, skin_detail)

F32 = np.float32
SKIN_AMBIENT, SKIN_DIFFUSE = 0.36, 0.72   # fill light and key light on skin
SKIN_SPECULAR, SKIN_SHINE = 0.06, 16.0    # skin sheen: strength and Blinn exponent
_SHIFT = 4  # sub-pixel bits for OpenCV polygons: features glide smoothly instead of snapping to pixels
_ONE = 1 << _SHIFT


@dataclass
class Render:
    """A rendered frame and its truth. Landmarks are MTCNN-ordered (5, 2) frame pixels; mask is the main face."""

    image: np.ndarray
    landmarks: np.ndarray | None
    mask: np.ndarray
    box: np.ndarray | None
    face_visible: bool
    extra_landmarks: list[np.ndarray] = field(default_factory=list)  # extra faces in view, in the order given
    extra_boxes: list[np.ndarray] = field(default_factory=list)


# ----------------------------------------------------------------------------- shapes of an identity

@dataclass(frozen=True)
class Ellipsoid:
    centre: np.ndarray          # head-local
    axes: np.ndarray            # semi-axes in its own frame
    rot: np.ndarray | None = None  # own frame -> head-local

    def moved(self, dy: float) -> "Ellipsoid":
        return Ellipsoid(self.centre + np.array([0.0, dy, 0.0]), self.axes, self.rot)


@dataclass(frozen=True)
class HairStyle:
    shell: Ellipsoid | None
    curtain: Ellipsoid | None
    hairline: float       # front hairline height at the centre (y)
    temple_drop: float    # how much lower the hairline sits at the temples
    fringe_jag: float     # amplitude of a jagged fringe edge
    side: float           # hair reaches down to this y at the sides
    back: float           # ... and at the back
    window: float         # half-width of the face opening in long styles (|x| below it is face, not hair)


@dataclass(frozen=True)
class SkinPart:
    shape: Ellipsoid
    blend: float     # smooth-union width with what is already there (head units)
    jaw: bool        # drops with the open mouth
    detail: bool     # a small part: only counts inside its own silhouette


@dataclass(frozen=True)
class Body:
    cranium: Ellipsoid
    parts: tuple[SkinPart, ...]   # jaw, jaw angles, chin, nose, nose wings
    alae: tuple[Ellipsoid, Ellipsoid]
    hair: HairStyle
    ear_x: float


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


@lru_cache(maxsize=32)
def body_of(app: Appearance) -> Body:
    """The identity's shapes. The nose tip is pinned to the canonical tip whatever its length and width."""
    cc, ca = geo.CRANIUM
    cranium = Ellipsoid(cc.copy(), ca * np.array([app.face_width, app.face_height, 1.0]))
    jc, ja = geo.JAW
    chin_y = 1.1 + 0.1 * app.chin                # bottom of the chin
    jaw_ax = np.array([0.53 + 0.12 * app.jaw, ja[1] + (chin_y - 1.15) * 0.6 - 0.06 * (app.jaw - 0.5), ja[2]])
    jaw = Ellipsoid(np.array([0.0, chin_y - jaw_ax[1], jc[2]]), jaw_ax)
    parts = [SkinPart(jaw, geo.SKIN_BLEND, True, False)]
    # Nose: a tilted ellipsoid whose front-most point is the canonical tip.
    rot = _rot_x(-24.0)
    axes = np.array([0.09 + 0.03 * app.nose_width, 0.2 + 0.08 * app.nose_length, 0.26])
    row = (rot @ np.diag(axes))[2]
    front = rot @ np.diag(axes) @ (row / np.linalg.norm(row))
    parts.append(SkinPart(Ellipsoid(geo.nose_tip() - front, axes, rot), 0.12, False, True))
    r_ala = 0.05 + 0.025 * app.nose_width
    alae = []
    for side in (-1.0, 1.0):
        x, y = side * (0.07 + 0.04 * app.nose_width), 0.45
        z = float(geo.canonical_depth(x, y)) + 0.055 - r_ala
        alae.append(Ellipsoid(np.array([x, y, z]), np.array([r_ala, r_ala * 0.85, r_ala])))
        parts.append(SkinPart(alae[-1], 0.035, False, True))
    ear_x = float(cranium.axes[0] * np.sqrt(max(1 - ((0.16 - cc[1]) / cranium.axes[1]) ** 2, 0.0)) * 0.96)
    return Body(cranium, tuple(parts), tuple(alae), _hair_style(app, cranium), ear_x)


def _hair_style(app: Appearance, cranium: Ellipsoid) -> HairStyle:
    v = {"short": 0.05 + 0.06 * app.hair_volume, "long": 0.05 + 0.06 * app.hair_volume,
         "fringe": 0.06 + 0.05 * app.hair_volume, "curly": 0.12 + 0.16 * app.hair_volume,
         "buzz": 0.018, "bald": 0.03}[app.hair_style]
    c, a = cranium.centre, cranium.axes
    # Hair lies flat on the forehead and has its volume on top and at the back: the shell sits back.
    shell = Ellipsoid(c + np.array([0.0, -0.45 * v, -0.7 * v * a[2]]), a * np.array([1 + v, 1 + 0.75 * v, 1 + v]))
    style = app.hair_style
    if style == "long":
        length = 1.25 + 0.6 * app.hair_length
        half = (length + 0.3) / 2
        curtain = Ellipsoid(np.array([0.0, length - half + 0.1, c[2] - 0.1]),
                            np.array([shell.axes[0] * 1.0, half * 1.15, shell.axes[2] * 0.8]))
        return HairStyle(shell, curtain, -0.6, 0.16, 0.0, length, length, 0.64)
    if style == "fringe":
        return HairStyle(shell, None, -0.33, 0.02, 0.022, 0.78, 0.78, 0.64)
    if style == "curly":
        return HairStyle(shell, None, -0.6, 0.14, 0.012, 0.3, 0.6, 0.74)
    if style == "buzz":
        return HairStyle(shell, None, -0.66, 0.12, 0.0, 0.02, 0.5, 0.72)
    if style == "bald":
        return HairStyle(None, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return HairStyle(shell, None, -0.66, 0.16, 0.008, -0.22, 0.5, 0.72)


# ----------------------------------------------------------------------------- ray casting

@dataclass
class _Quadric:
    """h(X, Y) = B^2 - A*C (hit iff h >= 0) and B(X, Y) for one ellipsoid, in camera units X=(u-cx)/s, Y=(v-cy)/s."""

    A: float
    b: tuple[float, float, float]            # B = bX X + bY Y + b0
    h: tuple[float, float, float, float, float, float]  # hXX, hXY, hYY, hX, hY, h0
    centre: tuple[float, float]               # silhouette centre (X, Y)
    half: tuple[float, float]                 # silhouette half-extents (X, Y)
    hmax: float
    radius: float                             # geometric-mean silhouette radius (camera units)


def _quadric(pose: geo.Pose, ell: Ellipsoid) -> _Quadric | None:
    rs = ell.rot if ell.rot is not None else np.eye(3)
    inv_d = np.diag(1.0 / ell.axes)
    G = inv_d @ rs.T @ pose.R.T
    g0 = inv_d @ rs.T @ (geo.PIVOT - ell.centre)
    G0, G1, e = G[:, 0], G[:, 1], G[:, 2]
    A = float(e @ e)
    bX, bY, b0 = float(G0 @ e), float(G1 @ e), float(g0 @ e)
    cXX, cXY, cYY = G0 @ G0, G0 @ G1, G1 @ G1
    cX, cY, c0 = G0 @ g0, G1 @ g0, g0 @ g0 - 1.0
    h = (bX * bX - A * cXX, bX * bY - A * cXY, bY * bY - A * cYY, bX * b0 - A * cX, bY * b0 - A * cY,
         b0 * b0 - A * c0)
    lam = -np.array([[h[0], h[1]], [h[1], h[2]]])
    det = float(np.linalg.det(lam))
    if det <= 0:
        return None
    ctr = np.linalg.solve(lam, np.array([h[3], h[4]]))
    hmax = float(h[5] + h[3] * ctr[0] + h[4] * ctr[1])
    if hmax <= 0:
        return None
    inv = np.linalg.inv(lam)
    half = (float(np.sqrt(hmax * inv[0, 0])), float(np.sqrt(hmax * inv[1, 1])))
    return _Quadric(A, (bX, bY, b0), tuple(float(x) for x in h), (float(ctr[0]), float(ctr[1])), half, hmax,
                    float(np.sqrt(hmax) / det**0.25))


def _rect_of(q: _Quadric, pose: geo.Pose, pad: float = 2.0) -> tuple[int, int, int, int]:
    cx, cy = pose.cx + pose.s * q.centre[0], pose.cy + pose.s * q.centre[1]
    hx, hy = pose.s * q.half[0] + pad, pose.s * q.half[1] + pad
    return int(np.floor(cx - hx)), int(np.floor(cy - hy)), int(np.ceil(cx + hx)) + 1, int(np.ceil(cy + hy)) + 1


def _union(*rects):
    rects = [r for r in rects if r is not None]
    return min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects)


def _clip(rect, width, height):
    x0, y0, x1, y1 = max(rect[0], 0), max(rect[1], 0), min(rect[2], width), min(rect[3], height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@dataclass
class _Grid:
    """Camera-unit coordinates of a rectangle's pixel centres: X as a row vector, Y as a column vector."""

    rect: tuple[int, int, int, int]
    X: np.ndarray
    Y: np.ndarray

    @classmethod
    def of(cls, pose: geo.Pose, rect) -> "_Grid":
        x0, y0, x1, y1 = rect
        X = ((np.arange(x0, x1, dtype=F32) - F32(pose.cx)) / F32(pose.s))[None, :]
        Y = ((np.arange(y0, y1, dtype=F32) - F32(pose.cy)) / F32(pose.s))[:, None]
        return cls(rect, X, Y)

    def local(self, pose: geo.Pose, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head-local (x, y, z) of the camera points (X, Y, t)."""
        R, P = pose.R, geo.PIVOT
        return tuple(F32(R[0, i]) * self.X + (F32(R[1, i]) * self.Y + F32(P[i])) + F32(R[2, i]) * t for i in range(3))


def _cast(q: _Quadric, grid: _Grid, pose: geo.Pose, back: bool = False):
    """Front (and back) hit depth and anti-aliased coverage of a quadric over a grid; depth is clamped off-silhouette."""
    hXX, hXY, hYY, hX, hY, h0 = (F32(v) for v in q.h)
    X, Y = grid.X, grid.Y
    h = (hXX * X * X + F32(2) * hX * X + h0) + (hYY * Y * Y + F32(2) * hY * Y) + (F32(2) * hXY * Y) * X
    B = F32(q.b[0]) * X + (F32(q.b[1]) * Y + F32(q.b[2]))
    root = np.sqrt(np.maximum(h, F32(0)))
    inv_a = F32(1.0 / q.A)
    front = (root - B) * inv_a
    cov = np.clip(h * F32(q.radius * pose.s / (2 * q.hmax)) + F32(0.5), F32(0), F32(1))
    if not back:
        return front, cov
    return front, cov, (-root - B) * inv_a


def _normals(depth: np.ndarray, s: float):
    """Camera-space unit normals (nx, ny, nz) from a depth map in head units over pixels."""
    gx = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3, scale=s / 8.0)
    gy = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3, scale=s / 8.0)
    inv = F32(1) / np.sqrt(gx * gx + gy * gy + F32(1))
    return -gx * inv, -gy * inv, inv


# ----------------------------------------------------------------------------- lighting

@dataclass(frozen=True)
class _Light:
    L: np.ndarray     # unit vector toward the light, camera space
    H: np.ndarray     # half vector between light and viewer
    intensity: float

    @classmethod
    def of(cls, perf: Performance) -> "_Light":
        az, el = np.radians(perf.light_azimuth), np.radians(perf.light_elevation)
        L = np.array([np.sin(az) * np.cos(el), -np.sin(el), np.cos(az) * np.cos(el)])
        H = L + np.array([0.0, 0.0, 1.0])
        return cls(L, H / np.linalg.norm(H), float(max(perf.light_intensity, 0.0)))

    def lambert(self, n, wrap: float = 0.35):
        """Diffuse term with wrap-around (a soft terminator, as skin scatters light)."""
        ndl = F32(self.L[0]) * n[0] + F32(self.L[1]) * n[1] + F32(self.L[2]) * n[2]
        return np.maximum((ndl + F32(wrap)) * F32(1.0 / (1.0 + wrap)), F32(0))

    def shade_of(self, normal_cam, ambient: float = 0.4, gain: float = 0.75) -> float:
        n = np.asarray(normal_cam, dtype=np.float64)
        n = n / (np.linalg.norm(n) + 1e-9)
        d = max((float(n @ self.L) + 0.35) / 1.35, 0.0)
        return ambient + gain * d * self.intensity

    def specular(self, n, power: float, strength: float):
        ndh = np.maximum(F32(self.H[0]) * n[0] + F32(self.H[1]) * n[1] + F32(self.H[2]) * n[2], F32(0))
        return F32(strength * self.intensity) * ndh**power


# ----------------------------------------------------------------------------- drawing helpers

def _pts(px: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    return np.round((px - np.array(origin, dtype=np.float64)) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _color(rgb, shade: float = 1.0) -> tuple[float, float, float]:
    return tuple(float(np.clip(c * shade, 0, 1) * 255) for c in rgb)


def _fill(img, px, origin, rgb, shade=1.0):
    cv2.fillPoly(img, [_pts(px, origin)], _color(rgb, shade), cv2.LINE_AA, _SHIFT)


def _line(img, px, origin, rgb, shade, thickness, closed=False):
    cv2.polylines(img, [_pts(px, origin)], closed, _color(rgb, shade), max(1, int(round(thickness))), cv2.LINE_AA,
                  _SHIFT)


def _blend_poly(canvas: np.ndarray, origin, px: np.ndarray, color: np.ndarray, alpha: float = 1.0) -> None:
    """Alpha-blend a flat-coloured anti-aliased polygon into a float32 canvas (only over its own box)."""
    h, w = canvas.shape[:2]
    x0 = max(int(np.floor(px[:, 0].min())) - origin[0] - 1, 0)
    y0 = max(int(np.floor(px[:, 1].min())) - origin[1] - 1, 0)
    x1 = min(int(np.ceil(px[:, 0].max())) - origin[0] + 2, w)
    y1 = min(int(np.ceil(px[:, 1].max())) - origin[1] + 2, h)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [_pts(px, (origin[0] + x0, origin[1] + y0))], 255, cv2.LINE_AA, _SHIFT)
    a = (m.astype(F32) * F32(alpha / 255.0))[..., None]
    sub = canvas[y0:y1, x0:x1]
    sub += (np.asarray(color, F32) - sub) * a


def _ellipse3d(centre, u1, u2, n: int = 20) -> np.ndarray:
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.outer(np.cos(th), u1) + np.outer(np.sin(th), u2)


# ----------------------------------------------------------------------------- features

def _draw_eye(img, origin, pose: geo.Pose, app: Appearance, perf: Performance, light: _Light, side: float,
              skin_shade: float):
    ez = geo.eyeball_centre_z()
    ex, ey = side * geo.EYE_X, geo.EYE_Y
    r = geo.EYEBALL_RADIUS
    ew, eh = geo.EYE_HALF_WIDTH * app.eye_size, geo.EYE_HALF_HEIGHT * app.eye_size
    u = np.linspace(-1, 1, 19)
    # Almond: the upper lid peaks toward the nose, the lower lid dips toward the ear, outer corner a bit higher.
    upper = -eh * (1 - u**2) ** 0.6 * (1 - 0.18 * side * u)
    lower = eh * 0.72 * (1 - u**2) ** 0.8 * (1 + 0.15 * side * u)
    tilt = -0.012 * side * u
    closed = lower * 0.35
    b = float(np.clip(perf.blink, 0, 1))
    up_b, lo_b = upper + (closed - upper) * b, lower + (closed - lower) * b
    x = ex + u * ew

    def on_ball(xs, ys):
        zz = ez + np.sqrt(np.maximum(r * r - (xs - ex) ** 2 - (ys - ey) ** 2, 0.0))
        return np.column_stack([xs, ys, np.maximum(zz, geo.canonical_depth(xs, ys) - 0.01)])

    lid_up, _ = pose.project(on_ball(x, ey + tilt + up_b))
    lid_lo, _ = pose.project(on_ball(x, ey + tilt + lo_b))
    lash_col = np.array(app.brow_color) * 0.45
    px_per_unit = pose.s
    if b < 0.97:
        opening = np.vstack([lid_up, lid_lo[::-1]])
        gx, gy = np.radians([perf.gaze_x, perf.gaze_y])
        g = np.array([np.sin(gx) * np.cos(gy), np.sin(gy), np.cos(gx) * np.cos(gy)])
        u1 = np.cross([0.0, 1.0, 0.0], g)
        u1 /= np.linalg.norm(u1)
        u2 = np.cross(g, u1)
        ball = np.array([ex, ey, ez])
        ri = geo.IRIS_RADIUS
        iris_c = ball + g * np.sqrt(r * r - ri * ri)
        iris, _ = pose.project(_ellipse3d(iris_c, ri * u1, ri * u2, 24))
        inner, _ = pose.project(_ellipse3d(iris_c, 0.78 * ri * u1, 0.78 * ri * u2, 24))
        rp = geo.PUPIL_RADIUS * (1.15 - 0.2 * min(light.intensity, 1.5))
        pupil, _ = pose.project(_ellipse3d(ball + g * r, rp * u1, rp * u2, 16))
        allpts = np.vstack([opening, iris])
        x0, y0 = np.floor(allpts.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(allpts.max(axis=0)).astype(int) + 3
        ox, oy = origin
        x0, y0 = max(x0, ox), max(y0, oy)
        x1, y1 = min(x1, ox + img.shape[1]), min(y1, oy + img.shape[0])
        if x1 > x0 and y1 > y0:
            patch = img[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            eye = np.empty_like(patch)
            eye[:] = _color((0.93, 0.90, 0.86), skin_shade * 0.98)
            o = (x0, y0)
            # Shadow of the upper lid on the eyeball.
            _line(eye, lid_up, o, (0.93, 0.9, 0.86), skin_shade * 0.6, 0.035 * px_per_unit)
            _fill(eye, iris, o, app.eye_color, skin_shade * 0.45)
            _fill(eye, inner, o, app.eye_color, skin_shade * 1.05)
            _fill(eye, pupil, o, (0.04, 0.03, 0.03))
            # Catchlight on the iris toward the light, clear of the pupil's centre (where the landmark is).
            d = np.array([light.L[0], light.L[1]])
            d = d / np.linalg.norm(d) if np.linalg.norm(d) > 0.2 else np.array([-0.6, -0.8])
            hl = pose.project(iris_c[None])[0][0] + d * 0.5 * ri * pose.s
            cv2.circle(eye, tuple(np.round((hl - o) * _ONE).astype(int)), max(int(0.2 * ri * pose.s * _ONE), _ONE),
                       _color((1, 1, 1), min(0.75 + 0.25 * light.intensity, 1.0)), -1, cv2.LINE_AA, _SHIFT)
            m = np.zeros(patch.shape[:2], np.uint8)
            cv2.fillPoly(m, [_pts(opening, o)], 255, cv2.LINE_AA, _SHIFT)
            a = (m.astype(F32) / F32(255))[..., None]
            patch[:] = (patch * (1 - a) + eye * a + 0.5).astype(np.uint8)
    # Crease above the lid, then the lash line along the (moving) upper lid.
    crease, _ = pose.project(on_ball(x * 0.98 + ex * 0.02, ey + tilt + upper * 1.05 - 0.045 * app.eye_size))
    _line(img, crease[2:-2], origin, app.skin, skin_shade * 0.72, 0.012 * px_per_unit)
    _line(img, lid_up, origin, lash_col, 1.0, 0.022 * px_per_unit * (1 - 0.4 * b))
    if b < 0.97:
        _line(img, lid_lo[3:-3], origin, app.skin, skin_shade * 0.8, 0.01 * px_per_unit)


def _draw_brow(img, origin, pose, app: Appearance, perf: Performance, side: float, shade: float):
    u = np.linspace(0, 1, 14)
    raise_ = float(np.clip(perf.brow_raise, 0, 1))
    x = side * (0.13 + 0.42 * u)
    yc = geo.BROW_Y - 0.045 * np.sin(np.pi * np.clip(u * 0.85 + 0.1, 0, 1)) - raise_ * (0.07 + 0.02 * u)
    th = (0.028 + 0.04 * app.brow_thickness) * (1.0 - 0.55 * u) + 0.006
    top = np.column_stack([x, yc - th / 2])
    bot = np.column_stack([x, yc + th / 2])
    pts = np.vstack([top, bot[::-1]])
    px, _ = pose.project(np.column_stack([pts, geo.canonical_depth(pts[:, 0], pts[:, 1]) + 0.02]))
    _fill(img, px, origin, app.brow_color, shade)


def _draw_mouth(img, origin, pose, app: Appearance, perf: Performance, shade: float):
    smile = float(np.clip(perf.smile, 0, 1))
    gap = 0.13 * float(np.clip(perf.mouth_open, 0, 1))
    corners = geo.mouth_corners(perf)
    mx, my = corners[1, 0], corners[1, 1]
    u = np.linspace(-1, 1, 25)
    x = u * mx
    bulge = (1 - u**2)
    line = my + (0.028 * smile - 0.006) * bulge
    full = 0.6 + 0.8 * app.lip_fullness
    top = line - 0.042 * full * bulge**0.55 * (1 - 0.28 * np.exp(-(u / 0.17) ** 2)) - 0.004
    up_in = line - 0.25 * gap * bulge**0.8
    lo_in = line + 0.75 * gap * bulge**0.8
    bottom = lo_in + 0.055 * full * bulge**0.6 + 0.004

    def proj(ys, dz=0.02):
        lift = geo.MOUTH_CORNER_DEPTH + (dz + 0.012 - geo.MOUTH_CORNER_DEPTH) * bulge**0.5  # corners recessed
        p3 = np.column_stack([x, ys, geo.canonical_depth(x, ys) + lift])
        return pose.project(p3)[0]

    p_top, p_up, p_lo, p_bot = proj(top), proj(up_in), proj(lo_in), proj(bottom, 0.035)
    lip = np.array(app.lip_color)
    if gap > 0.004:
        _fill(img, np.vstack([p_up, p_lo[::-1]]), origin, (0.28, 0.07, 0.08), shade)
        teeth_h = min(gap * 0.45, 0.035)
        k = np.abs(u) < 0.78
        if k.sum() > 2:
            p_teeth = proj(np.minimum(up_in + teeth_h * bulge**0.3, lo_in))
            _fill(img, np.vstack([p_up[k], p_teeth[k][::-1]]), origin, (0.95, 0.93, 0.86), shade * 0.95)
    _fill(img, np.vstack([p_top, p_up[::-1]]), origin, lip, shade * 0.78)
    _fill(img, np.vstack([p_lo, p_bot[::-1]]), origin, lip, shade * 1.0)
    _line(img, p_up if gap > 0.004 else (p_up + p_lo) / 2, origin, lip, shade * 0.45, 0.012 * pose.s)
    hi = proj(lo_in + (bottom - lo_in) * 0.45, 0.04)[8:17]
    _line(img, hi, origin, lip, min(shade * 1.25, 1.3), 0.012 * pose.s)


def _draw_nose_details(img, origin, pose, app: Appearance, shade: float):
    tip = geo.nose_tip()
    nrm = np.array([0.0, 0.85, 0.53])
    if pose.facing(nrm) > 0.05:
        for side in (-1.0, 1.0):
            c = np.array([side * (0.045 + 0.02 * app.nose_width), 0.468, tip[2] - 0.075])
            pts, _ = pose.project(_ellipse3d(c, np.array([0.028 + 0.008 * app.nose_width, 0, 0]),
                                             0.03 * np.cross(nrm, [1.0, 0, 0]), 14))
            _fill(img, pts, origin, app.skin, shade * 0.28)


def _draw_glasses(img, pose):
    col = (0.08, 0.08, 0.09)
    for side in (-1.0, 1.0):
        c = np.array([side * geo.EYE_X, 0.02, geo.eyeball_centre_z() + geo.EYEBALL_RADIUS + 0.06])
        ring, _ = pose.project(_ellipse3d(c, np.array([0.155, 0, 0]), np.array([0, 0.115, 0]), 28))
        _line(img, ring, (0, 0), col, 1.0, 0.022 * pose.s, closed=True)
        arm, _ = pose.project(np.array([[side * (geo.EYE_X + 0.155), 0.0, c[2]], [side * 0.74, -0.02, c[2] - 0.45]]))
        if pose.facing([side, 0.0, 0.0]) > -0.2:
            _line(img, arm, (0, 0), col, 1.0, 0.02 * pose.s)
    bridge, _ = pose.project(np.array([[-geo.EYE_X + 0.155, 0.0, c[2]], [0, -0.03, c[2] + 0.01],
                                       [geo.EYE_X - 0.155, 0.0, c[2]]]))
    _line(img, bridge, (0, 0), col, 1.0, 0.02 * pose.s)


# ----------------------------------------------------------------------------- body, neck, ears

def _body_frame(pose: geo.Pose, perf: Performance) -> tuple[np.ndarray, np.ndarray]:
    """Rotation of the torso (it follows the head a little) and the camera position of the neck base."""
    Rb = geo.rotation(0.3 * perf.yaw, 0.0, 0.3 * perf.roll)
    base_local = np.array([0.0, 1.45, -0.3])
    base = np.array([pose.cx, pose.cy]) + pose.s * (Rb @ (base_local - geo.PIVOT))[:2]
    return Rb, base


def _torso_points(pose: geo.Pose, Rb: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs = np.array([0.36, 0.8, 1.25, 1.58, 1.75, 1.82])
    ys = np.array([-0.02, 0.14, 0.3, 0.6, 1.1, 4.0])
    right = np.column_stack([xs, ys, -0.25 * xs])
    outline = np.vstack([right * [-1, 1, 1], right[::-1]])
    torso = base + pose.s * (outline @ Rb.T)[:, :2]
    th = np.linspace(0, np.pi, 12)
    collar = np.column_stack([0.42 * np.cos(th), 0.34 * np.sin(th) - 0.03, 0.05 + 0 * th])
    return torso, base + pose.s * (collar @ Rb.T)[:, :2]


def _neck_quad(pose: geo.Pose, Rb, base) -> np.ndarray:
    top, _ = pose.project(np.array([[0.0, 0.82, -0.2]]))
    top = top[0]
    d = base - top
    perp = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    r_top, r_bot = 0.3 * pose.s, 0.36 * pose.s
    return np.array([top - perp * r_top, top + perp * r_top, base + perp * r_bot, base - perp * r_bot])


def _ear_polys(pose: geo.Pose, body: Body, side: float):
    c = np.array([side * body.ear_x, 0.16, -0.1])
    out = np.array([side * np.sin(np.radians(38)), 0.0, -np.cos(np.radians(38))])
    th = np.linspace(-np.pi / 2, np.pi / 2, 14)
    up = np.array([0.0, -1.0, 0.0])
    outer = c + np.outer(0.2 * np.sin(th), up) + np.outer(0.13 * np.cos(th) ** 0.8, out)
    inner = c + 0.02 * out + np.outer(0.11 * np.sin(th), up) + np.outer(0.065 * np.cos(th) ** 0.8, out)
    return pose.project(outer)[0], pose.project(inner)[0]


# ----------------------------------------------------------------------------- hair

def _hair_alpha(style: HairStyle, x, y, z, shell_c, shell_c_axis, soft):
    """Soft in/out of hair for head-local points on a hair surface (1 hair, 0 bare)."""
    f = (z - F32(shell_c)) * F32(1.0 / shell_c_axis)  # front-ness: 1 at the face, -1 at the back
    ax = np.abs(x)
    w_face = np.clip((F32(style.window) - ax) * F32(1 / 0.16) + F32(0.5), 0, 1) * np.clip(f * F32(4) + F32(0.6), 0, 1)
    w_back = np.clip(-f * F32(2.0), 0, 1)
    y_sb = F32(style.side) + (F32(style.back) - F32(style.side)) * w_back
    y_front = F32(style.hairline) + F32(style.temple_drop) * (ax * F32(1 / 0.6)) ** 2
    if style.fringe_jag:
        y_front = y_front + F32(style.fringe_jag) * np.abs(np.sin(x * F32(38.0)))
    y_lim = y_sb + (y_front - y_sb) * w_face
    a = np.clip((y_lim - y) * F32(1 / soft) + F32(0.5), 0, 1)
    return a


def _hair_color(app: Appearance, x, y, z, zc: float, shade):
    """Hair colour at head-local points: strands run down the head, indexed by the angle around it."""
    pat = hair_pattern(app)
    dz = z - F32(zc)
    ax = np.abs(x)
    # Pseudo-angle around the vertical axis, in [-2, 2]: monotonic in atan2(x, dz) and far cheaper.
    p = x / (ax + np.abs(dz) + F32(1e-6))
    p = np.where(dz < 0, np.sign(x) * F32(2) - p, p)
    mx = (p * F32(0.9) - F32(HAIR_X0)) * F32(1 / HAIR_STEP)
    my = (y - F32(HAIR_Y0)) * F32(1 / HAIR_STEP)
    tex = cv2.remap(pat, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return (tex * shade)[..., None] * np.asarray(app.hair_color, F32)


# ----------------------------------------------------------------------------- one actor

@dataclass
class _Drawn:
    rect: tuple[int, int, int, int] | None
    face_alpha: np.ndarray | None   # over rect: skin not covered by hair
    cover_alpha: np.ndarray | None  # over rect: anything of the head drawn


def _draw_actor(img: np.ndarray, app: Appearance, perf: Performance) -> _Drawn:
    H, W = img.shape[:2]
    pose = geo.head_pose(perf, W, H)
    light = _Light.of(perf)
    body = body_of(app)
    drop = 0.05 * float(np.clip(perf.mouth_open, 0, 1))
    origin0 = (0, 0)

    # 1. Torso and collar straight onto the frame: they are behind everything of the head.
    Rb, base = _body_frame(pose, perf)
    torso, collar = _torso_points(pose, Rb, base)
    body_shade = 0.55 + 0.45 * light.intensity * max(light.L[2], 0.2)
    _fill(img, torso, origin0, app.shirt_color, body_shade)
    _fill(img, collar, origin0, app.skin, body_shade * 0.8)

    # 2. Layer boxes from the silhouettes of each ellipsoid.
    q_cr = _quadric(pose, body.cranium)
    q_parts = [(_quadric(pose, p.shape.moved(drop) if p.jaw else p.shape), p) for p in body.parts]
    q_parts = [(q, p) for q, p in q_parts if q is not None]
    style = body.hair
    q_shell = _quadric(pose, style.shell) if style.shell is not None else None
    q_curt = _quadric(pose, style.curtain) if style.curtain is not None else None
    neck = _neck_quad(pose, Rb, base)
    ears = [_ear_polys(pose, body, s) for s in (-1.0, 1.0)]
    skin_rect = _clip(_union(_rect_of(q_cr, pose), *[_rect_of(q, pose) for q, _ in q_parts]), W, H)
    pts_box = np.vstack([neck] + [e[0] for e in ears])
    extra_rect = (int(pts_box[:, 0].min()) - 2, int(pts_box[:, 1].min()) - 2, int(pts_box[:, 0].max()) + 3,
                  int(pts_box[:, 1].max()) + 3)
    hair_rects = [_rect_of(q, pose) for q in (q_shell, q_curt) if q is not None]
    head_rect = _clip(_union(skin_rect or _rect_of(q_cr, pose), extra_rect, *hair_rects), W, H)
    if head_rect is None:
        return _Drawn(None, None, None)
    X0, Y0, X1, Y1 = head_rect
    canvas = img[Y0:Y1, X0:X1].astype(F32)
    cover = np.zeros(canvas.shape[:2], F32)

    def sub(rect):
        return (slice(rect[1] - Y0, rect[3] - Y0), slice(rect[0] - X0, rect[2] - X0))

    soft = 1.2 / pose.s
    # Hair behind the head must not paint over the torso (it hangs behind the shoulders).
    torso_m = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(torso_m, [_pts(torso, (X0, Y0))], 255, cv2.LINE_AA, _SHIFT)
    not_torso = F32(1) - torso_m.astype(F32) * F32(1 / 255)

    # 3. Hair surfaces: both hits of each hair ellipsoid; the far one is the inside of the hair, behind the head.
    front_layers = []
    for q, ell in ((q_shell, style.shell), (q_curt, style.curtain)):
        if q is None:
            continue
        rect = _clip(_rect_of(q, pose), W, H)
        if rect is None:
            continue
        g = _Grid.of(pose, rect)
        tf, cov, tb = _cast(q, g, pose, back=True)
        xb, yb, zb = g.local(pose, tb)
        ab = cov * _hair_alpha(style, xb, yb, zb, ell.centre[2], ell.axes[2], soft)
        if ell is style.curtain:
            ab *= np.clip((yb + F32(0.1)) * F32(1 / soft), 0, 1)
        ab *= not_torso[sub(rect)]
        col_b = _hair_color(app, xb, yb, zb, ell.centre[2], np.full_like(xb, F32(0.3 + 0.15 * light.intensity)))
        c = canvas[sub(rect)]
        c += (col_b * F32(255) - c) * ab[..., None]
        cover[sub(rect)] = np.maximum(cover[sub(rect)], ab)
        xf, yf, zf = g.local(pose, tf)
        af = cov * _hair_alpha(style, xf, yf, zf, ell.centre[2], ell.axes[2], soft)
        if ell is style.curtain:
            af *= np.clip((yf + F32(0.1)) * F32(1 / soft), 0, 1)
        n = _normals(tf, pose.s)
        shade = F32(0.32) + F32(0.7) * light.lambert(n, 0.2) * F32(light.intensity)
        col_f = _hair_color(app, xf, yf, zf, ell.centre[2], shade) + light.specular(n, 12.0, 0.1)[..., None]
        front_layers.append((rect, tf, af, col_f))

    # 4. Neck, then the ears that face away (the head hides most of them).
    neck_shade = 0.45 + 0.35 * light.intensity * max(light.L[2], 0.0)
    _blend_poly(canvas, (X0, Y0), neck, np.array(app.skin) * 255 * neck_shade)
    ear_facing = [pose.facing([s, 0.0, 0.0]) for s in (-1.0, 1.0)]

    def draw_ear(i):
        side = -1.0 if i == 0 else 1.0
        sh = light.shade_of(pose.R @ np.array([side, 0.0, 0.6]), 0.38, 0.7)
        _blend_poly(canvas, (X0, Y0), ears[i][0], np.array(app.skin) * 255 * sh)
        _blend_poly(canvas, (X0, Y0), ears[i][1], np.array(app.skin) * 255 * sh * 0.72, 0.9)

    for i in (0, 1):
        if ear_facing[i] <= 0.25:
            draw_ear(i)

    # 5. Skin: smooth union of cranium, jaw, nose and nose wings; shading from the union's depth.
    skin = None
    if skin_rect is not None:
        g = _Grid.of(pose, skin_rect)
        depth, alpha = _cast(q_cr, g, pose)
        for q, part in q_parts:
            r = _clip(_rect_of(q, pose), W, H)
            if r is None:
                continue
            r = (max(r[0], skin_rect[0]), max(r[1], skin_rect[1]), min(r[2], skin_rect[2]), min(r[3], skin_rect[3]))
            if r[2] <= r[0] or r[3] <= r[1]:
                continue
            t_n, a_n = _cast(q, _Grid.of(pose, r), pose)
            if part.detail:
                t_n = np.where(a_n > 0, t_n, F32(-10))
            ss = (slice(r[1] - skin_rect[1], r[3] - skin_rect[1]), slice(r[0] - skin_rect[0], r[2] - skin_rect[0]))
            depth[ss] = geo.smooth_max(depth[ss], t_n, F32(part.blend))
            alpha[ss] = np.maximum(alpha[ss], a_n)
        n = _normals(depth, pose.s)
        shade = F32(SKIN_AMBIENT) + F32(SKIN_DIFFUSE) * light.lambert(n) * F32(light.intensity)
        x, y, z = g.local(pose, depth)
        det = skin_detail(app)
        mx = (x - F32(SKIN_X0)) * F32(1 / SKIN_STEP)
        my = (y - F32(SKIN_Y0)) * F32(1 / SKIN_STEP)
        albedo = cv2.remap(det, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        front = np.clip((z - F32(0.1)) * F32(3.0), 0, 1)[..., None]
        albedo = np.asarray(app.skin, F32) + albedo * front
        col = albedo * shade[..., None] + light.specular(n, SKIN_SHINE, SKIN_SPECULAR)[..., None]
        skin_u8 = np.clip(col * F32(255) + F32(0.5), 0, 255).astype(np.uint8)
        # Features are drawn on the skin layer, so the head's silhouette clips them.
        o = (skin_rect[0], skin_rect[1])

        def shade_at(p3):
            p, _ = pose.project(np.atleast_2d(p3))
            i = int(np.clip(round(p[0, 1]) - o[1], 0, shade.shape[0] - 1))
            j = int(np.clip(round(p[0, 0]) - o[0], 0, shade.shape[1] - 1))
            return float(shade[i, j])

        if pose.facing([0.0, 0.0, 1.0]) > 0.0:
            for side in (-1.0, 1.0):
                eye_n = np.array([side * 0.45, 0.0, 1.0])
                if pose.facing(eye_n) > 0.05:
                    es = shade_at([side * geo.EYE_X, -0.02, geo.canonical_depth(side * geo.EYE_X, 0.0)])
                    _draw_brow(skin_u8, o, pose, app, perf, side, es)
                    _draw_eye(skin_u8, o, pose, app, perf, light, side, es)
            ms = shade_at([0.0, geo.MOUTH_Y, geo.canonical_depth(0.0, geo.MOUTH_Y)])
            _draw_mouth(skin_u8, o, pose, app, perf, ms)
            _draw_nose_details(skin_u8, o, pose, app, shade_at(geo.nose_tip()))
        c = canvas[sub(skin_rect)]
        c += (skin_u8.astype(F32) - c) * alpha[..., None]
        cover[sub(skin_rect)] = np.maximum(cover[sub(skin_rect)], alpha)
        skin = (skin_rect, depth, alpha)

    for i in (0, 1):
        if ear_facing[i] > 0.25:
            draw_ear(i)

    # 6. Hair in front, where it is nearer than the skin.
    face_alpha = np.zeros(canvas.shape[:2], F32)
    skin_depth = None
    if skin is not None:
        face_alpha[sub(skin[0])] = skin[2]
        skin_depth = np.full(canvas.shape[:2], -np.inf, F32)
        skin_depth[sub(skin[0])] = np.where(skin[2] > 0, skin[1], -np.inf)
    for rect, tf, af, col_f in front_layers:
        if skin_depth is not None:
            af = np.where(skin_depth[sub(rect)] > tf + F32(0.01), F32(0), af)
        c = canvas[sub(rect)]
        c += (col_f * F32(255) - c) * af[..., None]
        face_alpha[sub(rect)] *= F32(1) - af
        cover[sub(rect)] = np.maximum(cover[sub(rect)], af)

    img[Y0:Y1, X0:X1] = np.clip(canvas + F32(0.5), 0, 255).astype(np.uint8)
    if app.glasses and pose.facing([0.0, 0.0, 1.0]) > 0.2:
        _draw_glasses(img, pose)
    cover = np.maximum(cover, torso_m.astype(F32) * F32(1 / 255))
    return _Drawn(head_rect, face_alpha, cover)


# ----------------------------------------------------------------------------- the frame

def render(actor: Appearance, perf: Performance, width: int = 640, height: int = 480,
           extra: list[tuple[Appearance, Performance]] | None = None) -> Render:
    """Render `actor` doing `perf` (and extra actors behind it) into a width x height RGB frame with its truth."""
    if int(width) < 16 or int(height) < 16:
        raise ValueError(f"frame size {width}x{height} is too small; use at least 16x16")
    width, height = int(width), int(height)
    cam = geo.camera_affine(perf, width, height)
    bg = backdrop(actor, width, height)
    if np.allclose(cam, [[1, 0, 0], [0, 1, 0]]):
        img = bg.copy()
    else:
        img = cv2.warpAffine(bg, cam, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    extra = list(extra or [])
    for app, p in extra:
        _draw_actor(img, app, p)
    drawn = _draw_actor(img, actor, perf)
    visible = geo.face_visible(perf, width, height)
    mask = np.zeros((height, width), np.uint8)
    if visible and drawn.rect is not None:
        X0, Y0, X1, Y1 = drawn.rect
        mask[Y0:Y1, X0:X1] = np.where(drawn.face_alpha >= 0.5, 255, 0).astype(np.uint8)
    extra_lm, extra_box = [], []
    for app, p in extra:
        if not geo.face_visible(p, width, height):
            continue
        lm = geo.true_landmarks(p, width, height)
        if drawn.rect is not None:
            X0, Y0, X1, Y1 = drawn.rect
            inside = (lm[:, 0] >= X0) & (lm[:, 0] < X1) & (lm[:, 1] >= Y0) & (lm[:, 1] < Y1)
            if inside.any():
                ij = np.round(lm[inside]).astype(int)
                if np.any(drawn.cover_alpha[ij[:, 1] - Y0, ij[:, 0] - X0] > 0.5):
                    continue  # hidden behind the main actor
        extra_lm.append(lm)
        extra_box.append(geo.face_box(p, width, height))
    return Render(
        image=img,
        landmarks=geo.true_landmarks(perf, width, height) if visible else None,
        mask=mask,
        box=geo.face_box(perf, width, height) if visible else None,
        face_visible=visible,
        extra_landmarks=extra_lm,
        extra_boxes=extra_box,
    )
