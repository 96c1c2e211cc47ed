"""Parameters of the synthetic actors: an identity's appearance, a frame's performance, the built-in cast and a seeded casting call."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

RGB = tuple[float, float, float]  # linear 0..1 colour, RGB order

HAIR_STYLES = ("short", "long", "bald", "fringe", "curly", "buzz")
BACKGROUNDS = ("gradient", "stripes", "dots", "blobs", "tiles")


def _from_dict(cls, data: dict[str, Any], what: str):
    """Build a frozen parameter dataclass from JSON data: lists become tuples, unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a mapping, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}; known keys: {sorted(names)}")
    kwargs = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v for k, v in data.items()}
    return cls(**kwargs)


def _to_dict(obj) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, tuple):
            v = [float(x) for x in v]
        elif isinstance(v, (bool, str)):
            pass
        elif isinstance(v, (int, float, np.floating, np.integer)):
            v = float(v)
        out[f.name] = v
    return out


@dataclass(frozen=True)
class Appearance:
    """Who the actor is. Shape changes move the outline only: the five landmarks depend on the performance alone."""

    name: str = "actor"
    face_width: float = 1.0      # cranium width factor (0.9..1.1)
    face_height: float = 1.0     # cranium height factor (0.95..1.05)
    jaw: float = 0.5             # 0 narrow, pointed jaw .. 1 wide, square jaw
    chin: float = 0.5            # 0 short chin .. 1 long chin
    skin: RGB = (0.90, 0.74, 0.62)
    hair_style: str = "short"    # one of HAIR_STYLES
    hair_color: RGB = (0.20, 0.13, 0.08)
    hair_volume: float = 0.5     # 0 flat .. 1 voluminous
    hair_length: float = 0.5     # long styles: 0 shoulder .. 1 chest
    eye_color: RGB = (0.30, 0.20, 0.12)
    eye_size: float = 1.0        # opening size factor (0.85..1.15); the eye centre does not move
    brow_thickness: float = 0.5  # 0 thin .. 1 bushy
    brow_color: RGB = (0.18, 0.12, 0.08)
    nose_length: float = 0.5     # 0 short .. 1 long bridge (the tip stays put)
    nose_width: float = 0.5      # 0 narrow .. 1 wide
    lip_color: RGB = (0.72, 0.36, 0.36)
    lip_fullness: float = 0.5    # 0 thin .. 1 full
    beard: float = 0.0           # 0 none, ~0.4 stubble, 1 full beard
    glasses: bool = False
    freckles: float = 0.0        # 0 none .. 1 many
    shirt_color: RGB = (0.25, 0.35, 0.55)
    background: RGB = (0.62, 0.66, 0.70)
    background2: RGB = (0.50, 0.54, 0.60)
    background_pattern: str = "gradient"  # one of BACKGROUNDS

    def __post_init__(self):
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"hair_style {self.hair_style!r} is not one of {HAIR_STYLES}")
        if self.background_pattern not in BACKGROUNDS:
            raise ValueError(f"background_pattern {self.background_pattern!r} is not one of {BACKGROUNDS}")

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Appearance":
        return _from_dict(cls, data, "appearance")


