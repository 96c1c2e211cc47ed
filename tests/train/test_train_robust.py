"""Training survives the real world: SIGKILL at random moments, SIGINT/SIGTERM, and two processes under torchrun."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faceswap.models.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def env():
    e = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
             OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return e


def train_args(faces_ab, out, *extra):
    a, b = faces_ab
    return ["train", f"data.a={a}", f"data.b={b}", f"out={out}", "+debug=tiny", "train.steps=100000",
            "train.checkpoint_every=3", "train.keep=3", "train.log_every=1", "train.preview_every=1000",
            "train.timelapse_every=1000", *extra]


def start(args, log: Path):
    fh = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "faceswap", *args], stdout=fh, stderr=subprocess.STDOUT,
                            env=env(), cwd=ROOT), fh


def wait_for(cond, timeout=60.0, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return cond()
        time.sleep(0.05)
    return False


def steps_on_disk(ckpt_root: Path) -> list[int]:
    return [int(p.name.split("_")[1]) for p in list_checkpoints(ckpt_root)]


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_loadable_checkpoints(faces_ab, tmp_path):
    out = tmp_path / "run"
    ckpt_root = out / "checkpoints"
    rng = random.Random(0)
    expected_start = 0
    for attempt in range(3):
        log = tmp_path / f"log{attempt}.txt"
        proc, fh = start(train_args(faces_ab, out, "resume=true"), log)
        try:
            if expected_start:
                assert wait_for(lambda: "resumed from" in log.read_text(), proc=proc), log.read_text()
                m = re.search(r"resumed from (\S+) at step (\d+)", log.read_text())
                assert int(m.group(2)) == expected_start and m.group(1).endswith(f"step_{expected_start:08d}")
            before = max(steps_on_disk(ckpt_root), default=0)
            assert wait_for(lambda: max(steps_on_disk(ckpt_root), default=0) > before, proc=proc), log.read_text()
            time.sleep(rng.uniform(0.0, 0.6))  # anywhere: mid-step, mid-checkpoint, mid-prune
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            fh.close()
        # Every checkpoint left on disk loads, with its training state.
        steps = steps_on_disk(ckpt_root)
        assert steps
        for path in list_checkpoints(ckpt_root):
            ckpt = load_checkpoint(path, training_state=True)
            assert ckpt.optimizer is not None and ckpt.step == int(path.name.split("_")[1])
        assert not [p for p in ckpt_root.glob("step_*") if not (p / "state.json").exists()]
        expected_start = max(steps)
    # A clean finish from the last checkpoint: the log continues without a gap or a repeat.
    args = train_args(faces_ab, out, "resume=true", f"train.steps={expected_start + 2}")  # the last value wins
    proc = subprocess.run([sys.executable, "-m", "faceswap", *args], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"at step {expected_start}" in proc.stdout
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["kind"] == "train"]
    assert steps == list(range(1, expected_start + 3))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_saves_a_checkpoint_and_exits_cleanly(faces_ab, tmp_path, sig):
    out = tmp_path / "run"
    proc, fh = start(train_args(faces_ab, out, "train.checkpoint_every=1000"), tmp_path / "log.txt")
    try:
        assert wait_for(lambda: (out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 3,
                        proc=proc), (tmp_path / "log.txt").read_text()
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        fh.close()
    text = (tmp_path / "log.txt").read_text()
    m = re.search(rf"stopped by {sig.name} at step (\d+); checkpoint saved", text)
    assert m, text
    assert "Traceback" not in text
    assert load_checkpoint(out).step == int(m.group(1))


@pytest.mark.slow
def test_two_cpu_processes_under_torchrun(faces_ab, tmp_path):
    a, b = faces_ab
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "faceswap",
           "train", f"data.a={a}", f"data.b={b}", f"out={out}", "+debug=tiny", "train.steps=6",
           "train.checkpoint_every=3", "train.log_every=1", "device=cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "x 2 processes" in proc.stdout
    # One writer: one line per step, the same checkpoint format a single process writes.
    steps = [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_00000003", "step_00000006"]
    ckpt = load_checkpoint(out, training_state=True)
    assert ckpt.step == 6 and ckpt.state["world_size"] == 2 and ckpt.optimizer is not None
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in l]
    # Images per step count both processes: 2 identities x batch 4 x 2 ranks.
    assert ckpt.state["images_seen"] == 6 * 4 * 2 * 2 and all(r["images_per_s"] > 0 for r in records)
