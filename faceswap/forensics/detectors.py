"""Detectors of swapped faces, trained from scratch on CPU: spectral, Meso-4, blending boundary (X-ray), temporal flicker."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from faceswap.errors import UserError
from faceswap.forensics import features as feat

SCHEMA = "faceswap.detector"
VERSION = 1


def _progress(iterable, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, disable=not (enabled and sys.stderr.isatty()))


def crops_to_tensor(crops: np.ndarray, size: int | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> float NCHW in [0, 1], area-resized to ``size`` when given."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear", align_corners=None)
    return x


def _class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights that give both classes equal total weight."""
    y = np.asarray(labels).astype(bool)
    w = np.ones(len(y), dtype=np.float32)
    for cls in (True, False):
        n = int((y == cls).sum())
        if n:
            w[y == cls] = len(y) / (2.0 * n)
    return w


# ---------------------------------------------------------------- logistic regression


class LogisticRegression:
    """L2-regularised logistic regression on standardised features, fitted full-batch with L-BFGS (small data, exact optimum)."""

    def __init__(self, n_features: int, l2: float = 1e-2):
        self.l2 = float(l2)
        self.weight = torch.zeros(n_features, dtype=torch.float64)
        self.bias = torch.zeros((), dtype=torch.float64)
        self.mean = torch.zeros(n_features, dtype=torch.float64)
        self.std = torch.ones(n_features, dtype=torch.float64)

    def fit(self, x: np.ndarray, y: np.ndarray, balance: bool = True) -> float:
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
        yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)
        if xt.ndim != 2 or len(xt) != len(yt) or len(xt) == 0:
            raise ValueError(f"logistic regression needs (N, D) features and N labels, got {tuple(xt.shape)} and {tuple(yt.shape)}")
        self.mean = xt.mean(0)
        self.std = xt.std(0, unbiased=False).clamp_min(1e-6)
        z = (xt - self.mean) / self.std
        sw = torch.as_tensor(_class_weights(y) if balance else np.ones(len(yt)), dtype=torch.float64)
        w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (F.binary_cross_entropy_with_logits(z @ w + b, yt, reduction="none") * sw).mean() + self.l2 * (w * w).sum()
            loss.backward()
            return loss

        loss = opt.step(closure)
        self.weight, self.bias = w.detach(), b.detach()
        return float(loss.detach())

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (torch.as_tensor(np.asarray(x), dtype=torch.float64) - self.mean) / self.std
        return (z @ self.weight + self.bias).numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(x)))

    def tensors(self, prefix: str = "lr.") -> dict[str, torch.Tensor]:
        return {prefix + k: getattr(self, k).clone() for k in ("weight", "bias", "mean", "std")}

    def load_tensors(self, tensors: dict[str, torch.Tensor], prefix: str = "lr.") -> None:
        for k in ("weight", "bias", "mean", "std"):
            have = tensors[prefix + k].to(torch.float64)
            if have.shape != getattr(self, k).shape:
                raise ValueError(f"{prefix + k} has shape {tuple(have.shape)}, expected {tuple(getattr(self, k).shape)}")
            setattr(self, k, have)


# ---------------------------------------------------------------- the detector contract


