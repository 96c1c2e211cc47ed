"""The convert stage end to end: output geometry and audio, provenance, interpolation, ranges, image folders, errors."""
import json

import numpy as np
import pytest

from faceswap.cli import main
from faceswap.video import list_images, probe, read_image, read_video

from tests.convert import media

N = 50  # 2 s at 25 fps
SIZE = (256, 192)
MISSED = 20  # the alignments file has no face here: it is interpolated


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert_clip")
    frames, lms = media.moving_face(N, SIZE)
    video = media.write_video(d / "b.mp4", frames, audio_s=N / 25)
    lms[MISSED] = None
    media.write_alignments(d / "extract" / "alignments.json", video, lms, SIZE)
    run = media.tiny_checkpoint(d / "run")
    return {"dir": d, "video": video, "alignments": d / "extract", "run": run, "frames": frames, "landmarks": lms}


def _convert(capsys, *args):
    code = main(["convert", *[str(a) for a in args], "progress=false"])
    out, err = capsys.readouterr()
    return code, out, err


def _label_box(h, w):
    from faceswap.provenance.label import label_layout

    x1, y1, x2, y2 = label_layout(h, w).box
    return slice(y1, y2), slice(x1, x2)


@pytest.mark.slow
def test_video_out_matches_input_keeps_audio_and_carries_provenance(clip, tmp_path, capsys):
    from faceswap.provenance import verify_file
    from faceswap.provenance.watermark import run_tag

    out = tmp_path / "swapped.mp4"
    code, stdout, err = _convert(capsys, clip["video"], f"checkpoint={clip['run']}", f"out={out}",
                                 f"alignments={clip['alignments']}", "direction=b_to_a", "convert.mask=hull")
    assert code == 0, err
    assert "WARNING" not in err
    src, dst = probe(clip["video"]), probe(out)
    assert (dst.frames, dst.fps, dst.width, dst.height) == (src.frames, src.fps, src.width, src.height) == (N, 25.0, *SIZE)
    assert src.has_audio and dst.has_audio
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["frames"] == N and summary["swapped"] == N and summary["interpolated"] == 1
    assert summary["passed_through"] == 0
    assert set(summary["timings"]) >= {"decode", "detect", "model", "blend", "encode", "wall"}
    assert summary["run_id"] in stdout
    report = verify_file(out)
    assert report["watermark"]["present"]
    assert report["watermark"]["payload"] == run_tag(summary["run_id"])
    assert report["metadata"]["synthetic"] and report["metadata"]["run_id"] == summary["run_id"]
    assert report["metadata"]["matches_watermark"]
    # The visible label: the box in the corner is darkened on every frame.
    rows, cols = _label_box(SIZE[1], SIZE[0])
    for a, b in zip(clip["frames"][::10], list(read_video(out))[::10]):
        assert b[rows, cols].mean() < 0.7 * a[rows, cols].mean()
    # The swap changed the face, and only around it.
    i = 5
    got, want = list(read_video(out))[i].astype(int), list(read_video(clip["video"]))[i].astype(int)
    cx, cy = clip["landmarks"][i].mean(0).astype(int)
    face = np.abs(got[cy - 5:cy + 5, cx - 5:cx + 5] - want[cy - 5:cy + 5, cx - 5:cx + 5]).mean()
    corner = np.abs(got[:20, :20] - want[:20, :20]).mean()  # far from the face: coding noise and the watermark
    assert face > 10 and corner < 6 and face > 3 * corner


@pytest.mark.slow
def test_provenance_off_warns_and_leaves_no_label_or_mark(clip, tmp_path, capsys):
    from faceswap.provenance import verify_file

    out = tmp_path / "unmarked.mp4"
    code, _, err = _convert(capsys, clip["video"], f"checkpoint={clip['run']}", f"out={out}",
                            f"alignments={clip['alignments']}", "provenance.label=false",
                            "provenance.watermark=false", "provenance.metadata=false", "stop=20")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 3
    assert any("label" in w for w in warnings) and any("watermark" in w for w in warnings)
    assert any("metadata" in w for w in warnings)
    rows, cols = _label_box(SIZE[1], SIZE[0])
    for a, b in zip(clip["frames"][::10], list(read_video(out))[::10]):
        assert np.abs(b[rows, cols].astype(int) - a[rows, cols].astype(int)).mean() < 4
    report = verify_file(out)
    assert not report["watermark"]["present"] and not report["metadata"]["synthetic"]
    summary = json.loads(out.with_suffix(".json").read_text())
    # stop=20: frames 20.. are passed through, and the output still has every frame.
    assert summary["frames"] == N and summary["swapped"] == 20 and summary["out_of_range"] == N - 20
    assert probe(out).frames == N


