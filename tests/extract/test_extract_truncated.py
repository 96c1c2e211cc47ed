"""`faceswap extract` on a damaged video: the shortfall is named on stderr and in alignments.json; nothing decoding is refused."""
import json

import pytest

from faceswap.cli import main

from tests.damaged_video import corrupt_frame, truncate_after
from tests.extract.clips import synth_frames, write_video

N = 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    return write_video(d / "clip.mp4", [r.image for r in synth_frames(N, seed=7, yaw=20.0, pitch=10.0)])


def _extract(capsys, video, out):
    rc = main(["extract", str(video), f"out={out}", "extract.size=64", "extract.detector.min_face_size=30",
               "extract.detector.batch_size=4", "progress=false", "device=cpu"])
    return rc, *capsys.readouterr()


def test_a_truncated_video_is_extracted_with_its_shortfall_named(clip, tmp_path, capsys):
    video = truncate_after(clip, tmp_path / "cut.mp4", 1)
    rc, out, err = _extract(capsys, video, tmp_path / "o")
    assert rc == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and f"only 1 of the {N} frames" in warnings[0] and str(video) in warnings[0]
    al = json.loads((tmp_path / "o" / "alignments.json").read_text())
    assert al["source"]["frames"] == len(al["frames"]) == 1
    short = al["source"]["shortfall"]
    assert (short["promised"], short["decoded"], short["missing"], short["repeated"]) == (N, 1, N - 1, 0)


def test_a_corrupt_frame_in_the_middle_is_recorded(clip, tmp_path, capsys):
    video = corrupt_frame(clip, tmp_path / "corrupt.mp4", 6)
    rc, out, err = _extract(capsys, video, tmp_path / "o")
    assert rc == 0, err
    assert "corrupt" in err
    al = json.loads((tmp_path / "o" / "alignments.json").read_text())
    assert len(al["frames"]) == N  # the slot is kept, so frame indices still match the video's timeline
    short = al["source"]["shortfall"]
    assert (short["promised"], short["decoded"], short["repeated"]) == (N, N - 1, 1) and short["errors"]


def test_a_whole_video_records_no_shortfall(clip, tmp_path, capsys):
    rc, out, err = _extract(capsys, clip, tmp_path / "o")
    assert rc == 0, err
    assert "warning" not in err
    assert "shortfall" not in json.loads((tmp_path / "o" / "alignments.json").read_text())["source"]


def test_a_video_of_which_nothing_decodes_is_refused(clip, tmp_path, capsys):
    video = truncate_after(clip, tmp_path / "empty.mp4", 0)
    rc, out, err = _extract(capsys, video, tmp_path / "o")
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines == [f"error: video {video} has no decodable frames (its container promises {N}); "
                     "check the file or re-encode it"]
    assert not (tmp_path / "o").exists()
