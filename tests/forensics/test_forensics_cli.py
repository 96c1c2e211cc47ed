"""`faceswap forensics`: bad inputs exit 2 with one line; the data glue on a hand-made demo folder; scan end to end."""
import json

import numpy as np
import pytest

from faceswap.cli import main
from faceswap.forensics import data as fd
from faceswap.forensics import detectors as D


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # Never read or write the user's detector cache from a test; one torch thread is faster on a busy CI box.
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("faceswap.forensics.scan.SHIPPED", tmp_path / "no_shipped")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _one_line(capsys, rc, *needles):
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err


def _video(path, n=24, blur=False, seed=0, size=(160, 128)):
    """A textured 'face' square drifting over a background; ``blur`` pastes a softened square (a toy swap)."""
    import cv2

    from faceswap.video import VideoWriter

    rng = np.random.default_rng(seed)
    w, h = size
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    face = cv2.GaussianBlur(rng.integers(60, 255, (48, 48, 3), dtype=np.uint8), (0, 0), 0.7)
    if blur:
        face = cv2.resize(cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA), (48, 48), interpolation=cv2.INTER_LINEAR)
    records = []
    with VideoWriter(path, fps=25, crf=12) as vw:
        for i in range(n):
            img = bg.copy()
            x0, y0 = 40 + i, 30
            img[y0:y0 + 48, x0:x0 + 48] = face
            vw.write(img)
            f = {"box": [x0, y0, x0 + 48, y0 + 48], "score": 0.99, "landmarks": [[x0 + 24, y0 + 24]] * 5,
                 "matrix": [[1.0, 0.0, -float(x0)], [0.0, 1.0, -float(y0)]]}
            records.append({"index": i, "name": f"{i:06d}", "target": 0, "faces": [f]})
    return {"schema": "faceswap.alignments", "version": 1,
            "source": {"path": str(path), "kind": "video", "frames": n, "width": w, "height": h, "fps": 25.0},
            "crop": {"size": 48, "coverage": 0.75}, "settings": {}, "frames": records}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A folder laid out like 'faceswap demo out=...': synth videos, extracts of A and B, a train run."""
    root = tmp_path_factory.mktemp("demo")
    (root / "synth").mkdir()
    for who, seed in (("A", 1), ("B", 2)):
        doc = _video(root / "synth" / f"{who}.mp4", seed=seed)
        (root / f"extract_{who}").mkdir()
        (root / f"extract_{who}" / "alignments.json").write_text(json.dumps(doc))
    _video(root / "synth" / "truth_B_as_A.mp4", seed=3)
    (root / "run" / "checkpoints").mkdir(parents=True)
    (root / "run" / "checkpoints" / "latest").write_text("step_00000001\n")
    return root


def test_bad_actions_and_settings_exit_2(capsys, tmp_path):
    _one_line(capsys, main(["forensics", "nosuch"]), "unknown forensics action")
    _one_line(capsys, main(["forensics"]), "out=DIR")
    _one_line(capsys, main(["forensics", "out=" + str(tmp_path / "o"), "from=" + str(tmp_path / "missing")]), "from=")
    _one_line(capsys, main(["forensics", "run", "some.mp4", "out=" + str(tmp_path / "o")]), "scan")
    _one_line(capsys, main(["forensics", "threads=-1"]), "threads")
    _one_line(capsys, main(["forensics", "forensics.nosuchkey=1"]), "forensics")


def test_scan_bad_inputs_exit_2(capsys, tmp_path):
    _one_line(capsys, main(["forensics", "scan"]), "needs a video")
    _one_line(capsys, main(["forensics", "scan", str(tmp_path / "missing.mp4")]), "missing.mp4", "does not exist")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    _one_line(capsys, main(["forensics", "scan", str(corrupt)]), "corrupt.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    _one_line(capsys, main(["forensics", "scan", str(tmp_path / "empty.mp4")]), "empty.mp4")
    good = tmp_path / "good.mp4"
    _video(good, n=4)
    _one_line(capsys, main(["forensics", "scan", str(good), "detectors=" + str(tmp_path / "nodir")]), "nodir", "does not exist")
    (tmp_path / "emptydir").mkdir()
    _one_line(capsys, main(["forensics", "scan", str(good), "detectors=" + str(tmp_path / "emptydir")]), "no trained detectors")
    _one_line(capsys, main(["forensics", "scan", str(good)]), "faceswap forensics out=DIR")  # empty cache, none shipped


@pytest.mark.slow
def test_demo_folder_to_results_and_lecture(demo_dir, tmp_path):
    """The glue: discover a demo folder, reuse swaps already made, cut faces at every level, run, write the lecture."""
    from omegaconf import OmegaConf

    from faceswap.config import compose
    from faceswap.forensics.experiments import run_all
    from faceswap.forensics.lecture import write_lecture
    from faceswap.forensics.pipeline import build_corpus, discover, prepare

    found = discover(demo_dir)
    assert found["synth"] == demo_dir / "synth" and set(found["extract"]) == {"A", "B"} and found["runs"] == [demo_dir / "run"]
    out = tmp_path / "out"
    swaps = out / "pipeline" / "swaps"
    swaps.mkdir(parents=True)
    for key in ("main", "model_other", "cm_color_rct"):  # made beforehand: prepare must not re-run convert
        _video(swaps / f"{key}.mp4", blur=True, seed=2)
    (out / "pipeline" / "run_other" / "checkpoints").mkdir(parents=True)
    (out / "pipeline" / "run_other" / "checkpoints" / "latest").write_text("x\n")
    cfg = compose("forensics", ["forensics=tiny", f"out={out}"])
    logs = []
    mats = prepare(cfg.forensics, out, demo_dir, log=logs.append)
    assert not logs  # nothing had to be made
    assert set(mats.swaps) == {"main", "model:other", "cm:color_rct"} and mats.runs["main"] == demo_dir / "run"
    corpus = build_corpus(mats, cfg.forensics, out, log=logs.append)
    assert set(corpus.real) == {"raw", "c40"} and set(corpus.real["raw"].source) == {"A", "B", "truth"}
    counts = corpus.pair("main", "c40").counts()
    assert counts["train"]["fake"] > 0 and counts["test"]["fake"] > 0 and counts["test"]["real"] > counts["test"]["fake"]
    assert any((out / "faces").glob("main_c40_*.npz")) and (out / "pipeline" / "reencoded" / "A_c40_after_crf18.mp4").is_file()
    assert (out / "pipeline" / "reencoded" / "A_raw_crf18.mp4").is_file()  # reals get the swaps' second encoding
    assert not (out / "pipeline" / "reencoded" / "main_raw_crf18.mp4").exists()
    dets = {k: OmegaConf.to_container(v) for k, v in cfg.forensics.detectors.items()}
    res = run_all(corpus, dets, out, {"matched_levels": []}, log=logs.append)
    assert set(res["detectors"]) == {"spectral", "meso4", "xray", "temporal"}
    assert set(res["detectors"]["spectral"]["auc"]) == {"raw", "c40"}
    assert "swap" in res["data"]["split"] or "Real faces" in res["data"]["split"]
    page = write_lecture(res, out).read_text()
    assert "contiguous blocks" in page and "model:other" in page


@pytest.mark.slow
def test_scan_end_to_end(tmp_path, capsys):
    """Render a short video of a synthetic actor, find its face with the extract stage, score every frame, check the mark."""
    det_dir = tmp_path / "fx" / "detectors"
    toy = fd.toy_faceset(40, size=64, seed=0, clip=8)
    for name, params in {"spectral": {"bins": 24}, "meso4": {"size": 64, "epochs": 1},
                         "temporal": {"window": 6, "stride": 3, "size": 32}}.items():
        det = D.build_detector(name, params)
        xs, ys, _ = fd.samples_for(det.unit, toy, 6, 3)
        det.fit(xs, ys)
        D.save_detector(det, det_dir)
    (det_dir / "data.json").write_text(json.dumps({"size": 64, "margin": 0.15}))
    assert main(["synth", f"out={tmp_path / 'actors'}", "synth.frames=16", "synth.options.no_face_fraction=0",
                 "synth.options.second_face=0", "synth.workers=0", "progress=false"]) == 0
    video = tmp_path / "actors" / "A.mp4"
    capsys.readouterr()
    out = tmp_path / "scan"
    rc = main(["forensics", "scan", str(video), f"detectors={tmp_path / 'fx'}", f"out={out}", "device=cpu",
               "progress=false", "forensics.scan.extract=['extract=fast']"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    report = json.loads((out / "scan.json").read_text())
    assert report["frames"] == 16 and report["frames_with_face"] >= 12
    per = report["per_frame"]
    assert len(per["frame"]) == report["frames_with_face"] and len(per["spectral"]) == len(per["frame"])
    assert set(report["detectors"]) == {"spectral", "meso4", "temporal", "mean"}
    assert report["watermark"]["watermark"]["present"] is False  # a rendered actor carries no faceswap mark
    assert (out / "scan.png").read_bytes()[:4] == b"\x89PNG"
    assert "faceswap forensics scan" in printed and "watermark:" in printed


def test_detectors_come_from_the_cache_then_the_shipped_folder(tmp_path, monkeypatch):
    from faceswap.forensics import scan

    trained = tmp_path / "run" / "detectors"
    D.save_detector(D.build_detector("spectral"), trained)
    shipped = tmp_path / "shipped"
    D.save_detector(D.build_detector("temporal"), shipped)
    monkeypatch.setattr(scan, "SHIPPED", shipped)
    assert scan.resolve_detectors(None) == shipped  # empty cache
    cached = scan.cache_detectors(trained)
    assert cached == scan.cache_dir() and str(tmp_path / "cache") in str(cached)
    assert scan.resolve_detectors(None) == cached
    assert set(D.load_detectors(scan.resolve_detectors(None))) == {"spectral"}
    assert scan.resolve_detectors(tmp_path / "run") == trained  # a forensics out folder works too
    D.save_detector(D.build_detector("meso4"), trained)
    assert set(D.load_detectors(scan.cache_detectors(trained))) == {"spectral", "meso4"}  # replaced whole


@pytest.mark.slow
def test_forensics_run_end_to_end_tiny(tmp_path, capsys):
    """`faceswap forensics out=DIR` with nothing given: synth, extract, two trainings, three converts, detectors, lecture."""
    out = tmp_path / "fx"
    rc = main(["forensics", f"out={out}", "forensics=tiny", "device=cpu", "progress=false", "threads=1"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    res = json.loads((out / "results.json").read_text())
    for name in ("spectral", "meso4", "xray", "temporal"):
        assert set(res["detectors"][name]["auc"]) == {"raw", "c40"}
        assert (out / "detectors" / f"{name}.safetensors").is_file()
    assert set(res["materials"]["swaps"]) == {"main", "model:other", "cm:color_rct"}
    assert (out / "lecture.html").stat().st_size > 50_000 and (out / ".faceswap" / "forensics.yaml").is_file()
    assert (tmp_path / "cache" / "faceswap" / "forensics" / "detectors" / "meso4.json").is_file()  # cached for scans
    assert "best on raw" in printed