@pytest.mark.slow
def test_identity_model_reproduces_the_input(clip, tmp_path, capsys, monkeypatch):
    import faceswap.models

    monkeypatch.setattr(faceswap.models, "load_checkpoint", media.identity_checkpoint(64, 0.75))
    out = tmp_path / "same.mp4"
    code, _, err = _convert(capsys, clip["video"], f"checkpoint={clip['run']}", f"out={out}", "crf=12",
                            f"alignments={clip['alignments']}", "provenance.label=false", "provenance.watermark=false",
                            "convert.color=rct", "convert.mask=learned")
    assert code == 0, err
    from faceswap.evaluate.metrics import psnr

    for i, (a, b) in enumerate(zip(read_video(clip["video"]), read_video(out))):
        if i % 7 == 0:
            assert psnr(a, b) > 30


@pytest.mark.slow
def test_image_folder_in_folder_out_with_a_frame_range(clip, tmp_path, capsys):
    from faceswap.video import write_image

    src = tmp_path / "frames"
    names = [f"shot_{i:02d}.png" for i in range(8)]
    for name, frame in zip(names, clip["frames"][:8]):
        write_image(src / name, frame)
    out = tmp_path / "swapped"
    code, _, err = _convert(capsys, src, f"checkpoint={clip['run']}", f"out={out}", "alignments=none", "start=2",
                            "stop=6", "provenance.label=false", "convert.blend=poisson", "convert.color=mkl")
    assert code == 0, err
    assert [p.name for p in list_images(out)] == names
    summary = json.loads((out / "convert.json").read_text())
    assert summary["frames"] == 8 and summary["out_of_range"] == 4
    assert summary["faces_from"] == "detection" and summary["swapped"] >= 3
    same = [np.array_equal(read_image(out / name), read_image(src / name)) for name in names]
    assert all(same[:2]) and all(same[6:])  # outside the range: passed through untouched (PNG is lossless)
    assert sum(not x for x in same[2:6]) == summary["swapped"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.slow
def test_memory_stays_bounded_on_a_longer_clip(clip, tmp_path, capsys):
    out = tmp_path / "long.mp4"
    code, _, err = _convert(capsys, clip["video"], f"checkpoint={clip['run']}", f"out={out}",
                            f"alignments={clip['alignments']}", "convert.queue=2", "convert.batch_size=2",
                            "convert.max_gap=1", "provenance.watermark=false", "preset=ultrafast")
    assert code == 0, err
    mem = json.loads(out.with_suffix(".json").read_text())["memory"]
    assert mem["peak_frames_in_flight"] <= mem["bound"] < N // 3


@pytest.mark.parametrize("step", ["prepare", "paste"])  # in the main thread, in a paste-back worker
def test_a_failure_midway_leaves_no_output(clip, tmp_path, capsys, monkeypatch, step):
    from faceswap.convert.faces import FaceBlender

    calls = {"n": 0}
    real = getattr(FaceBlender, step)

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 12:
            raise RuntimeError("boom")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FaceBlender, step, flaky)
    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        main(["convert", str(clip["video"]), f"checkpoint={clip['run']}", f"out={out}",
              f"alignments={clip['alignments']}", "progress=false", "convert.batch_size=4", "preset=ultrafast"])
    assert list(tmp_path.iterdir()) == []  # no video, no partial file, no summary


# --- bad input: one line on stderr, exit code 2, nothing written ------------------------------------------------

def _bad(capsys, tmp_path, clip, *overrides, input=None):
    out = tmp_path / "never.mp4"
    args = {"checkpoint": clip["run"], "out": out, "alignments": clip["alignments"]}
    extra = []
    for o in overrides:
        k, v = o.split("=", 1)
        if k in args:
            args[k] = v
        else:
            extra.append(o)
    code, _, err = _convert(capsys, input or clip["video"], *[f"{k}={v}" for k, v in args.items()], *extra)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]
    return lines[0]


def test_missing_input(capsys, tmp_path, clip):
    assert "does not exist" in _bad(capsys, tmp_path, clip, input=tmp_path / "nope.mp4")