class Detector:
    """Fit on labelled samples (1 = swapped), score new ones with P(swapped); save as safetensors + JSON.

    ``unit`` says what one sample is: ``"frame"`` (an aligned crop, (N, H, W, 3) uint8) or ``"clip"``
    (a list of (T, H, W, 3) runs of consecutive crops).
    """

    name: ClassVar[str] = ""
    unit: ClassVar[str] = "frame"
    defaults: ClassVar[dict] = {}

    def __init__(self, **params):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise UserError(f"detector '{self.name}' has no setting(s) {sorted(unknown)}; it knows {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}
        self.meta: dict = {}

    def fit(self, samples, labels: np.ndarray, *, seed: int = 0, progress: bool = False) -> dict:  # pragma: no cover
        raise NotImplementedError

    def score(self, samples) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:  # pragma: no cover
        raise NotImplementedError

    def n_parameters(self) -> int:
        return int(sum(t.numel() for t in self.tensors().values()))


class _LogisticDetector(Detector):
    """A detector that is hand-made features (``features``) + the logistic regression ``self.lr``."""

    lr: LogisticRegression

    def features(self, samples) -> np.ndarray:  # pragma: no cover - each subclass says
        raise NotImplementedError

    def score(self, samples):
        return self.lr.predict_proba(self.features(samples)) if len(samples) else np.zeros(0)

    def tensors(self):
        return self.lr.tensors()

    def load_tensors(self, tensors):
        self.lr.load_tensors(tensors)


class SpectralDetector(_LogisticDetector):
    """Azimuthal average of the log power spectrum + logistic regression (Durall et al. 2020).

    Up-sampling in the decoder and the resize back into the frame leave too little (or periodic)
    energy at high frequencies; the 1-D spectrum shows it at a glance.
    """

    name = "spectral"
    defaults = {"bins": 48, "l2": 1e-2}

    def __init__(self, **params):
        super().__init__(**params)
        self.lr = LogisticRegression(int(self.params["bins"]), float(self.params["l2"]))

    def features(self, crops: np.ndarray) -> np.ndarray:
        return feat.spectral_features(crops, int(self.params["bins"]))

    def fit(self, samples, labels, *, seed=0, progress=False):
        loss = self.lr.fit(self.features(samples), labels)
        self.meta = {"train_loss": loss, "train_samples": int(len(labels))}
        return self.meta



class Meso4(nn.Module):
    """Meso-4 (Afchar et al. 2018): four conv blocks and a 16-unit dense layer, ~28k parameters.

    The paper feeds 256 px and ends with a 4x max-pool to 8x8x16; an adaptive max-pool to 8x8 keeps that
    dense layer (and the parameter count) for any input size, so 128 px crops cost a quarter of the compute.
    """

    def __init__(self):
        super().__init__()

        def block(cin, cout, k, pool):
            return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True), nn.BatchNorm2d(cout), pool]

        self.features = nn.Sequential(
            *block(3, 8, 3, nn.MaxPool2d(2)), *block(8, 8, 5, nn.MaxPool2d(2)),
            *block(8, 16, 5, nn.MaxPool2d(2)), *block(16, 16, 5, nn.AdaptiveMaxPool2d(8)),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 8 * 8, 16), nn.LeakyReLU(0.1), nn.Dropout(0.5), nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)


