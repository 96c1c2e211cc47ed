"""The judges of a swap: a small CNN that names the actor in an aligned face and reads its expression and pose.

Trained only on rendered aligned faces of several synthetic actors (A, B and random others) doing random
performances, never on swaps; cached by a hash of everything that decides its weights.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from faceswap.errors import UserError
from faceswap.extract.align import alignment_matrix, similarity_params, template_points, warp_to_crop
from faceswap.utils import atomic_path, write_json_atomic
from faceswap.resources import asset

# What the expression/pose reader predicts. Roll is read *inside the aligned crop* (the head's tilt left over
# after the similarity alignment levelled the eyes): the alignment's own rotation is shared by the swap and
# its input, so only the residual can differ between them.
EXPRESSION_PARAMS = ("mouth_open", "smile", "brow_raise", "blink", "yaw", "pitch", "roll")
SCHEMA = "faceswap.probe"
VERSION = 3
PROBE_INPUT = 64  # the probe always sees 64 px crops; other sizes are resized to it
NEUTRAL = 0.5  # grey that replaces everything outside the fixed face ellipse
NONE = "none"  # the probe's extra class: not a face of anyone it knows (noise, scrambled faces)


@dataclass(frozen=True)
class ProbeSpec:
    """Everything that decides the probe's weights (its hash names the cache entry)."""

    actors: tuple[str, ...]  # JSON of each actor's appearance; the first is A, the second B
    names: tuple[str, ...]  # a label per actor ("A", "B", "random:1001", ...)
    coverage: float = 0.75  # the alignment's coverage: must match the crops it will judge
    frame_size: int = 320  # rendered frame side (px) before alignment: faces about as detailed as in a 640x480 video
    train_per_actor: int = 240
    test_per_actor: int = 48
    epochs: int = 14
    batch_size: int = 64
    lr: float = 2.0e-3
    seed: int = 0
    performance: tuple[tuple[str, float], ...] = ()  # options for random_performance, as (key, value) pairs

    def key(self) -> str:
        from faceswap.synth import RENDERER_VERSION

        blob = json.dumps({"schema": SCHEMA, "version": VERSION, "input": PROBE_INPUT, "renderer": RENDERER_VERSION,
                           **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["actors"] = [json.loads(a) for a in self.actors]
        d["performance"] = dict(self.performance)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ProbeSpec":
        d = dict(d)
        d["actors"] = tuple(json.dumps(a, sort_keys=True) for a in d["actors"])
        d["names"] = tuple(d["names"])
        d["performance"] = tuple(sorted((str(k), float(v)) for k, v in dict(d.get("performance") or {}).items()))
        return cls(**d)


def make_spec(actor_a, actor_b, random_actors: int = 6, random_seed: int = 1000, **kwargs) -> ProbeSpec:
    """A probe spec for actors A and B (``Appearance`` objects) plus ``random_actors`` seeded others."""
    from faceswap.synth.params import random_actor

    cast = [("A", actor_a), ("B", actor_b)] + [(f"random:{random_seed + i}", random_actor(random_seed + i))
                                              for i in range(int(random_actors))]
    perf = kwargs.pop("performance", {}) or {}
    return ProbeSpec(actors=tuple(json.dumps(a.to_dict(), sort_keys=True) for _, a in cast),
                     names=tuple(n for n, _ in cast),
                     performance=tuple(sorted((str(k), float(v)) for k, v in dict(perf).items())), **kwargs)


# --- small pure functions ----------------------------------------------------------------------------------

def face_ellipse(size: int, coverage: float) -> np.ndarray:
    """The fixed face region of an aligned crop (float HxW in [0, 1]): an ellipse fitted to the template.

    It is the same for every identity (it depends on the template only), so the probe can never read
    identity off a mask's outline; only what lies inside it.
    """
    from faceswap.train.data import landmark_mask

    return landmark_mask(template_points(size, coverage), size).astype(np.float32) / 255.0


def crop_roll(roll: float, matrix: np.ndarray) -> float:
    """The head's roll left in an aligned crop: the frame roll plus the alignment's rotation (degrees, wrapped)."""
    _, angle, _, _ = similarity_params(matrix)
    r = float(roll) + math.degrees(angle)
    return (r + 180.0) % 360.0 - 180.0


def targets_of(performance: dict, matrix: np.ndarray) -> np.ndarray:
    """The reader's targets for a frame: ``EXPRESSION_PARAMS`` from its performance, roll taken in the crop."""
    out = [float(performance.get(k, 0.0)) for k in EXPRESSION_PARAMS]
    out[EXPRESSION_PARAMS.index("roll")] = crop_roll(float(performance.get("roll", 0.0)), matrix)
    return np.asarray(out, dtype=np.float32)


def to_probe_input(crops: np.ndarray, coverage: float) -> torch.Tensor:
    """Aligned crops (N, R, R, 3) uint8 -> (N, 3, 64, 64) float, grey outside the face ellipse."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2]:
        raise ValueError(f"expected (N, R, R, 3) aligned crops, got {crops.shape}")
    if crops.shape[1] != PROBE_INPUT:
        interp = cv2.INTER_AREA if crops.shape[1] > PROBE_INPUT else cv2.INTER_LINEAR
        crops = np.stack([cv2.resize(c, (PROBE_INPUT, PROBE_INPUT), interpolation=interp) for c in crops])
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    m = torch.from_numpy(face_ellipse(PROBE_INPUT, coverage))[None, None]
    return x * m + NEUTRAL * (1 - m)


def judge_crops(crops: np.ndarray, crop_matrices: np.ndarray, true_matrices: np.ndarray, crop_size: int) -> np.ndarray:
    """Re-cut crops made with one alignment (e.g. the detector's) as if aligned with another (the true landmarks).

    ``crops``: (N, R, R, 3) images cut with ``crop_matrices`` (frame -> crop at ``crop_size``) and resized to R.
    Returns (N, 64, 64, 3) crops in the true alignment, the one the probe was trained on: a detector's
    landmarks sit a little off the true ones, in a consistent way, and the judges must not be misled by it.
    """
    crops = np.asarray(crops)
    if crops.shape[1] > PROBE_INPUT:  # shrink first, so the warp below never aliases
        crops = np.stack([cv2.resize(c, (PROBE_INPUT, PROBE_INPUT), interpolation=cv2.INTER_AREA) for c in crops])
    n, r = crops.shape[0], crops.shape[1]

    def to_pixels(size: int) -> np.ndarray:
        # crop_size px -> size px, pixel-centre convention
        k = size / crop_size
        return np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1.0]])

    out = np.empty((n, PROBE_INPUT, PROBE_INPUT, 3), np.uint8)
    for i in range(n):
        src = to_pixels(r) @ np.vstack([np.asarray(crop_matrices[i], np.float64).reshape(2, 3), [0, 0, 1]])
        dst = to_pixels(PROBE_INPUT) @ np.vstack([np.asarray(true_matrices[i], np.float64).reshape(2, 3), [0, 0, 1]])
        t = dst @ np.linalg.inv(src)
        out[i] = cv2.warpAffine(np.ascontiguousarray(crops[i]), t[:2], (PROBE_INPUT, PROBE_INPUT),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


# --- the network --------------------------------------------------------------------------------------------

class ProbeNet(nn.Module):
    """Four stride-2 convs and two heads: identity logits and the standardised expression/pose parameters."""

    def __init__(self, n_classes: int, n_params: int = len(EXPRESSION_PARAMS), width: int = 32):
        super().__init__()
        chans = (3, width, width * 2, width * 4, width * 4)
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1, bias=False), nn.GroupNorm(8, b), nn.ReLU(inplace=True)]
        self.trunk = nn.Sequential(*layers)
        feat = chans[-1] * (PROBE_INPUT // 16) ** 2
        # Flatten, not global pooling: pose and mouth shape are *where* things are, which pooling throws away.
        self.neck = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(feat, 128), nn.ReLU(inplace=True))
        self.identity = nn.Linear(128, n_classes)
        self.expression = nn.Linear(128, n_params)
        self.n_classes, self.n_params, self.width = n_classes, n_params, width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.neck(self.trunk(x))
        return self.identity(h), self.expression(h)


@dataclass
class Probe:
    """A trained probe: the network, its spec and the target scaling; judges aligned crops."""

    net: ProbeNet
    spec: ProbeSpec
    param_mean: np.ndarray  # per EXPRESSION_PARAMS, over the training set
    param_std: np.ndarray
    report: dict = field(default_factory=dict)  # its own held-out accuracy and error

    @property
    def names(self) -> tuple[str, ...]:
        """The identity classes, in the order of ``predict``'s probabilities: the actors, then ``none``."""
        return (*self.spec.names, NONE)

    @torch.no_grad()
    def predict(self, crops: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Aligned crops (N, R, R, 3) uint8 -> (identity probabilities (N, classes), parameters (N, P) in their units)."""
        self.net.eval()
        probs, params = [], []
        for i in range(0, len(crops), batch):
            logits, z = self.net(to_probe_input(crops[i:i + batch], self.spec.coverage))
            probs.append(F.softmax(logits, dim=1).numpy())
            params.append(z.numpy() * self.param_std + self.param_mean)
        if not probs:
            return np.zeros((0, len(self.names))), np.zeros((0, len(EXPRESSION_PARAMS)))
        return np.concatenate(probs), np.concatenate(params)

    def identity_rate(self, crops: np.ndarray, name: str = "A") -> float:
        """Share of crops whose most likely actor is ``name``."""
        probs, _ = self.predict(crops)
        return float(np.mean(probs.argmax(1) == self.names.index(name))) if len(probs) else float("nan")

    def expression_errors(self, crops: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Per-parameter mean absolute error in standard deviations of the training distribution, (P,)."""
        from faceswap.evaluate.metrics import normalised_errors

        _, params = self.predict(crops)
        return normalised_errors(params, targets, self.param_std)

    # --- files ---

    def save(self, folder: str | os.PathLike) -> Path:
        """``folder/<key>.safetensors`` (weights) + ``folder/<key>.json`` (spec, scaling, report)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key = self.spec.key()
        with atomic_path(folder / f"{key}.safetensors", suffix=".safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}, str(tmp))
        write_json_atomic(folder / f"{key}.json", {
            "schema": SCHEMA, "version": VERSION, "key": key, "spec": self.spec.to_dict(),
            "net": {"n_classes": self.net.n_classes, "n_params": self.net.n_params, "width": self.net.width},
            "params": list(EXPRESSION_PARAMS), "param_mean": self.param_mean.tolist(),
            "param_std": self.param_std.tolist(), "report": self.report,
        })
        return folder / f"{key}.json"

    @classmethod
    def load(cls, meta_path: str | os.PathLike) -> "Probe":
        from safetensors.torch import load_file

        meta_path = Path(meta_path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("schema") != SCHEMA or int(meta.get("version", 0)) != VERSION:
                raise ValueError(f"schema {meta.get('schema')!r} version {meta.get('version')!r}")
            spec = ProbeSpec.from_dict(meta["spec"])
            net = ProbeNet(**meta["net"])
            net.load_state_dict(load_file(str(meta_path.with_suffix(".safetensors"))), strict=True)
        except Exception as exc:  # noqa: BLE001 - any damage means: do not trust this file
            raise UserError(f"probe file {meta_path} is damaged ({type(exc).__name__}: {exc}); delete it and its "
                            ".safetensors twin to retrain") from None
        net.eval()
        return cls(net, spec, np.asarray(meta["param_mean"], np.float32), np.asarray(meta["param_std"], np.float32),
                   meta.get("report", {}))


# --- data ---------------------------------------------------------------------------------------------------

def _performances(n: int, seed: int, options: dict) -> list:
    """``n`` varied performances: random sequences thinned so neighbours are not near-copies.

    Blinks and raised brows are brief events in a performance; for half of the faces the four expression
    values are re-drawn uniformly so that the reader sees every value often, not mostly zeros.
    """
    from faceswap.synth import random_performance

    rng = np.random.default_rng([seed, 77])
    out: list = []
    chunk = 0
    while len(out) < n:
        seq = random_performance(max(4 * n, 64), seed=seed * 1009 + chunk, **options)
        out.extend(seq[::4])
        chunk += 1
    out = out[:n]
    for i in range(len(out)):
        if rng.uniform() < 0.5:
            mouth, smile, brow, blink = rng.uniform(0, 1, 4)
            out[i] = out[i].replace(mouth_open=float(mouth), smile=float(smile * 0.8), brow_raise=float(brow * 0.8),
                                    blink=float(blink))
    return out


def render_set(spec: ProbeSpec, split: str, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rendered aligned crops of every actor: (crops (N, 64, 64, 3) uint8, actor index (N,), targets (N, P)).

    ``split``: ``train`` or ``test`` (other performance seeds). Alignment uses the renderer's true
    landmarks, jittered a little (as a detector would), and every actor gets its own performances.
    """
    from faceswap.synth.params import Appearance, on_set_of
    from faceswap.synth.render import render

    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    per_actor = spec.train_per_actor if split == "train" else spec.test_per_actor
    base = spec.seed * 7919 + (0 if split == "train" else 104729)
    options = dict(spec.performance)
    rng = np.random.default_rng(base)
    size = spec.frame_size
    crops, ids, targets = [], [], []
    cast = [Appearance.from_dict(json.loads(a)) for a in spec.actors]
    bar = _bar(len(spec.actors) * per_actor, f"probe: render {split}", progress)
    for i, actor in enumerate(cast):
        for perf in _performances(per_actor, base + 31 * i, options):
            # Every actor on every set: the room behind a face must never tell who it is.
            r = render(on_set_of(actor, cast[int(rng.integers(len(cast)))]), perf, size, size)
            bar.update(1)
            if r.landmarks is None:
                continue
            lm = np.asarray(r.landmarks, dtype=np.float64)
            # A detector's landmarks wander by a few percent of the eye distance.
            eye = float(np.hypot(*(lm[1] - lm[0])))
            lm = lm + rng.normal(0, 0.03 * eye, lm.shape)
            # Cut at twice the size, then shrink: the way extract's crops reach a model.
            m = alignment_matrix(lm, 2 * PROBE_INPUT, spec.coverage)
            big = warp_to_crop(r.image, m, 2 * PROBE_INPUT)
            crops.append(cv2.resize(big, (PROBE_INPUT, PROBE_INPUT), interpolation=cv2.INTER_AREA))
            ids.append(i)
            targets.append(targets_of(perf.to_dict(), m))
    bar.close()
    if not crops:
        raise UserError("the probe's renders show no face; check the synth settings")
    return np.stack(crops), np.asarray(ids, np.int64), np.stack(targets)


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not (progress and sys.stderr.isatty()))


def nonfaces(crops: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images that are nobody's face: coloured noise, smooth blobs and faces scrambled in 8 px blocks.

    The scrambled faces keep a real face's colours but none of its structure, so the probe cannot name an
    actor from skin colour alone; the noise is what an untrained decoder puts out.
    """
    size = crops.shape[1]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        kind = i % 3
        if kind == 0:
            mean = rng.uniform(0.2, 0.8, 3)
            img = mean + rng.normal(0, rng.uniform(0.02, 0.25), (size, size, 3))
        elif kind == 1:
            cells = int(rng.integers(2, 9))
            low = rng.uniform(0, 1, (cells, cells, 3)).astype(np.float32)
            img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        else:
            face = crops[int(rng.integers(len(crops)))].astype(np.float32) / 255.0
            b = 8
            blocks = face.reshape(size // b, b, size // b, b, 3).transpose(0, 2, 1, 3, 4).reshape(-1, b, b, 3)
            blocks = blocks[rng.permutation(len(blocks))]
            img = blocks.reshape(size // b, size // b, b, b, 3).transpose(0, 2, 1, 3, 4).reshape(size, size, 3)
        out[i] = np.clip(np.asarray(img) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random blur, noise and small colour changes: a swap is softer than a render, and the probe must not care."""
    n = x.shape[0]
    sigma = float(torch.rand((), generator=gen)) * 1.6 + 0.2
    k = 2 * int(math.ceil(2 * sigma)) + 1
    blurred = _gaussian_blur(x, sigma, k)
    pick = (torch.rand(n, 1, 1, 1, generator=gen) < 0.6).float()
    x = pick * blurred + (1 - pick) * x
    gain = 1 + 0.12 * (torch.rand(n, 3, 1, 1, generator=gen) - 0.5)
    bias = 0.06 * (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)
    x = x * gain + bias
    x = x + 0.02 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1)


def _gaussian_blur(x: torch.Tensor, sigma: float, k: int) -> torch.Tensor:
    t = torch.arange(k, dtype=x.dtype) - k // 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (k // 2, k // 2, 0, 0), mode="replicate"), g.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, k // 2, k // 2), mode="replicate"), g.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


# --- training -----------------------------------------------------------------------------------------------

def train_probe(spec: ProbeSpec, progress: bool = False, log: Callable[[str], None] | None = None) -> Probe:
    """Render the training and test sets, train the probe, and measure it on the held-out renders."""
    t0 = time.perf_counter()
    torch.manual_seed(spec.seed)
    gen = torch.Generator().manual_seed(spec.seed)
    crops, ids, targets = render_set(spec, "train", progress)
    test_crops, test_ids, test_targets = render_set(spec, "test", progress)
    t_render = time.perf_counter() - t0
    mean = targets.mean(axis=0)
    std = np.maximum(targets.std(axis=0), 1e-3)
    rng = np.random.default_rng(spec.seed)
    # One more class of non-faces, as many as one actor's faces, so that junk is never called anybody.
    negs = nonfaces(crops, spec.train_per_actor, rng)
    test_negs = nonfaces(test_crops, spec.test_per_actor, rng)
    none = len(spec.actors)
    x_all = to_probe_input(np.concatenate([crops, negs]), spec.coverage)
    y_all = torch.from_numpy(np.concatenate([ids, np.full(len(negs), none)]))
    z_all = torch.from_numpy(np.concatenate([(targets - mean) / std, np.zeros((len(negs), targets.shape[1]))])).float()
    is_face = (y_all != none).float()[:, None]
    net = ProbeNet(len(spec.actors) + 1)
    opt = torch.optim.AdamW(net.parameters(), lr=spec.lr, weight_decay=1e-4)
    n = len(x_all)
    steps_per_epoch = max(1, math.ceil(n / spec.batch_size))
    total = spec.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=spec.lr, total_steps=total, pct_start=0.2)
    mask = torch.from_numpy(face_ellipse(PROBE_INPUT, spec.coverage))[None, None]
    bar = _bar(total, "probe: train", progress)
    net.train()
    for _ in range(spec.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(steps_per_epoch):
            idx = order[s * spec.batch_size:(s + 1) * spec.batch_size]
            # Degrade the face only; the outside stays the neutral grey the probe always sees there.
            x = degrade(x_all[idx], gen) * mask + NEUTRAL * (1 - mask)
            logits, z = net(x)
            # Non-faces have no expression: they teach the identity head only.
            w = is_face[idx]
            reg = (F.smooth_l1_loss(z, z_all[idx], beta=0.5, reduction="none") * w).sum() / (w.sum() * z.shape[1]).clamp(min=1)
            loss = F.cross_entropy(logits, y_all[idx]) + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    net.eval()
    probe = Probe(net, spec, mean.astype(np.float32), std.astype(np.float32))
    probs, params = probe.predict(test_crops)
    neg_probs, _ = probe.predict(test_negs)
    from faceswap.evaluate.metrics import normalised_errors

    per_param = normalised_errors(params, test_targets, probe.param_std)
    probe.report = {
        "identity_accuracy": float(np.mean(probs.argmax(1) == test_ids)),
        "nonface_rejection": float(np.mean(neg_probs.argmax(1) == none)),
        "expression_error_on_renders": float(per_param.mean()),
        "expression_error_per_param": {k: float(v) for k, v in zip(EXPRESSION_PARAMS, per_param)},
        "param_std": {k: float(v) for k, v in zip(EXPRESSION_PARAMS, std)},
        "train_faces": int(len(crops)), "test_faces": int(len(test_crops)), "actors": list(spec.names),
        "render_seconds": round(t_render, 1), "seconds": round(time.perf_counter() - t0, 1),
    }
    if log:
        log(f"probe: trained in {probe.report['seconds']:.0f} s: identity accuracy "
            f"{probe.report['identity_accuracy']:.3f}, expression error {probe.report['expression_error_on_renders']:.3f} "
            f"std on {len(test_crops)} held-out renders")
    return probe


# --- where trained probes live --------------------------------------------------------------------------------

SHIPPED_DIR = asset("probe")


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "faceswap" / "probe"


def get_probe(spec: ProbeSpec, cache_dir: str | os.PathLike | None = None, progress: bool = False,
              log: Callable[[str], None] | None = None, search: Sequence[Path] = ()) -> tuple[Probe, str]:
    """The probe for ``spec``: a shipped or cached copy when one matches its hash, else trained now and cached.

    Returns (probe, where it came from: ``shipped``, ``cache`` or ``trained``).
    """
    key = spec.key()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    for where, folder in [("shipped", SHIPPED_DIR), *[("given", Path(p)) for p in search], ("cache", cache)]:
        meta = folder / f"{key}.json"
        if meta.is_file() and meta.with_suffix(".safetensors").is_file():
            return Probe.load(meta), where
    probe = train_probe(spec, progress=progress, log=log)
    try:
        probe.save(cache)
    except OSError as exc:  # a read-only home must not stop an evaluation
        if log:
            log(f"probe: could not cache the trained probe in {cache} ({exc}); it will be retrained next time")
    return probe, "trained"


__all__ = [
    "EXPRESSION_PARAMS", "ProbeSpec", "make_spec", "face_ellipse", "crop_roll", "targets_of", "to_probe_input",
    "judge_crops",
    "ProbeNet", "Probe", "render_set", "nonfaces", "degrade", "train_probe", "NONE", "get_probe", "default_cache_dir", "SHIPPED_DIR",
]