def test_missing_or_fake_checkpoint(capsys, tmp_path, clip):
    assert "does not exist" in _bad(capsys, tmp_path, clip, f"checkpoint={tmp_path / 'nothing'}")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert "checkpoint" in _bad(capsys, tmp_path, clip, f"checkpoint={empty}")
    fake = tmp_path / "fake" / "step_00000001"
    fake.mkdir(parents=True)
    (fake / "state.json").write_text("{not json")
    (fake / "model.safetensors").write_bytes(b"\x00" * 10)
    assert "corrupt" in _bad(capsys, tmp_path, clip, f"checkpoint={fake}")


def test_alignments_of_another_video(capsys, tmp_path, clip):
    frames, lms = media.moving_face(12, SIZE)
    other = media.write_video(tmp_path / "other.mp4", frames)
    media.write_alignments(tmp_path / "other_al.json", other, lms, SIZE)
    assert "frames" in _bad(capsys, tmp_path, clip, f"alignments={tmp_path / 'other_al.json'}")
    media.write_alignments(tmp_path / "size_al.json", clip["video"], clip["landmarks"], (320, 240))
    assert "320x240" in _bad(capsys, tmp_path, clip, f"alignments={tmp_path / 'size_al.json'}")
    assert "does not exist" in _bad(capsys, tmp_path, clip, f"alignments={tmp_path / 'missing.json'}")


@pytest.mark.parametrize("override,word", [("direction=sideways", "direction"), ("direction=a_to_a", "direction"),
                                           ("convert.mask=face", "convert.mask"), ("convert.blend=laplace", "convert.blend"),
                                           ("convert.color=lab", "convert.color"), ("convert.erode=lots", "convert.erode"),
                                           ("start=100", "start"), ("direction=b_to_c", "identity")])
def test_bad_settings(capsys, tmp_path, clip, override, word):
    assert word in _bad(capsys, tmp_path, clip, override)


def test_bad_output_names(capsys, tmp_path, clip):
    assert ".mp4" in _bad(capsys, tmp_path, clip, f"out={tmp_path / 'never.avi'}")


def test_auto_alignments_are_found_only_for_this_input(clip, tmp_path):
    import shutil

    from faceswap.convert.outputs import find_alignments

    video = tmp_path / "take.mp4"
    shutil.copy(clip["video"], video)
    assert find_alignments("auto", video) == (None, None)  # nothing beside it: detect
    media.write_alignments(tmp_path / "alignments.json", clip["video"], clip["landmarks"], SIZE)
    assert find_alignments("auto", video) == (None, None)  # beside it, but written for another file
    media.write_alignments(tmp_path / "take" / "alignments.json", video, clip["landmarks"], SIZE)
    al, path = find_alignments("auto", video)
    assert path == tmp_path / "take" / "alignments.json" and len(al) == N
    assert find_alignments("none", video) == (None, None)
    al, path = find_alignments(str(tmp_path / "take"), video)  # an extract folder means its alignments.json
    assert path == tmp_path / "take" / "alignments.json"


def test_quiet_and_verbose(clip, tmp_path, capsys):
    args = [clip["video"], f"checkpoint={clip['run']}", f"alignments={clip['alignments']}", "preset=ultrafast",
            "provenance.label=false"]
    code, out, err = _convert(capsys, *args, f"out={tmp_path / 'q.mp4'}", "-q")
    assert code == 0, err
    assert out == ""  # -q: no INFO line, not even the summary
    assert "WARNING: provenance.label=false" in err  # warnings still shown
    assert (tmp_path / "q.mp4").is_file() and (tmp_path / "q.json").is_file()
    code, out, err = _convert(capsys, *args, f"out={tmp_path / 'v.mp4'}", "-v")
    assert code == 0, err
    assert "convert: settings {" in out and "convert: wrote" in out  # -v: the DEBUG line, and the usual ones
    code, out, err = _convert(capsys, *args, f"out={tmp_path / 'd.mp4'}")
    assert code == 0 and "convert: wrote" in out and "convert: settings {" not in out  # default: INFO, no DEBUG
    code, out, err = _convert(capsys, *args, f"out={tmp_path / 'x.mp4'}", "-q", "-v")
    assert code == 2 and err.count("\n") == 1 and "-q and -v" in err and not (tmp_path / "x.mp4").exists()
