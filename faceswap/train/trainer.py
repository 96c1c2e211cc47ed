"""The training loop (`faceswap train`): data, warp, forward, loss, backward, clip, step, log, preview, checkpoint."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf

from faceswap.config import require, save_config
from faceswap.errors import UserError
from faceswap.models.autoencoder import Autoencoder, describe
from faceswap.models.checkpoint import clean_partial, find_latest, load_checkpoint, save_checkpoint
from faceswap.train import data as D
from faceswap.train import distributed
from faceswap.train.losses import LossConfig, face_loss
from faceswap.train.optim import EMA, lr_at, make_optimizer, restore_optimizer
from faceswap.train.preview import PREVIEW_ROWS, grid, preview_rows, reconstruction_ssim, timelapse_rows
from faceswap.train.warp import random_warp
from faceswap.utils import atomic_path
from faceswap.video import write_image

STAGE = "train"
# The order of the values that come back to the host once per step (see distributed.sync_flags).
# Held-out faces per identity for the validation SSIM: enough for a stable mean, cheap on a CPU.
VAL_FACES = 64
# The warp's random stream, apart from the samplers' identity streams (0, 1).
WARP_STREAM = 99
LOG_KEYS = ("loss", "loss_a", "loss_b", "pixel_a", "pixel_b", "ssim_a", "ssim_b", "mask_a", "mask_b", "grad_norm")


class TrainPair(nn.Module):
    """Both identities in one forward: one encoder pass over A and B together (one forward per backward,
    as DistributedDataParallel expects), then each half through its own decoder."""

    def __init__(self, model: Autoencoder):
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor):
        z = self.model.encode(torch.cat([xa, xb]))
        rgb_a, mask_a = self.model.decode(z[: len(xa)], "a")
        rgb_b, mask_b = self.model.decode(z[len(xa):], "b")
        return rgb_a, mask_a, rgb_b, mask_b


class TrainStep:
    """One optimisation step, shared by the loop and scripts/bench_train.py so both measure the same code.

    ``forward_backward`` warps the inputs (seeded by the step), runs both identities, computes the losses
    and gradients, clips, and returns the step's values (``LOG_KEYS`` order) still on the device;
    ``update`` applies the optimiser (the loop checks the values for non-finite losses in between).
    """

    def __init__(self, model: Autoencoder, net: nn.Module, optimizer, loss_cfg: LossConfig, *, warp_strength: float,
                 warp_params: dict, amp_dtype: torch.dtype | None, scaler, grad_clip: float, ema: EMA | None,
                 seed: int, rank: int, device: torch.device):
        self.model, self.net, self.optimizer, self.loss_cfg = model, net, optimizer, loss_cfg
        self.warp_strength, self.warp_params = warp_strength, warp_params
        self.amp_dtype, self.scaler, self.grad_clip, self.ema = amp_dtype, scaler, grad_clip, ema
        self.seed, self.rank, self.device = seed, rank, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.warp_gen = torch.Generator(device=device)

    def forward_backward(self, batch: dict, step: int) -> torch.Tensor:
        # Seeded by the step alone, so a resumed run warps exactly as an uninterrupted one.
        self.warp_gen.manual_seed(D.sample_seed(self.seed, self.rank, WARP_STREAM, step))
        xa = random_warp(batch["a"]["input"], self.warp_strength, self.warp_gen, **self.warp_params)
        xb = random_warp(batch["b"]["input"], self.warp_strength, self.warp_gen, **self.warp_params)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
        with autocast:
            rgb_a, mask_a, rgb_b, mask_b = self.net(xa, xb)
        la = face_loss(rgb_a, mask_a, batch["a"]["target"], batch["a"]["mask"], batch["a"]["landmarks"], self.loss_cfg)
        lb = face_loss(rgb_b, mask_b, batch["b"]["target"], batch["b"]["mask"], batch["b"]["landmarks"], self.loss_cfg)
        loss = la["total"] + lb["total"]
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        zero = torch.zeros((), device=self.device)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip) if self.grad_clip > 0 else zero
        return torch.stack([loss.detach(), la["total"].detach(), lb["total"].detach(), la["pixel"].detach(),
                            lb["pixel"].detach(), la.get("ssim", zero).detach(), lb.get("ssim", zero).detach(),
                            la.get("mask", zero).detach(), lb.get("mask", zero).detach(), grad_norm.detach().float()])

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)


def build_step(model: Autoencoder, cfg: DictConfig, device: torch.device, world: int = 1, rank: int = 0) -> TrainStep:
    """Optimiser, precision, EMA, compile and DDP around a model already on ``device``, from the train config."""
    tc, dc = cfg.train, cfg.data
    try:
        loss_cfg = LossConfig(**OmegaConf.to_container(tc.loss, resolve=True))
    except (TypeError, ValueError) as exc:
        raise UserError(f"train.loss settings are invalid ({exc})") from None
    if loss_cfg.ssim_weight and loss_cfg.ssim_window > model.config.resolution:
        raise UserError(f"train.loss.ssim_window={loss_cfg.ssim_window} is larger than the model's "
                        f"{model.config.resolution} px faces")
    if device.type == "cuda":
        # TF32 for fp32 matmuls and convolutions: the tensor cores' float32 path (nanoGPT does the same).
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    optimizer = make_optimizer(model, float(tc.lr), float(tc.weight_decay), tuple(tc.betas), fused=device.type == "cuda")
    amp_dtype, use_scaler = _amp(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    ema = EMA(model, float(tc.ema_decay)) if float(tc.ema_decay) > 0 else None
    net: nn.Module = TrainPair(model)
    if bool(tc.compile):
        net = torch.compile(net)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    warp_params = {k: v for k, v in OmegaConf.to_container(dc.warp).items() if k != "strength"}
    return TrainStep(model, net, optimizer, loss_cfg, warp_strength=float(dc.warp.strength), warp_params=warp_params,
                     amp_dtype=amp_dtype, scaler=scaler, grad_clip=float(tc.grad_clip), ema=ema, seed=int(cfg.seed),
                     rank=rank, device=device)


# --- run state that a checkpoint carries ------------------------------------------------------------------

def rng_state() -> dict:
    """Every RNG a run touches, JSON-able (torch states as base64)."""
    state = {
        "python": _jsonable(random.getstate()),
        "numpy": _jsonable(np.random.get_state()),
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    if "python" in state:
        v = state["python"]
        random.setstate((v[0], tuple(v[1]), v[2]))
    if "numpy" in state:
        v = state["numpy"]
        np.random.set_state((v[0], np.asarray(v[1], dtype=np.uint32), v[2], v[3], v[4]))
    if "torch" in state:
        torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(state["torch"])), dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _jsonable(obj):
    if isinstance(obj, (tuple, list)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# --- set-up -------------------------------------------------------------------------------------------------

def _model_from_cfg(cfg: DictConfig) -> Autoencoder:
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        model = instantiate(cfg.model, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        msg = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"model settings are invalid ({msg}); check the model.* overrides "
                        "('faceswap train --cfg job' shows them)") from None
    if not isinstance(model, Autoencoder):
        raise UserError(f"model._target_ must build a faceswap Autoencoder, got {type(model).__name__}")
    if set(model.config.identities) != {"a", "b"}:
        raise UserError(f"model.identities must be [a, b] to train on data.a and data.b, got {list(model.config.identities)}")
    return model


def _require_nested(cfg: DictConfig, key: str, hint: str):
    # faceswap.config.require reads top-level keys; this is the same one-line error for a dotted key.
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if node is None or OmegaConf.is_missing(node, leaf):
        raise UserError(f"'{STAGE}' needs {key}=...: {hint}")
    return node[leaf]


def _auto(value, when_auto):
    return when_auto if str(value).lower() == "auto" else value


def _amp(cfg: DictConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use a GradScaler)."""
    mode = str(cfg.train.amp).lower()
    if mode not in ("bf16", "fp16", "off", "false", "none"):
        raise UserError(f"train.amp must be bf16, fp16 or off, got {cfg.train.amp!r}")
    if device.type != "cuda" or mode in ("off", "false", "none"):
        return None, False
    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        raise UserError("train.amp=bf16 but this GPU has no bfloat16; use train.amp=fp16")
    return (torch.bfloat16, False) if mode == "bf16" else (torch.float16, True)


