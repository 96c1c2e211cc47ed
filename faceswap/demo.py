"""The `faceswap demo` stage: synth -> extract -> train -> convert -> evaluate -> report on the synthetic actors.

Each step calls its stage's own function with a config composed exactly as `faceswap <stage> ...` would,
writes a marker when it finishes, and is skipped on a re-run whose settings for it (and every step before
it) are unchanged. The stages' own output goes to DIR/demo.log; the terminal gets one line per step.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from faceswap.errors import UserError
from faceswap.resources import asset

SHIPPED_RUN = asset("demo", "run")


# --- small pure functions ----------------------------------------------------------------------------------

def override_value(value: Any) -> str:
    """A Python/YAML value as a Hydra override literal (strings always quoted, so no character is special)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, ListConfig)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, (dict, DictConfig)):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_overrides(node: Any, prefix: str) -> list[str]:
    """Flatten a config node into ``++prefix.key=value`` overrides (``++`` adds a key the target lacks)."""
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig, ListConfig)) else node
    out: list[str] = []

    def walk(d: Any, path: str) -> None:
        if isinstance(d, dict) and d:
            for k, v in d.items():
                walk(v, f"{path}.{k}")
        else:
            out.append(f"++{path}={override_value(d)}")

    walk(data, prefix)
    return out


def kv(key: str, value: Any) -> str:
    return f"{key}={override_value(value)}"


def settings_key(overrides: list[str], upstream: str = "") -> str:
    """What decides a step's output: its overrides and the key of the step before it."""
    return hashlib.sha256(json.dumps([upstream, overrides]).encode("utf-8")).hexdigest()[:16]


# --- steps ----------------------------------------------------------------------------------------------------

@dataclass
class Step:
    name: str
    stage: str  # the stage whose config is composed ("" for the report, which has none)
    overrides: list[str]
    outputs: list[Path]  # what must exist for the step to count as done
    call: Callable[[Any], str]  # composed config -> the one line to print
    owns: list[Path]  # what the step writes: removed before it runs again with other settings


class Demo:
    """The demo's folder and its step markers (DIR/.demo/<step>.json)."""

    def __init__(self, out: Path, progress: bool):
        self.out = out
        self.progress = progress
        self.log_path = out / "demo.log"
        self.markers = out / ".demo"

    def marker(self, step: Step) -> Path:
        return self.markers / f"{step.name.replace(' ', '_')}.json"

    def done(self, step: Step, key: str) -> bool:
        m = self.marker(step)
        if not m.is_file() or not all(p.exists() for p in step.outputs):
            return False
        try:
            return json.loads(m.read_text(encoding="utf-8")).get("key") == key
        except (json.JSONDecodeError, OSError):
            return False

    def mark(self, step: Step, key: str, seconds: float, line: str) -> None:
        from faceswap.utils import write_json_atomic

        write_json_atomic(self.marker(step), {"key": key, "seconds": round(seconds, 1), "line": line,
                                              "overrides": step.overrides})

    def stale(self, step: Step) -> bool:
        """A marker that exists but no longer matches: the step's old outputs are ours and out of date."""
        return self.marker(step).is_file()

    @contextlib.contextmanager
    def logged(self, title: str):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {title}\n")
            log.flush()
            with contextlib.redirect_stdout(log):
                yield


def _compose(stage: str, overrides: list[str]):
    from faceswap.config import compose

    return compose(stage, overrides)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# --- the shipped checkpoint ------------------------------------------------------------------------------------

