"""Stamped videos end to end: metadata in the MP4, the mark through H.264 CRF 28 and half-size re-encodes, `faceswap verify`."""
import json
import subprocess
import sys

import numpy as np
import pytest

from faceswap.cli import main
from faceswap.provenance import parse_provenance, provenance_metadata, run_tag, stamp_frame, verify_file
from faceswap.video import VideoWriter, ffmpeg_exe, read_container_metadata, write_image

RUN = "run-2024-06-01-demo"


def _write(path, frames, metadata=None):
    with VideoWriter(path, fps=25, metadata=metadata) as w:
        for f in frames:
            w.write(f)
    return path


def _reencode(src, dst, *vf):
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *vf,
                    "-c:v", "libx264", "-crf", "28", str(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def stamped(tmp_path_factory, photo_clip):
    path = tmp_path_factory.mktemp("stamped") / "out.mp4"
    return _write(path, [stamp_frame(f, RUN) for f in photo_clip], provenance_metadata(RUN, {"source": "B.mp4"}))


def test_metadata_round_trips_through_mp4(stamped):
    meta = parse_provenance(read_container_metadata(stamped))
    assert meta["synthetic"] and meta["run_id"] == RUN and meta["tool"].startswith("faceswap/")
    assert meta["fields"]["source"] == "B.mp4"
    assert meta["watermark"] == f"f5:{run_tag(RUN):06x}"
    assert "synthetic" in read_container_metadata(stamped)["comment"].lower()


def test_metadata_values_are_sanitised():
    tags = provenance_metadata("a;b\nc=d\\e", {"note": "x; y"})
    assert "\n" not in "".join(tags.values())
    parsed = parse_provenance(tags)
    assert parsed["synthetic"] and parsed["run_id"] == "a,b c=d/e" and parsed["fields"]["note"] == "x, y"
    with pytest.raises(ValueError, match="identifier"):
        provenance_metadata("r", {"Bad Key": 1})
    assert not parse_provenance({"title": "holiday", "comment": "nice"})["synthetic"]


def test_verify_written_video(stamped):
    report = verify_file(stamped)
    wm = report["watermark"]
    assert wm["present"] and wm["payload"] == run_tag(RUN) and wm["frames"] == 24
    assert wm["bit_accuracy"] > 0.99
    assert report["metadata"]["synthetic"] and report["metadata"]["matches_watermark"]
    assert report["verdict"].startswith("SYNTHETIC")


def test_survives_crf28_reencode(stamped, tmp_path):
    report = verify_file(_reencode(stamped, tmp_path / "crf28.mp4"))
    assert report["watermark"]["present"] and report["watermark"]["payload"] == run_tag(RUN)
    assert report["watermark"]["bit_accuracy"] > 0.8  # per frame, before averaging over frames
    assert report["metadata"]["synthetic"]  # a plain re-encode keeps the standard tags


def test_survives_half_size_reencode(stamped, tmp_path):
    half = _reencode(stamped, tmp_path / "half.mp4", "-vf", "scale=iw/2:ih/2")
    report = verify_file(half)
    assert report["size"] == [160, 120]
    assert report["watermark"]["present"] and report["watermark"]["payload"] == run_tag(RUN)


def test_flat_background_survives_half_size_reencode(flat_clip, tmp_path):
    src = _write(tmp_path / "flat.mp4", [stamp_frame(f, RUN) for f in flat_clip])
    report = verify_file(_reencode(src, tmp_path / "half.mp4", "-vf", "scale=iw/2:ih/2"))
    assert report["watermark"]["present"] and report["watermark"]["payload"] == run_tag(RUN)


def test_unmarked_video_is_not_present(photo_clip, flat_clip, tmp_path):
    for name, clip in (("photo", photo_clip), ("flat", flat_clip)):
        path = _write(tmp_path / f"{name}.mp4", clip)
        for key in (None, 1, 2**31 - 1):
            report = verify_file(path) if key is None else verify_file(path, key=key)
            assert not report["watermark"]["present"], (name, key)
            assert not report["metadata"]["synthetic"]
            assert report["verdict"].startswith("no faceswap watermark")


def test_verify_image_and_image_folder(tmp_path, photo_clip):
    folder = tmp_path / "frames"
    for i, f in enumerate(photo_clip[:5]):
        write_image(folder / f"{i:03d}.png", stamp_frame(f, RUN) if i % 2 == 0 else f)
    (folder / "zz_broken.png").write_bytes(b"not a png")
    report = verify_file(folder)
    assert report["kind"] == "images" and report["frames_checked"] == 5 and report["frames_unreadable"] == ["zz_broken.png"]
    assert report["watermark"]["present"] and report["watermark"]["payload"] == run_tag(RUN)
    one = verify_file(folder / "000.png")
    assert one["kind"] == "image" and one["watermark"]["present"]
    assert not verify_file(folder / "001.png")["watermark"]["present"]


def test_cli_verify_end_to_end(stamped, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["verify", str(stamped), f"json={out}", "max_frames=10", "progress=false"]) == 0
    text = capsys.readouterr().out
    assert "PRESENT" in text and f"{run_tag(RUN):06x}" in text and "10 frames checked" in text
    report = json.loads(out.read_text())
    assert report["watermark"]["present"] and report["frames_checked"] == 10


def test_cli_verify_unmarked_exits_one(tmp_path, photo_clip, capsys):
    path = _write(tmp_path / "plain.mp4", photo_clip[:6])
    assert main(["verify", str(path)]) == 1  # as grep: 1 = nothing found
    assert "not found" in capsys.readouterr().out


def _one_line_error(capsys, rc, *needles):
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err


def test_cli_verify_bad_inputs(tmp_path, capsys):
    _one_line_error(capsys, main(["verify", str(tmp_path / "missing.mp4")]), "missing.mp4", "does not exist")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _one_line_error(capsys, main(["verify", str(corrupt)]), "corrupt.mp4")
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"\x89PNG garbage")
    _one_line_error(capsys, main(["verify", str(bad_png)]), "bad.png")
    _one_line_error(capsys, main(["verify", str(corrupt), "key=-1"]), "key")
    _one_line_error(capsys, main(["verify", str(corrupt), "max_frames=0"]), "max_frames")
    _one_line_error(capsys, main(["verify"]), "input")


