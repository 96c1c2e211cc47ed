"""`faceswap convert` of a damaged video: its output and summary say the input fell short of what it promised."""
import json

import pytest

from faceswap.cli import main
from faceswap.video import probe

from tests.convert import media
from tests.damaged_video import truncate_after

N, KEPT = 30, 20
SIZE = (128, 96)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert_cut")
    frames, lms = media.moving_face(N, SIZE, scale=0.3)
    whole = media.write_video(d / "whole.mp4", frames)
    video = truncate_after(whole, d / "cut.mp4", KEPT)
    media.write_alignments(d / "extract" / "alignments.json", video, lms[:KEPT], SIZE)
    media.write_alignments(d / "extract_whole" / "alignments.json", whole, lms, SIZE)
    return {"video": video, "whole": whole, "extract": d / "extract", "extract_whole": d / "extract_whole",
            "run": media.tiny_checkpoint(d / "run")}


def _convert(capsys, clip, video, out, *extra):
    rc = main(["convert", str(video), f"checkpoint={clip['run']}", f"out={out}", "progress=false", "device=cpu",
               "provenance.watermark=false", *extra])
    return rc, *capsys.readouterr()


def test_a_truncated_input_is_converted_and_its_summary_says_so(clip, tmp_path, capsys):
    out = tmp_path / "swapped.mp4"
    rc, stdout, err = _convert(capsys, clip, clip["video"], out, f"alignments={clip['extract']}")
    assert rc == 0, err
    assert f"only {KEPT} of the {N} frames" in err
    assert f"the input is damaged: {KEPT} of {N} promised frames decoded" in stdout
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["frames"] == summary["input_frames"] == KEPT
    short = summary["input_shortfall"]
    assert (short["promised"], short["decoded"], short["missing"]) == (N, KEPT, N - KEPT)
    assert probe(out).frames == KEPT and probe(out).shortfall is None


def test_a_whole_input_has_no_shortfall_in_the_summary(clip, tmp_path, capsys):
    out = tmp_path / "swapped.mp4"
    rc, stdout, err = _convert(capsys, clip, clip["whole"], out, f"alignments={clip['extract_whole']}")
    assert rc == 0, err
    assert "damaged" not in stdout and "only" not in err
    assert json.loads(out.with_suffix(".json").read_text())["input_shortfall"] is None