def export_shipped(run_dir: str | Path, dest: str | Path = SHIPPED_RUN, half: bool = True, timelapse_frames: int = 40
                   ) -> Path:
    """Copy a trained run into the small form the demo ships (``demo.checkpoint=shipped``).

    Keeps the newest checkpoint's weights only (EMA when present; float16 when ``half``: half the size, and
    a model loads them into float32), its state without optimizer or RNG, the crop it was trained on (so
    convert needs no extract folder), the loss log and a thinned timelapse.
    """
    from safetensors.torch import load_file, save_file

    from faceswap.models.checkpoint import find_latest, read_state
    from faceswap.utils import read_json, write_json_atomic
    from faceswap.video import list_images

    run_dir, dest = Path(run_dir), Path(dest)
    ckpt = find_latest(run_dir / "checkpoints")
    if ckpt is None:
        raise UserError(f"{run_dir} holds no complete checkpoint; train first")
    state = read_state(ckpt)
    weights = ckpt / ("ema.safetensors" if (ckpt / "ema.safetensors").is_file() else "model.safetensors")
    tensors = load_file(str(weights))
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    keep = {k: state[k] for k in ("schema", "version", "step", "model_class", "model", "identities", "config",
                                  "saved_at", "torch", "images_seen", "loss_history", "crop") if k in state}
    data = (state.get("config") or {}).get("data") or {}
    for key in ("a", "b") if "crop" not in keep else ():
        al = Path(str(data.get(key, ""))) / "alignments.json"
        if al.is_file():
            crop = read_json(al, "alignments file").get("crop") or {}
            keep["crop"] = {"size": crop.get("size"), "coverage": crop.get("coverage")}
            break
    keep["files"] = ["model.safetensors", "state.json"]
    keep["exported_from"] = {"run": run_dir.name, "checkpoint": ckpt.name, "weights": weights.stem,
                             "dtype": "float16" if half else "float32"}
    tmp = dest.with_name(f".{dest.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    step_dir = tmp / "checkpoints" / ckpt.name
    step_dir.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(step_dir / "model.safetensors"), metadata={"format": "pt"})
    write_json_atomic(step_dir / "state.json", keep)
    (tmp / "checkpoints" / "latest").write_text(ckpt.name + "\n", encoding="utf-8")
    if (run_dir / "metrics.jsonl").is_file():
        shutil.copy2(run_dir / "metrics.jsonl", tmp / "metrics.jsonl")
    if (run_dir / "timelapse").is_dir():
        frames = list_images(run_dir / "timelapse")
        if len(frames) > timelapse_frames:
            idx = sorted({round(i * (len(frames) - 1) / (timelapse_frames - 1)) for i in range(timelapse_frames)})
            frames = [frames[i] for i in idx]
        (tmp / "timelapse").mkdir()
        for f in frames:
            shutil.copy2(f, tmp / "timelapse" / f.name)
    for p in tmp.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.replace(dest)
    return dest


# --- the stage ----------------------------------------------------------------------------------------------

def shipped_run(folder: str | Path | None = None) -> Path:
    """The run folder ``demo.checkpoint=shipped`` uses: ``folder`` when given, else the one in assets/."""
    from faceswap.models.checkpoint import find_latest

    run = Path(str(folder)).expanduser() if folder else SHIPPED_RUN
    if find_latest(run / "checkpoints") is None:
        where = "this faceswap install has no shipped demo checkpoint" if not folder else "demo.shipped_dir holds no checkpoint"
        raise UserError(f"{where} ({run}); use demo.checkpoint=train")
    return run


