"""`faceswap synth` end to end on the tiny preset: every file, truth that matches, options that work, clean errors."""
import json

import numpy as np
import pytest

from faceswap.cli import main
from faceswap.config import compose
from faceswap.synth.dataset import VIDEOS, Take, degrade, settings_from_config
from faceswap.video import probe, read_image, read_video


def _one_line_error(capsys, rc, *needles):
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "take"
    assert main(["synth", f"out={out}", "synth=tiny", "progress=false"]) == 0
    return out


def test_every_file_is_written(tiny):
    summary = json.loads((tiny / "synth.json").read_text())
    assert summary["schema"] == "faceswap.synth" and summary["version"] == 1
    n, w, h = summary["settings"]["frames"], summary["settings"]["width"], summary["settings"]["height"]
    for f in summary["files"]:
        assert (tiny / f).is_file(), f
    for v in VIDEOS:
        info = probe(tiny / f"{v}.mp4")
        assert (info.width, info.height, info.frames) == (w, h, n) and info.codec == "h264"
        masks = sorted((tiny / v / "masks").glob("*.png"))
        assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(n)]
        m = read_image(masks[0])[:, :, 0]
        assert m.shape == (h, w) and set(np.unique(m)) <= {0, 255}
        frames = json.loads((tiny / v / "frames.json").read_text())
        assert [f["index"] for f in frames] == list(range(n))
    actors = json.loads((tiny / "actors.json").read_text())
    assert {"A", "B", "truth_B_as_A"} <= set(actors) and actors["A"]["name"] == "A"
    assert (tiny / ".faceswap" / "synth.yaml").is_file()


def test_truth_follows_b(tiny):
    fb = json.loads((tiny / "B" / "frames.json").read_text())
    ft = json.loads((tiny / "truth_B_as_A" / "frames.json").read_text())
    fa = json.loads((tiny / "A" / "frames.json").read_text())
    assert [f["performance"] for f in fb] == [f["performance"] for f in ft]
    assert [f["performance"] for f in fa] != [f["performance"] for f in fb]
    for b, t in zip(fb, ft):
        assert b["face_visible"] == t["face_visible"] and b["extra_faces"] == t["extra_faces"]
        if b["landmarks"] is None:
            assert t["landmarks"] is None and b["box"] is None
        else:
            assert np.abs(np.array(b["landmarks"]) - np.array(t["landmarks"])).max() < 0.01
    # the videos differ where the face is, and the visible faces' masks are not empty
    vb, vt = list(read_video(tiny / "B.mp4")), list(read_video(tiny / "truth_B_as_A.mp4"))
    for i, f in enumerate(fb):
        if f["face_visible"]:
            mask = read_image(tiny / "B" / "masks" / f"{i:06d}.png")[:, :, 0] > 0
            assert mask.any()
            assert np.abs(vb[i].astype(int) - vt[i].astype(int)).sum(axis=2)[mask].mean() > 40


def test_options_show_up_in_the_truth(tiny):
    for v in VIDEOS:
        frames = json.loads((tiny / v / "frames.json").read_text())
        hidden = [f for f in frames if not f["face_visible"]]
        assert hidden, v  # no_face_fraction=0.2 of 6 frames
        for f in hidden:
            assert f["landmarks"] is None and f["box"] is None
            assert read_image(tiny / v / "masks" / f"{f['index']:06d}.png").max() == 0
        assert any(f["extra_faces"] for f in frames), v  # second_face=0.5
        for f in frames:
            for e in f["extra_faces"]:
                assert np.array(e["landmarks"]).shape == (5, 2) and len(e["box"]) == 4


def test_rerun_with_same_settings_skips(tiny, capsys):
    before = (tiny / "A.mp4").stat().st_mtime_ns
    assert main(["synth", f"out={tiny}", "synth=tiny", "progress=false"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert (tiny / "A.mp4").stat().st_mtime_ns == before


def test_changed_settings_overwrite(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["synth", f"out={out}", "synth=tiny", "synth.frames=4", "progress=false"]) == 0
    assert main(["synth", f"out={out}", "synth=tiny", "synth.frames=3", "progress=false"]) == 0
    assert len(list((out / "A" / "masks").glob("*.png"))) == 3
    assert probe(out / "A.mp4").frames == 3
    assert json.loads((out / "synth.json").read_text())["settings"]["frames"] == 3


def test_noise_and_blur_change_pixels_deterministically():
    cfg = compose("synth", ["out=/tmp/unused", "synth=tiny", "synth.options.noise=0", "synth.options.second_face=0",
                            "synth.options.no_face_fraction=0"])
    take = Take.plan(settings_from_config(cfg))
    clean, _ = take.frame("B", 0)
    rng = np.random.default_rng(0)
    noisy = degrade(clean, 6.0, 0.0, rng)
    assert 3 < np.abs(noisy.astype(float) - clean).mean() < 8
    assert np.array_equal(noisy, degrade(clean, 6.0, 0.0, np.random.default_rng(0)))
    blurred = degrade(clean, 0.0, 1.5, None)
    assert not np.array_equal(blurred, clean)
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(clean.astype(float), axis=1)).mean()
    # B and its true swap share the noise realisation, A gets its own
    cfg = compose("synth", ["out=/tmp/unused", "synth=tiny", "synth.options.noise=8", "synth.options.second_face=0",
                            "synth.options.no_face_fraction=0"])
    take = Take.plan(settings_from_config(cfg))
    b, _ = take.frame("B", 1)
    t, _ = take.frame("truth_B_as_A", 1)
    corner = (slice(0, 20), slice(0, 30))  # far from both heads: the same room, the same noise
    assert np.array_equal(b[corner], t[corner])
    b2, _ = take.frame("B", 2)
    assert not np.array_equal(b[corner], b2[corner])  # a new noise realisation every frame


def test_help_and_cfg(capsys):
    assert main(["synth", "--help"]) == 0
    out = capsys.readouterr().out
    assert "faceswap synth" in out and "tiny" in out and "default" in out
    assert main(["synth", "--cfg", "job", "synth=tiny"]) == 0
    out = capsys.readouterr().out
    assert "frames: 6" in out and "no_face_fraction" in out


@pytest.mark.parametrize("override,needle", [
    ("synth.frames=0", "synth.frames"),
    ("synth.frames=2.5", "synth.frames"),
    ("synth.width=161", "even"),
    ("synth.height=abc", "synth.height"),
    ("synth.actors.a=Zed", "Zed"),
    ("synth.actors.b=random:x", "random:x"),
    ("synth.options.noise=-1", "noise"),
    ("synth.options.second_face=2", "second_face"),
    ("synth.options.crf=99", "crf"),
    ("synth.options.no_face_mode=sideways", "no_face_mode"),
    ("synth.options.second_actor=Nobody", "second_actor"),
])
def test_bad_values_are_one_line_errors(capsys, tmp_path, override, needle):
    _one_line_error(capsys, main(["synth", f"out={tmp_path / 'o'}", "synth=tiny", override]), needle)
    assert not (tmp_path / "o" / "synth.json").exists()


def test_missing_out_and_out_is_a_file(capsys, tmp_path):
    _one_line_error(capsys, main(["synth", "synth=tiny"]), "out")
    f = tmp_path / "file.txt"
    f.write_text("x")
    _one_line_error(capsys, main(["synth", f"out={f}", "synth=tiny"]), "file")