def test_console_verify_corrupt_file_exit_code(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00" * 1000)
    proc = subprocess.run([sys.executable, "-m", "faceswap", "verify", str(corrupt)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stamp_frame_labels_and_marks(photo_clip):
    frame = photo_clip[0]
    both = stamp_frame(frame, RUN)
    label_only = stamp_frame(frame, RUN, watermark=False)
    mark_only = stamp_frame(frame, RUN, label=False)
    assert np.array_equal(stamp_frame(frame, RUN, label=False, watermark=False), frame)
    from faceswap.provenance import detect_watermark

    assert detect_watermark(both).payload == run_tag(RUN) and detect_watermark(mark_only).payload == run_tag(RUN)
    assert not detect_watermark(label_only).present
    # The label is the same box either way: the mark only nudges it by a few grey levels.
    box = np.any(label_only != frame, axis=2)
    assert np.abs(both.astype(int) - label_only)[box].max() <= 16


def test_verify_too_small_image_is_a_plain_no(tmp_path, capsys):
    write_image(tmp_path / "tiny.png", np.full((20, 30, 3), 100, np.uint8))
    report = verify_file(tmp_path / "tiny.png")
    assert not report["watermark"]["present"] and not report["watermark"]["checked"]
    assert main(["verify", str(tmp_path / "tiny.png")]) == 1
    assert "not checked" in capsys.readouterr().out


def test_verify_finds_a_mark_on_a_quarter_of_the_frames(photo_clip, tmp_path):
    # A converter marks only the frames it swapped; the rest dilute the average over frames.
    frames = [stamp_frame(f, RUN, watermark=i < 6) for i, f in enumerate(photo_clip)]
    report = verify_file(_write(tmp_path / "partly.mp4", frames))
    wm = report["watermark"]
    assert wm["present"] and wm["payload"] == run_tag(RUN) and wm["frames_decoded"] >= 2
