"""The `faceswap` command: help, config printing, and one-line errors with exit code 2."""
import subprocess
import sys

import pytest

from faceswap.cli import STAGES, main
from faceswap.config import CONF_DIR


def test_help_lists_every_stage(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in STAGES:
        assert f"  {name} " in out


def test_every_registered_stage_has_a_config_and_prints_it(capsys):
    for name in STAGES:
        assert (CONF_DIR / f"{name}.yaml").is_file(), name
        assert main([name, "--cfg", "job"]) == 0
        assert capsys.readouterr().out.strip(), name


def test_every_stage_help(capsys):
    for name in STAGES:
        assert main([name, "--help"]) == 0
        assert f"faceswap {name}" in capsys.readouterr().out


def _assert_one_line_error(capsys, rc, *needles):
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err


def test_unknown_stage(capsys):
    _assert_one_line_error(capsys, main(["nosuchstage"]), "nosuchstage", "faceswap --help")


@pytest.mark.parametrize("override", ["synth.nosuchkey=1", "synth=nosuchpreset", "synth.frames=[1,", "=3"])
def test_bad_override(capsys, override):
    _assert_one_line_error(capsys, main(["synth", override]), "synth")


def test_bad_flag(capsys):
    _assert_one_line_error(capsys, main(["synth", "--frobnicate"]), "--frobnicate")


def test_cfg_override_is_applied(capsys):
    assert main(["synth", "--cfg", "job", "synth.frames=7", "out=/tmp/somewhere"]) == 0
    out = capsys.readouterr().out
    assert "frames: 7" in out and "/tmp/somewhere" in out


def test_missing_mandatory_value_is_one_line(capsys):
    # `out` is mandatory (???) for synth
    _assert_one_line_error(capsys, main(["synth", "out=???"]), "out")


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "faceswap", "synth", "synth.nosuchkey=1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


def test_help_shows_multirun(capsys):
    assert main(["--help"]) == 0
    assert "-m model=tiny,lite" in capsys.readouterr().out
    assert main(["train", "--help"]) == 0
    assert "-m, --multirun" in capsys.readouterr().out


def test_sweep_values_without_multirun_say_to_add_it(capsys):
    _assert_one_line_error(capsys, main(["train", "model=tiny,lite", "out=/tmp/x"]), "model=tiny,lite", "add -m")


def test_multirun_with_cfg_is_one_line(capsys):
    _assert_one_line_error(capsys, main(["train", "-m", "--cfg", "job", "model=tiny,lite"]), "--cfg", "drop -m")
