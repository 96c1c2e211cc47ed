"""The detection experiments: held-out AUC, cross-compression, cross-model, counter-measures and spectra; tables, JSON and figures."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceswap.forensics import features as feat
from faceswap.forensics.data import FAKE, REAL, FaceSet, samples_for
from faceswap.forensics.detectors import Detector, build_detector, json_safe, save_detector
from faceswap.utils import write_json_atomic


@dataclass
class Corpus:
    """Real faces per compression level, and swapped faces per swap (checkpoint or convert option) and level."""

    real: dict[str, FaceSet]
    fake: dict[str, dict[str, FaceSet]]
    main: str = "main"
    notes: dict = field(default_factory=dict)  # what each swap is (for tables and the lecture)

    @property
    def levels(self) -> list[str]:
        return [lv for lv in self.real if lv in self.fake.get(self.main, {})]

    def pair(self, swap: str, level: str) -> FaceSet:
        return FaceSet.concat([self.real[level], self.fake[swap][level]])


# ---------------------------------------------------------------- train / evaluate


def _window_args(det: Detector) -> tuple[int, int]:
    return int(det.params.get("window", 16)), int(det.params.get("stride", 8))


def train_detector(name: str, params: dict, train: FaceSet, seed: int = 0, progress: bool = False,
                   every: int = 1) -> tuple[Detector, float]:
    """Build and fit one detector; a frame detector sees every ``every``-th training frame (neighbours are near copies),
    a clip detector sees them all (flicker lives between neighbours)."""
    det = build_detector(name, params)
    if det.unit == "frame" and every > 1:
        train = train.subset(train.frame % every == 0)
    xs, ys, _ = samples_for(det.unit, train, *_window_args(det))
    t0 = time.perf_counter()
    det.fit(xs, ys, seed=seed, progress=progress)
    return det, time.perf_counter() - t0


def score_set(det: Detector, fs: FaceSet) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of every sample (frames, or clip windows for a clip detector) of ``fs``."""
    xs, ys, _ = samples_for(det.unit, fs, *_window_args(det))
    return det.score(xs), ys


def evaluate(det: Detector, fs: FaceSet) -> dict:
    s, y = score_set(det, fs)
    return {"auc": feat.roc_auc(s, y), "accuracy": feat.accuracy(s, y), "balanced_accuracy": feat.balanced_accuracy(s, y),
            "n_real": int((y == REAL).sum()), "n_fake": int((y == FAKE).sum()), "unit": det.unit}


def frame_scores(det: Detector, fs: FaceSet) -> np.ndarray:
    """One score per crop of ``fs``; a clip detector's window scores are averaged over the windows holding each frame."""
    xs, _, groups = samples_for(det.unit, fs, *_window_args(det))
    s = det.score(xs)
    total = np.zeros(len(fs))
    count = np.zeros(len(fs))
    for g, v in zip(groups, s):
        total[g] += v
        count[g] += 1
    out = np.full(len(fs), np.nan)
    out[count > 0] = total[count > 0] / count[count > 0]
    return out


# ---------------------------------------------------------------- tables and figures


