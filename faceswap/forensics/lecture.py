"""The forensics lecture: one self-contained HTML page (inlined images) built from results.json and the figures."""
from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path
from string import Template

import numpy as np
from faceswap.resources import asset

TEMPLATE = asset("templates", "lecture.html")

WHAT = {
    "spectral": ("the 1-D power spectrum of the grey crop (48 numbers) and a logistic regression",
                 "Durall et al. 2020, <i>Watch your Up-Convolution</i> / <i>Unmasking DeepFakes with simple Features</i>"),
    "meso4": ("a 4-layer convolutional net (Meso-4) trained from scratch on real and swapped crops",
              "Afchar et al. 2018, <i>MesoNet</i>"),
    "xray": ("a small fully convolutional net that draws the blending boundary 4&middot;M&middot;(1&minus;M); trained on "
             "real faces only, blended into themselves", "Li et al. 2020, <i>Face X-ray</i>"),
    "temporal": ("frame-to-frame change statistics of the face over a 16-frame window (flicker) and a logistic regression",
                 "flicker of per-frame decoding"),
}


def data_uri(path: str | Path) -> str | None:
    path = Path(path)
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _img(out: Path, rel: str | None, alt: str, caption: str = "") -> str:
    uri = data_uri(out / rel) if rel else None
    if uri is None:
        return f'<p class="note">({html.escape(alt)}: not made in this run)</p>'
    cap = f'<p class="caption">{caption}</p>' if caption else ""
    return f'<img src="{uri}" alt="{html.escape(alt)}">{cap}'


def _f(v) -> str:
    return "&ndash;" if not isinstance(v, (int, float)) or v != v else f"{v:.3f}"


