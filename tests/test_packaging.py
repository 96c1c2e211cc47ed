"""A non-editable install must still find the Hydra configs: they ship inside the package."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_configs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("faceswap-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("faceswap/conf/", 1)[1] for n in names if n.startswith("faceswap/conf/") and n.endswith(".yaml")}
    on_disk = {str(p.relative_to(ROOT / "faceswap" / "conf")) for p in (ROOT / "faceswap" / "conf").rglob("*.yaml")}
    assert on_disk and on_disk <= shipped
