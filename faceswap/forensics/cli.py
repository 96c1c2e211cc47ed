"""`faceswap forensics`: run the detection experiments and write the lecture (action run), or scan a video (action scan)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from faceswap.errors import UserError

ACTIONS = ("run", "scan")


def _how_made(mats, corpus, fcfg, out: Path) -> str | None:
    """The lecture's first picture: frames of A, B, the swap and the truth at one test moment, and their crops."""
    from faceswap.forensics.data import load_targets, rescale_matrix
    from faceswap.forensics.lecture import how_made_figure
    from faceswap.video import read_video

    import cv2

    fake = corpus.fake[corpus.main]["raw"]
    test = np.sort(fake.frame[fake.split == "test"])
    if not len(test):
        return None
    k = int(test[len(test) // 3])

    def frame(path: Path, i: int) -> np.ndarray | None:
        return next(iter(read_video(path, i, i + 1)), None) if path and Path(path).is_file() else None

    mats_a, _ = load_targets(mats.extract["A"] / "alignments.json")
    visible = set(mats_a)
    truth_a = mats.synth / "A" / "frames.json"
    if truth_a.is_file():  # the renderer knows when A faces away; the detector may have found someone else then
        import json

        visible &= {int(f["index"]) for f in json.loads(truth_a.read_text()) if f.get("face_visible") and not f.get("extra_faces")}
    k_a = min(visible, key=lambda i: abs(i - k)) if visible else k
    frames = {"A (real)": frame(mats.synth / "A.mp4", k_a), f"B, frame {k}": frame(mats.synth / "B.mp4", k),
              "B swapped to A": frame(mats.swaps["main"], k)}
    if mats.truth is not None:
        frames["true B-as-A"] = frame(mats.truth, k)
    frames = {n: f for n, f in frames.items() if f is not None}
    mats_b, crop_size = load_targets(mats.extract["B"] / "alignments.json")
    m = rescale_matrix(mats_b[k], crop_size, int(fcfg.data.size), float(fcfg.data.margin))
    size = int(fcfg.data.size)
    crops = {n + " (crop)": cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
             for n, f in frames.items() if not n.startswith("A ")}
    swap_c, b_c = crops.get("B swapped to A (crop)"), crops.get(f"B, frame {k} (crop)")
    if swap_c is not None and b_c is not None:
        # What the swap changed in B's frame: the pasted region, with the soft seam at its edge.
        err = np.abs(swap_c.astype(np.float32) - b_c.astype(np.float32)).mean(-1)
        crops["|swap - B|: what was pasted"] = np.clip(err / max(float(np.percentile(err, 99)), 1.0), 0, 1)
    path = how_made_figure(frames, crops, out / "figures" / "how_made.png")
    return str(path.relative_to(out))


def run_experiments(cfg: DictConfig) -> int:
    from faceswap.config import save_config
    from faceswap.forensics.detectors import DETECTORS, json_safe
    from faceswap.forensics.experiments import best_detector, run_all
    from faceswap.forensics.lecture import write_lecture
    from faceswap.forensics.pipeline import build_corpus, prepare
    from faceswap.forensics.scan import cache_detectors
    from faceswap.utils import seed_everything, write_json_atomic

    if cfg.input is not None:
        raise UserError(f"'faceswap forensics run' takes no input (got {cfg.input}); to scan a video: faceswap forensics scan VIDEO")
    if cfg.out is None:
        raise UserError("'faceswap forensics' needs out=DIR: the folder for results.json, lecture.html, detectors/ and figures/")
    out = Path(str(cfg.out))
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder")
    from_dir = cfg["from"]
    if from_dir is not None and not Path(str(from_dir)).is_dir():
        raise UserError(f"from={from_dir} does not exist; give the out= folder of 'faceswap demo' or drop from=")
    fcfg = cfg.forensics
    det_cfg = {k: OmegaConf.to_container(v, resolve=True) or {} for k, v in fcfg.detectors.items() if v is not None}
    unknown = [k for k in det_cfg if k not in DETECTORS]
    if unknown or not det_cfg:
        raise UserError(f"forensics.detectors names {unknown or 'nothing'}; choose from {', '.join(DETECTORS)}")
    progress = bool(cfg.progress) and sys.stderr.isatty()
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out, "forensics")
    seed_everything(int(cfg.seed))
    t0 = time.perf_counter()

    print(f"forensics: preparing videos in {out / 'pipeline'}" + (f" (reusing {from_dir})" if from_dir else ""))
    mats = prepare(fcfg, out, from_dir, int(cfg.seed), str(cfg.device), progress)
    print("forensics: cutting aligned faces (raw and re-encoded)")
    corpus = build_corpus(mats, fcfg, out, progress)
    print("forensics: training and testing detectors")
    results = run_all(corpus, det_cfg, out, OmegaConf.to_container(fcfg.experiments, resolve=True), int(cfg.seed), progress)
    results["figures"]["how_made"] = _how_made(mats, corpus, fcfg, out)
    results["materials"] = mats.to_dict()
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results = json_safe(results)
    write_json_atomic(out / "results.json", results)
    # The crop geometry travels with the detectors, so a scan cuts faces the way they were trained.
    write_json_atomic(out / "detectors" / "data.json", {"size": int(fcfg.data.size), "margin": float(fcfg.data.margin)})
    lecture = write_lecture(results, out)
    if cfg.cache:
        cached = cache_detectors(out / "detectors")
        print(f"forensics: detectors cached in {cached} (used by 'faceswap forensics scan' without detectors=)")
    name, auc = best_detector(results, "raw")
    print(f"forensics: best on raw: {name} (AUC {auc:.3f}); results {out / 'results.json'}; lecture {lecture}")
    return 0


def run(cfg: DictConfig) -> int:
    """Entry point of `faceswap forensics [run|scan] ...`."""
    action = str(cfg.action)
    if action not in ACTIONS:
        raise UserError(f"unknown forensics action '{action}'; use 'faceswap forensics out=DIR' (run) or 'faceswap forensics scan VIDEO'")
    threads = int(cfg.threads)
    if threads < 0:
        raise UserError(f"threads={threads}: give 0 (torch's default) or a positive number of CPU threads")
    if threads:
        import torch

        torch.set_num_threads(threads)
    if action == "scan":
        from faceswap.forensics.scan import run_scan

        return run_scan(cfg)
    return run_experiments(cfg)
