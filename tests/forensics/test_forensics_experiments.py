"""The experiment machinery on toy swaps: results.json layout, tables, figures and a self-contained lecture."""
import json
import re

import cv2
import numpy as np
import pytest

from faceswap.forensics import data as fd
from faceswap.forensics import experiments as E
from faceswap.forensics.lecture import write_lecture

TINY = {"spectral": {"bins": 24}, "meso4": {"size": 64, "epochs": 2, "batch": 16},
        "xray": {"size": 64, "epochs": 2, "batch": 16, "width": 8}, "temporal": {"window": 6, "stride": 3, "size": 32}}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _jpeg(fs, q):
    # A stand-in for H.264 re-encoding on toy crops (the real levels come from ffmpeg; see test_forensics_data).
    crops = np.stack([cv2.imdecode(cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_UNCHANGED) for c in fs.crops])
    return fd.FaceSet(crops, fs.labels, fs.source, fs.frame, fs.split)


@pytest.fixture(scope="module")
def corpus():
    fs = fd.toy_faceset(60, size=64, seed=0, clip=12)
    other = fd.toy_faceset(60, size=64, seed=1, clip=12)
    levels = {"raw": fs, "c23": _jpeg(fs, 70), "c40": _jpeg(fs, 20)}
    real = {lv: s.subset(s.labels == fd.REAL) for lv, s in levels.items()}
    fake = {"main": {lv: s.subset(s.labels == fd.FAKE) for lv, s in levels.items()},
            "model:other": {"raw": other.subset(other.labels == fd.FAKE)},
            "cm:jpeg": {"raw": _jpeg(other, 40).subset(other.labels == fd.FAKE)}}
    return E.Corpus(real, fake, "main", {"main": "toy paste", "_split": "toy split"})


def test_format_table():
    t = E.format_table("T", {"a": {"x": 0.5, "y": float("nan")}}, ["x", "y"])
    assert t.splitlines()[0] == "T" and "0.500" in t and t.splitlines()[-1].rstrip().endswith("-")


@pytest.mark.slow
def test_run_all_writes_results_figures_and_lecture(corpus, tmp_path):
    res = E.run_all(corpus, TINY, tmp_path, {"matched_levels": ["c23", "c40"], "seeds": [0, 1]}, seed=0, log=lambda *a: None)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == res
    for name in TINY:
        auc = res["detectors"][name]["auc"]
        assert set(auc) == {"raw", "c23", "c40"} and all(0 <= v <= 1 for v in auc.values())
        assert (tmp_path / "detectors" / f"{name}.safetensors").is_file()
        assert set(res["detectors"][name]["auc_cross_model"]) == {"seen (main)", "model:other"}
        assert set(res["detectors"][name]["auc_countermeasures"]) == {"plain (main)", "cm:jpeg"}
        assert set(res["detectors"][name]["auc_matched"]) == {"raw", "c23", "c40"}
        seeds = res["detectors"][name]["auc_seeds"]
        assert set(seeds["per_seed"]) == {"0", "1"} and seeds["std"] >= 0
    # The easy toy swaps are caught by the spectrum at raw.
    assert res["detectors"]["spectral"]["auc"]["raw"] > 0.9
    for key in ("cross_compression", "cross_model", "countermeasures", "matched_compression", "spectra"):
        assert (tmp_path / "experiments" / f"{key}.json").is_file(), key
    for rel in res["figures"].values():
        png = (tmp_path / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    page = write_lecture(res, tmp_path).read_text()
    assert "<h2" in page and "Where detection breaks" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) >= 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_frame_scores_spread_clip_scores_to_frames(corpus):
    from faceswap.forensics.detectors import build_detector

    fs = corpus.pair("main", "raw").part("train")
    det = build_detector("temporal", TINY["temporal"])
    xs, ys, _ = fd.samples_for("clip", fs, 6, 3)
    det.fit(xs, ys)
    s = E.frame_scores(det, fs)
    assert s.shape == (len(fs),)
    covered = ~np.isnan(s)
    assert covered.mean() > 0.8 and ((s[covered] >= 0) & (s[covered] <= 1)).all()
