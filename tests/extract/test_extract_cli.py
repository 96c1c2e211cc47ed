"""`faceswap extract` on the command line: one-line errors with exit code 2 for bad input, and one end-to-end run."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from faceswap.cli import main


def _one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    from tests.extract.clips import synth_frames, write_images

    folder = tmp_path_factory.mktemp("faces")
    return write_images(folder, [r.image for r in synth_frames(2, seed=11)])


def _small(*args):
    # the small defaults first, so that a test's own overrides (later on the line) win
    return ["extract", "extract.size=64", "extract.detector.min_face_size=30", "progress=false", "device=cpu", *args]


def test_missing_input(capsys, tmp_path):
    _one_line_error(capsys, main(_small(str(tmp_path / "nope.mp4"), f"out={tmp_path / 'o'}")), "nope.mp4", "does not exist")


def test_input_not_given(capsys, tmp_path):
    _one_line_error(capsys, main(["extract", f"out={tmp_path / 'o'}"]), "input")


def test_empty_video(capsys, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    _one_line_error(capsys, main(_small(str(tmp_path / "empty.mp4"), f"out={tmp_path / 'o'}")), "empty.mp4")


def test_corrupt_video(capsys, tmp_path):
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _one_line_error(capsys, main(_small(str(tmp_path / "junk.mp4"), f"out={tmp_path / 'o'}")), "junk.mp4")


def test_folder_without_images(capsys, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("no pictures here")
    _one_line_error(capsys, main(_small(str(tmp_path / "docs"), f"out={tmp_path / 'o'}")), "docs", "no images")


def test_unknown_target(capsys, tmp_path, face_folder):
    _one_line_error(capsys, main(_small(str(face_folder), f"out={tmp_path / 'o'}", "extract.target=tallest")),
                    "extract.target", "largest")


def test_reference_rule_without_reference(capsys, tmp_path, face_folder):
    _one_line_error(capsys, main(_small(str(face_folder), f"out={tmp_path / 'o'}", "extract.target=reference")),
                    "extract.reference")


def test_reference_missing(capsys, tmp_path, face_folder):
    _one_line_error(capsys, main(_small(str(face_folder), f"out={tmp_path / 'o'}", "extract.target=reference",
                                        f"extract.reference={tmp_path / 'who.png'}")), "who.png", "does not exist")


def test_reference_without_a_face(capsys, tmp_path, face_folder):
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((160, 160, 3), 200, np.uint8))
    _one_line_error(capsys, main(_small(str(face_folder), f"out={tmp_path / 'o'}", "extract.target=reference",
                                        f"extract.reference={tmp_path / 'wall.png'}")), "wall.png", "no face")


@pytest.mark.parametrize("override,needle", [
    ("extract.smoothing.method=kalman", "extract.smoothing: method"),
    ("extract.detector.thresholds=[0.6,0.7]", "extract.detector.thresholds"),
    ("extract.size=8", "extract.size"),
    ("extract.coverage=0", "extract.coverage"),
    ("extract.size=big", "extract"),
    ("extract.smoothing.min_cutoff=0", "extract.smoothing"),
    ("extract.tracker.switch_ratio=0.5", "extract.tracker"),
    ("extract.nosuchkey=1", "extract"),
])
def test_bad_settings(capsys, tmp_path, face_folder, override, needle):
    _one_line_error(capsys, main(_small(str(face_folder), f"out={tmp_path / 'o'}", override)), needle)


def test_no_face_anywhere_is_an_error_but_recorded(capsys, tmp_path):
    folder = tmp_path / "blank"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((120, 160, 3), 60 * i, np.uint8))
    _one_line_error(capsys, main(_small(str(folder), f"out={tmp_path / 'o'}")), "no face found", "blank")
    data = json.loads((tmp_path / "o" / "alignments.json").read_text())
    assert [f["faces"] for f in data["frames"]] == [[], [], []] and all(f["target"] is None for f in data["frames"])


@pytest.mark.slow
def test_end_to_end_on_a_synth_clip(tmp_path, synth_clip):
    video, renders = synth_clip
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "faceswap", "extract", str(video), f"out={out}", "extract.size=64",
           "extract.detector.min_face_size=30", "device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two cores on CI, shared
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("extract: ") and f"{len(renders)} frames" in summary and "misses" in summary
    assert len(list((out / "faces").glob("*.png"))) == len(renders)
    assert len(list((out / "masks").glob("*.png"))) == len(renders)
    assert (out / ".faceswap" / "extract.yaml").is_file()
    from faceswap.extract.alignments import load_alignments

    assert load_alignments(out / "alignments.json").summary()["targets"] == len(renders)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