def _check_cfg(cfg: DictConfig) -> None:
    t = cfg.train
    for key in ("batch_size", "log_every", "preview_every", "timelapse_every", "checkpoint_every", "keep"):
        if int(t[key]) < 1:
            raise UserError(f"train.{key} must be >= 1, got {t[key]}")
    if t.steps is None and t.minutes is None:
        raise UserError("train.steps and train.minutes are both null: set one (e.g. train.minutes=10) so training ends")
    if t.steps is not None and int(t.steps) < 0:
        raise UserError(f"train.steps must be >= 0, got {t.steps}")
    if t.minutes is not None and float(t.minutes) <= 0:
        raise UserError(f"train.minutes must be > 0, got {t.minutes}")
    if float(t.lr) <= 0:
        raise UserError(f"train.lr must be > 0, got {t.lr}")
    if t.schedule not in ("cosine", "constant"):
        raise UserError(f"train.schedule must be cosine or constant, got {t.schedule!r}")
    if t.get("threads") is not None and int(t.threads) < 1:
        raise UserError(f"train.threads must be >= 1 or null, got {t.threads}")
    if not 0 <= float(t.ema_decay) < 1:
        raise UserError(f"train.ema_decay must be in [0, 1) (0 = off), got {t.ema_decay}")


class _StopSignals:
    """SIGINT/SIGTERM ask the loop to save a checkpoint and stop; a second Ctrl-C stops at once."""

    def __init__(self):
        self.received: str | None = None
        self._old = {}

    def __enter__(self):
        if hasattr(signal, "SIGTERM") and _in_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _truncate_metrics(path: Path, step: int) -> None:
    """After a resume, drop log lines past the checkpoint: those steps are trained again."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["step"]) <= step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash
    with atomic_path(path, suffix=".jsonl") as tmp:
        tmp.write_text("".join(k + "\n" for k in keep), encoding="utf-8")


# --- the loop -----------------------------------------------------------------------------------------------

def train(cfg: DictConfig) -> dict:
    """Train from a composed config; returns a summary (steps, losses, checkpoint, why it stopped)."""
    info = distributed.setup(str(cfg.get("device", "auto")))
    try:
        return _train(cfg, info)
    finally:
        distributed.teardown(info)


def _train(cfg: DictConfig, info: distributed.DistInfo) -> dict:
    t_start = time.time()
    out = Path(str(require(cfg, "out", STAGE, "the run folder for checkpoints, previews and logs"))).expanduser()
    a_dir = _require_nested(cfg, "data.a", "an extract output folder of identity A (faceswap extract ... out=FOLDER)")
    b_dir = _require_nested(cfg, "data.b", "an extract output folder of identity B")
    _check_cfg(cfg)
    tc, dc = cfg.train, cfg.data
    resume = bool(tc.resume) or bool(cfg.get("resume", False))
    device = info.device
    seed = int(cfg.seed)
    show = bool(cfg.get("progress", True)) and info.main and sys.stderr.isatty()
    say = print if info.main else (lambda *a, **k: None)

    if tc.get("threads"):
        torch.set_num_threads(int(tc.threads))

    # 1. The model, built once from its config; the same constructor arguments go into every checkpoint.
    torch.manual_seed(seed)
    model = _model_from_cfg(cfg)
    args = model.constructor_args()
    res = model.config.resolution

    # 2. Where to start: a fresh run, or the newest complete checkpoint.
    ckpt_root = out / "checkpoints"
    if info.main:
        clean_partial(ckpt_root)
    latest = find_latest(ckpt_root)
    resumed = None
    if latest is not None and not resume:
        raise UserError(f"out={out} already holds checkpoints (newest {latest.name}); pass train.resume=true to "
                        "continue it, or choose another out= folder")
    if resume and latest is not None:
        resumed = load_checkpoint(latest, expect=args, training_state=True, weights="model")
    elif resume:
        say(f"note: train.resume=true but {ckpt_root} holds no checkpoint; starting from step 0")
    start_step = resumed.step if resumed else 0

    # 3. Data: faces preloaded at the model's resolution, validation split by time, an infinite sharded sampler.
    sets = {"a": D.load_faces(a_dir, res, "data.a", progress=show), "b": D.load_faces(b_dir, res, "data.b", progress=show)}
    crop = D.crop_geometry(a_dir)  # recorded in every checkpoint so convert needs nothing but the checkpoint
    splits = {k: D.split_by_time(len(s), float(dc.val_fraction)) for k, s in sets.items()}
    aug = D.Augmenter(**{k: v for k, v in OmegaConf.to_container(dc.augment).items() if k != "enabled"}) \
        if dc.augment.enabled else None
    dataset = D.PairDataset(sets, aug, float(dc.flip))
    sampler = D.PairBatchSampler({k: splits[k][0] for k in sets}, int(tc.batch_size), seed, info.rank, info.world,
                                 start_step)
    # On a CPU the cores are busy with the step itself; a GPU step is fed by half the cores (6 kept an H100 fed).
    workers = int(_auto(dc.workers, min(6, max(1, (os.cpu_count() or 2) // 2)) if device.type == "cuda" else 0))
    pin = bool(_auto(dc.pin_memory, device.type == "cuda")) and device.type == "cuda"
    loader = D.make_loader(dataset, sampler, workers, pin, int(dc.prefetch))
    channels_last = bool(tc.channels_last)

    # 4. Device, layout, optimiser, precision, EMA, compile, DDP; then the checkpoint's state over them.
    model.to(device=device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    stepper = build_step(model, cfg, device, info.world, info.rank)
    optimizer, scaler, ema, loss_cfg = stepper.optimizer, stepper.scaler, stepper.ema, stepper.loss_cfg
    amp_dtype = stepper.amp_dtype
    history: list[dict] = []
    if resumed is not None:
        model.load_state_dict(resumed.model_tensors)
        if resumed.optimizer is not None:
            restore_optimizer(optimizer, resumed.optimizer)
        if ema is not None:
            ema.load_state_dict(resumed.ema if resumed.ema is not None else resumed.model_tensors)
        if scaler is not None and resumed.state.get("scaler"):
            scaler.load_state_dict(resumed.state["scaler"])
        set_rng_state(resumed.state.get("rng", {}))
        history = list(resumed.state.get("loss_history", []))
        say(f"resumed from {resumed.path} at step {start_step}")

    # Fixed faces for previews, the timelapse and validation: held-out frames, never trained on.
    def fixed(name: str, count: int | None) -> torch.Tensor:
        idx = splits[name][1] if len(splits[name][1]) else splits[name][0]
        if count is not None:
            idx = idx[D.preview_indices(len(idx), count)]
        x = torch.from_numpy(sets[name].faces[idx]).to(device).permute(0, 3, 1, 2).float().div_(255)
        return x if channels_last else x.contiguous()

    # 5. Outputs (main rank only): config, metrics log, TensorBoard.
    tb = None
    metrics_path = out / "metrics.jsonl"
    if info.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out, STAGE)
        if resumed is not None:
            _truncate_metrics(metrics_path, start_step)
        elif metrics_path.exists():
            metrics_path.unlink()
        if bool(tc.tensorboard):
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tb"), purge_step=start_step if resumed is not None else None)
        preview_a, preview_b = fixed("a", int(tc.preview_faces)), fixed("b", int(tc.preview_faces))
        val_a, val_b = fixed("a", VAL_FACES), fixed("b", VAL_FACES)
        masks = ", ".join(f"{k}: {s.true_masks}/{len(s)} true" for k, s in sets.items())
        say(f"train: model {describe(args)}, {model.num_params() / 1e6:.2f} M params on {device}"
            f"{f' x {info.world} processes' if info.enabled else ''}; faces A {len(splits['a'][0])}+{len(splits['a'][1])} val, "
            f"B {len(splits['b'][0])}+{len(splits['b'][1])} val ({masks} masks); batch {tc.batch_size}, "
            f"amp {str(amp_dtype).replace('torch.', '') if amp_dtype else 'off'}, workers {workers}; out {out}")

    steps_limit = int(tc.steps) if tc.steps is not None else None
    deadline = t_start + float(tc.minutes) * 60 if tc.minutes is not None else None
    total_for_schedule = int(tc.decay_steps) if tc.get("decay_steps") is not None else steps_limit

    def save(step: int) -> Path | None:
        if not info.main:
            return None
        state = {
            "rng": rng_state(), "loss_history": history[-200:],
            "config": OmegaConf.to_container(cfg, resolve=True),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "ema_decay": float(tc.ema_decay), "world_size": info.world, "seed": seed,
            "images_seen": step * int(tc.batch_size) * 2 * info.world,
            "crop": crop,
        }
        return save_checkpoint(ckpt_root, step, model, optimizer_state=optimizer.state_dict(),
                               ema_state=ema.state_dict() if ema is not None else None, state=state, keep=int(tc.keep))

    def show_images(step: int, preview: bool, timelapse: bool) -> None:
        viewer = ema.module if ema is not None else model
        viewer.eval()
        try:
            if preview:
                image = grid(preview_rows(viewer, preview_a, preview_b), list(PREVIEW_ROWS))
                write_image(out / "previews" / f"step_{step:08d}.png", image)
                scores = {f"val_ssim_{k}": reconstruction_ssim(viewer, v, k, loss_cfg.ssim_window)
                          for k, v in (("a", val_a), ("b", val_b))}
                _append_jsonl(metrics_path, {"kind": "val", "step": step, **scores})
                if tb is not None:
                    tb.add_image("preview", image, step, dataformats="HWC")
                    for k, v in scores.items():
                        tb.add_scalar(f"val/{k}", v, step)
            if timelapse:
                write_image(out / "timelapse" / f"{step:08d}.png", grid(timelapse_rows(viewer, preview_b), ["B", "B->A"]))
        finally:
            model.train()

    from tqdm import tqdm

    bar = tqdm(total=steps_limit, initial=start_step, unit="step", disable=not show, dynamic_ncols=True)
    step = start_step
    stop_reason = "steps" if steps_limit is not None and step >= steps_limit else None
    last_ckpt_time = time.time()
    last_saved = start_step if resumed is not None else None
    window: list[list[float]] = []
    t_window, wait_window = time.perf_counter(), 0.0
    prefetch = None
    model.train()
    try:
        with _StopSignals() as signals:
            if stop_reason is None:
                prefetch = D.Prefetcher(loader, device, channels_last)
                wait_window = prefetch.wait_s
            while stop_reason is None:
                # One step: batch -> warp (input only) -> forward -> loss -> backward -> clip -> check -> update.
                batch = prefetch.next()
                lr = lr_at(step, float(tc.lr), int(tc.warmup_steps), total_for_schedule, float(tc.min_lr_ratio),
                           str(tc.schedule))
                for group in optimizer.param_groups:
                    group["lr"] = lr
                values = stepper.forward_backward(batch, step)
                time_up = deadline is not None and time.time() >= deadline
                (signalled, timed_out), vals = distributed.sync_flags([signals.received is not None, time_up],
                                                                      values, info)
                if not np.isfinite(vals[0]):
                    raise UserError(
                        f"training stopped: the loss became non-finite ({vals[0]}) at step {step + 1} "
                        f"(loss A {vals[1]:.4g}, loss B {vals[2]:.4g}); the weights were not updated. "
                        f"Newest checkpoint: {find_latest(ckpt_root) or 'none'}. Lower train.lr, keep train.grad_clip > 0, "
                        "or use train.amp=bf16 instead of fp16")
                stepper.update()
                step += 1
                window.append(vals)
                bar.update(1)

                if info.main and step % int(tc.log_every) == 0:
                    now = time.perf_counter()
                    mean = np.mean(window, axis=0)
                    record = {"kind": "train", "step": step, "time": round(time.time() - t_start, 3), "lr": lr,
                              **{k: float(v) for k, v in zip(LOG_KEYS, mean)},
                              "images_per_s": len(window) * int(tc.batch_size) * 2 * info.world / max(now - t_window, 1e-9),
                              "data_wait": (prefetch.wait_s - wait_window) / max(now - t_window, 1e-9)}
                    _append_jsonl(metrics_path, record)
                    history.append({"step": step, "loss": record["loss"]})
                    if tb is not None:
                        for k in (*LOG_KEYS, "lr", "images_per_s", "data_wait"):
                            tb.add_scalar(f"train/{k}", record[k], step)
                    bar.set_postfix(loss=f"{record['loss']:.4f}", img_s=f"{record['images_per_s']:.0f}", refresh=False)
                    window, t_window, wait_window = [], now, prefetch.wait_s

                if steps_limit is not None and step >= steps_limit:
                    stop_reason = "steps"
                elif timed_out:
                    stop_reason = "minutes"
                elif signalled:
                    stop_reason = signals.received or "signal"
                if info.main and stop_reason is None:
                    preview, timelapse = step % int(tc.preview_every) == 0, step % int(tc.timelapse_every) == 0
                    if preview or timelapse:
                        show_images(step, preview, timelapse)
                    by_time = float(tc.checkpoint_minutes) > 0 and time.time() - last_ckpt_time >= float(tc.checkpoint_minutes) * 60
                    if step % int(tc.checkpoint_every) == 0 or by_time:
                        save(step)
                        last_ckpt_time, last_saved = time.time(), step
    finally:
        bar.close()
    # The end, however it came: a last checkpoint and preview, so the run can be resumed or converted.
    final = None
    if info.main:
        if step != last_saved or find_latest(ckpt_root) is None:
            final = save(step)
        else:
            final = find_latest(ckpt_root)
        if step > start_step:
            show_images(step, True, True)
        if tb is not None:
            tb.close()
    distributed.barrier(info)
    last = history[-1]["loss"] if history else (float(np.mean([w[0] for w in window])) if window else None)
    summary = {"steps": step, "start_step": start_step, "stopped_by": stop_reason, "loss": last,
               "checkpoint": str(final) if final else None, "seconds": round(time.time() - t_start, 1), "out": str(out)}
    if stop_reason in ("SIGINT", "SIGTERM"):
        say(f"stopped by {stop_reason} at step {step}; checkpoint saved to {final}; continue with train.resume=true")
    return summary


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def run(cfg: DictConfig) -> int:
    """`faceswap train` entry point."""
    summary = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        loss = f"{summary['loss']:.4f}" if summary["loss"] is not None else "n/a"
        print(f"train: {summary['steps']} steps (from {summary['start_step']}, stopped by {summary['stopped_by']}) "
              f"in {summary['seconds']} s, loss {loss}; checkpoint {summary['checkpoint']}")
    return 0


__all__ = ["train", "run", "TrainPair", "TrainStep", "build_step", "rng_state", "set_rng_state", "LOG_KEYS"]
