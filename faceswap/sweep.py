"""Multirun sweeps (`faceswap <stage> -m ...`): one Hydra job per combination, each in its own folder, and a summary."""
from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

from faceswap.errors import UserError

SWEEP_EXTRA = "install the sweep extra: pip install -e '.[sweep]'"
# Launcher/sweeper options that live in optional plugins, and the module each needs.
PLUGINS = {
    "hydra/launcher": {
        "joblib": "hydra_plugins.hydra_joblib_launcher",
        "submitit_local": "hydra_plugins.hydra_submitit_launcher",
        "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
        "slurm_ddp": "hydra_plugins.hydra_submitit_launcher",
    },
    "hydra/sweeper": {
        "optuna": "hydra_plugins.hydra_optuna_sweeper",
        "lr_loss_optuna": "hydra_plugins.hydra_optuna_sweeper",
    },
}
# What a sweep optimises (optuna) for each stage: the result key, read from the job's outputs.
OBJECTIVES = {"train": "val_ssim", "evaluate": "swap_ssim"}
JOB_RECORD = "job.json"
SWEEP_ID_ENV = "FACESWAP_SWEEP_ID"


def plugin_installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_plugins(overrides: Sequence[str]) -> None:
    """A launcher or sweeper from the sweep extra, asked for but not installed: one line naming the extra."""
    for ov in overrides:
        key, _, value = ov.partition("=")
        key = key.lstrip("+~")
        module = PLUGINS.get(key, {}).get(value)
        if module and not plugin_installed(module):
            raise UserError(f"{key}={value} needs the {module.split('.')[-1].replace('_', '-')} plugin: {SWEEP_EXTRA}")