def auc_table(rows: dict[str, dict[str, float]], cols: list[str], good: float = 0.9, poor: float = 0.7) -> str:
    """An HTML table of AUCs, cells tinted green (>= good) or red (<= poor)."""
    head = "<tr><th>detector</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = []
    for r, vals in rows.items():
        cells = []
        for c in cols:
            v = vals.get(c)
            x = _num(v)
            cls = "num" + (" good" if x == x and x >= good else " poor" if x == x and x <= poor else "")
            cells.append(f'<td class="{cls}">{_f(v)}</td>')
        body.append(f"<tr><td>{html.escape(r)}</td>{''.join(cells)}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _section(title: str, body: str, anchor: str) -> str:
    return f'<h2 id="{anchor}">{html.escape(title)}</h2>\n{body}\n'


def _num(v) -> float:
    """A table cell as a float; missing or null (NaN written to JSON) is NaN."""
    return float(v) if isinstance(v, (int, float)) else float("nan")


def _mean_drop(rows: dict[str, dict[str, float]], base: str, col: str) -> float:
    """Mean AUC lost between column ``base`` and column ``col`` over the detectors (NaN cells skipped)."""
    d = [_num(v.get(base)) - _num(v.get(col)) for v in rows.values()]
    d = [x for x in d if x == x]
    return float(np.mean(d)) if d else float("nan")


def _best(rows: dict[str, dict[str, float]], col: str) -> str:
    return max(rows, key=lambda n: _num(rows[n].get(col)) if _num(rows[n].get(col)) == _num(rows[n].get(col)) else -1.0)


def findings(results: dict) -> list[str]:
    """Sentences read off this run's numbers (never written in advance): best detector, compression, unseen model."""
    from faceswap.forensics.experiments import best_detector

    out = []
    dets = results.get("detectors", {})
    name, auc = best_detector(results, "raw")
    if name:
        out.append(f"On held-out frames of our own swaps the best detector is <b>{name}</b> (AUC {_f(auc)} on raw frames).")
    levels = [lv for lv in results.get("data", {}).get("levels", []) if lv != "raw"]
    rows = {n: d["auc"] for n, d in dets.items()}
    if levels and rows:
        worst = levels[-1]
        drop = _mean_drop(rows, "raw", worst)
        keeps = _best(rows, worst)
        effect = (f"costs the detectors {drop:.3f} AUC on average" if drop >= 0
                  else f"does not hurt here: the mean AUC is {-drop:.3f} higher")
        out.append(f"Re-encoding at {worst} {effect} "
                   f"({', '.join(f'{n} {_f(r.get(worst))}' for n, r in rows.items())}); {keeps} holds up best.")
    xm = results.get("experiments", {}).get("cross_model", {}).get("auc", {})
    if xm:
        cols = list(next(iter(xm.values())).keys())
        seen, other = cols[0], cols[1]
        drop = _mean_drop(xm, seen, other)
        keeps = _best(xm, other)
        effect = (f"lose {drop:.3f} AUC on average" if drop >= 0
                  else f"lose nothing here: the mean AUC is {-drop:.3f} higher than on the checkpoint they learned from")
        out.append(f"On swaps of a checkpoint they never saw ({other}) the detectors {effect}; "
                   f"{keeps} does best there ({_f(xm[keeps].get(other))}).")
    cm = results.get("experiments", {}).get("countermeasures", {}).get("auc", {})
    if cm:
        cols = list(next(iter(cm.values())).keys())
        mean = {}
        for c in cols:
            vals = [x for x in (_num(r.get(c)) for r in cm.values()) if x == x]
            mean[c] = float(np.mean(vals)) if vals else float("nan")
        hardest = min(cols[1:], key=lambda c: mean[c] if mean[c] == mean[c] else 9.0)
        out.append(f"Of the toolkit's own counter-measures, <code>{html.escape(hardest)}</code> lowers the mean AUC most "
                   f"({_f(mean[cols[0]])} &rarr; {_f(mean[hardest])}).")
    return out


def render(results: dict, out: str | Path, title: str = "Detecting the swap: what works and where it breaks") -> str:
    out = Path(out)
    figs = results.get("figures", {})
    dets = results.get("detectors", {})
    exps = results.get("experiments", {})
    levels = results.get("data", {}).get("levels", ["raw"])
    counts = results.get("data", {}).get("counts", {})
    swaps = results.get("data", {}).get("swaps", {})

    summary = ('<div class="key"><p><b>In one paragraph.</b> A swapped face is decoded at low resolution, colour-matched '
               'and pasted back through a soft mask, one frame at a time. Each step can leave a trace: missing fine detail '
               '(the spectrum), a seam where the mask blends (the blending boundary) and frame-to-frame flicker (time). '
               + " ".join(findings(results)) + "</p></div>")

    sections = []

    # 1. How the fake is made.
    body = ("<p>Two actors, A and B, are rendered by the toolkit. <code>faceswap extract</code> finds each face (MTCNN), "
            "and maps its five landmarks onto a fixed template with a similarity transform: every face becomes an "
            "aligned crop. <code>faceswap train</code> trains one shared encoder and one decoder per actor. "
            "<code>faceswap convert</code> encodes each aligned face of B, decodes it with A's decoder, matches its "
            "colour to B's frame, warps it back with the inverse transform and blends it in through a feathered mask. "
            "Because the actors are rendered, the <i>true</i> B-as-A frame exists too: the swap can be compared with "
            "what it should have been.</p>")
    body += _img(out, figs.get("how_made"), "how the swap is made",
                 "Top: a frame of A, a frame of B, the swap of that frame, and the true rendering of B's performance as A. "
                 "Bottom: the aligned crops the detectors see (with extra margin so the paste-back seam is inside), "
                 "and where the swap changed B's frame (brighter = more): the pasted face and its soft seam.")
    if swaps:
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(str(v))}</td></tr>" for k, v in swaps.items() if not k.startswith("_"))
        body += f"<h3>The swaps in this study</h3><table><tr><th>name</th><th>how it was made</th></tr>{rows}</table>"
    sections.append(_section("1. How the fake is made", body, "made"))

    # 2. Artefacts.
    body = ("<h3>Missing detail: the spectrum</h3><p>The decoder outputs a small face that is then enlarged into the "
            "frame, so the swap has less energy at high spatial frequencies than a face rendered at full resolution, "
            "and up-sampling layers can leave periodic peaks. The azimuthal average of the log power spectrum turns "
            "each crop into one curve; compression removes exactly these frequencies from the real faces too.</p>")
    body += _img(out, figs.get("spectra"), "average spectra of real and swapped faces",
                 "Mean 1-D spectrum (&plusmn; one standard deviation) of real and swapped crops at each compression level; "
                 "right: mean 2-D log power of the swaps minus that of the real faces (raw).")
    body += ("<h3>The seam: blending boundary</h3><p>Wherever the pasted face is mixed with the frame through a soft mask "
             "M, the image is a blend of two sources; Face X-ray predicts the map 4&middot;M&middot;(1&minus;M), which is "
             "0 where only one source is visible and 1 where both are mixed half and half. It is trained without a single "
             "swap: a real face, colour- and blur-perturbed, is pasted into itself through a random soft mask.</p>")
    body += _img(out, figs.get("xray_maps"), "predicted blending boundaries",
                 "Held-out real crops and swaps with the boundary map the X-ray detector predicts (black = none, bright = seam).")
    body += ("<h3>Flicker: time</h3><p>Each frame is swapped on its own: the decoded face jitters a little in brightness, "
             "shape and position from frame to frame, more than the filmed head moves.</p>")
    body += _img(out, figs.get("flicker"), "frame-to-frame change inside the face",
                 "Mean absolute change of the face region between consecutive frames, real versus swap.")
    sections.append(_section("2. What the swap leaves behind", body, "artefacts"))

    # 3. Detectors.
    rows = []
    for name, d in dets.items():
        what, ref = WHAT.get(name, ("", ""))
        n = d.get("n", {}).get("raw", {})
        rows.append(f"<tr><td><b>{html.escape(name)}</b></td><td>{what}<br><span class='note'>{ref}</span></td>"
                    f"<td class='num'>{d.get('parameters', 0):,}</td><td class='num'>{d.get('train_seconds', 0):.1f}</td>"
                    f"<td class='num'>{_f(d['auc'].get('raw'))}</td><td class='num'>{_f(d['accuracy'].get('raw'))}</td>"
                    f"<td class='num'>{n.get('real', '?')} / {n.get('fake', '?')} {html.escape(d.get('unit', 'frame'))}s</td></tr>")
    body = ("<p>Four detectors, each trained from scratch on a CPU in seconds to minutes on what this toolkit makes. "
            "AUC is the probability that a random swapped sample scores higher than a random real one (0.5 = chance, "
            "1 = perfect); accuracy uses the fixed threshold 0.5.</p>"
            "<table><tr><th>detector</th><th>what it looks at</th><th>parameters</th><th>train s</th><th>AUC raw</th>"
            f"<th>accuracy raw</th><th>test real / swapped</th></tr>{''.join(rows)}</table>")
    body += _img(out, figs.get("roc"), "ROC curves on held-out swaps", "ROC curves on the held-out (test) block of raw frames.")
    sd = exps.get("seeds", {}).get("auc", {})
    if sd:
        cols = list(next(iter(sd.values())).keys())
        body += ("<p>The same detectors trained again on the same frames from other random starts (seeds). The spread "
                 "is part of the result: a difference between two detectors smaller than it is not a finding.</p>"
                 + auc_table(sd, cols, good=2.0, poor=-1.0))
    sections.append(_section("3. The detectors", body, "detectors"))

    # 4. Where it breaks.
    body = ("<h3>Compression</h3><p>Detectors trained on raw frames, tested on the same held-out frames re-encoded "
            "with H.264 at CRF 23 (c23, what most platforms deliver) and CRF 40 (c40, heavy). A drop here is a "
            "finding, not a bug: compression erases high frequencies and fine seams. Where the AUC holds, the cue a detector "
            "uses is coarser than what the codec removes; look at the accuracy too, since compression shifts the scores "
            "even where it keeps their order.</p>")
    cc = exps.get("cross_compression", {})
    if cc:
        body += "<p>AUC:</p>" + auc_table(cc.get("auc", {}), levels)
        body += "<p>Accuracy at the threshold 0.5 chosen on raw frames:</p>" + auc_table(cc.get("accuracy", {}), levels)
    body += _img(out, figs.get("cross_compression"), "AUC across compression levels")
    mc = exps.get("matched_compression", {})
    if mc and mc.get("auc"):
        body += ("<p>Trained and tested at the same level, i.e. a detector that knows the compression it will face:</p>"
                 + auc_table(mc["auc"], list(next(iter(mc["auc"].values())).keys())))
        body += _img(out, figs.get("matched_compression"), "AUC when trained and tested at the same level")
    xm = exps.get("cross_model", {})
    body += ("<h3>An unseen generator</h3><p>The detectors above learned from swaps of one checkpoint. Here they face swaps "
             "of the same videos made by another training run (another seed or preset) they never saw.</p>")
    if xm:
        cols = list(next(iter(xm["auc"].values())).keys()) if xm.get("auc") else []
        body += auc_table(xm.get("auc", {}), cols)
        body += "".join(f"<p class='note'><code>{html.escape(k)}</code>: {html.escape(str(v))}</p>" for k, v in xm.get("models", {}).items())
        body += _img(out, figs.get("cross_model"), "AUC on swaps of an unseen checkpoint")
    else:
        body += "<p class='note'>(no second checkpoint in this run)</p>"
    cm = exps.get("countermeasures", {})
    body += ("<h3>The toolkit's own counter-measures</h3><p>The detectors learned from the plain swap (no colour transfer, "
             "alpha blending, no temporal smoothing, no watermark). Colour transfer, Poisson blending and temporal "
             "smoothing exist to make a swap look better; each also changes what a detector sees. The last column puts "
             "the invisible watermark back: a detector should not care about it.</p>")
    if cm:
        cols = list(next(iter(cm["auc"].values())).keys()) if cm.get("auc") else []
        body += auc_table(cm.get("auc", {}), cols)
        body += "".join(f"<p class='note'><code>{html.escape(k)}</code>: {html.escape(str(v))}</p>" for k, v in cm.get("variants", {}).items())
        body += _img(out, figs.get("countermeasures"), "AUC under counter-measures")
    else:
        body += "<p class='note'>(no counter-measure swaps in this run)</p>"
    sections.append(_section("4. Where detection breaks", body, "breaks"))

    # 5. Take-aways and method.
    take = findings(results) + [
        "Held-out frames of the same pipeline are the easy case: they share the generator, the actors and the encoding "
        "with the training frames. The cross-compression and cross-model tables are the honest estimate of what a "
        "detector does on swaps made elsewhere.",
        "Accuracy at a fixed threshold can be poor where AUC is high: a detector's scores shift with the data "
        "(the X-ray detector is calibrated on self-blends, whose seams are stronger than a real swap's).",
        "A detector's score is evidence, not proof; for this toolkit's own outputs the watermark check "
        "(<code>faceswap verify</code>) is the reliable signal, as long as nobody strips it."]
    split = results.get("data", {}).get("split", "")
    cnt = "".join(f"<tr><td>{lv}</td><td class='num'>{c['train']['real']}</td><td class='num'>{c['train']['fake']}</td>"
                  f"<td class='num'>{c['test']['real']}</td><td class='num'>{c['test']['fake']}</td></tr>" for lv, c in counts.items())
    body = "<ul>" + "".join(f"<li>{t}</li>" for t in take) + "</ul>"
    body += ("<h3>Method</h3><p>" + html.escape(split) + "</p>"
             "<table><tr><th>level</th><th>train real</th><th>train swapped</th><th>test real</th><th>test swapped</th></tr>"
             + cnt + "</table><p class='note'>The temporal detector is scored per window of consecutive frames, "
             "the others per frame.</p>")
    sections.append(_section("5. Take-aways", body, "takeaways"))

    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(title=html.escape(title), summary=summary, sections="\n".join(sections),
                               date=_dt.date.today().isoformat())


def write_lecture(results: dict, out: str | Path) -> Path:
    from faceswap.utils import atomic_path

    out = Path(out)
    path = out / "lecture.html"
    page = render(results, out)
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def how_made_figure(frames: dict[str, np.ndarray], crops: dict[str, np.ndarray], path: Path) -> Path:
    """Frames (A, B, swap, truth) on top; aligned crops and the swap's error against the truth below."""
    from faceswap.forensics.experiments import pyplot, save_figure

    plt = pyplot()
    n = max(len(frames), len(crops))
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.0), squeeze=False)
    for row, items in enumerate((frames, crops)):
        for j in range(n):
            ax = axes[row][j]
            ax.axis("off")
            if j < len(items):
                label, img = list(items.items())[j]
                ax.imshow(img, cmap="magma" if img.ndim == 2 else None)
                ax.set_title(label, fontsize=9)
    return save_figure(fig, path)