@dataclass(frozen=True)
class Performance:
    """What the actor does in one frame: pose, expression, gaze, light and camera. Angles are in degrees.

    yaw > 0 turns the nose toward image-right, pitch > 0 looks up, roll > 0 tilts clockwise on screen.
    x, y place the face centre (between eyes and mouth) in the frame, normalised 0..1;
    scale is the head height (crown to chin) over the frame height. gaze > 0 looks right / down.
    light_azimuth > 0 lights from image-right, light_elevation > 0 from above.
    zoom magnifies about the frame centre; shake_x, shake_y move the camera image, in frame heights.
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    x: float = 0.5
    y: float = 0.5
    scale: float = 0.55
    mouth_open: float = 0.0
    smile: float = 0.0
    brow_raise: float = 0.0
    blink: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    light_azimuth: float = 20.0
    light_elevation: float = 30.0
    light_intensity: float = 1.0
    zoom: float = 1.0
    shake_x: float = 0.0
    shake_y: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Performance":
        perf = _from_dict(cls, data, "performance")
        return dataclasses.replace(perf, **{f.name: float(getattr(perf, f.name)) for f in fields(cls)})

    def replace(self, **changes) -> "Performance":
        return dataclasses.replace(self, **changes)


BUILTIN_ACTORS: dict[str, Appearance] = {
    # A: light skin, long dark hair, blue eyes, slim face with a pointed chin.
    "A": Appearance(
        name="A", face_width=0.95, face_height=1.02, jaw=0.2, chin=0.65,
        skin=(0.95, 0.80, 0.70), hair_style="long", hair_color=(0.16, 0.10, 0.07), hair_volume=0.45,
        hair_length=0.6, eye_color=(0.22, 0.45, 0.78), eye_size=1.08, brow_thickness=0.35,
        brow_color=(0.20, 0.13, 0.09), nose_length=0.35, nose_width=0.3, lip_color=(0.80, 0.38, 0.42),
        lip_fullness=0.7, shirt_color=(0.15, 0.50, 0.52), background=(0.70, 0.76, 0.82),
        background2=(0.55, 0.62, 0.72), background_pattern="gradient",
    ),
    # B: darker skin, short auburn hair, brown eyes, wide square jaw, bushy brows.
    "B": Appearance(
        name="B", face_width=1.07, face_height=0.97, jaw=0.95, chin=0.25,
        skin=(0.56, 0.37, 0.25), hair_style="short", hair_color=(0.52, 0.20, 0.08), hair_volume=0.55,
        eye_color=(0.30, 0.17, 0.08), eye_size=0.92, brow_thickness=0.85, brow_color=(0.22, 0.12, 0.06),
        nose_length=0.6, nose_width=0.85, lip_color=(0.50, 0.26, 0.24), lip_fullness=0.55,
        shirt_color=(0.80, 0.62, 0.18), background=(0.80, 0.72, 0.60), background2=(0.70, 0.60, 0.48),
        background_pattern="stripes",
    ),
    # C: medium skin, bald, full beard, green eyes, glasses.
    "C": Appearance(
        name="C", face_width=1.02, face_height=1.0, jaw=0.7, chin=0.5,
        skin=(0.80, 0.60, 0.46), hair_style="bald", hair_color=(0.25, 0.22, 0.20), hair_volume=0.2,
        eye_color=(0.30, 0.55, 0.30), eye_size=1.0, brow_thickness=0.6, brow_color=(0.25, 0.22, 0.20),
        nose_length=0.8, nose_width=0.6, lip_color=(0.66, 0.40, 0.36), lip_fullness=0.35, beard=0.9,
        glasses=True, shirt_color=(0.55, 0.12, 0.14), background=(0.55, 0.68, 0.52),
        background2=(0.45, 0.58, 0.44), background_pattern="blobs",
    ),
    # D: olive skin, black hair with a fringe, grey eyes, freckles.
    "D": Appearance(
        name="D", face_width=0.93, face_height=1.04, jaw=0.4, chin=0.55,
        skin=(0.84, 0.67, 0.50), hair_style="fringe", hair_color=(0.06, 0.05, 0.05), hair_volume=0.4,
        hair_length=0.2, eye_color=(0.45, 0.50, 0.55), eye_size=1.1, brow_thickness=0.5,
        brow_color=(0.08, 0.07, 0.07), nose_length=0.45, nose_width=0.45, lip_color=(0.70, 0.30, 0.32),
        lip_fullness=0.6, freckles=0.7, shirt_color=(0.40, 0.25, 0.55), background=(0.78, 0.78, 0.76),
        background2=(0.66, 0.66, 0.64), background_pattern="dots",
    ),
    # E: pale skin, curly blond hair, hazel eyes, round face.
    "E": Appearance(
        name="E", face_width=1.05, face_height=0.98, jaw=0.6, chin=0.3,
        skin=(0.97, 0.84, 0.76), hair_style="curly", hair_color=(0.85, 0.68, 0.38), hair_volume=0.9,
        eye_color=(0.45, 0.38, 0.15), eye_size=0.95, brow_thickness=0.3, brow_color=(0.62, 0.46, 0.26),
        nose_length=0.3, nose_width=0.55, lip_color=(0.85, 0.48, 0.48), lip_fullness=0.45, beard=0.0,
        shirt_color=(0.20, 0.45, 0.25), background=(0.60, 0.55, 0.70), background2=(0.50, 0.45, 0.60),
        background_pattern="tiles",
    ),
}

_SKINS = [(0.97, 0.84, 0.76), (0.95, 0.80, 0.70), (0.88, 0.70, 0.56), (0.80, 0.60, 0.46), (0.68, 0.48, 0.34),
          (0.56, 0.37, 0.25), (0.42, 0.28, 0.19)]
_HAIRS = [(0.06, 0.05, 0.05), (0.16, 0.10, 0.07), (0.30, 0.19, 0.10), (0.55, 0.38, 0.20), (0.85, 0.68, 0.38),
          (0.72, 0.33, 0.12), (0.60, 0.58, 0.56)]
_EYES = [(0.30, 0.17, 0.08), (0.22, 0.45, 0.78), (0.30, 0.55, 0.30), (0.45, 0.50, 0.55), (0.45, 0.38, 0.15)]


def _jitter(rng: np.random.Generator, rgb, amount: float = 0.04) -> RGB:
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0.0, 1.0)) for c in rgb)


def random_actor(seed: int) -> Appearance:
    """A new identity drawn from the same ranges as the built-in cast; the same seed gives the same actor."""
    rng = np.random.default_rng([int(seed), 0x5A17])
    hair = _HAIRS[rng.integers(len(_HAIRS))]
    style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
    bg = tuple(float(x) for x in rng.uniform(0.45, 0.85, 3))
    return Appearance(
        name=f"random:{int(seed)}",
        face_width=float(rng.uniform(0.92, 1.08)), face_height=float(rng.uniform(0.96, 1.04)),
        jaw=float(rng.uniform(0, 1)), chin=float(rng.uniform(0, 1)),
        skin=_jitter(rng, _SKINS[rng.integers(len(_SKINS))], 0.03),
        hair_style=style, hair_color=_jitter(rng, hair), hair_volume=float(rng.uniform(0.2, 0.9)),
        hair_length=float(rng.uniform(0, 1)), eye_color=_jitter(rng, _EYES[rng.integers(len(_EYES))]),
        eye_size=float(rng.uniform(0.88, 1.12)), brow_thickness=float(rng.uniform(0.2, 0.9)),
        brow_color=tuple(float(c) * 0.8 for c in hair), nose_length=float(rng.uniform(0, 1)),
        nose_width=float(rng.uniform(0, 1)), lip_color=_jitter(rng, (0.72, 0.36, 0.36), 0.08),
        lip_fullness=float(rng.uniform(0.2, 0.9)),
        beard=float(rng.choice([0.0, 0.0, 0.0, 0.4, 0.9])), glasses=bool(rng.uniform() < 0.2),
        freckles=float(rng.choice([0.0, 0.0, 0.5])),
        shirt_color=tuple(float(x) for x in rng.uniform(0.1, 0.8, 3)), background=bg,
        background2=tuple(float(np.clip(c - 0.1, 0, 1)) for c in bg),
        background_pattern=BACKGROUNDS[rng.integers(len(BACKGROUNDS))],
    )


SET_FIELDS = ("background", "background2", "background_pattern")


def on_set_of(actor: Appearance, owner: Appearance) -> Appearance:
    """`actor` filmed on `owner`'s set: a swap changes the person, never the room behind them."""
    return dataclasses.replace(actor, **{k: getattr(owner, k) for k in SET_FIELDS})


def actor_by_name(name: str) -> Appearance:
    """``"A"``..``"E"`` for the built-in cast, ``"random:SEED"`` for a seeded new identity."""
    name = str(name).strip()
    if name in BUILTIN_ACTORS:
        return BUILTIN_ACTORS[name]
    if name.startswith("random:"):
        try:
            return random_actor(int(name.split(":", 1)[1]))
        except ValueError:
            pass
    raise KeyError(f"unknown actor {name!r}; use one of {', '.join(BUILTIN_ACTORS)} or random:SEED (an integer)")
