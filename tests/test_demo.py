"""The demo: config plumbing (overrides handed to each stage) and the whole pipeline on the tiny setting."""
import json

import pytest

from faceswap import demo as D
from faceswap.cli import main
from faceswap.config import compose


def test_override_values_are_hydra_literals():
    assert D.override_value(None) == "null"
    assert D.override_value(True) == "true"
    assert D.override_value(3) == "3"
    assert D.override_value(0.5) == "0.5"
    assert D.override_value("a b'c") == "'a b\\'c'"
    assert D.override_value([1, "x", None]) == "[1,'x',null]"
    assert D.to_overrides({"a": 1, "b": {"c": [1, 2]}}, "p") == ["++p.a=1", "++p.b.c=[1,2]"]


def test_flattened_groups_compose_back_to_the_same_values(tmp_path):
    cfg = compose("demo", ["demo=tiny", D.kv("out", str(tmp_path / "odd dir, with=signs"))])
    synth = compose("synth", [D.kv("out", cfg.out), *D.to_overrides(cfg.synth, "synth")])
    assert synth.synth == cfg.synth and synth.out == cfg.out
    train = compose("train", ["out=x", "data.a=a", "data.b=b", *D.to_overrides(cfg.model, "model"),
                              *D.to_overrides(cfg.train, "train")])
    assert train.model == cfg.model and train.train == cfg.train


def test_step_keys_chain():
    assert D.settings_key(["a=1"]) == D.settings_key(["a=1"])
    assert D.settings_key(["a=1"]) != D.settings_key(["a=2"])
    assert D.settings_key(["a=1"], "up1") != D.settings_key(["a=1"], "up2")


def test_bad_demo_setting_is_a_user_error(tmp_path, capsys):
    assert main(["demo", f"out={tmp_path}", "demo.checkpoint=nonsense"]) == 2
    assert "demo.checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_demo_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
    from tests.evaluate.browser import open_page

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the probe cache
    out = tmp_path / "demo"
    assert main(["demo", f"out={out}", "demo=tiny", "progress=false"]) == 0
    first = capsys.readouterr().out
    for step in ("synth", "extract A", "extract B", "train", "convert", "evaluate", "report"):
        assert f"] {step}: " in first
    assert "report.html" in first.splitlines()[-4]
    m = json.loads((out / "eval" / "metrics.json").read_text())
    assert m["frames"]["align"] == "extract" and m["frames"]["count"] == 6  # 25% of 24 frames held out
    assert m["video"] is not None and m["video"]["frames"] == 6
    assert m["probe"]["identity_accuracy"] > 0.5  # 3 actors: chance is 1/3
    assert (out / "swap_B_as_A.mp4").is_file() and (out / "demo.log").stat().st_size > 0
    page = open_page(out / "report.html", tmp_path / "profile")
    assert page["status"] == "ok", page["text"]
    assert page["console"] == []

    # Everything done: a re-run skips every step.
    assert main(["demo", f"out={out}", "demo=tiny", "progress=false"]) == 0
    again = capsys.readouterr().out
    assert again.count("done earlier, skipped") == 7

    # A changed evaluation setting re-runs evaluate and the report only.
    tiny = compose("demo", ["demo=tiny"]).demo.evaluate_overrides
    changed = [*tiny, "eval.samples=2"]
    assert main(["demo", f"out={out}", "demo=tiny", "progress=false", D.kv("demo.evaluate_overrides", changed)]) == 0
    third = capsys.readouterr().out
    assert third.count("done earlier, skipped") == 5
    assert "] evaluate: running" in third and "] report: running" in third

    # The shipped form of a run: half-precision weights, no optimizer, the crop recorded; the demo uses it
    # instead of training (and re-converts with it).
    from faceswap.models import load_checkpoint

    shipped = D.export_shipped(out / "run", tmp_path / "shipped")
    ck = load_checkpoint(shipped)
    assert ck.state["crop"]["coverage"] == 0.75 and not (ck.path / "optimizer.safetensors").exists()
    assert (shipped / "metrics.jsonl").is_file() and list((shipped / "timelapse").glob("*.png"))
    assert main(["demo", f"out={out}", "demo=tiny", "progress=false", "demo.checkpoint=shipped",
                 D.kv("demo.shipped_dir", str(shipped))]) == 0
    fourth = capsys.readouterr().out
    assert "] train" not in fourth and "] convert: running" in fourth
    assert json.loads((out / "eval" / "metrics.json").read_text())["checkpoint"]["path"].startswith(str(shipped))


def test_shipped_checkpoint_or_a_clear_error(tmp_path, capsys):
    if D.SHIPPED_RUN.exists():
        from faceswap.models import load_checkpoint

        ck = load_checkpoint(D.shipped_run())
        assert set(ck.model.decoders) == {"a", "b"} and ck.state["crop"]["coverage"] > 0
    else:
        assert main(["demo", f"out={tmp_path}", "demo.checkpoint=shipped"]) == 2
        assert "demo.checkpoint=train" in capsys.readouterr().err
    assert main(["demo", f"out={tmp_path}", "demo.checkpoint=shipped", D.kv("demo.shipped_dir", str(tmp_path / "x"))]) == 2
    assert "demo.shipped_dir holds no checkpoint" in capsys.readouterr().err
