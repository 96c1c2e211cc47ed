"""The HTML report: inlined pictures, the metric table, the loss curves, and the page in a real browser."""
import json

import numpy as np

from faceswap.evaluate import report as R
from faceswap.video import write_image
from tests.evaluate.browser import external_references, open_page

METRICS = {
    "swap": {"ssim": 0.8, "psnr": 25.0, "identity_a_rate": 0.95, "expression_error": 0.3, "flicker": 0.01},
    "baselines": {"input_b": {"ssim": 0.5, "psnr": 15.0, "identity_a_rate": 0.0, "expression_error": 0.2, "flicker": 0.02},
                  "mean_a": {"ssim": 0.6, "psnr": 20.0, "identity_a_rate": 1.0, "expression_error": 0.8, "flicker": 0.03}},
    "probe": {"identity_accuracy": 0.99, "expression_error_on_renders": 0.1},
    "reconstruction": {"a_ssim": 0.9, "b_ssim": 0.85},
    "frames": {"count": 30},
}


def _fake_eval(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("stills", "masks", "mean_a"):
        write_image(tmp_path / "eval" / "samples" / f"{name}.png", rng.integers(0, 255, (40, 90, 3), dtype=np.uint8))
    R.write_gif(tmp_path / "eval" / "samples" / "compare.gif",
                [rng.integers(0, 255, (40, 90, 3), dtype=np.uint8) for _ in range(4)])
    run = tmp_path / "run"
    for i in range(3):
        write_image(run / "timelapse" / f"{i:08d}.png", rng.integers(0, 255, (30, 60, 3), dtype=np.uint8))
    lines = [json.dumps({"kind": "train", "step": s, "loss": 1.0 / s, "loss_a": 1.2 / s, "lr": 1e-3}) for s in range(1, 9)]
    lines += ["{not json", json.dumps({"kind": "val", "step": 8, "val_ssim_a": 0.4})]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "eval", run


def test_loss_series_reads_losses_and_validation_only():
    recs = [{"step": 1, "loss": 2.0, "lr": 0.1, "images_per_s": 5.0}, {"step": 2, "loss": 1.0, "val_ssim_a": 0.3},
            {"step": 3, "loss": float("nan")}]
    series = R.loss_series(recs)
    assert series == {"loss": ([1.0, 2.0], [2.0, 1.0]), "val_ssim_a": ([2.0], [0.3])}
    assert R.loss_curve_png([]) is None


def test_metric_table_bolds_the_best_of_each_row():
    table = R.metric_table(METRICS)
    assert "<b>0.800</b>" in table  # highest SSIM: the swap
    assert "<b>0.200</b>" in table  # lowest expression error: B unchanged
    assert "<b>95%</b>" not in table and "<b>100%</b>" in table


def test_report_is_self_contained_and_holds_every_section(tmp_path):
    eval_dir, run = _fake_eval(tmp_path)
    page = R.write_report(tmp_path / "report.html", METRICS, eval_dir, run, context=[("checkpoint", "x <y>")])
    html = page.read_text()
    assert external_references(html) == []
    for section in ("swap", "video", "metrics", "losses", "timelapse", "mask"):
        assert f"<section id='{section}'>" in html
        assert R.EXPLAIN[section][:40] in html
    assert html.count("<img ") == 6  # stills, loop, mean face, curves, timelapse, masks (no converted video here)
    assert "x &lt;y&gt;" in html


def test_report_says_what_is_missing_instead_of_a_broken_image(tmp_path):
    (tmp_path / "eval").mkdir()
    html = R.render_report(METRICS, tmp_path / "eval", None)
    assert "not available for this run" in html
    assert "src=''" not in html


def test_report_renders_in_chromium(tmp_path):
    eval_dir, run = _fake_eval(tmp_path)
    page = R.write_report(tmp_path / "report.html", METRICS, eval_dir, run)
    result = open_page(page, tmp_path / "profile")
    assert result["status"] == "ok", result["text"]
    assert result["text"].startswith("All 6 images loaded")
    assert result["console"] == []


def test_browser_check_catches_a_broken_image(tmp_path):
    page = tmp_path / "broken.html"
    good = R.png_data_uri(np.zeros((4, 4, 3), np.uint8))
    template = R.TEMPLATE.read_text()
    page.write_text(template.replace("$title", "t").replace("$context", "").replace(
        "$sections", f"<img src='{good}' alt='fine'><img src='missing.png' alt='gone'>"))
    result = open_page(page, tmp_path / "profile")
    assert result["status"] == "broken"
    assert "gone" in result["text"] and "fine" not in result["text"]