def sweep_overrides(overrides: Sequence[str], has_out: bool) -> tuple[list[str], Path]:
    """Map the CLI's overrides onto a sweep: ``out=DIR`` names the sweep folder; each job's ``out`` is its own subfolder."""
    rest, sweep_dir = [], None
    for ov in overrides:
        key, sep, value = ov.partition("=")
        if sep and key in ("out", "hydra.sweep.dir"):
            if "," in value and not value.startswith(("'", '"')):
                raise UserError(f"{key}={value}: with -m, out= names the one sweep folder (each job gets a subfolder); "
                                "sweep over other keys")
            sweep_dir = value.strip("'\"")
        else:
            rest.append(ov)
    if sweep_dir is None:
        # Hydra's own default layout, fixed here once so the summary knows where the jobs are.
        now = datetime.now()
        sweep_dir = str(Path("multirun") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S"))
    sweep = Path(sweep_dir).expanduser().absolute()
    rest.append(f"hydra.sweep.dir={_quoted(str(sweep))}")
    if has_out:
        rest.append("out=${hydra:runtime.output_dir}")
    return rest, sweep


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def multirun(stage: str, target: str, overrides: Sequence[str], conf_dir: Path) -> int:
    """Run one job per combination of ``overrides`` with Hydra's sweeper and launcher; print and save the summary."""
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_plugins(overrides)
    has_out = "out" in OmegaConf.load(conf_dir / f"{stage}.yaml").keys()  # `in` is false for a ??? value
    args, sweep_dir = sweep_overrides(overrides, has_out)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin it loads
    root = logging.getLogger()
    saved_logging = (list(root.handlers), root.level)
    created = not sweep_dir.exists()
    # Each job records this id, so a reused sweep folder's older jobs stay out of the summary (any launcher, any clock).
    sweep_id = uuid.uuid4().hex
    args.append(f"++hydra.job.env_set.{SWEEP_ID_ENV}={sweep_id}")
    launcher_error = None
    version.setbase("1.3")
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(task_name=stage, config_search_path=create_config_search_path(str(conf_dir)))
        hydra.multirun(config_name=stage, task_function=functools.partial(job, stage, target), overrides=args)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        msg = _first_line(exc).rstrip(".")
        if collect(sweep_dir, sweep_id):  # jobs ran: the sweeper stopped later (e.g. Optuna with every trial failed)
            launcher_error = f"{type(exc).__name__}: {msg}"
        else:
            _bad_sweep(stage, overrides, msg, sweep_dir if created else None)
    except UserError:
        raise
    except Exception as exc:  # the launcher's own failure (a job killed at its time limit, a cluster refusing it)
        launcher_error = f"{type(exc).__name__}: {_first_line(exc)}"
    finally:
        GlobalHydra.instance().clear()
        _restore_logging(root, *saved_logging)
    jobs = collect(sweep_dir, sweep_id)
    if not jobs:
        why = f"the launcher failed ({launcher_error})" if launcher_error else "it ran no job"
        raise UserError(f"the sweep in {sweep_dir} has no results: {why}; see the launcher's output above")
    write_summary(sweep_dir, stage, jobs)
    print(format_table(jobs, stage))
    best = best_job(jobs, stage)
    if best is not None:
        key = OBJECTIVES[stage]
        swept = dict(zip((j["num"] for j in jobs), varying(jobs)))[best["num"]]
        print(f"sweep: best {key} {_fmt(best['result'][key])}: job {best['num']} ({' '.join(swept) or 'no overrides'})")
    print(f"sweep: {len(jobs)} jobs, {sum(j['status'] == 'ok' for j in jobs)} ok; summary in {sweep_dir / 'sweep.md'}")
    if launcher_error:
        print(f"error: the launcher stopped the sweep early: {launcher_error}", file=sys.stderr)
        return 1
    return 0 if all(j["status"] == "ok" for j in jobs) else 1


def _bad_sweep(stage: str, overrides: Sequence[str], msg: str, new_dir: Path | None) -> None:
    """A sweep that failed before any job ran: a bad override, or a launcher/sweeper whose plugin is missing."""
    if new_dir is not None and new_dir.is_dir() and {p.name for p in new_dir.iterdir()} <= {"multirun.yaml"}:
        shutil.rmtree(new_dir)  # nothing ran: leave no sweep folder behind
    if ("hydra/launcher" in msg or "hydra/sweeper" in msg) and not all(
            plugin_installed(m) for opts in PLUGINS.values() for m in opts.values()):
        raise UserError(f"{msg}: {SWEEP_EXTRA}")
    raise UserError(
        f"bad override for 'faceswap {stage} -m' ({' '.join(overrides) or 'no overrides'}): {msg}. "
        f"Run 'faceswap {stage} --cfg job' to see the keys and 'faceswap {stage} --help' for the groups")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _restore_logging(root: logging.Logger, handlers: list, level: int) -> None:
    # Hydra points the root logger at this process's stdout and a job log; a CLI called twice (tests) must not keep them.
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


# --- one job (runs in the launcher's process: this one, a joblib worker, or a submitit task) --------------------

def job(stage: str, target: str, cfg) -> object:
    """Hydra's task function: run the stage on ``cfg``, never raise; record status and key result in ``job.json``."""
    import importlib

    from hydra.core.hydra_config import HydraConfig
    from omegaconf.errors import MissingMandatoryValue

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    rank = ddp_from_submitit()
    overrides = [o for o in hc.overrides.task if not (o.startswith("out=") and "runtime.output_dir" in o)]
    record = {"sweep": os.environ.get(SWEEP_ID_ENV), "num": int(hc.job.num), "overrides": overrides, "pid": os.getpid(),
              "host": os.uname().nodename if hasattr(os, "uname") else "", "started": time.time(),
              "out": str(out), "status": "ok", "error": None}
    with tee_output(out / f"{hc.job.name}.log"):
        try:
            module, func = target.split(":")
            rc = getattr(importlib.import_module(module), func)(cfg)
            if isinstance(rc, int) and rc != 0:
                record["status"] = f"exit {rc}"
        except UserError as exc:
            record.update(status="failed", error=str(exc))
            print(f"error: {exc}", file=sys.stderr)
        except MissingMandatoryValue as exc:
            key = getattr(exc, "full_key", None) or str(exc).split()[0]
            record.update(status="failed", error=f"'faceswap {stage}' needs {key}=...")
            print(f"error: {record['error']}", file=sys.stderr)
        except Exception as exc:  # one job's crash must not take down the others; its log keeps the traceback
            record.update(status="failed", error=f"{type(exc).__name__}: {_first_line(exc)}")
            traceback.print_exc()
    record["finished"] = time.time()
    record["result"] = key_result(stage, out) if record["status"] == "ok" else {}
    if rank == 0:
        from faceswap.utils import write_json_atomic

        write_json_atomic(out / JOB_RECORD, record)
    if "optuna" in str(hc.sweeper.get("_target_", "")):
        value = record["result"].get(OBJECTIVES.get(stage, ""))
        return float(value) if value is not None else math.nan
    return record


def ddp_from_submitit() -> int:
    """Under submitit with several tasks (SLURM's tasks per node), export torchrun's variables so training is DDP.

    The trainer reads RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR as torchrun sets them; submitit sets SLURM's (or its
    local executor's) instead. Returns this task's rank (0 outside such a job).
    """
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return int(os.environ.get("RANK", "0"))
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        # CUDA_VISIBLE_DEVICES stays as SLURM set it: the trainer picks cuda:LOCAL_RANK itself.
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    return env.global_rank


class _Tee(io.TextIOBase):
    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, s: str) -> int:
        self.stream.write(s)
        self.log.write(s)
        self.log.flush()
        return len(s)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False  # no progress bars drawn into a log file

    def fileno(self) -> int:
        return self.stream.fileno()


