"""Multirun sweeps: one job per combination in its own folder, the launchers (basic, joblib, submitit), the summary."""
import contextlib
import io
import json
import math
import os

import pytest
import yaml

from faceswap import sweep as S
from faceswap.cli import main
from faceswap.config import compose
from tests.train.fakes import make_extract_folder


def _needs(module: str):
    return pytest.mark.skipif(not S.plugin_installed(module),
                              reason="the sweep extra is not installed (pip install -e '.[sweep]')")


needs_joblib = _needs("hydra_plugins.hydra_joblib_launcher")
needs_submitit = _needs("hydra_plugins.hydra_submitit_launcher")
needs_optuna = _needs("hydra_plugins.hydra_optuna_sweeper")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_faces")
    return (make_extract_folder(root / "A", n=16, skin=(230, 190, 160), seed=1),
            make_extract_folder(root / "B", n=16, skin=(120, 80, 60), seed=2))


def tiny(faces, out, steps="5"):
    a, b = faces
    # One torch thread per job: parallel jobs share the CPU, and the numbers match across launchers.
    return [f"train.steps={steps}", "+debug=tiny", "device=cpu", "train.threads=1", f"data.a={a}", f"data.b={b}", f"out={out}"]


def _jobs(sweep_dir):
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    return {tuple(j["swept"]): j for j in summary["jobs"]}, summary


def _assert_two_runs(sweep_dir, stdout):
    """model=tiny,lite: two job folders, each with its composed config, overrides, log and a 5-step checkpoint."""
    jobs, summary = _jobs(sweep_dir)
    assert summary["stage"] == "train" and set(jobs) == {("model=tiny",), ("model=lite",)}
    for (override,), job in jobs.items():
        run = sweep_dir / str(job["num"])
        assert job["out"] == str(run) and job["status"] == "ok" and job["error"] is None
        cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        assert cfg["model"]["name"] == override.split("=")[1] and cfg["train"]["steps"] == 5
        assert override in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        # the stage's own record of its config has `out` resolved to the job's folder
        assert yaml.safe_load((run / ".faceswap" / "train.yaml").read_text())["out"] == str(run)
        assert "train: 5 steps (from 0, stopped by steps)" in (run / "train.log").read_text()
        assert (run / "checkpoints" / "step_00000005").is_dir()
        assert job["result"]["step"] == 5 and math.isfinite(job["result"]["loss"])
        assert 0 < job["result"]["val_ssim"] < 1
    table = (sweep_dir / "sweep.md").read_text()
    assert "| 0 | model=tiny | ok |" in table and "| 1 | model=lite | ok |" in table
    assert "| 0 | model=tiny | ok |" in stdout and "2 jobs, 2 ok" in stdout
    return jobs


@pytest.fixture(scope="module")
def basic_sweep(faces, tmp_path_factory):
    """The acceptance sweep on Hydra's basic launcher (jobs one after another, in this process)."""
    out = tmp_path_factory.mktemp("basic") / "sweep"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = main(["train", "-m", "model=tiny,lite", *tiny(faces, out)])
    return out, rc, stdout.getvalue()


@pytest.mark.slow
def test_multirun_makes_one_run_per_combination(basic_sweep):
    out, rc, stdout = basic_sweep
    assert rc == 0
    jobs = _assert_two_runs(out, stdout)
    assert {j["pid"] for j in jobs.values()} == {os.getpid()}