def plan(cfg) -> tuple[Demo, list[Step], dict]:
    """The demo's steps for a composed ``demo`` config (nothing runs yet)."""
    out = Path(str(cfg.out)).expanduser()
    d = cfg.demo
    if str(d.checkpoint) not in ("train", "shipped"):
        raise UserError(f"demo.checkpoint must be train or shipped, got {d.checkpoint!r}")
    progress = bool(cfg.get("progress", True))
    common = [kv("device", str(cfg.get("device", "auto"))), kv("progress", progress)]
    paths = {
        "synth": out / "synth", "faces_a": out / "faces_a", "faces_b": out / "faces_b",
        "run": out / "run" if str(d.checkpoint) == "train" else shipped_run(d.get("shipped_dir")),
        "swap": out / "swap_B_as_A.mp4", "eval": out / "eval", "report": out / "report.html",
    }
    demo = Demo(out, progress)
    p = paths

    def do_synth(c) -> str:
        from faceswap.synth.dataset import run as synth_run

        synth_run(c)
        info = json.loads((p["synth"] / "synth.json").read_text(encoding="utf-8"))
        st = info["settings"]
        return (f"{st['frames']} frames each of A, B and the true swap B-as-A at {st['width']}x{st['height']} "
                f"-> {p['synth']}")

    def do_extract(who: str) -> Callable[[Any], str]:
        def call(c) -> str:
            from faceswap.extract.alignments import load_alignments
            from faceswap.extract.pipeline import run as extract_run

            extract_run(c)
            s = load_alignments(p[f"faces_{who}"] / "alignments.json").summary()
            return f"{s['targets']} of {s['frames']} frames of {who.upper()}.mp4 with a face -> {p[f'faces_{who}']}"
        return call

    def do_train(c) -> str:
        from faceswap.config import save_config
        from faceswap.train.trainer import train

        summary = train(c)
        save_config(c, p["run"], "train")
        loss = f"{summary['loss']:.4f}" if summary.get("loss") is not None else "n/a"
        return (f"{summary['steps']} steps of model '{c.model.name}' in {float(summary['seconds']) / 60:.1f} min, "
                f"loss {loss} -> {p['run']}")

    def do_convert(c) -> str:
        from faceswap.convert.pipeline import convert, summary_line

        result = convert(c)
        print(summary_line(result))
        s = result.summary
        return f"{s.get('swapped', '?')} of {s.get('frames', '?')} frames of B.mp4 swapped to A -> {p['swap']}"

    def do_evaluate(c) -> str:
        from faceswap.evaluate.swap_eval import run as evaluate_run, summary_line

        evaluate_run(c)
        metrics = json.loads((p["eval"] / "metrics.json").read_text(encoding="utf-8"))
        return summary_line(metrics).split(": ", 1)[1]

    def do_report(_c) -> str:
        from faceswap.evaluate.report import write_report
        from faceswap.evaluate.swap_eval import report_context, run_dir_of

        metrics = json.loads((p["eval"] / "metrics.json").read_text(encoding="utf-8"))
        how = ("trained now for this demo" if str(d.checkpoint) == "train"
               else "the small checkpoint shipped with faceswap (trained longer; demo.checkpoint=shipped)")
        ctx = report_context(metrics, [("checkpoint used", how), ("demo folder", str(out))])
        write_report(p["report"], metrics, p["eval"], run_dir_of(Path(metrics["checkpoint"]["path"])),
                     title="faceswap demo: a deepfake of synthetic actors, measured against the truth", context=ctx)
        return f"-> {p['report']}"

    steps = [
        Step("synth", "synth", [kv("out", str(p["synth"])), kv("seed", int(cfg.seed)), kv("progress", progress),
                                *to_overrides(cfg.synth, "synth")], [p["synth"] / "synth.json"], do_synth, [p["synth"]]),
    ]
    for who in ("a", "b"):
        steps.append(Step(f"extract {who.upper()}", "extract",
                          [kv("input", str(p["synth"] / f"{who.upper()}.mp4")), kv("out", str(p[f"faces_{who}"])),
                           f"extract={d.extract}", *common, *list(d.extract_overrides)],
                          [p[f"faces_{who}"] / "alignments.json"], do_extract(who), [p[f"faces_{who}"]]))
    if str(d.checkpoint) == "train":
        steps.append(Step("train", "train",
                          [kv("out", str(p["run"])), kv("data.a", str(p["faces_a"])), kv("data.b", str(p["faces_b"])),
                           kv("data.val_fraction", float(d.val_fraction)), kv("seed", int(cfg.seed)), *common,
                           *to_overrides(cfg.model, "model"), *to_overrides(cfg.train, "train"),
                           *list(d.train_overrides)],
                          [p["run"] / "checkpoints" / "latest"], do_train, [p["run"]]))
    video = []
    if bool(d.convert):
        steps.append(Step("convert", "convert",
                          [kv("input", str(p["synth"] / "B.mp4")), kv("checkpoint", str(p["run"])),
                           kv("out", str(p["swap"])), kv("alignments", str(p["faces_b"])), "direction=b_to_a",
                           "overwrite=true", *common, *list(d.convert_overrides)],
                          [p["swap"]], do_convert, [p["swap"], p["swap"].with_suffix(".json")]))
        video = [kv("video", str(p["swap"]))]
    steps.append(Step("evaluate", "evaluate",
                      [kv("checkpoint", str(p["run"])), kv("synth_dir", str(p["synth"])), kv("out", str(p["eval"])),
                       kv("faces_a", str(p["faces_a"])), kv("faces_b", str(p["faces_b"])), *video, "report=false",
                       *common, *list(d.evaluate_overrides)],
                      [p["eval"] / "metrics.json"], do_evaluate, [p["eval"]]))
    steps.append(Step("report", "", [kv("report", str(p["report"]))], [p["report"]], do_report, [p["report"]]))
    return demo, steps, paths