@contextmanager
def tee_output(path: Path) -> Iterator[None]:
    """Copy the stage's prints (stdout and stderr) into the job's log, beside Hydra's own log lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = sys.stdout, sys.stderr
    with open(path, "a", encoding="utf-8") as log:
        sys.stdout, sys.stderr = _Tee(old[0], log), _Tee(old[1], log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


# --- results ----------------------------------------------------------------------------------------------------

def key_result(stage: str, out: Path) -> dict:
    """The few numbers that rank a job, read from what the stage wrote (train: metrics.jsonl; evaluate: metrics.json)."""
    try:
        if stage == "train":
            return train_result(out / "metrics.jsonl")
        if stage == "evaluate":
            return evaluate_result(out / "metrics.json")
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {}


def train_result(path: Path) -> dict:
    last_train, last_val = None, None
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if rec.get("kind") == "val":
                last_val = rec
            elif "loss" in rec:
                last_train = rec
    res: dict = {}
    steps = [r["step"] for r in (last_train, last_val) if r is not None and r.get("step") is not None]
    if steps:
        res["step"] = max(steps)  # the run ends with a validation at its last step, logged or not
    if last_train is not None:
        res["loss"] = last_train.get("loss")  # the last logged loss (every train.log_every steps)
    if last_val is not None:
        a, b = last_val.get("val_ssim_a"), last_val.get("val_ssim_b")
        res.update(val_ssim_a=a, val_ssim_b=b)
        if a is not None and b is not None:
            res["val_ssim"] = (a + b) / 2
    return res


def evaluate_result(path: Path) -> dict:
    m = json.loads(path.read_text(encoding="utf-8"))
    s, base = m["swap"], m.get("baselines", {})
    return {"swap_ssim": s.get("ssim"), "swap_psnr": s.get("psnr"), "identity_a": s.get("identity_a_rate"),
            "expression_error": s.get("expression_error"), "flicker": s.get("flicker"),
            "mean_a_ssim": base.get("mean_a", {}).get("ssim"), "input_b_ssim": base.get("input_b", {}).get("ssim")}


def collect(sweep_dir: Path, sweep_id: str) -> list[dict]:
    """The job records of sweep ``sweep_id`` (older ones in a reused folder are left out)."""
    jobs = []
    for path in sweep_dir.glob(f"**/{JOB_RECORD}"):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if rec.get("sweep") == sweep_id:
            jobs.append(rec)
    return sorted(jobs, key=lambda r: r.get("num", 0))


def varying(jobs: Sequence[dict]) -> list[list[str]]:
    """Each job's overrides less those every job shares (paths to data, out=...): what the sweep changed."""
    common = set.intersection(*(set(j["overrides"]) for j in jobs)) if len(jobs) > 1 else set()
    return [[o for o in j["overrides"] if o not in common] for j in jobs]


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def format_table(jobs: Sequence[dict], stage: str) -> str:
    """One markdown table: job, what it changed, status, seconds, then the stage's key results."""
    keys: list[str] = []
    for j in jobs:
        keys += [k for k in j.get("result", {}) if k not in keys]
    head = ["job", "overrides", "status", "seconds", *keys]
    rows = []
    for j, ov in zip(jobs, varying(jobs)):
        status = j["status"] if not j.get("error") else f"{j['status']}: {j['error']}"
        secs = j.get("finished", 0) - j.get("started", 0)
        rows.append([str(j["num"]), " ".join(ov) or "(none)", status.replace("|", "/"), f"{secs:.1f}",
                     *[_fmt(j.get("result", {}).get(k)) for k in keys]])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def best_job(jobs: Sequence[dict], stage: str) -> dict | None:
    """The job with the highest objective (both objectives are SSIMs: higher is better)."""
    key = OBJECTIVES.get(stage)
    scored = [j for j in jobs if j["status"] == "ok" and isinstance(j.get("result", {}).get(key), (int, float))
              and not math.isnan(j["result"][key])]
    return max(scored, key=lambda j: j["result"][key]) if scored else None


def write_summary(sweep_dir: Path, stage: str, jobs: Sequence[dict]) -> None:
    from faceswap.utils import atomic_path, write_json_atomic

    write_json_atomic(sweep_dir / "sweep.json", {
        "stage": stage, "sweep_dir": str(sweep_dir), "objective": OBJECTIVES.get(stage),
        "best": (best_job(jobs, stage) or {}).get("num"),
        "jobs": [{**j, "swept": ov} for j, ov in zip(jobs, varying(jobs))]})
    with atomic_path(sweep_dir / "sweep.md", suffix=".md") as tmp:
        tmp.write_text(f"# faceswap {stage} sweep: {sweep_dir}\n\n{format_table(jobs, stage)}\n", encoding="utf-8")
