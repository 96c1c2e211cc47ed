"""The HTML report of a swap: one self-contained page (images inlined) with pictures, curves, metrics and explanations."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from string import Template
from typing import Any, Sequence

import cv2
import numpy as np

from faceswap.utils import atomic_path
from faceswap.video import list_images, read_image
from faceswap.resources import asset

TEMPLATE = asset("templates", "report.html")

# Plain-language text for a lecture audience, one paragraph per section.
EXPLAIN = {
    "swap": (
        "Each row is one frame that the model never saw while training. Left: actor B's face as the camera "
        "filmed it. Middle: the swap, B's face run through the shared encoder and then A's decoder. Right: the "
        "truth, the same performance rendered with actor A's appearance, which only synthetic actors can give us. "
        "A good swap looks like the right column: A's identity, B's head pose, expression and lighting."
    ),
    "video": (
        "The same comparison as a short loop over consecutive held-out frames. Watch the eyes and mouth: an "
        "autoencoder that has trained only briefly gets identity and pose first, and fine detail (blinks, teeth, "
        "lip shape) later. Flicker, faces that shimmer from frame to frame while the truth moves smoothly, is the "
        "other tell-tale sign of a swap made frame by frame."
    ),
    "metrics": (
        "Numbers measured against the true swap on held-out frames, inside the face mask. SSIM (1 is perfect) "
        "compares local structure; PSNR (higher is better) compares pixel values. Two baselines keep the numbers "
        "honest: doing nothing (showing B's face unchanged) and showing A's average face in every frame. A blurry "
        "average face can score a decent PSNR, so we also ask two small networks trained only on rendered actors: "
        "an identity probe (whose face is this?) and an expression/pose reader (is the mouth open, where does the "
        "head point?). A good swap is recognised as A and keeps B's expression."
    ),
    "losses": (
        "How the training error fell over time. The model learns to rebuild each actor's face from a deliberately "
        "distorted copy; the loss mixes pixel error, structural (SSIM) error and mask error. Both actors share one "
        "encoder, so the encoder must describe pose, expression and light in a way that both decoders can read: "
        "that shared description is what makes the swap possible."
    ),
    "timelapse": (
        "The swap of a few fixed faces of B, saved every so often while training ran. Early frames are a blur of "
        "an average face; identity arrives first, then pose, then expression and detail."
    ),
    "mask": (
        "Each decoder also predicts a mask: where the face is. Conversion uses it to blend the generated face "
        "into the original frame, so that hair, background and neck stay B's. Left to right: B's face, the true "
        "face mask, the mask the model predicted for the swap, and the swap blended with that mask."
    ),
    "mean": (
        "A's average training face: the baseline a model would produce if it had learned nothing but A's "
        "average look. It has A's colours but no pose or expression of its own."
    ),
}

METRIC_NOTES = {
    "ssim": "SSIM vs truth, inside the face mask (1 = identical)",
    "psnr": "PSNR vs truth, inside the face mask, dB (higher is better)",
    "identity_a_rate": "share of faces the identity probe assigns to A",
    "expression_error": "expression + pose error, in standard deviations of each parameter (0 = perfect)",
    "flicker": "temporal error vs truth: mean |change of swap - change of truth| between frames, 0..1 scale",
}


# --- inline images ------------------------------------------------------------------------------------------

def png_data_uri(rgb: np.ndarray) -> str:
    """An RGB (or grey) uint8 image as a ``data:image/png;base64,...`` URI."""
    img = np.asarray(rgb)
    bgr = img if img.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise ValueError("could not encode image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 8.0) -> bytes:
    """A looping GIF of RGB uint8 frames (all the same size)."""
    from PIL import Image

    if not frames:
        raise ValueError("a GIF needs at least one frame")
    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=max(20, int(round(1000 / fps))), optimize=False)
    return buf.getvalue()


def write_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 8.0) -> Path:
    path = Path(path)
    with atomic_path(path, suffix=".gif") as tmp:
        tmp.write_bytes(gif_bytes(frames, fps))
    return path


def file_data_uri(path: str | Path) -> str | None:
    """A PNG or GIF file as a data URI (None when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return None
    kind = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"not an image type the report inlines: {path}")
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# --- training curves ---------------------------------------------------------------------------------------

def read_loss_log(run_dir: str | Path | None) -> list[dict]:
    """The training log's records (``metrics.jsonl``: one JSON object per line with a ``step``); bad lines skipped."""
    if run_dir is None:
        return []
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interrupted run
        if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)):
            records.append(rec)
    return records


