"""The `faceswap` command: one subcommand per stage, each a Hydra-composed config handed to a plain function."""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

OPTIONAL_GROUPS = {"experiment", "debug"}
USAGE = "usage: faceswap <stage> [--help] [--cfg job] [-m] [-v | -q] [key=value ...]"


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "module:function" taking the composed DictConfig
    summary: str
    positional: tuple[str, ...] = field(default=())  # bare arguments map to these keys, in order
    groups: tuple[str, ...] = field(default=())  # config groups worth listing in --help

    def load(self) -> Callable:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


STAGES: dict[str, Stage] = {
    s.name: s
    for s in [
        Stage("demo", "faceswap.demo:run", "end to end on synthetic actors: synth, extract, train, convert, evaluate, report",
              groups=("demo", "synth", "model", "train")),
        Stage("synth", "faceswap.synth.dataset:run", "render synthetic actors A and B, their ground-truth swap and per-frame truth",
              groups=("synth",)),
        Stage("extract", "faceswap.extract.pipeline:run", "detect, align and track faces into crops and an alignments file",
              positional=("input",), groups=("extract",)),
        Stage("train", "faceswap.train.trainer:run", "train the shared encoder and the two decoders (resumable)",
              groups=("model", "train", "data", "experiment")),
        Stage("convert", "faceswap.convert.pipeline:run", "swap faces in a video or image folder with a trained checkpoint",
              positional=("input",), groups=("convert",)),
        Stage("evaluate", "faceswap.evaluate.swap_eval:run", "measure a trained swap against the synthetic actors' ground truth"),
        Stage("verify", "faceswap.provenance.verify:run", "report a file's watermark, C2PA manifest and provenance tags "
              "(--json: one JSON object; exit 0 marked, 1 not, 2 bad input)",
              positional=("input",)),
        Stage("forensics", "faceswap.forensics.cli:run", "train and test detectors of swapped faces; scan a video",
              positional=("action", "input"), groups=("forensics",)),
    ]
}


def register(stage: Stage) -> None:
    STAGES[stage.name] = stage


def _print_help() -> None:
    print("faceswap: the autoencoder face swap, measured against ground truth, and its detection.\n")
    print(USAGE + "\n")
    print("stages:")
    width = max(len(n) for n in STAGES)
    for name, stage in STAGES.items():
        print(f"  {name:<{width}}  {stage.summary}")
    print("\nEach stage composes conf/<stage>.yaml with Hydra overrides, e.g.")
    print("  faceswap synth out=/tmp/actors synth.frames=100")
    print("  faceswap synth --cfg job        print the composed config and exit")
    print("  faceswap train -m model=tiny,lite train.lr=1e-4,3e-4 ... out=SWEEP_DIR")
    print("                                  one run per combination (--multirun), each in SWEEP_DIR/<n>;")
    print("                                  hydra/launcher=joblib runs them in parallel (see README, Sweeps)")
    print("Use only faces of people who agreed to it, or the synthetic actors (see README).")


def _print_stage_help(stage: Stage) -> None:
    from faceswap.config import compose, group_options
    from omegaconf import OmegaConf

    print(f"faceswap {stage.name}: {stage.summary}\n")
    pos = " ".join(p.upper() for p in stage.positional)
    print(f"usage: faceswap {stage.name} {pos + ' ' if pos else ''}[--cfg job] [-m] [-v | -q] [key=value ...]\n")
    print("  -m, --multirun  one run per combination of comma-separated values (key=a,b), each in its own folder")
    print("  -v, --verbose   also DEBUG lines; -q, --quiet: only warnings and errors (a run folder's faceswap.log")
    print("                  keeps every line either way)\n")
    for group in stage.groups:
        opts = group_options(group)
        if opts:
            # groups outside the stage's defaults list are added with '+' (Hydra's append syntax)
            plus = "+" if group in OPTIONAL_GROUPS else ""
            print(f"  {plus}{group}={'|'.join(opts)}")
    print("\ndefaults (override any with key=value):\n")
    print(OmegaConf.to_yaml(compose(stage.name)))


def split_args(stage: Stage, args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split argv into (flags, hydra overrides); bare words fill the stage's positional keys."""
    from faceswap.errors import UserError

    flags, overrides, bare = [], [], []
    it = iter(args)
    for arg in it:
        if arg in ("--help", "-h"):
            flags.append("help")
        elif arg in ("--cfg", "-c"):
            what = next(it, None)
            if what not in ("job", "all"):
                raise UserError(f"--cfg takes 'job' or 'all', got {what!r}")
            flags.append(f"cfg={what}")
        elif arg in ("-m", "--multirun"):
            flags.append("multirun")
        elif arg in ("-v", "--verbose", "-vv"):
            flags.extend(["verbose"] * (2 if arg == "-vv" else 1))
        elif arg in ("-q", "--quiet"):
            flags.append("quiet")
        elif arg.startswith("--cfg="):
            flags.append(f"cfg={arg.split('=', 1)[1]}")
        elif arg == "--json" and stage.name == "verify":
            overrides.append("format=json")
        elif arg.startswith("-"):
            raise UserError(f"unknown option {arg!r} for 'faceswap {stage.name}'; settings are key=value (see --help)")
        elif "=" in arg:
            overrides.append(arg)
        else:
            bare.append(arg)
    if len(bare) > len(stage.positional):
        raise UserError(
            f"unexpected argument {bare[len(stage.positional)]!r} for 'faceswap {stage.name}'; settings are key=value (see --help)"
        )
    for key, value in zip(stage.positional, bare):
        overrides.append(f"{key}={_quote(value)}")
    return flags, overrides


def _quote(value: str) -> str:
    # Hydra's override grammar treats some characters specially; quote paths that carry them.
    if any(c in value for c in " ,[]{}()='\"\\:*?$"):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from faceswap.errors import UserError
    from omegaconf.errors import MissingMandatoryValue

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        _print_help()
        return 0
    name, rest = argv[0], argv[1:]
    try:
        if name not in STAGES:
            raise UserError(f"unknown stage {name!r}; stages are: {', '.join(STAGES)} (faceswap --help)")
        stage = STAGES[name]
        flags, overrides = split_args(stage, rest)
        if "quiet" in flags and "verbose" in flags:
            raise UserError("-q and -v contradict each other; give one of them")
        from faceswap import log

        log.configure(-1 if "quiet" in flags else flags.count("verbose"))
        if "help" in flags:
            _print_stage_help(stage)
            return 0
        from faceswap.config import compose
        from omegaconf import OmegaConf

        cfg_flag = next((f for f in flags if f.startswith("cfg=")), None)
        if "multirun" in flags:
            if cfg_flag:
                raise UserError(f"--cfg prints one run's config: drop -m, or give one value per key "
                                f"('faceswap {name} --cfg job key=value ...')")
            from faceswap.config import CONF_DIR
            from faceswap.sweep import multirun

            return multirun(stage.name, stage.target, overrides, CONF_DIR)
        if cfg_flag:
            cfg = compose(stage.name, overrides, return_hydra_config=cfg_flag == "cfg=all")
            print(OmegaConf.to_yaml(cfg))
            return 0
        cfg = compose(stage.name, overrides)
        result = stage.load()(cfg)
        return int(result) if isinstance(result, int) else 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except MissingMandatoryValue as exc:
        key = getattr(exc, "full_key", None) or str(exc).split()[0]
        print(f"error: 'faceswap {name}' needs {key}=... (see 'faceswap {name} --help')", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`, which closed early: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        from faceswap import log

        log.configure(0)  # the next call in this process (tests, notebooks) starts from the default


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
