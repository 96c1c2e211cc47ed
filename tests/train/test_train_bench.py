"""scripts/bench_train.py runs the real step on the tiny preset and writes its JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_script_writes_a_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--presets", "tiny", "--batch", "2",
                           "--steps", "2", "--warmup", "1", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "peak assumption:" in proc.stdout and "tiny" in proc.stdout
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["preset"] == "tiny" and row["batch"] == 2 and row["images_per_s"] > 0
    assert 0 <= row["data_wait_share"] <= 1 and 0 < row["mfu"] < 1
    # FLOPs of a 32 px image through the tiny model, counted by FlopCounterMode: more than its forward alone.
    assert 1e6 < row["flops_per_image"] < 1e9