def loss_series(records: Sequence[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """{name: (steps, values)} for every numeric key whose name says it is a loss or a validation score."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for rec in records:
        for key, value in rec.items():
            if key == "step" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if not ("loss" in key or key.startswith("val")):
                continue
            if not math.isfinite(float(value)):
                continue
            steps, values = series.setdefault(key, ([], []))
            steps.append(float(rec["step"]))
            values.append(float(value))
    return series


def loss_curve_png(records: Sequence[dict]) -> bytes | None:
    """The training curves as a PNG: losses on a log scale on the left, validation scores on the right."""
    series = loss_series(records)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = {k: v for k, v in series.items() if "loss" in k}
    vals = {k: v for k, v in series.items() if k not in losses}
    fig, axes = plt.subplots(1, 2 if vals else 1, figsize=(10 if vals else 6, 3.6), dpi=90, squeeze=False)
    ax = axes[0, 0]
    for name, (steps, values) in sorted(losses.items()):
        positive = all(v > 0 for v in values)
        ax.plot(steps, values, label=name, linewidth=1.2)
        if positive:
            ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training losses")
    ax.grid(alpha=0.3)
    if losses:
        ax.legend(fontsize=7)
    if vals:
        ax2 = axes[0, 1]
        for name, (steps, values) in sorted(vals.items()):
            ax2.plot(steps, values, marker="o", markersize=3, label=name)
        ax2.set_xlabel("step")
        ax2.set_title("validation (held-out faces)")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def timelapse_frames(run_dir: str | Path | None, max_frames: int = 40, max_width: int = 640) -> list[np.ndarray]:
    """The run's timelapse PNGs, evenly thinned to ``max_frames`` and shrunk to ``max_width``."""
    if run_dir is None or not (Path(run_dir) / "timelapse").is_dir():
        return []
    paths = list_images(Path(run_dir) / "timelapse")
    if len(paths) > max_frames:
        keep = np.linspace(0, len(paths) - 1, max_frames).round().astype(int)
        paths = [paths[i] for i in sorted(set(keep))]
    frames = []
    for p in paths:
        img = read_image(p)
        if frames and img.shape != frames[0].shape:
            img = cv2.resize(img, (frames[0].shape[1], frames[0].shape[0]), interpolation=cv2.INTER_AREA)
        frames.append(img)
    if frames and frames[0].shape[1] > max_width:
        s = max_width / frames[0].shape[1]
        size = (max_width, max(1, int(round(frames[0].shape[0] * s))))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return frames


# --- the metric table --------------------------------------------------------------------------------------

def _fmt(value: Any, key: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if key == "identity_a_rate":
        return f"{100 * float(value):.0f}%"
    if key == "psnr":
        return f"{float(value):.2f}"
    return f"{float(value):.3f}"


def metric_table(metrics: dict) -> str:
    """HTML table: rows are metrics, columns are the swap and the two baselines; the best of each row in bold."""
    cols = [("swap", "swap (B&rarr;A)", metrics.get("swap", {})),
            ("input_b", "baseline: B unchanged", metrics.get("baselines", {}).get("input_b", {})),
            ("mean_a", "baseline: A's mean face", metrics.get("baselines", {}).get("mean_a", {}))]
    higher_better = {"ssim": True, "psnr": True, "identity_a_rate": True, "expression_error": False, "flicker": False}
    out = ["<table class='metrics'><thead><tr><th>metric</th>"]
    out += [f"<th>{label}</th>" for _, label, _ in cols]
    out.append("</tr></thead><tbody>")
    for key, better in higher_better.items():
        values = [c.get(key) for _, _, c in cols]
        if all(v is None for v in values):
            continue
        finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(float(v))]
        best = (max(finite) if better else min(finite)) if finite else None
        out.append(f"<tr><td title='{html.escape(METRIC_NOTES[key])}'>{key}<div class='note'>"
                   f"{html.escape(METRIC_NOTES[key])}</div></td>")
        for v in values:
            bold = best is not None and isinstance(v, (int, float)) and float(v) == best
            cell = _fmt(v, key)
            out.append(f"<td class='num'>{'<b>' + cell + '</b>' if bold else cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='kv'><tbody>{cells}</tbody></table>"


def _img(uri: str | None, alt: str, css: str = "") -> str:
    if uri is None:
        return f"<p class='missing'>({html.escape(alt)}: not available for this run)</p>"
    return f"<img src='{uri}' alt='{html.escape(alt)}' class='{css}'>"


def _section(key: str, title: str, body: str) -> str:
    return (f"<section id='{key}'><h2>{html.escape(title)}</h2><p class='explain'>{html.escape(EXPLAIN[key])}</p>"
            f"{body}</section>")


def render_report(metrics: dict, eval_dir: str | Path, run_dir: str | Path | None = None,
                  title: str = "faceswap: a swap measured against the truth", context: Sequence[tuple[str, Any]] = ()) -> str:
    """The report's HTML (a string): every picture is read from ``eval_dir``/``run_dir`` and inlined."""
    eval_dir = Path(eval_dir)
    samples = eval_dir / "samples"
    sections = []

    swap_body = _img(file_data_uri(samples / "stills.png"), "held-out frames: B, swap, truth", "wide")
    sections.append(_section("swap", "The swap, beside its input and the truth", swap_body))

    video_body = _img(file_data_uri(samples / "compare.gif"), "loop of B, swap, truth (aligned faces)", "wide")
    if (samples / "frames.gif").is_file():
        video_body += ("<p class='caption'>Whole frames from the converted video (B's video, the converted "
                       "video, the true swap):</p>" + _img(file_data_uri(samples / "frames.gif"),
                                                           "loop of whole frames: B, converted, truth", "wide"))
    sections.append(_section("video", "In motion", video_body))

    probe = metrics.get("probe", {})
    rec = metrics.get("reconstruction", {})
    extra_rows = [("identity probe accuracy on held-out renders", _fmt(probe.get("identity_accuracy"), "x")),
                  ("identity probe: non-faces (noise, scrambled faces) called nobody", _fmt(probe.get("nonface_rejection"), "x")),
                  ("expression/pose reader error on real renders (std units)",
                   _fmt(probe.get("expression_error_on_renders"), "x")),
                  ("reconstruction SSIM A&rarr;A (held-out)", _fmt(rec.get("a_ssim"), "ssim")),
                  ("reconstruction SSIM B&rarr;B (held-out)", _fmt(rec.get("b_ssim"), "ssim")),
                  ("held-out frames measured", metrics.get("frames", {}).get("count", "n/a"))]
    video = metrics.get("video")
    if isinstance(video, dict):
        extra_rows += [("converted video: SSIM vs truth (face region)", _fmt(video.get("ssim"), "ssim")),
                       ("converted video: PSNR vs truth (face region)", _fmt(video.get("psnr"), "psnr")),
                       ("B's video unchanged: SSIM vs truth", _fmt(video.get("input_b_ssim"), "ssim"))]
    extra = "".join(f"<tr><td>{k}</td><td class='num'>{html.escape(str(v))}</td></tr>" for k, v in extra_rows)
    metrics_body = (metric_table(metrics) + f"<table class='kv'><tbody>{extra}</tbody></table>"
                    + _img(file_data_uri(samples / "mean_a.png"), "A's mean face (the baseline)", "small")
                    + f"<p class='caption'>{html.escape(EXPLAIN['mean'])}</p>")
    sections.append(_section("metrics", "The numbers, with baselines", metrics_body))

    curve = loss_curve_png(read_loss_log(run_dir))
    curve_uri = "data:image/png;base64," + base64.b64encode(curve).decode("ascii") if curve else None
    sections.append(_section("losses", "Training curves", _img(curve_uri, "training loss curves", "wide")))

    frames = timelapse_frames(run_dir)
    tl_uri = ("data:image/gif;base64," + base64.b64encode(gif_bytes(frames, fps=4)).decode("ascii")) if frames else None
    sections.append(_section("timelapse", "The swap while it trained (timelapse)", _img(tl_uri, "training timelapse")))

    sections.append(_section("mask", "The mask", _img(file_data_uri(samples / "masks.png"), "masks", "wide")))

    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(title),
        context=kv_table(context) if context else "",
        sections="\n".join(sections),
    )


def write_report(path: str | Path, metrics: dict, eval_dir: str | Path, run_dir: str | Path | None = None,
                 title: str = "faceswap: a swap measured against the truth",
                 context: Sequence[tuple[str, Any]] = ()) -> Path:
    """Write the self-contained report to ``path`` (atomically)."""
    path = Path(path)
    text = render_report(metrics, eval_dir, run_dir, title, context)
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


__all__ = [
    "EXPLAIN", "png_data_uri", "gif_bytes", "write_gif", "file_data_uri", "read_loss_log", "loss_series",
    "loss_curve_png", "timelapse_frames", "metric_table", "render_report", "write_report",
]