def format_table(title: str, rows: dict[str, dict[str, float]], cols: list[str], fmt: str = "{:.3f}") -> str:
    width = max([len(r) for r in rows] + [8])
    colw = max([len(c) for c in cols] + [7])
    lines = [title, " " * width + "  " + "  ".join(f"{c:>{colw}}" for c in cols)]
    for r, vals in rows.items():
        cells = []
        for c in cols:
            v = vals.get(c)
            cells.append(f"{'-' if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v):>{colw}}")
        lines.append(f"{r:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    from faceswap.utils import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    pyplot().close(fig)
    return path


def bar_figure(rows: dict[str, dict[str, float]], cols: list[str], title: str, path: Path, ylabel: str = "AUC") -> Path:
    """Grouped bars: one group per detector (row), one bar per condition (column); chance drawn at 0.5."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(rows), 3.2))
    n = len(cols)
    w = 0.8 / max(n, 1)
    for j, c in enumerate(cols):
        vals = [rows[r].get(c, np.nan) for r in rows]
        ax.bar(np.arange(len(rows)) + (j - (n - 1) / 2) * w, vals, w, label=c)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(rows)), list(rows))
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=min(n, 4), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    return save_figure(fig, path)


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], title: str, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false-positive rate (reals called fake)")
    ax.set_ylabel("true-positive rate (swaps caught)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path)


def spectra_figure(corpus: Corpus, path: Path, bins: int = 48, max_faces: int = 200) -> tuple[Path, dict]:
    """Mean 1-D spectra of real vs swapped faces per level, and the 2-D mean log-spectrum difference at raw."""
    plt = pyplot()
    levels = corpus.levels
    fig, axes = plt.subplots(1, len(levels) + 2, figsize=(3.3 * (len(levels) + 2), 3.0))
    freq = np.linspace(0, 1, bins)
    data = {}
    for ax, lv in zip(axes, levels):
        for label, fs, color in (("real", corpus.real[lv], "tab:blue"), ("swap", corpus.fake[corpus.main][lv], "tab:red")):
            crops = fs.crops[:: max(1, len(fs) // max_faces)]
            prof = feat.spectral_features(crops, bins)
            mean, sd = prof.mean(0), prof.std(0)
            ax.plot(freq, mean, color=color, label=label)
            ax.fill_between(freq, mean - sd, mean + sd, color=color, alpha=0.2)
            data[f"{lv}/{label}"] = mean.tolist()
        ax.set_title(f"1-D spectrum, {lv}", fontsize=10)
        ax.set_xlabel("spatial frequency (1 = Nyquist)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("normalised log power")
    # The curves nearly overlap: their difference is what the logistic regression reads.
    dax = axes[len(levels)]
    for lv in levels:
        dax.plot(freq, np.array(data[f"{lv}/swap"]) - np.array(data[f"{lv}/real"]), label=lv)
    dax.axhline(0, color="k", lw=0.6)
    dax.set_title("swap - real, 1-D", fontsize=10)
    dax.set_xlabel("spatial frequency (1 = Nyquist)")
    dax.legend(fontsize=7)
    raw = levels[0]
    diff = (feat.mean_log_spectrum(corpus.fake[corpus.main][raw].crops[:max_faces])
            - feat.mean_log_spectrum(corpus.real[raw].crops[:max_faces]))
    lim = float(np.percentile(np.abs(diff), 99)) or 1.0
    im = axes[-1].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[-1].set_title(f"swap - real, mean log power ({raw}, dB)", fontsize=9)
    axes[-1].axis("off")
    fig.colorbar(im, ax=axes[-1], fraction=0.046)
    return save_figure(fig, path), data


def example_figure(rows: dict[str, np.ndarray], path: Path, maps: dict[str, np.ndarray] | None = None) -> Path:
    """A grid of face crops (one row per label), optionally with a second row of maps below each."""
    plt = pyplot()
    n = max(len(v) for v in rows.values())
    nrows = len(rows) * (2 if maps else 1)
    fig, axes = plt.subplots(nrows, n, figsize=(1.5 * n, 1.6 * nrows), squeeze=False)
    r = 0
    for label, crops in rows.items():
        for j in range(n):
            ax = axes[r][j]
            ax.axis("off")
            if j < len(crops):
                ax.imshow(crops[j])
            if j == 0:
                ax.set_title(label, fontsize=8, loc="left")
        r += 1
        if maps:
            for j in range(n):
                ax = axes[r][j]
                ax.axis("off")
                if j < len(maps[label]):
                    ax.imshow(maps[label][j], cmap="inferno", vmin=0, vmax=1)
                if j == 0:
                    ax.set_title("predicted blending boundary", fontsize=8, loc="left")
            r += 1
    return save_figure(fig, path)


def flicker_figure(corpus: Corpus, path: Path, size: int = 48, frames: int = 100) -> Path:
    """Mean absolute frame-to-frame change inside the face over time, real (its own video) vs swap."""
    import cv2

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 2.6))
    for name, fs, color in (("real", corpus.real["raw"], "tab:blue"), ("swap", corpus.fake[corpus.main]["raw"], "tab:red")):
        # B's own video (or its true rendering as A) moves exactly as the swap does: the fair comparison.
        names = set(fs.source.tolist())
        src = "B" if "B" in names else "truth" if "truth" in names else fs.source[0]
        idx = np.flatnonzero(fs.source == src)
        idx = idx[np.argsort(fs.frame[idx])][:frames]
        g = np.stack([cv2.resize(feat.to_gray(c).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for c in fs.crops[idx]])
        inner, _ = feat.face_rings(size)
        d1 = np.abs(np.diff(g, axis=0))[:, inner].mean(1)
        # A change across a frame without a face is a cut, not flicker: leave it out of the curve.
        d1[np.diff(fs.frame[idx]) != 1] = np.nan
        ax.plot(fs.frame[idx][1:], d1 * 255, color=color, label=f"{name} ({src})")
    ax.set_xlabel("frame")
    ax.set_ylabel("mean |change| in face (0-255)")
    ax.legend(fontsize=7)
    ax.set_title("frame-to-frame change inside the face", fontsize=10)
    return save_figure(fig, path)


# ---------------------------------------------------------------- the experiments


def run_all(corpus: Corpus, det_cfg: dict[str, dict], out: Path, exp_cfg: dict, seed: int = 0, progress: bool = False,
            log=print) -> dict:
    """Train every detector on the main swap at raw, then measure it everywhere. Writes tables, JSON and figures
    under ``out`` and returns the results dict (``results.json``)."""
    out = Path(out)
    fig_dir = out / "figures"
    names = list(det_cfg)
    levels = corpus.levels
    main_raw = corpus.pair(corpus.main, "raw")
    train = main_raw.part("train")
    every = int(exp_cfg.get("train_every", 1) or 1)
    results: dict = {"detectors": {}, "data": {"levels": levels, "counts": {lv: corpus.pair(corpus.main, lv).counts() for lv in levels},
                                               "swaps": corpus.notes, "split": corpus.notes.get("_split", "")},
                     "experiments": {}, "figures": {}}

    # 1. Held-out swaps and cross-compression: train on raw, test on every level.
    trained: dict[str, Detector] = {}
    rows_auc, rows_acc, curves = {}, {}, {}
    for name in names:
        det, seconds = train_detector(name, dict(det_cfg[name] or {}), train, seed, progress, every)
        trained[name] = det
        save_detector(det, out / "detectors")
        entry = {"auc": {}, "accuracy": {}, "balanced_accuracy": {}, "n": {}, "unit": det.unit, "train_seconds": seconds,
                 "parameters": det.n_parameters(), "train": json_safe(det.meta)}
        for lv in levels:
            test = corpus.pair(corpus.main, lv).part("test")
            ev = evaluate(det, test)
            entry["auc"][lv], entry["accuracy"][lv] = ev["auc"], ev["accuracy"]
            entry["balanced_accuracy"][lv] = ev["balanced_accuracy"]
            entry["n"][lv] = {"real": ev["n_real"], "fake": ev["n_fake"]}
            if lv == "raw":
                s, y = score_set(det, test)
                fpr, tpr = feat.roc_curve(s, y)
                curves[name] = (fpr, tpr, ev["auc"])
        results["detectors"][name] = entry
        rows_auc[name] = entry["auc"]
        rows_acc[name] = entry["accuracy"]
        log(f"  {name}: trained in {seconds:.1f} s; AUC " + ", ".join(f"{lv} {entry['auc'][lv]:.3f}" for lv in levels))
    # 1b. Seed spread: the same detector trained again from other random starts, on the same data.
    seeds = [int(x) for x in (exp_cfg.get("seeds") or []) if int(x) != seed]
    if seeds:
        rows_seed = {}
        for name in names:
            aucs = {str(seed): results["detectors"][name]["auc"]["raw"]}
            for sd in seeds:
                det, _ = train_detector(name, dict(det_cfg[name] or {}), train, sd, progress, every)
                aucs[str(sd)] = evaluate(det, main_raw.part("test"))["auc"]
            vals = np.array(list(aucs.values()), dtype=float)
            results["detectors"][name]["auc_seeds"] = {"per_seed": aucs, "mean": float(vals.mean()), "std": float(vals.std(ddof=1))}
            rows_seed[name] = {**aucs, "mean": float(vals.mean()), "std": float(vals.std(ddof=1))}
        table = format_table("AUC on held-out raw swaps, per training seed", rows_seed, [*map(str, [seed, *seeds]), "mean", "std"])
        log(table)
        results["experiments"]["seeds"] = {"auc": rows_seed, "table": table}
    table = format_table("AUC on held-out swaps (trained on raw)", rows_auc, levels)
    table_acc = format_table("accuracy at threshold 0.5 (trained on raw)", rows_acc, levels)
    log(table + "\n" + table_acc)
    results["experiments"]["cross_compression"] = {"train": "raw", "auc": rows_auc, "accuracy": rows_acc, "table": table + "\n\n" + table_acc}
    results["figures"]["cross_compression"] = str(bar_figure(rows_auc, levels, "trained on raw, tested on each compression level",
                                                             fig_dir / "cross_compression.png").relative_to(out))
    results["figures"]["roc"] = str(roc_figure(curves, "held-out swaps, raw", fig_dir / "roc_raw.png").relative_to(out))

    # 2. Matched compression: does training on compressed faces win the loss back?
    matched = [lv for lv in (exp_cfg.get("matched_levels") or []) if lv in levels and lv != "raw"]
    if matched:
        rows = {}
        for name in names:
            rows[name] = {"raw": results["detectors"][name]["auc"]["raw"]}
            for lv in matched:
                data = corpus.pair(corpus.main, lv)
                det, _ = train_detector(name, dict(det_cfg[name] or {}), data.part("train"), seed, progress, every)
                rows[name][lv] = evaluate(det, data.part("test"))["auc"]
            results["detectors"][name]["auc_matched"] = rows[name]
        cols = ["raw", *matched]
        table = format_table("AUC when trained and tested at the same level", rows, cols)
        log(table)
        results["experiments"]["matched_compression"] = {"auc": rows, "table": table}
        results["figures"]["matched_compression"] = str(bar_figure(rows, cols, "trained and tested at the same level",
                                                                   fig_dir / "matched_compression.png").relative_to(out))

    # 3. Cross-model: the detectors above, on swaps of a checkpoint they never saw.
    others = [s for s in corpus.fake if s != corpus.main and s.startswith("model:")]
    if others:
        rows = {}
        cols = [f"seen ({corpus.main})"] + others
        for name, det in trained.items():
            rows[name] = {cols[0]: results["detectors"][name]["auc"]["raw"]}
            for other in others:
                rows[name][other] = evaluate(det, corpus.pair(other, "raw").part("test"))["auc"]
            results["detectors"][name]["auc_cross_model"] = rows[name]
        table = format_table("AUC on swaps of another checkpoint (trained on the main one, raw)", rows, cols)
        log(table)
        results["experiments"]["cross_model"] = {"auc": rows, "table": table, "models": {o: corpus.notes.get(o, "") for o in others}}
        results["figures"]["cross_model"] = str(bar_figure(rows, cols, "trained on one checkpoint, tested on another",
                                                           fig_dir / "cross_model.png").relative_to(out))

    # 4. Counter-measures: the same detectors on swaps made with the toolkit's own disguises.
    cms = [s for s in corpus.fake if s.startswith("cm:")]
    if cms:
        rows = {}
        cols = [f"plain ({corpus.main})"] + cms
        for name, det in trained.items():
            rows[name] = {cols[0]: results["detectors"][name]["auc"]["raw"]}
            for cm in cms:
                rows[name][cm] = evaluate(det, corpus.pair(cm, "raw").part("test"))["auc"]
            results["detectors"][name]["auc_countermeasures"] = rows[name]
        table = format_table("AUC on swaps made with counter-measures (trained on the plain swap, raw)", rows, cols)
        log(table)
        results["experiments"]["countermeasures"] = {"auc": rows, "table": table, "variants": {c: corpus.notes.get(c, "") for c in cms}}
        results["figures"]["countermeasures"] = str(bar_figure(rows, cols, "the toolkit's counter-measures vs the detectors",
                                                               fig_dir / "countermeasures.png").relative_to(out))

    # 5. Pictures of the artefacts: spectra, flicker, blending boundary maps.
    bins = int((det_cfg.get("spectral") or {}).get("bins", 48))
    path, spectra = spectra_figure(corpus, fig_dir / "spectra.png", bins)
    results["figures"]["spectra"] = str(path.relative_to(out))
    results["experiments"]["spectra"] = {"mean_profile": spectra, "frequency": np.linspace(0, 1, bins).tolist()}
    results["figures"]["flicker"] = str(flicker_figure(corpus, fig_dir / "flicker.png").relative_to(out))
    test = main_raw.part("test")
    pick = lambda lab: np.flatnonzero(test.labels == lab)[:: max(1, int((test.labels == lab).sum()) // 6)][:6]  # noqa: E731
    rows = {"real (test)": test.crops[pick(REAL)], "swap (test)": test.crops[pick(FAKE)]}
    if "xray" in trained:
        maps = {k: trained["xray"].predict_maps(v) for k, v in rows.items()}
        results["figures"]["xray_maps"] = str(example_figure(rows, fig_dir / "xray_maps.png", maps).relative_to(out))
    else:
        results["figures"]["examples"] = str(example_figure(rows, fig_dir / "examples.png").relative_to(out))

    for key, exp in results["experiments"].items():
        write_json_atomic(out / "experiments" / f"{key}.json", json_safe(exp))
    results = json_safe(results)
    write_json_atomic(out / "results.json", results)
    return results


def best_detector(results: dict, level: str = "raw") -> tuple[str, float]:
    """The detector with the highest AUC at ``level``."""
    items = [(n, d["auc"].get(level)) for n, d in results["detectors"].items()]
    items = [(n, float(a)) for n, a in items if isinstance(a, (int, float)) and a == a]
    return max(items, key=lambda t: t[1]) if items else ("", float("nan"))