def run(cfg) -> int:
    """`faceswap demo out=DIR`: run (or resume) the whole pipeline and say where to look."""
    from faceswap.config import save_config

    t0 = time.perf_counter()
    demo, steps, paths = plan(cfg)
    out = demo.out
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder for the demo")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out, "demo")
    using = ("training now (demo.checkpoint=train)" if str(cfg.demo.checkpoint) == "train"
             else f"the shipped checkpoint {paths['run']} (demo.checkpoint=shipped)")
    print(f"demo: {len(steps)} steps into {out}, {using}; stage output goes to {demo.log_path}")
    upstream, rerun = "", False
    for i, step in enumerate(steps, 1):
        key = settings_key(step.overrides, upstream)
        upstream = key
        label = f"demo: [{i}/{len(steps)}] {step.name}"
        if not rerun and demo.done(step, key):
            prev = json.loads(demo.marker(step).read_text(encoding="utf-8")).get("line", "")
            print(f"{label}: done earlier, skipped ({prev})")
            continue
        rerun = True  # everything after a step that runs depends on it
        if demo.stale(step):
            # Our own earlier output, made with other settings: start that step afresh.
            for path in step.owns:
                if out.resolve() in path.resolve().parents:
                    _remove(path)
            demo.marker(step).unlink()
        print(f"{label}: running ...", flush=True)
        t = time.perf_counter()
        c = _compose(step.stage, step.overrides) if step.stage else None
        if step.name == "train" and (paths["run"] / "checkpoints").is_dir():
            # An interrupted demo run: continue it rather than refuse the folder.
            c = _compose(step.stage, step.overrides + ["train.resume=true"])
        with demo.logged(step.name):
            line = step.call(c)
        seconds = time.perf_counter() - t
        demo.mark(step, key, seconds, line)
        print(f"{label}: {line} ({seconds:.0f} s)", flush=True)
    minutes = (time.perf_counter() - t0) / 60
    print(f"demo: finished in {minutes:.1f} min. Look at:")
    print(f"  {paths['report']}   the report: the swap beside B and the truth, metrics against baselines, "
          "training curves (open it in a browser)")
    if (paths["swap"]).exists():
        print(f"  {paths['swap']}   B's video with A's face (labelled SYNTHETIC)")
    print(f"  {paths['synth'] / 'truth_B_as_A.mp4'}   the true swap it is measured against")
    print(f"  {paths['eval'] / 'metrics.json'}   the numbers")
    return 0


__all__ = ["override_value", "to_overrides", "settings_key", "Step", "Demo", "plan", "run", "shipped_run", "SHIPPED_RUN",
           "export_shipped"]
