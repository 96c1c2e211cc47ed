"""Reading videos: a truncated or corrupt file is noticed (promised vs decoded frames), named once, refused when empty."""
import subprocess

import numpy as np
import pytest

from faceswap.errors import UserError
from faceswap.video import FrameSource, ffmpeg_exe, probe, read_video

from tests.convert import media
from tests.damaged_video import corrupt_frame, truncate_after

N = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("video")
    frames, _ = media.moving_face(N, size=(128, 96))
    return media.write_video(d / "full.mp4", frames)


def _warnings(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]


def test_a_whole_video_has_no_shortfall(clip, tmp_path, capsys):
    info = probe(clip)
    assert (info.frames, info.shortfall) == (N, None)
    assert len(list(read_video(clip))) == N
    assert _warnings(capsys) == []


def test_a_truncated_video_names_frames_promised_and_decoded(clip, tmp_path, capsys):
    video = truncate_after(clip, tmp_path / "cut.mp4", 1)
    source = FrameSource(video)
    assert len(source) == 1 == len(list(source))
    short = source.info.shortfall
    assert (short.promised, short.decoded, short.missing, short.repeated) == (N, 1, N - 1, 0)
    assert short.record()["promised"] == N and short.record()["decoded"] == 1
    (line,) = _warnings(capsys)
    assert str(video) in line and f"only 1 of the {N} frames" in line and "truncated" in line


def test_a_video_cut_in_two_reads_the_first_part(clip, tmp_path, capsys):
    video = truncate_after(clip, tmp_path / "half.mp4", 20)
    info = probe(video)
    assert info.frames == 20 and (info.shortfall.promised, info.shortfall.decoded) == (N, 20)
    got, want = list(read_video(video)), list(read_video(clip))[:20]
    assert len(got) == 20 and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_a_corrupt_frame_in_the_middle_is_named_and_its_slot_kept(clip, tmp_path, capsys):
    video = corrupt_frame(clip, tmp_path / "corrupt.mp4", 15)
    info = probe(video)
    short = info.shortfall
    assert (short.promised, short.decoded, short.repeated) == (N, N - 1, 1)
    assert short.errors and "Invalid NAL unit size" in short.errors[0]
    # The reader keeps the frame rate (and the audio in step): the corrupt slot repeats a neighbouring picture.
    frames, whole = list(read_video(video)), list(read_video(clip))
    assert info.frames == len(frames) == N
    assert all(np.array_equal(a, b) for a, b in zip(frames[:15], whole[:15]))
    assert np.array_equal(frames[15], frames[16])
    (line,) = _warnings(capsys)
    assert f"only {N - 1} of the {N} frames" in line and "corrupt" in line


@pytest.mark.parametrize("damage", ["cut before the first frame", "first frame corrupt"])
def test_nothing_that_decodes_is_refused(clip, tmp_path, capsys, damage):
    video = tmp_path / "none.mp4"
    if damage.startswith("cut"):
        truncate_after(clip, video, 0)
    else:
        corrupt_frame(clip, video, 0)
    with pytest.raises(UserError, match=f"no decodable frames \\(its container promises {N}\\)"):
        FrameSource(video)
    assert _warnings(capsys) == []  # the error says it: no warning before it


def test_the_shortfall_is_named_once_per_file(clip, tmp_path, capsys):
    video = truncate_after(clip, tmp_path / "cut.mp4", 10)
    for _ in range(3):  # forensics scan opens its video three times (scan, its extract, the watermark check)
        assert FrameSource(video).info.shortfall.decoded == 10
    assert len(_warnings(capsys)) == 1


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov"])
def test_audio_longer_than_the_video_is_no_shortfall(clip, tmp_path, capsys, ext):
    # A container's duration counts the audio too: only the video stream's own count or duration is a promise.
    out = tmp_path / f"long_audio{ext}"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(clip), "-f", "lavfi", "-i", "sine=duration=3",
                    "-c:v", "copy", "-c:a", "aac", str(out)], check=True)
    info = probe(out)
    assert info.frames == N and info.has_audio and info.shortfall is None
    assert _warnings(capsys) == []


def test_a_stream_copy_cut_is_no_shortfall(clip, tmp_path, capsys):
    # Cutting without re-encoding keeps the samples back to the last keyframe and hides them with an edit list:
    # they are in the file but were never promised as frames.
    out = tmp_path / "cut_copy.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-ss", "0.5", "-i", str(clip), "-c", "copy", str(out)],
                   check=True)
    info = probe(out)
    assert info.frames == len(list(read_video(out))) == 17 and info.shortfall is None
    assert _warnings(capsys) == []