def _module_tensors(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def _load_module(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights do not fit {type(module).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0)


class Meso4Detector(Detector):
    """Meso-4 trained from scratch with Adam on balanced mini-batches and random horizontal flips."""

    name = "meso4"
    defaults = {"size": 128, "epochs": 12, "batch": 32, "lr": 1e-3}

    def __init__(self, **params):
        super().__init__(**params)
        self.net = Meso4()

    def fit(self, samples, labels, *, seed=0, progress=False):
        torch.manual_seed(seed)
        self.net = Meso4()  # fresh weights drawn from the seed: the same data and seed give the same detector
        x = crops_to_tensor(samples, int(self.params["size"]))
        y = torch.as_tensor(np.asarray(labels), dtype=torch.float32)
        w = torch.as_tensor(_class_weights(labels))
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.params["lr"]))
        bs = int(self.params["batch"])
        gen = torch.Generator().manual_seed(seed)
        losses = []
        self.net.train()
        for _ in _progress(range(int(self.params["epochs"])), progress, "meso4"):
            perm = torch.randperm(len(x), generator=gen)
            total = 0.0
            for i in range(0, len(x), bs):
                idx = perm[i:i + bs]
                xb = x[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                loss = (F.binary_cross_entropy_with_logits(self.net(xb), y[idx], reduction="none") * w[idx]).mean()
                if not torch.isfinite(loss):
                    raise RuntimeError("meso4 training diverged (non-finite loss); lower forensics.detectors.meso4.lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(x))
        self.net.eval()
        self.meta = {"train_loss": losses, "train_samples": int(len(labels)), "parameters": self.n_parameters()}
        return self.meta

    def score(self, samples):
        if not len(samples):
            return np.zeros(0)
        self.net.eval()
        x = crops_to_tensor(samples, int(self.params["size"]))
        return torch.sigmoid(_batched(self.net, x)).numpy().astype(np.float64)

    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    def tensors(self):
        return _module_tensors(self.net, "net.")

    def load_tensors(self, tensors):
        _load_module(self.net, tensors, "net.")


class XRayNet(nn.Module):
    """A small fully convolutional net mapping a face crop to its blending-boundary map at 1/4 resolution.

    Dilated convolutions widen the view to the whole seam without more down-sampling, which would
    smear the one-pixel texture changes a seam leaves.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        w = width

        def cbr(cin, cout, stride=1, dil=1):
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=dil, dilation=dil, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *cbr(3, w // 2, stride=2), *cbr(w // 2, w), *cbr(w, 2 * w, stride=2),
            *cbr(2 * w, 2 * w, dil=2), *cbr(2 * w, 2 * w, dil=4), *cbr(2 * w, w),
            nn.Conv2d(w, 1, 1),
        )
        # Start near the prior (most of a map is zero), so early steps learn seams, not the background level.
        nn.init.constant_(self.body[-1].bias, -4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


def _top_mean(maps: torch.Tensor, frac: float) -> torch.Tensor:
    """Mean of the largest ``frac`` of each map's values: a max that one noisy pixel cannot set."""
    flat = maps.flatten(1)
    k = max(1, int(round(frac * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean(1)


class XRayDetector(Detector):
    """Face X-ray (Li et al. 2020): predict ``4 M (1 - M)`` of the paste-back mask; the score is the map's (robust) max.

    Trained on real faces alone, by self-blending (a perturbed copy of each real face pasted into itself
    through a random feathered mask), so it never sees a swap made by our pipeline. A 1-D logistic
    calibration on held-out self-blends turns the map score into a probability.
    """

    name = "xray"
    defaults = {"size": 128, "epochs": 10, "batch": 32, "lr": 2e-3, "width": 16, "top": 0.01, "blend_prob": 0.5}

    def __init__(self, **params):
        super().__init__(**params)
        self.net = XRayNet(int(self.params["width"]))
        self.calib = LogisticRegression(1, l2=1e-4)

    def _pairs(self, crops: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Self-blend a random half of ``crops``; return images, boundary maps and image labels."""
        imgs, maps, labels = [], [], []
        for c in crops:
            if rng.random() < float(self.params["blend_prob"]):
                img, mask = feat.self_blend(c, rng)
                imgs.append(img)
                maps.append(feat.blending_map(mask))
                labels.append(1)
            else:
                imgs.append(c)
                maps.append(np.zeros(c.shape[:2], np.float32))
                labels.append(0)
        return np.stack(imgs), np.stack(maps), np.array(labels)

    def _maps(self, x: torch.Tensor) -> torch.Tensor:
        return _batched(lambda b: torch.sigmoid(self.net(b)), x)

    def predict_maps(self, crops: np.ndarray) -> np.ndarray:
        """Predicted boundary maps in [0, 1], (N, size/4, size/4)."""
        self.net.eval()
        return self._maps(crops_to_tensor(crops, int(self.params["size"]))).numpy()

    def _raw_score(self, crops: np.ndarray) -> np.ndarray:
        self.net.eval()
        maps = self._maps(crops_to_tensor(crops, int(self.params["size"])))
        return _top_mean(maps, float(self.params["top"])).numpy()[:, None]

    def fit(self, samples, labels, *, seed=0, progress=False):
        real = np.asarray(samples)[np.asarray(labels) == 0]
        if len(real) < 8:
            raise UserError(f"the xray detector needs at least 8 real faces to self-blend, got {len(real)}")
        torch.manual_seed(seed)
        self.net = XRayNet(int(self.params["width"]))  # fresh weights drawn from the seed
        rng = np.random.default_rng(seed)
        size = int(self.params["size"])
        n_cal = max(4, len(real) // 8)
        perm = rng.permutation(len(real))
        cal, train = real[perm[:n_cal]], real[perm[n_cal:]]
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.params["lr"]))
        epochs = int(self.params["epochs"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(self.params["lr"]), total_steps=max(1, epochs * -(-len(train) // int(self.params["batch"]))))
        bs = int(self.params["batch"])
        losses = []
        self.net.train()
        for _ in _progress(range(epochs), progress, "xray"):
            # Fresh blends every epoch: the net never sees the same seam twice.
            imgs, maps, _ = self._pairs(train, rng)
            x = crops_to_tensor(imgs, size)
            target = F.interpolate(torch.from_numpy(maps)[:, None], size=(size // 4, size // 4), mode="area").squeeze(1)
            order = torch.from_numpy(rng.permutation(len(x)))
            total = 0.0
            for i in range(0, len(x), bs):
                idx = order[i:i + bs]
                xb, tb = x[idx], target[idx]
                if rng.random() < 0.5:
                    xb, tb = xb.flip(-1), tb.flip(-1)
                loss = F.binary_cross_entropy_with_logits(self.net(xb), tb)
                if not torch.isfinite(loss):
                    raise RuntimeError("xray training diverged (non-finite loss); lower forensics.detectors.xray.lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / len(x))
        self.net.eval()
        # Calibrate on faces the net never trained on, blended with seams it never saw.
        cal_imgs, _, cal_labels = self._pairs(np.concatenate([cal, cal]), rng)
        cal_raw = self._raw_score(cal_imgs)
        self.calib.fit(cal_raw, cal_labels)
        self.meta = {"train_loss": losses, "train_real_faces": int(len(train)), "parameters": self.n_parameters(),
                     "selfblend_auc": feat.roc_auc(cal_raw[:, 0], cal_labels)}
        return self.meta

    def score(self, samples):
        return self.calib.predict_proba(self._raw_score(samples)) if len(samples) else np.zeros(0)

    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))

    def tensors(self):
        return {**_module_tensors(self.net, "net."), **self.calib.tensors("calib.")}

    def load_tensors(self, tensors):
        _load_module(self.net, tensors, "net.")
        self.calib.load_tensors(tensors, "calib.")


class TemporalDetector(_LogisticDetector):
    """Flicker statistics of a clip of consecutive aligned crops + logistic regression.

    A swapped face is decoded frame by frame with no memory, so it jitters in brightness and shape more
    than a filmed face does, and more inside the face than around it.
    """

    name = "temporal"
    unit = "clip"
    defaults = {"window": 16, "stride": 8, "size": 48, "l2": 1e-2}

    def __init__(self, **params):
        super().__init__(**params)
        self.lr = LogisticRegression(len(feat.FLICKER_NAMES), float(self.params["l2"]))

    def features(self, clips) -> np.ndarray:
        return np.stack([feat.flicker_features(c, int(self.params["size"])) for c in clips]) if len(clips) else np.zeros((0, len(feat.FLICKER_NAMES)))

    def fit(self, samples, labels, *, seed=0, progress=False):
        if len(samples) < 2 or len(set(np.asarray(labels).tolist())) < 2:
            raise UserError(f"the temporal detector needs clips of both classes, got {len(samples)} clip(s); use longer videos or a shorter forensics.detectors.temporal.window")
        loss = self.lr.fit(self.features(samples), labels)
        self.meta = {"train_loss": loss, "train_clips": int(len(labels)), "features": list(feat.FLICKER_NAMES),
                     "weights": self.lr.weight.tolist()}
        return self.meta



DETECTORS: dict[str, type[Detector]] = {c.name: c for c in (SpectralDetector, Meso4Detector, XRayDetector, TemporalDetector)}


def build_detector(name: str, params: dict | None = None) -> Detector:
    if name not in DETECTORS:
        raise UserError(f"unknown detector '{name}'; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name](**dict(params or {}))


# ---------------------------------------------------------------- persistence


def save_detector(det: Detector, folder: str | Path) -> Path:
    """Write ``folder/<name>.safetensors`` (weights) and ``folder/<name>.json`` (settings, training record), atomically."""
    from safetensors.torch import save_file

    from faceswap.utils import atomic_path, write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{det.name}.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in det.tensors().items()}, str(tmp))
    write_json_atomic(folder / f"{det.name}.json", {
        "schema": SCHEMA, "version": VERSION, "name": det.name, "unit": det.unit, "params": det.params,
        "parameters": det.n_parameters(), "meta": det.meta,
    })
    return folder / f"{det.name}.json"


def load_detector(folder: str | Path, name: str) -> Detector:
    """Rebuild a detector saved by ``save_detector``; any missing or foreign file is a one-line ``UserError``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from faceswap.utils import read_json

    folder = Path(folder)
    info = read_json(folder / f"{name}.json", what=f"detector settings of '{name}'")
    if not isinstance(info, dict) or info.get("schema") != SCHEMA or info.get("name") != name:
        raise UserError(f"{folder / (name + '.json')} is not a saved '{name}' detector; re-run 'faceswap forensics out=DIR'")
    if int(info.get("version", -1)) > VERSION:
        raise UserError(f"{folder / (name + '.json')} was written by a newer faceswap (version {info.get('version')}); update faceswap")
    weights = folder / f"{name}.safetensors"
    if not weights.is_file():
        raise UserError(f"detector weights {weights} do not exist; re-run 'faceswap forensics out=DIR'")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"detector weights {weights} could not be read ({exc}); re-run 'faceswap forensics out=DIR'") from None
    det = build_detector(name, info.get("params") or {})
    try:
        det.load_tensors(tensors)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise UserError(f"detector weights {weights} do not match the '{name}' detector ({str(exc).splitlines()[0]}); re-run 'faceswap forensics out=DIR'") from None
    det.meta = info.get("meta") or {}
    return det


def load_detectors(folder: str | Path, names: list[str] | None = None) -> dict[str, Detector]:
    """Every detector saved in ``folder`` (or just ``names``); a folder with none is a ``UserError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"detectors folder {folder} does not exist; pass detectors=DIR of a 'faceswap forensics out=DIR' run")
    found = [n for n in DETECTORS if (folder / f"{n}.json").is_file()]
    names = [n for n in (names or found)]
    if not names:
        raise UserError(f"no trained detectors in {folder}; run 'faceswap forensics out=DIR' first and pass detectors=DIR")
    return {n: load_detector(folder, n) for n in names}


def json_safe(obj):
    """Plain JSON values: numpy scalars/arrays become numbers/lists, NaN (an AUC with one class missing) becomes null."""
    def clean(o):
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, float) and o != o:
            return None
        return o

    return clean(json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))))
