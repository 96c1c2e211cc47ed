"""`faceswap convert` killed (SIGKILL) at random moments and around the output's rename: no output under its final
name is ever truncated or without its summary, and re-running the same command redoes it cleanly."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap.video import list_images, probe, read_image

from tests.convert import media

ROOT = Path(__file__).resolve().parents[2]
N = 48
SIZE = (128, 96)

# Runs convert with its video writer's close wrapped: SIGKILL just before it (the encoder not finished, nothing
# renamed) or just after it (the video renamed into place): the two moments around the output's commit point.
KILL_AROUND_CLOSE = """
import os, signal, sys
import faceswap.video as video
where, close = sys.argv[1], video.VideoWriter.close
def killing_close(self, *args, **kwargs):
    if where == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    close(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
video.VideoWriter.close = killing_close
from faceswap.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("killclip")
    frames, lms = media.moving_face(N, SIZE, scale=0.3)
    video = media.write_video(d / "b.mp4", frames)
    media.write_alignments(d / "extract" / "alignments.json", video, lms, SIZE)
    folder = d / "frames"
    folder.mkdir()
    from faceswap.video import write_image

    for i, f in enumerate(frames):
        write_image(folder / f"f{i:03d}.png", f)
    return {"video": video, "folder": folder, "extract": d / "extract", "run": media.tiny_checkpoint(d / "run")}


def _args(clip, src, out):
    extra = [f"alignments={clip['extract']}"] if src == clip["video"] else ["alignments=none"]
    return ["convert", str(src), f"checkpoint={clip['run']}", f"out={out}", "progress=false", "device=cpu",
            "convert.batch_size=4", "convert.queue=2", *extra]


def _start(args, log: Path, prefix=()):
    fh = open(log, "w")
    cmd = [sys.executable, *prefix] if prefix else [sys.executable, "-m", "faceswap"]
    return subprocess.Popen([*cmd, *args], stdout=fh, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT), fh


def _check_video_out(out: Path) -> None:
    """A video under its final name is whole and has its summary beside it; temp files are hidden."""
    assert {p.name for p in out.parent.iterdir() if not p.name.startswith(".")} <= {out.name, out.with_suffix(".json").name}
    if out.with_suffix(".json").exists():
        assert json.loads(out.with_suffix(".json").read_text())["frames"] == N
    if out.exists():
        assert probe(out).frames == N
        assert out.with_suffix(".json").exists(), "a video without its summary"


def _check_folder_out(out: Path) -> None:
    assert {p.name for p in out.parent.iterdir() if not p.name.startswith(".")} <= {out.name}
    if out.exists():
        names = [p.name for p in list_images(out)]
        assert len(names) == N and all(read_image(out / n).shape == (SIZE[1], SIZE[0], 3) for n in names)
        assert json.loads((out / "convert.json").read_text())["frames"] == N


def _litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name or ".trash" in p.name)


def _kill_randomly(args, out_dir: Path, tmp_path: Path, check, attempts: int, seed: int) -> int:
    """Start, wait for the output's temp to appear, SIGKILL a random moment later; returns the runs killed mid-way."""
    rng = random.Random(seed)
    mid_run = 0
    for attempt in range(attempts):
        proc, fh = _start(args, tmp_path / f"log{attempt}.txt")
        try:
            end = time.time() + 120
            while time.time() < end and proc.poll() is None and not _litter(out_dir):
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            mid_run += proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            fh.close()
        check()
    return mid_run


def _rerun(args, out: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "faceswap", *args], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_video_output_after_sigkill_at_random_moments(clip, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "swapped.mp4"
    args = _args(clip, clip["video"], out)
    mid_run = _kill_randomly(args, out_dir, tmp_path, lambda: _check_video_out(out), attempts=2, seed=0)
    assert mid_run, "every run ended before its kill: the clip is too short to test anything"
    if not out.exists():
        _rerun(args, out)
    _check_video_out(out)
    assert out.exists() and _litter(out_dir) == []


@pytest.mark.slow
def test_image_folder_output_after_sigkill_at_random_moments(clip, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "swapped"
    args = _args(clip, clip["folder"], out)
    mid_run = _kill_randomly(args, out_dir, tmp_path, lambda: _check_folder_out(out), attempts=2, seed=1)
    assert mid_run, "every run ended before its kill: the input is too short to test anything"
    if not out.exists():
        _rerun(args, out)
    _check_folder_out(out)
    assert out.exists() and _litter(out_dir) == []  # the killed runs' temp folders are cleared


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before", "after"])
def test_sigkill_around_the_video_rename(clip, tmp_path, where):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "swapped.mp4"
    args = _args(clip, clip["video"], out)
    proc, fh = _start(args, tmp_path / "log.txt", prefix=("-c", KILL_AROUND_CLOSE, where))
    assert proc.wait(timeout=300) == -signal.SIGKILL, (tmp_path / "log.txt").read_text()
    fh.close()
    _check_video_out(out)
    if where == "before":
        assert not out.exists()
        _rerun(args, out)  # the same command again: nothing in its way
        _check_video_out(out)
        assert out.exists() and _litter(out_dir) == []
    else:
        assert out.exists()  # whole, with its summary (checked above): a re-run is told it exists
