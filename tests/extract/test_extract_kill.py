"""`faceswap extract` killed (SIGKILL) at random moments: every file under a final name loads, and a re-run resumes
to the very alignments an uninterrupted run writes."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceswap.extract.alignments import alignments_from_dict, load_alignments
from faceswap.video import read_image

from tests.extract.clips import synth_frames, write_synth_clip

ROOT = Path(__file__).resolve().parents[2]
N = 16
FINAL = {"faces", "masks", "alignments.json", "alignments.partial.json", ".faceswap"}


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _args(video, out):
    return [sys.executable, "-m", "faceswap", "extract", str(video), f"out={out}", "extract.size=64",
            "extract.detector.min_face_size=30", "extract.detector.batch_size=2", "extract.save_every=3",
            "progress=false", "device=cpu"]


def _wait_for(cond, proc, timeout=60.0) -> None:
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None and not cond():
        time.sleep(0.02)


def _check_on_disk(out: Path) -> None:
    """Whatever a kill left: no stray file under a final name, and every final file whole."""
    if not out.exists():
        return
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} <= FINAL
    for sub in ("faces", "masks"):
        for p in (out / sub).glob("*") if (out / sub).is_dir() else []:
            if p.name.startswith("."):
                continue  # a temp file that was being written: never under a final name
            assert p.suffix == ".png" and read_image(p).shape == (64, 64, 3), p
    if (out / "alignments.partial.json").exists():
        partial = alignments_from_dict(json.loads((out / "alignments.partial.json").read_text()), complete=False)
        assert len(partial) <= N
        for rec in partial.frames:  # a frame the progress file lists has its crop on disk
            assert rec.target is None or (out / "faces" / f"{rec.name}.png").is_file()
    if (out / "alignments.json").exists():
        assert len(load_alignments(out / "alignments.json")) == load_alignments(out / "alignments.json").source["frames"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("killclip")
    return write_synth_clip(d, synth_frames(N, seed=7, yaw=20.0, pitch=10.0))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerun_resumes_cleanly(clip, tmp_path):
    out = tmp_path / "out"
    rng = random.Random(0)
    killed_mid_run = 0
    for attempt in range(2):
        log = open(tmp_path / f"log{attempt}.txt", "w")
        proc = subprocess.Popen(_args(clip, out), stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
        try:
            # once frames are being written: anywhere in a detection batch, a crop write or a progress save
            _wait_for(lambda: (out / "faces").is_dir() and any((out / "faces").iterdir()), proc)
            time.sleep(rng.uniform(0.0, 0.5))
            killed_mid_run += proc.poll() is None
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.close()
        _check_on_disk(out)
    assert killed_mid_run, "every run ended before its kill: the clip is too short to test anything"
    resumable = (out / "alignments.partial.json").exists()
    done = subprocess.run(_args(clip, out), capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("resumed at frame" in done.stdout) == resumable, done.stdout
    _check_on_disk(out)
    assert not (out / "alignments.partial.json").exists()
    assert (out / ".faceswap" / "extract.yaml").is_file()
    # no temp file of a killed write is left behind
    assert not [p for p in out.rglob("*") if ".partial" in p.name], sorted(out.rglob("*"))

    # The same alignments as one uninterrupted run (the tracker and smoother state resume with the progress file).
    ref = tmp_path / "ref"
    whole = subprocess.run(_args(clip, ref), capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert whole.returncode == 0, whole.stderr
    got, want = load_alignments(out / "alignments.json"), load_alignments(ref / "alignments.json")
    assert [r.target for r in got.frames] == [r.target for r in want.frames]
    assert sum(r.target is not None for r in got.frames) == N
    for g, w in zip(got.frames, want.frames):
        np.testing.assert_allclose(g.faces[g.target].landmarks_smoothed, w.faces[w.target].landmarks_smoothed, atol=0.05)
    assert sorted(p.name for p in (out / "faces").iterdir()) == sorted(p.name for p in (ref / "faces").iterdir())
    assert sorted(p.name for p in (out / "masks").iterdir()) == sorted(p.name for p in (ref / "masks").iterdir())


@pytest.mark.slow
def test_a_kill_between_the_last_writes_is_finished_by_a_rerun(tmp_path, capsys):
    """The states SIGKILL leaves between extract's last steps: alignments.json renamed into place but the progress
    file not yet removed and the config not yet saved, and a crop's temp file half written."""
    from faceswap.cli import main

    video = write_synth_clip(tmp_path / "clip", synth_frames(4, seed=7, yaw=20.0, pitch=10.0))
    out = tmp_path / "out"
    args = [a for a in _args(video, out)[3:]]
    assert main(args) == 0
    capsys.readouterr()
    (out / "alignments.partial.json").write_text((out / "alignments.json").read_text())
    (out / ".faceswap" / "extract.yaml").unlink()
    (out / "faces" / ".000002.png.partial").write_bytes((out / "faces" / "000002.png").read_bytes()[:100])
    (out / ".alignments.x1y2.partial.json").write_text('{"schema": ')
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not (out / "alignments.partial.json").exists()
    assert (out / ".faceswap" / "extract.yaml").is_file()
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
    _check_on_disk(out)
