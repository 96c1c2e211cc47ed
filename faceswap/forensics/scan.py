"""`faceswap forensics scan VIDEO`: per-frame fake scores from trained detectors, a plot over time and the watermark check."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from faceswap.errors import UserError
from faceswap.forensics.data import FaceSet, crops_from_video, load_targets
from faceswap.forensics.detectors import DETECTORS, Detector, json_safe, load_detectors
from faceswap.forensics.experiments import pyplot, save_figure, frame_scores
from faceswap.utils import read_json, write_json_atomic
from faceswap.resources import asset


# Detectors trained by a default `faceswap forensics` run on a CPU, shipped so that a scan works out of the box.
SHIPPED = asset("forensics", "detectors")


def cache_dir() -> Path:
    """Where the detectors of the last `faceswap forensics` run are kept for scans without ``detectors=``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "faceswap" / "forensics" / "detectors"


def cache_detectors(folder: Path) -> Path:
    """Copy a trained detectors folder (and its data settings) into the cache, replacing the old one whole."""
    dst = cache_dir()
    tmp = dst.with_name(dst.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(folder, tmp)
    old = dst.with_name(dst.name + ".old")
    if dst.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    os.replace(tmp, dst)
    if old.exists():
        shutil.rmtree(old)
    return dst


def resolve_detectors(path: str | os.PathLike | None) -> Path:
    """``detectors=`` may name a forensics out folder or its ``detectors/``; without it, the cache, then the shipped ones."""
    if path is None:
        for folder in (cache_dir(), SHIPPED):
            if any((folder / f"{n}.json").is_file() for n in DETECTORS):
                return folder
        raise UserError("no trained detectors found: run 'faceswap forensics out=DIR' first (it caches them), "
                        "or pass detectors=DIR of such a run")
    folder = Path(path)
    if not folder.exists():
        raise UserError(f"detectors folder {folder} does not exist; pass detectors=DIR of a 'faceswap forensics out=DIR' run")
    if (folder / "detectors").is_dir():
        folder = folder / "detectors"
    if not any((folder / f"{n}.json").is_file() for n in DETECTORS):
        raise UserError(f"{folder} holds no trained detectors ({', '.join(n + '.json' for n in DETECTORS)}); "
                        "pass detectors=DIR of a 'faceswap forensics out=DIR' run")
    return folder


def _data_settings(folder: Path) -> dict:
    """The crop settings the detectors were trained with (written beside them by `faceswap forensics`)."""
    path = folder / "data.json"
    return read_json(path, "detector data settings") if path.is_file() else {}


def scan_plot(frames: np.ndarray, scores: dict[str, np.ndarray], n_frames: int, title: str, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    for name, s in scores.items():
        full = np.full(n_frames, np.nan)
        full[frames] = s
        ax.plot(np.arange(n_frames), full, label=name, lw=1.6 if name == "mean" else 1.0,
                color="k" if name == "mean" else None)
    missing = np.setdiff1d(np.arange(n_frames), frames)
    if len(missing):
        ax.scatter(missing, np.zeros(len(missing)) - 0.03, marker="|", color="0.6", label="no face")
    ax.axhline(0.5, color="k", lw=0.6, ls="--")
    ax.set_ylim(-0.06, 1.02)
    ax.set_xlabel("frame")
    ax.set_ylabel("P(swapped)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    return save_figure(fig, path)


def _verdict(mean_score: float, frac: float) -> str:
    if mean_score != mean_score:
        return "no face could be scored"
    if mean_score > 0.5:
        return f"LIKELY SWAPPED: mean fake score {mean_score:.2f}, {100 * frac:.0f}% of face frames above 0.5"
    return f"no swap detected: mean fake score {mean_score:.2f}, {100 * frac:.0f}% of face frames above 0.5"


def scan_video(video: str | os.PathLike, detectors: dict[str, Detector], out: str | os.PathLike, *, size: int = 128,
               margin: float = 0.15, alignments: str | os.PathLike | None = None, extract_overrides: list[str] = (),
               device: str = "auto", progress: bool = False, watermark: bool = True) -> dict:
    """Score every face frame of ``video`` with every detector; write ``scan.json`` and ``scan.png`` under ``out``."""
    from faceswap.video import FrameSource

    video = Path(video)
    source = FrameSource(video)  # missing, empty or undecodable video -> UserError here
    if not source.is_video:
        raise UserError(f"scan needs a video file, got the folder {video}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. Faces: the extract stage finds, tracks and aligns them (or a given alignments file places them).
    if alignments is None:
        from faceswap.cli import STAGES
        from faceswap.config import compose

        ext_dir = out / "extract"
        cfg = compose("extract", [f"input={_q(video)}", f"out={_q(ext_dir)}", f"device={device}",
                                  f"progress={str(bool(progress)).lower()}", *extract_overrides])
        STAGES["extract"].load()(cfg)
        alignments = ext_dir / "alignments.json"
    matrices, crop_size = load_targets(alignments)
    n_frames = len(source)
    if not matrices:
        raise UserError(f"no face was found in {video}; nothing to scan (check the video, or pass alignments=FILE)")
    crops, idx = crops_from_video(video, matrices, crop_size, size, margin, progress=progress)
    faces = FaceSet(crops, np.zeros(len(idx)), np.full(len(idx), "scan"), idx, np.full(len(idx), "scan"))

    # 2. Scores: per frame for frame detectors, per sliding window (spread to its frames) for clip detectors.
    per_det = {name: frame_scores(det, faces) for name, det in detectors.items()}
    stack = np.vstack(list(per_det.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a frame no clip window covers is NaN for that detector
        mean = np.nanmean(stack, axis=0)
    summary = {}
    for name, s in {**per_det, "mean": mean}.items():
        ok = ~np.isnan(s)
        summary[name] = {"mean": float(np.mean(s[ok])) if ok.any() else float("nan"),
                         "median": float(np.median(s[ok])) if ok.any() else float("nan"),
                         "frames_above_0.5": float(np.mean(s[ok] > 0.5)) if ok.any() else float("nan"),
                         "frames_scored": int(ok.sum())}
    plot = scan_plot(idx, {**per_det, "mean": mean}, n_frames, f"fake score per frame: {video.name}", out / "scan.png")

    # 3. The provenance check: a faceswap output carries a watermark unless someone removed it.
    wm = None
    if watermark:
        from faceswap.provenance import verify_file

        wm = verify_file(video, progress=progress)
    report = {
        "input": str(video), "frames": n_frames, "frames_with_face": int(len(idx)), "detectors": summary,
        "input_shortfall": source.info.shortfall.record() if source.info.shortfall else None,  # truncated/corrupt
        "per_frame": {"frame": idx.tolist(), **{k: v.tolist() for k, v in per_det.items()}, "mean": mean.tolist()},
        "verdict": _verdict(summary["mean"]["mean"], summary["mean"]["frames_above_0.5"]),
        "watermark": wm, "plot": str(plot),
        "note": "the detectors were trained on this toolkit's swaps of synthetic actors; a low score is not proof of authenticity",
    }
    write_json_atomic(out / "scan.json", json_safe(report))
    return report


def _q(path) -> str:
    from faceswap.cli import _quote

    return _quote(str(path))


def format_summary(report: dict) -> str:
    lines = [f"faceswap forensics scan: {report['input']} ({report['frames']} frames, {report['frames_with_face']} with a face)"]
    for name, s in report["detectors"].items():
        lines.append(f"  {name:<9} mean {s['mean']:.3f}  median {s['median']:.3f}  frames > 0.5: {100 * s['frames_above_0.5']:.0f}%")
    lines.append(f"  detectors: {report['verdict']}")
    if report.get("detectors_from"):
        lines.append(f"             (detectors from {report['detectors_from']})")
    wm = report.get("watermark")
    if wm is not None:
        lines.append(f"  watermark: {wm['verdict']}")
    lines.append(f"  plot:      {report['plot']}")
    return "\n".join(lines)


def run_scan(cfg) -> int:
    """Entry of `faceswap forensics scan VIDEO [detectors=DIR] [out=DIR] [alignments=FILE]`."""
    import sys

    if cfg.input is None:
        raise UserError("'faceswap forensics scan' needs a video: faceswap forensics scan VIDEO [detectors=DIR]")
    from faceswap.video import FrameSource

    video = Path(str(cfg.input))
    if not video.is_file():
        raise UserError(f"video {video} does not exist; give the path of a video file to scan")
    FrameSource(video)  # an empty or undecodable file fails here, before any work
    folder = resolve_detectors(cfg.detectors)
    dets = load_detectors(folder)
    settings = _data_settings(folder)
    margin = cfg.forensics.scan.margin
    margin = float(settings.get("margin", cfg.forensics.data.margin) if margin is None else margin)
    size = int(settings.get("size", cfg.forensics.data.size))
    out = Path(str(cfg.out)) if cfg.out else video.with_name(f"{video.stem}_scan")
    if cfg.alignments is not None and not Path(str(cfg.alignments)).is_file():
        raise UserError(f"alignments file {cfg.alignments} does not exist; drop alignments= to detect the faces instead")
    progress = bool(cfg.progress) and sys.stderr.isatty()
    report = scan_video(video, dets, out, size=size, margin=margin, alignments=cfg.alignments,
                        extract_overrides=list(cfg.forensics.scan.extract), device=str(cfg.device), progress=progress)
    report["detectors_from"] = str(folder) + (" (shipped with faceswap)" if folder == SHIPPED else "")
    write_json_atomic(out / "scan.json", json_safe(report))
    from faceswap.config import save_config

    save_config(cfg, out, "forensics")
    print(format_summary(report))
    print(f"  report:    {out / 'scan.json'}")
    return 0
