"""A non-editable install must still find the Hydra configs, templates and shipped weights: they ship inside the package."""
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
    names = set(zipfile.ZipFile(wheel).namelist())
    pkg = ROOT / "faceswap"
    # every data file the package reads at run time (configs, templates, shipped weights) is in the wheel
    data = {f"faceswap/{p.relative_to(pkg).as_posix()}" for p in pkg.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert any(n.startswith("faceswap/conf/") for n in data)
    assert data <= names, sorted(data - names)