@pytest.mark.slow
@needs_joblib
def test_joblib_runs_the_jobs_in_parallel_processes(basic_sweep, faces, tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = main(["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=tiny,lite", *tiny(faces, out)])
    assert rc == 0
    jobs = _assert_two_runs(out, capsys.readouterr().out)
    pids = {j["pid"] for j in jobs.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    # the same configs reach the workers: the same losses as the basic launcher's, run by run (CPU, one thread)
    basic, _ = _jobs(basic_sweep[0])
    for key, job in jobs.items():
        assert job["result"]["loss"] == pytest.approx(basic[key]["result"]["loss"], rel=1e-5)


@pytest.mark.slow
@needs_submitit
@pytest.mark.timeout(420)
def test_submitit_local_runs_the_jobs_through_submitit(basic_sweep, faces, tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = main(["train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "model=tiny,lite",
               *tiny(faces, out)])
    assert rc == 0
    jobs = _assert_two_runs(out, capsys.readouterr().out)
    pids = {j["pid"] for j in jobs.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert any((out / ".submitit").glob("*/*_0_log.out"))  # submitit's own job folders
    basic, _ = _jobs(basic_sweep[0])
    for key, job in jobs.items():
        assert job["result"]["loss"] == pytest.approx(basic[key]["result"]["loss"], rel=1e-5)


@pytest.mark.slow
@needs_submitit
@pytest.mark.timeout(420)
def test_submitit_tasks_per_node_train_as_ddp(faces, tmp_path):
    """The SLURM path on one machine: 2 submitit tasks become 2 DDP ranks (gloo on CPU); rank 0 records the job."""
    out = tmp_path / "sweep"
    rc = main(["train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
               "hydra.launcher.timeout_min=5", "model=tiny", *tiny(faces, out)])
    assert rc == 0
    log = (out / "0" / "train.log").read_text()
    assert "x 2 processes" in log and "train: 5 steps" in log
    jobs, _ = _jobs(out)
    assert len(jobs) == 1 and next(iter(jobs.values()))["status"] == "ok"


@pytest.mark.slow
@needs_optuna
def test_optuna_example_searches_lr_and_loss_weights(faces, tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = main(["train", "-m", "hydra/sweeper=lr_loss_optuna", "hydra.sweeper.n_trials=2", "model=tiny",
               *tiny(faces, out)])
    assert rc == 0
    jobs, summary = _jobs(out)
    assert len(jobs) == 2
    for swept in jobs:
        assert {o.split("=")[0] for o in swept} == {"train.lr", "train.loss.ssim_weight", "train.loss.mask_weight",
                                                    "train.loss.eyes_weight"}
    # each trial returned its validation SSIM; Optuna's best is the summary's best
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    ssims = {j["num"]: j["result"]["val_ssim"] for j in jobs.values()}
    assert best["best_value"] == pytest.approx(max(ssims.values()), rel=1e-6)
    assert summary["best"] == max(ssims, key=ssims.get)
    assert "sweep: best val_ssim" in capsys.readouterr().out


@pytest.mark.slow
def test_a_failed_job_is_recorded_and_the_others_run(faces, tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = main(["train", "-m", "model=tiny", *tiny(faces, out, steps="5,-1")])
    assert rc == 1
    jobs, _ = _jobs(out)
    assert jobs[("train.steps=5",)]["status"] == "ok"
    bad = jobs[("train.steps=-1",)]
    assert bad["status"] == "failed" and "train.steps must be >= 0" in bad["error"]
    assert "train.steps must be >= 0" in (out / str(bad["num"]) / "train.log").read_text()
    assert "2 jobs, 1 ok" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_sweep_reports_swap_ssim(tmp_path, capsys):
    from tests.evaluate.conftest import write_synth_folder, write_tiny_checkpoint
    from tests.evaluate.test_eval_swap import TINY_PROBE

    synth = write_synth_folder(tmp_path / "synth")
    run = write_tiny_checkpoint(tmp_path / "run")
    out = tmp_path / "sweep"
    rc = main(["evaluate", "-m", "eval.max_frames=2,3", f"checkpoint={run}", f"synth_dir={synth}", f"out={out}",
               f"probe.cache_dir={tmp_path / 'probe'}", "progress=false", "report=false", *TINY_PROBE])
    assert rc == 0
    jobs, summary = _jobs(out)
    assert set(jobs) == {("eval.max_frames=2",), ("eval.max_frames=3",)} and summary["best"] is not None
    for (override,), job in jobs.items():
        metrics = json.loads((out / str(job["num"]) / "metrics.json").read_text())
        assert metrics["frames"]["count"] == int(override.split("=")[1])
        assert job["result"]["swap_ssim"] == metrics["swap"]["ssim"]
        assert job["result"]["mean_a_ssim"] == metrics["baselines"]["mean_a"]["ssim"]
    assert "swap_ssim" in capsys.readouterr().out


# --- composition and errors (no training) -------------------------------------------------------------------

@needs_submitit
def test_slurm_ddp_launcher_composes():
    cfg = compose("train", ["hydra/launcher=slurm_ddp", "hydra.launcher.partition=gpu", "hydra.launcher.nodes=2",
                            "model=lite"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == ("gpu", 2, 4, 4)
    assert cfg.model.name == "lite"


@needs_submitit
def test_slurm_tasks_become_torchrun_ranks(monkeypatch):
    """Task 5 of 2 nodes x 4 tasks: the variables the trainer's DDP set-up reads, from SLURM's."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update(SUBMITIT_EXECUTOR="slurm", SLURM_JOB_ID="4242", SLURM_NTASKS="8", SLURM_JOB_NUM_NODES="2",
               SLURM_NODEID="1", SLURM_PROCID="5", SLURM_LOCALID="1", SLURM_JOB_NODELIST="gpu[07-08]")
    monkeypatch.setattr(os, "environ", env)
    assert S.ddp_from_submitit() == 5
    assert (env["RANK"], env["WORLD_SIZE"], env["LOCAL_RANK"], env["LOCAL_WORLD_SIZE"]) == ("5", "8", "1", "4")
    assert env["MASTER_ADDR"] == "gpu07" and 20000 <= int(env["MASTER_PORT"]) <= 60000


@needs_optuna
def test_optuna_example_composes():
    cfg = compose("train", ["hydra/sweeper=lr_loss_optuna"], return_hydra_config=True)
    sw = cfg.hydra.sweeper
    assert "OptunaSweeper" in sw._target_ and sw.direction == "maximize" and sw.sampler.seed == 0
    assert set(sw.params) == {"train.lr", "train.loss.ssim_weight", "train.loss.mask_weight", "train.loss.eyes_weight"}
    for key in sw.params:  # every searched key exists in the train config
        assert compose("train", [f"{key}=1"]) is not None


def _one_line_error(capsys, rc, *needles):
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for n in needles:
        assert n in err, err


def test_bad_override_in_a_sweep_is_one_line_and_leaves_no_folder(faces, tmp_path, capsys):
    out = tmp_path / "sweep"
    _one_line_error(capsys, main(["train", "-m", "train.nosuchkey=1,2", *tiny(faces, out)]), "train.nosuchkey", "-m")
    _one_line_error(capsys, main(["train", "-m", "model=tiny,nosuch", *tiny(faces, out)]), "model/nosuch")
    assert not out.exists()


def test_missing_plugin_names_the_sweep_extra(faces, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(S, "plugin_installed", lambda module: False)
    for option in ("hydra/launcher=joblib", "hydra/launcher=submitit_slurm", "hydra/sweeper=optuna"):
        rc = main(["train", "-m", option, "model=tiny,lite", *tiny(faces, tmp_path / "sweep")])
        _one_line_error(capsys, rc, option, "pip install -e '.[sweep]'")


def test_sweep_out_must_be_one_folder(faces, tmp_path, capsys):
    rc = main(["train", "-m", "model=tiny", *tiny(faces, tmp_path / "x"), f"out={tmp_path / 'a'},{tmp_path / 'b'}"])
    _one_line_error(capsys, rc, "out=", "one sweep folder")


# --- the summary ------------------------------------------------------------------------------------------------

def test_train_result_reads_the_last_loss_and_validation(tmp_path):
    lines = [{"kind": "train", "step": 2, "loss": 3.0}, {"kind": "val", "step": 2, "val_ssim_a": 0.1, "val_ssim_b": 0.2},
             {"kind": "train", "step": 4, "loss": 2.5}, {"kind": "val", "step": 5, "val_ssim_a": 0.3, "val_ssim_b": 0.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    res = S.key_result("train", tmp_path)
    assert res == {"step": 5, "loss": 2.5, "val_ssim_a": 0.3, "val_ssim_b": 0.5, "val_ssim": pytest.approx(0.4)}
    assert S.key_result("train", tmp_path / "missing") == {}


def test_evaluate_result_reads_metrics_json(tmp_path):
    m = {"swap": {"ssim": 0.61, "psnr": 21.5, "identity_a_rate": 0.9, "expression_error": 0.12, "flicker": 0.01},
         "baselines": {"mean_a": {"ssim": 0.57}, "input_b": {"ssim": 0.4}}}
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    assert S.key_result("evaluate", tmp_path) == {
        "swap_ssim": 0.61, "swap_psnr": 21.5, "identity_a": 0.9, "expression_error": 0.12, "flicker": 0.01,
        "mean_a_ssim": 0.57, "input_b_ssim": 0.4}


def test_table_shows_what_each_job_changed():
    common = ["data.a=/x", "out=/y"]
    jobs = [{"num": 0, "overrides": ["model=tiny", *common], "status": "ok", "error": None, "started": 0.0,
             "finished": 2.0, "result": {"loss": 2.5, "val_ssim": 0.4}},
            {"num": 1, "overrides": ["model=lite", *common], "status": "failed", "error": "train.lr must be > 0",
             "started": 0.0, "finished": 0.5, "result": {}}]
    table = S.format_table(jobs, "train").splitlines()
    assert table[0] == "| job | overrides | status | seconds | loss | val_ssim |"
    assert table[2] == "| 0 | model=tiny | ok | 2.0 | 2.5 | 0.4 |"
    assert table[3] == "| 1 | model=lite | failed: train.lr must be > 0 | 0.5 | n/a | n/a |"
    assert S.best_job(jobs, "train")["num"] == 0
