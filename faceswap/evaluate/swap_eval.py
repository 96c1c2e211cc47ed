"""The evaluate stage: swap B's held-out frames to A and measure the result against the rendered true swap.

Held-out frames are the last part of B's video by time: the same faces the trainer held out for validation
(``data.val_fraction``, read from the checkpoint). Every measurement is made on aligned crops at the model's
resolution: B's frame and the true-swap frame are cut out with the *same* matrix (from extract's alignments
when given, else from the renderer's true landmarks), so they show the same region of the same performance.
The judges (identity probe, expression/pose reader) see those crops re-cut to the true landmarks' alignment,
the one they were trained on.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from faceswap.errors import UserError
from faceswap.evaluate import metrics as M
from faceswap.evaluate.probe import EXPRESSION_PARAMS, Probe, get_probe, judge_crops, make_spec, targets_of
from faceswap.extract.align import alignment_matrix, warp_to_crop
from faceswap.utils import read_json, write_json_atomic
from faceswap.video import read_image, read_video, write_image

STAGE = "evaluate"
SCHEMA = "faceswap.evaluation"
VERSION = 1
DEFAULT_CROP = 256  # crop size for alignment from true landmarks (extract's default), resized to the model's
DEFAULT_COVERAGE = 0.75


# --- the synth folder ---------------------------------------------------------------------------------------

@dataclass
class SynthFolder:
    """A ``faceswap synth`` output folder (docs/formats.md), validated."""

    path: Path
    actors: dict  # name -> appearance dict
    frames: dict[str, list[dict]]  # "A", "B", "truth_B_as_A" -> per-frame truth

    def video(self, name: str) -> Path:
        return self.path / f"{name}.mp4"

    def mask(self, name: str, index: int) -> np.ndarray | None:
        p = self.path / name / "masks" / f"{index:06d}.png"
        return read_image(p)[..., 0] if p.is_file() else None


def load_synth(folder: str | Path) -> SynthFolder:
    folder = Path(str(folder)).expanduser()
    hint = "give a folder written by 'faceswap synth out=DIR'"
    if not folder.is_dir():
        raise UserError(f"synth_dir={folder} does not exist; {hint}")
    actors = read_json(folder / "actors.json", "synth actors file")
    if not isinstance(actors, dict) or "A" not in actors or "B" not in actors:
        raise UserError(f"{folder / 'actors.json'} does not describe actors A and B; {hint}")
    frames = {}
    for name in ("A", "B", "truth_B_as_A"):
        if not (folder / f"{name}.mp4").is_file():
            raise UserError(f"synth_dir={folder} has no {name}.mp4; {hint} (it renders A, B and the true swap)")
        data = read_json(folder / name / "frames.json", f"synth truth file of {name}")
        if not isinstance(data, list) or not all(isinstance(f, dict) and "performance" in f for f in data):
            raise UserError(f"{folder / name / 'frames.json'} is not a list of per-frame entries with a performance; {hint}")
        frames[name] = data
    if len(frames["B"]) != len(frames["truth_B_as_A"]):
        raise UserError(f"synth_dir={folder}: B has {len(frames['B'])} frames but truth_B_as_A {len(frames['truth_B_as_A'])}; "
                        "re-run synth into an empty folder")
    return SynthFolder(folder, actors, frames)


# --- small pure functions ----------------------------------------------------------------------------------

def held_out(indices: Sequence[int], fraction: float) -> list[int]:
    """The last ``ceil(n * fraction)`` of time-ordered indices (the trainer's split_by_time rule)."""
    from faceswap.train.data import split_by_time

    indices = list(indices)
    _, val = split_by_time(len(indices), fraction)
    return [indices[i] for i in val]


def consecutive_runs(indices: Sequence[int]) -> list[list[int]]:
    """Positions into ``indices`` grouped into runs of consecutive frame numbers: [3, 4, 5, 9, 10] -> [[0, 1, 2], [3, 4]]."""
    runs: list[list[int]] = []
    for pos, idx in enumerate(indices):
        if runs and idx == indices[runs[-1][-1]] + 1:
            runs[-1].append(pos)
        else:
            runs.append([pos])
    return runs


def crop_face(frame: np.ndarray, matrix: np.ndarray, crop_size: int, resolution: int) -> np.ndarray:
    """Warp to the alignment's crop size, then resize to the model's: exactly how training faces are made."""
    crop = warp_to_crop(frame, matrix, crop_size)
    if crop_size == resolution:
        return crop
    interp = cv2.INTER_AREA if crop_size > resolution else cv2.INTER_CUBIC
    return cv2.resize(crop, (resolution, resolution), interpolation=interp)


def runs_temporal_error(frames: np.ndarray, truth: np.ndarray, masks: np.ndarray, runs: list[list[int]]) -> float | None:
    """``metrics.temporal_error`` pooled over runs of consecutive frames (pairs never span a gap)."""
    num = den = 0.0
    for run in runs:
        if len(run) < 2:
            continue
        w = sum(float(np.minimum(masks[a], masks[b]).sum()) for a, b in zip(run, run[1:]))
        num += M.temporal_error(frames[run], truth[run], masks[run]) * w
        den += w
    return num / den if den > 0 else None


def runs_flicker(frames: np.ndarray, masks: np.ndarray, runs: list[list[int]]) -> float | None:
    num = den = 0.0
    for run in runs:
        if len(run) < 2:
            continue
        w = sum(float(np.minimum(masks[a], masks[b]).sum()) for a, b in zip(run, run[1:]))
        num += M.flicker(frames[run], masks[run]) * w
        den += w
    return num / den if den > 0 else None


def pixel_scores(pred: np.ndarray, truth: np.ndarray, masks: np.ndarray) -> dict:
    """Mean masked SSIM and PSNR over frames (each pred (N, R, R, 3) or one image for all)."""
    ssims, psnrs = [], []
    for i in range(len(truth)):
        p = pred if pred.ndim == 3 else pred[i]
        if masks[i].max() == 0:
            continue
        ssims.append(M.ssim(p, truth[i], masks[i]))
        psnrs.append(M.psnr(p, truth[i], masks[i]))
    if not ssims:
        return {"ssim": None, "psnr": None}
    return {"ssim": float(np.mean(ssims)), "psnr": M.mean_psnr(psnrs)}


# --- the test set -------------------------------------------------------------------------------------------

@dataclass
class TestSet:
    """Aligned crops of B's held-out frames and of the true swap, cut with the same matrices."""

    indices: list[int]
    matrices: np.ndarray  # (N, 2, 3) frame -> crop at crop_size: what the model's crops are cut with
    true_matrices: np.ndarray  # (N, 2, 3) the same from the renderer's true landmarks: what the judges see
    crop_size: int
    coverage: float
    align: str  # "extract" or "truth"
    b: np.ndarray = field(default=None)  # (N, R, R, 3) uint8
    truth: np.ndarray = field(default=None)
    mask: np.ndarray = field(default=None)  # (N, R, R) uint8: the true swap's face mask
    mask_b: np.ndarray = field(default=None)  # B's own face mask
    targets: np.ndarray = field(default=None)  # (N, P) expression/pose of B's performance, roll in the judges' crop

    def judged(self, crops: np.ndarray) -> np.ndarray:
        """Model-size crops (or one image for every frame) -> the judges' crops, in the true alignment."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = np.broadcast_to(crops, (len(self.indices), *crops.shape))
        return judge_crops(crops, self.matrices, self.true_matrices, self.crop_size)


def choose_test_frames(synth: SynthFolder, fraction: float, faces_b: Path | None, align: str, max_frames: int
                       ) -> TestSet:
    """Which frames to measure and the matrix of each (see the module docstring)."""
    if align not in ("auto", "extract", "truth"):
        raise UserError(f"eval.align must be auto, extract or truth, got {align!r}")
    if align == "extract" and faces_b is None:
        raise UserError("eval.align=extract needs faces_b=EXTRACT_DIR (the extract output of B.mp4)")
    use_extract = faces_b is not None and align != "truth"
    if use_extract:
        from faceswap.extract.alignments import load_alignments

        al = load_alignments(Path(faces_b) / "alignments.json")
        if len(al) != len(synth.frames["B"]):
            raise UserError(f"faces_b={faces_b} has alignments for {len(al)} frames but {synth.video('B')} has "
                            f"{len(synth.frames['B'])}; give the extract output of that very video")
        with_face = [i for i in range(len(al)) if al.target_face(i) is not None
                     and synth.frames["truth_B_as_A"][i].get("landmarks") is not None]
        test = held_out(with_face, fraction)[:max_frames]
        matrices = np.stack([np.asarray(al.target_face(i).matrix, np.float64) for i in test]) if test else np.zeros((0, 2, 3))
        crop_size, coverage, how = al.size, al.coverage, "extract"
    else:
        crop_size, coverage, how = DEFAULT_CROP, DEFAULT_COVERAGE, "truth"
        with_face = [i for i, f in enumerate(synth.frames["B"]) if f.get("landmarks") is not None]
        test = held_out(with_face, fraction)[:max_frames]
        matrices = np.stack([alignment_matrix(np.asarray(synth.frames["B"][i]["landmarks"]), crop_size, coverage)
                             for i in test]) if test else np.zeros((0, 2, 3))
    true = np.stack([alignment_matrix(np.asarray(synth.frames["B"][i]["landmarks"]), crop_size, coverage)
                     for i in test]) if test else np.zeros((0, 2, 3))
    if len(test) < 2:
        raise UserError(f"only {len(test)} held-out frame(s) of B show a face (of {len(synth.frames['B'])} frames, "
                        f"test fraction {fraction}); render more frames or raise eval.test_fraction")
    return TestSet(test, matrices, true, int(crop_size), float(coverage), how)


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=not (progress and sys.stderr.isatty()))


def gather_crops(synth: SynthFolder, ts: TestSet, resolution: int, progress: bool = False) -> TestSet:
    """Decode B and the true swap over the test frames and cut both with the same matrices."""
    first, last = ts.indices[0], ts.indices[-1]
    pos = {idx: k for k, idx in enumerate(ts.indices)}
    n, r = len(ts.indices), resolution
    ts.b = np.zeros((n, r, r, 3), np.uint8)
    ts.truth = np.zeros((n, r, r, 3), np.uint8)
    ts.mask = np.zeros((n, r, r), np.uint8)
    ts.mask_b = np.zeros((n, r, r), np.uint8)
    ts.targets = np.zeros((n, len(EXPRESSION_PARAMS)), np.float32)
    bar = _bar(last - first + 1, "evaluate: read test frames", progress)
    seen = 0
    for idx, (frame_b, frame_t) in enumerate(zip(read_video(synth.video("B"), first, last + 1),
                                                 read_video(synth.video("truth_B_as_A"), first, last + 1)), start=first):
        bar.update(1)
        seen += 1
        if idx not in pos:
            continue
        k, m = pos[idx], ts.matrices[pos[idx]]
        ts.b[k] = crop_face(frame_b, m, ts.crop_size, r)
        ts.truth[k] = crop_face(frame_t, m, ts.crop_size, r)
        for name, dst in (("truth_B_as_A", ts.mask), ("B", ts.mask_b)):
            mask = synth.mask(name, idx)
            if mask is None:
                raise UserError(f"{synth.path / name / 'masks' / f'{idx:06d}.png'} is missing; re-run synth into an empty folder")
            dst[k] = crop_face(mask, m, ts.crop_size, r)
        ts.targets[k] = targets_of(synth.frames["B"][idx]["performance"], ts.true_matrices[k])
    bar.close()
    if seen < last - first + 1:
        raise UserError(f"{synth.video('B')} or {synth.video('truth_B_as_A')} ended before frame {last}; re-run synth")
    return ts


def a_faces(synth: SynthFolder, faces_a: Path | None, resolution: int, fraction: float, coverage: float,
            crop_size: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A's training faces (for the mean face) and A's held-out faces and masks (for A->A), at the model's size."""
    from faceswap.train.data import load_faces, split_by_time

    if faces_a is not None:
        fs = load_faces(faces_a, resolution, "faces_a", progress=False)
        train_idx, val_idx = split_by_time(len(fs), fraction)
        return fs.faces[train_idx], fs.faces[val_idx], fs.masks[val_idx]
    with_face = [i for i, f in enumerate(synth.frames["A"]) if f.get("landmarks") is not None]
    if len(with_face) < 2:
        raise UserError(f"{synth.video('A')} shows a face in fewer than 2 frames; re-run synth with more frames")
    val = set(held_out(with_face, fraction))
    faces, masks, is_val = [], [], []
    bar = _bar(len(synth.frames["A"]), "evaluate: read A", progress)
    for idx, frame in enumerate(read_video(synth.video("A"))):
        bar.update(1)
        lm = synth.frames["A"][idx].get("landmarks") if idx < len(synth.frames["A"]) else None
        if lm is None:
            continue
        m = alignment_matrix(np.asarray(lm), crop_size, coverage)
        faces.append(crop_face(frame, m, crop_size, resolution))
        mask = synth.mask("A", idx)
        masks.append(crop_face(mask, m, crop_size, resolution) if mask is not None else np.full(faces[-1].shape[:2], 255, np.uint8))
        is_val.append(idx in val)
    bar.close()
    faces_arr, masks_arr, is_val_arr = np.stack(faces), np.stack(masks), np.asarray(is_val)
    return faces_arr[~is_val_arr], faces_arr[is_val_arr], masks_arr[is_val_arr]


# --- the model ----------------------------------------------------------------------------------------------

@torch.no_grad()
def run_model(model, crops: np.ndarray, identity: str, device, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Encode crops (N, R, R, 3) uint8 and decode with ``identity``'s decoder -> (rgb uint8, mask uint8 (N, R, R))."""
    rgbs, masks = [], []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(np.ascontiguousarray(crops[i:i + batch])).permute(0, 3, 1, 2).float().div(255).to(device)
        rgb, mask = model(x, identity)
        rgbs.append((rgb.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8))
        masks.append((mask.float().clamp(0, 1)[:, 0].cpu().numpy() * 255 + 0.5).astype(np.uint8))
    return np.concatenate(rgbs), np.concatenate(masks)


# --- pictures for the report ----------------------------------------------------------------------------------

def _upscale(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size:
        return img
    interp = cv2.INTER_NEAREST if size % img.shape[0] == 0 else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def labelled_strip(columns: Sequence[Sequence[np.ndarray]], labels: Sequence[str], cell: int = 128, pad: int = 4) -> np.ndarray:
    """Columns of equal-size images (RGB or grey) tiled under a header of labels: one row per image index."""
    rows = len(columns[0])
    head = 20
    out = np.full((head + rows * (cell + pad) + pad, len(columns) * (cell + pad) + pad, 3), 255, np.uint8)
    for c, (col, label) in enumerate(zip(columns, labels)):
        x = pad + c * (cell + pad)
        cv2.putText(out, label, (x + 2, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (30, 30, 30), 1, cv2.LINE_AA)
        for r, img in enumerate(col):
            img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
            y = head + r * (cell + pad)
            out[y:y + cell, x:x + cell] = _upscale(img, cell)
    return out


def blend(face: np.ndarray, base: np.ndarray, mask: np.ndarray) -> np.ndarray:
    w = mask.astype(np.float32)[..., None] / 255.0
    return (face * w + base * (1 - w) + 0.5).astype(np.uint8)


def write_samples(out: Path, ts: TestSet, swap: np.ndarray, swap_mask: np.ndarray, mean_a: np.ndarray,
                  n_stills: int, gif_frames: int, runs: list[list[int]]) -> None:
    from faceswap.evaluate.report import write_gif

    samples = out / "samples"
    pick = np.unique(np.linspace(0, len(ts.indices) - 1, min(n_stills, len(ts.indices))).round().astype(int))
    write_image(samples / "stills.png", labelled_strip(
        [ts.b[pick], swap[pick], ts.truth[pick]], ["B (input)", "swap B->A", "truth"]))
    m = pick[:4]
    write_image(samples / "masks.png", labelled_strip(
        [ts.b[m], ts.mask[m], swap_mask[m], [blend(swap[i], ts.b[i], swap_mask[i]) for i in m]],
        ["B (input)", "true mask", "model's mask", "swap blended"]))
    write_image(samples / "mean_a.png", _upscale(mean_a, 128))
    longest = max(runs, key=len)[:gif_frames]
    frames = [labelled_strip([[ts.b[i]], [swap[i]], [ts.truth[i]]], ["B (input)", "swap B->A", "truth"])
              for i in longest]
    write_gif(samples / "compare.gif", frames, fps=8)


# --- the converted video ------------------------------------------------------------------------------------

def _face_window(mask: np.ndarray, grow: float = 1.5) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    side = int(max(xs.max() - xs.min(), ys.max() - ys.min()) * grow) + 8
    x0 = int(np.clip(cx - side / 2, 0, max(w - side, 0)))
    y0 = int(np.clip(cy - side / 2, 0, max(h - side, 0)))
    return x0, y0, min(x0 + side, w), min(y0 + side, h)


def evaluate_video(video: Path, synth: SynthFolder, ts: TestSet, resolution: int, probe: Probe,
                   runs: list[list[int]], out: Path, gif_frames: int, progress: bool = False) -> dict:
    """Whole frames of a converted video of B.mp4 against the true swap, inside the true face mask."""
    from faceswap.evaluate.report import write_gif
    from faceswap.video import probe as probe_video

    video = Path(str(video)).expanduser()
    info = probe_video(video)
    if info.frames != len(synth.frames["B"]):
        raise UserError(f"video={video} has {info.frames} frames but {synth.video('B')} has {len(synth.frames['B'])}; "
                        "give the converted video of that very B.mp4")
    first, last = ts.indices[0], ts.indices[-1]
    pos = {idx: k for k, idx in enumerate(ts.indices)}
    n, r = len(ts.indices), resolution
    crops = np.zeros((n, r, r, 3), np.uint8)
    conv_ssim, conv_psnr, b_ssim, b_psnr = [], [], [], []
    gif_set = set(ts.indices[i] for i in max(runs, key=len)[:gif_frames])
    gif = []
    bar = _bar(last - first + 1, "evaluate: read converted video", progress)
    streams = zip(read_video(video, first, last + 1), read_video(synth.video("truth_B_as_A"), first, last + 1),
                  read_video(synth.video("B"), first, last + 1))
    for idx, (conv, truth, frame_b) in enumerate(streams, start=first):
        bar.update(1)
        if idx not in pos:
            continue
        if conv.shape != truth.shape:
            raise UserError(f"video={video} is {conv.shape[1]}x{conv.shape[0]} but the truth is "
                            f"{truth.shape[1]}x{truth.shape[0]}; give the converted video of {synth.video('B')}")
        k = pos[idx]
        crops[k] = crop_face(conv, ts.matrices[k], ts.crop_size, r)
        mask = synth.mask("truth_B_as_A", idx)
        if mask is None or mask.max() == 0:
            continue
        x0, y0, x1, y1 = _face_window(mask)
        win = (slice(y0, y1), slice(x0, x1))
        conv_ssim.append(M.ssim(conv[win], truth[win], mask[win]))
        conv_psnr.append(M.psnr(conv[win], truth[win], mask[win]))
        b_ssim.append(M.ssim(frame_b[win], truth[win], mask[win]))
        b_psnr.append(M.psnr(frame_b[win], truth[win], mask[win]))
        if idx in gif_set:
            cells = [cv2.resize(np.ascontiguousarray(f[win]), (160, 160), interpolation=cv2.INTER_AREA)
                     for f in (frame_b, conv, truth)]
            gif.append(labelled_strip([[c] for c in cells], ["B's video", "converted", "truth"], cell=160))
    bar.close()
    if gif:
        write_gif(out / "samples" / "frames.gif", gif, fps=8)
    probs, params = probe.predict(ts.judged(crops))
    per_param = M.normalised_errors(params, ts.targets, probe.param_std)
    return {
        "path": str(video),
        "ssim": float(np.mean(conv_ssim)) if conv_ssim else None,
        "psnr": M.mean_psnr(conv_psnr) if conv_psnr else None,
        "input_b_ssim": float(np.mean(b_ssim)) if b_ssim else None,
        "input_b_psnr": M.mean_psnr(b_psnr) if b_psnr else None,
        "identity_a_rate": float(np.mean(probs.argmax(1) == probe.names.index("A"))),
        "expression_error": float(per_param.mean()),
        "flicker": runs_temporal_error(crops, ts.truth, ts.mask, runs),
        "frames": len(conv_ssim),
    }


# --- the stage ------------------------------------------------------------------------------------------------

def _judge(probe: Probe, crops: np.ndarray, targets: np.ndarray) -> dict:
    """Identity and expression/pose of judge-ready crops (see ``TestSet.judged``) against B's true performance."""
    probs, params = probe.predict(crops)
    per_param = M.normalised_errors(params, targets, probe.param_std)
    return {"identity_a_rate": float(np.mean(probs.argmax(1) == probe.names.index("A"))),
            "expression_error": float(per_param.mean()),
            "expression_error_per_param": {k: float(v) for k, v in zip(EXPRESSION_PARAMS, per_param)}}


def run_dir_of(checkpoint_path: Path) -> Path | None:
    """The run folder above a ``checkpoints/step_*`` folder (where metrics.jsonl and timelapse/ live)."""
    for p in (checkpoint_path, *checkpoint_path.parents[:3]):
        if (p / "metrics.jsonl").is_file() or (p / "timelapse").is_dir():
            return p
    return None


def evaluate(checkpoint: str | Path, synth_dir: str | Path, out: str | Path, *, faces_a: str | Path | None = None,
             faces_b: str | Path | None = None, video: str | Path | None = None, device: str = "auto",
             test_fraction: float | str = "auto", max_frames: int = 300, align: str = "auto", weights: str = "auto",
             batch_size: int = 32, samples: int = 6, gif_frames: int = 48, probe_settings: dict | None = None,
             probe_cache: str | Path | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """Measure a checkpoint's B->A swap on held-out frames of a synth folder; writes ``out/metrics.json`` and
    ``out/samples/``; returns the metrics."""
    from faceswap.models import load_checkpoint
    from faceswap.synth.params import Appearance
    from faceswap.utils import resolve_device

    t0 = time.perf_counter()
    out = Path(str(out)).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder for metrics.json and the samples")
    synth = load_synth(synth_dir)
    dev = resolve_device(device)
    ck = load_checkpoint(checkpoint, dev, weights=weights)
    model = ck.model
    if not {"a", "b"} <= set(model.decoders):
        raise UserError(f"checkpoint {ck.path} has decoders {list(model.decoders)}; evaluate needs a and b "
                        "(a model trained with data.a= and data.b=)")
    resolution = int(model.config.resolution)
    trained_vf = float(((ck.state.get("config") or {}).get("data") or {}).get("val_fraction", 0.1))
    fraction = trained_vf if str(test_fraction) == "auto" else float(test_fraction)
    if not 0 < fraction < 1:
        raise UserError(f"eval.test_fraction must be in (0, 1) or auto, got {test_fraction}")
    if fraction > trained_vf + 1e-9:
        log(f"note: eval.test_fraction={fraction} is more than the run's data.val_fraction={trained_vf}: "
            "some measured frames were trained on")
    faces_a = Path(str(faces_a)).expanduser() if faces_a else None
    faces_b = Path(str(faces_b)).expanduser() if faces_b else None

    # 1. The held-out frames of B and the true swap, cut with the same matrices.
    ts = choose_test_frames(synth, fraction, faces_b, align, int(max_frames))
    gather_crops(synth, ts, resolution, progress)
    runs = consecutive_runs(ts.indices)

    # 2. A's faces: the mean-face baseline (training part) and A->A on the held-out part.
    a_train, a_val, a_val_masks = a_faces(synth, faces_a, resolution, fraction, ts.coverage, ts.crop_size, progress)
    mean_a = (a_train.astype(np.float64).mean(axis=0) + 0.5).astype(np.uint8)

    # 3. The model: the swap, and each identity's own reconstruction.
    swap, swap_mask = run_model(model, ts.b, "a", dev, batch_size)
    b_rec, _ = run_model(model, ts.b, "b", dev, batch_size)
    a_rec, _ = run_model(model, a_val, "a", dev, batch_size) if len(a_val) else (np.zeros((0,)), None)

    # 4. The judges, trained on renders of A, B and others (cached by their settings' hash).
    ps = dict(probe_settings or {})
    spec = make_spec(Appearance.from_dict(synth.actors["A"]), Appearance.from_dict(synth.actors["B"]),
                     coverage=ts.coverage, **ps)
    probe, probe_source = get_probe(spec, probe_cache, progress=progress, log=log)

    # 5. Measure.
    mean_stack = np.broadcast_to(mean_a, ts.b.shape)
    results = {}
    for name, pred in (("swap", swap), ("input_b", ts.b), ("mean_a", mean_stack), ("truth", ts.truth)):
        entry = {} if name == "truth" else pixel_scores(pred, ts.truth, ts.mask)
        entry.update(_judge(probe, ts.judged(pred), ts.targets))
        entry["flicker"] = runs_temporal_error(np.ascontiguousarray(pred), ts.truth, ts.mask, runs)
        results[name] = entry
    results["swap"]["flicker_raw"] = runs_flicker(swap, ts.mask, runs)
    results["swap"]["flicker_truth_raw"] = runs_flicker(ts.truth, ts.mask, runs)
    recon = {"b_ssim": pixel_scores(b_rec, ts.b, ts.mask_b)["ssim"], "b_psnr": pixel_scores(b_rec, ts.b, ts.mask_b)["psnr"],
             "a_ssim": None, "a_psnr": None, "a_faces": int(len(a_val))}
    if len(a_val):
        pa = pixel_scores(a_rec, a_val, a_val_masks)
        recon.update(a_ssim=pa["ssim"], a_psnr=pa["psnr"])

    out.mkdir(parents=True, exist_ok=True)
    write_samples(out, ts, swap, swap_mask, mean_a, samples, gif_frames, runs)
    video_metrics = None
    if video:
        video_metrics = evaluate_video(Path(str(video)), synth, ts, resolution, probe, runs, out, gif_frames, progress)

    metrics = {
        "schema": SCHEMA, "version": VERSION,
        "swap": results["swap"],
        "baselines": {"input_b": results["input_b"], "mean_a": results["mean_a"]},
        "truth": {k: results["truth"][k] for k in ("identity_a_rate", "expression_error", "expression_error_per_param")},
        "probe": {**{k: probe.report.get(k) for k in ("identity_accuracy", "nonface_rejection", "expression_error_on_renders",
                                                      "expression_error_per_param", "param_std", "actors",
                                                      "train_faces", "test_faces", "seconds")},
                  "source": probe_source, "key": spec.key()},
        "reconstruction": recon,
        "video": video_metrics,
        "frames": {"count": len(ts.indices), "first": ts.indices[0], "last": ts.indices[-1],
                   "of": len(synth.frames["B"]), "test_fraction": fraction, "align": ts.align,
                   "crop_size": ts.crop_size, "coverage": ts.coverage, "resolution": resolution},
        "checkpoint": {"path": str(ck.path), "step": ck.step, "weights": ck.weights,
                       "model": ck.state.get("model", {}).get("name"),
                       "train_seconds": _train_seconds(ck.path)},
        "synth": str(synth.path),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json_atomic(out / "metrics.json", metrics)
    return metrics


def _train_seconds(ckpt: Path) -> float | None:
    run = run_dir_of(ckpt)
    if run is None or not (run / "metrics.jsonl").is_file():
        return None
    from faceswap.evaluate.report import read_loss_log

    times = [r.get("time") for r in read_loss_log(run) if isinstance(r.get("time"), (int, float))]
    return float(max(times)) if times else None


def summary_line(metrics: dict) -> str:
    s, bi, bm = metrics["swap"], metrics["baselines"]["input_b"], metrics["baselines"]["mean_a"]

    def f(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    return (f"evaluate: {metrics['frames']['count']} held-out frames: SSIM {f(s['ssim'])} (B unchanged {f(bi['ssim'])}, "
            f"A's mean face {f(bm['ssim'])}), PSNR {f(s['psnr'], '.2f')} dB, identity A {100 * s['identity_a_rate']:.0f}%, "
            f"expression error {f(s['expression_error'])} (mean face {f(bm['expression_error'])}), "
            f"flicker {f(s['flicker'], '.4f')}")


def probe_settings_of(cfg) -> dict:
    from omegaconf import OmegaConf

    p = OmegaConf.to_container(cfg.probe, resolve=True) if "probe" in cfg else {}
    p.pop("cache_dir", None)
    return p


def run(cfg) -> int:
    """`faceswap evaluate checkpoint=RUN synth_dir=SYNTH out=DIR`: the CLI entry point."""
    from faceswap.config import require, save_config

    checkpoint = require(cfg, "checkpoint", STAGE, "the run folder of 'faceswap train' (or one of its checkpoints)")
    synth_dir = require(cfg, "synth_dir", STAGE, "the folder written by 'faceswap synth out=DIR' that the run was trained on")
    out = Path(str(require(cfg, "out", STAGE, "the folder for metrics.json, samples/ and report.html"))).expanduser()
    ec = cfg.eval
    metrics = evaluate(
        checkpoint, synth_dir, out, faces_a=cfg.get("faces_a"), faces_b=cfg.get("faces_b"), video=cfg.get("video"),
        device=str(cfg.get("device", "auto")), test_fraction=ec.test_fraction, max_frames=int(ec.max_frames),
        align=str(ec.align), weights=str(ec.weights), batch_size=int(ec.batch_size), samples=int(ec.samples),
        gif_frames=int(ec.gif_frames), probe_settings=probe_settings_of(cfg), probe_cache=cfg.probe.get("cache_dir"),
        progress=bool(cfg.get("progress", True)),
    )
    save_config(cfg, out, STAGE)
    print(summary_line(metrics))
    if bool(cfg.get("report", True)):
        from faceswap.evaluate.report import write_report

        run_dir = run_dir_of(Path(metrics["checkpoint"]["path"]))
        path = write_report(out / "report.html", metrics, out, run_dir, context=report_context(metrics))
        print(f"evaluate: metrics in {out / 'metrics.json'}, report in {path}")
    else:
        print(f"evaluate: metrics in {out / 'metrics.json'}")
    return 0


def report_context(metrics: dict, extra: Sequence[tuple[str, object]] = ()) -> list[tuple[str, object]]:
    ck = metrics["checkpoint"]
    fr = metrics["frames"]
    rows = [("checkpoint", f"{ck['path']} (step {ck['step']}, model {ck.get('model')}, {ck['weights']} weights)")]
    if ck.get("train_seconds"):
        rows.append(("training time", f"{ck['train_seconds'] / 60:.1f} min"))
    rows += [("held-out frames", f"{fr['count']} frames of B ({fr['first']}..{fr['last']} of {fr['of']}), "
                                 f"aligned with {'extract' if fr['align'] == 'extract' else 'true'} landmarks"),
             ("judges", f"probe {metrics['probe']['key']} ({metrics['probe']['source']})")]
    return rows + list(extra)


__all__ = [
    "SynthFolder", "load_synth", "held_out", "consecutive_runs", "crop_face", "pixel_scores", "runs_temporal_error",
    "runs_flicker", "TestSet", "choose_test_frames", "gather_crops", "a_faces", "run_model", "labelled_strip",
    "evaluate", "evaluate_video", "summary_line", "run", "run_dir_of", "report_context",
]
