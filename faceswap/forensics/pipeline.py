"""The videos forensics studies: found in a demo folder or made by running synth, extract, train and convert; then cut into face sets."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from faceswap.errors import UserError
from faceswap.forensics.data import FAKE, LEVELS, REAL, FaceSet, VideoSource, source_faces
from faceswap.forensics.experiments import Corpus

SYNTH_FILES = ("A.mp4", "B.mp4", "truth_B_as_A.mp4")


@dataclass
class Materials:
    """Everything the experiments cut faces from."""

    synth: Path  # holds A.mp4, B.mp4, truth_B_as_A.mp4
    extract: dict[str, Path]  # "A", "B" -> extract output folder (alignments.json)
    runs: dict[str, Path] = field(default_factory=dict)  # model name -> train run folder
    swaps: dict[str, Path] = field(default_factory=dict)  # "main", "model:NAME", "cm:NAME" -> swapped video of B
    notes: dict[str, str] = field(default_factory=dict)  # what each swap is

    @property
    def truth(self) -> Path | None:
        p = self.synth / "truth_B_as_A.mp4"
        return p if p.is_file() else None

    def to_dict(self) -> dict:
        return {"synth": str(self.synth), "extract": {k: str(v) for k, v in self.extract.items()},
                "runs": {k: str(v) for k, v in self.runs.items()}, "swaps": {k: str(v) for k, v in self.swaps.items()},
                "notes": self.notes}


def run_stage(stage: str, overrides: list[str], log=print) -> None:
    """Run another stage exactly as `faceswap <stage> key=value ...` would (same config, same checks)."""
    from faceswap.cli import STAGES
    from faceswap.config import compose

    log(f"  faceswap {stage} {' '.join(overrides)}")
    cfg = compose(stage, overrides)
    rc = STAGES[stage].load()(cfg)
    if isinstance(rc, int) and rc != 0:
        raise UserError(f"'faceswap {stage}' failed (exit {rc}) while forensics prepared its data; see the messages above")


def _q(path) -> str:
    from faceswap.cli import _quote

    return _quote(str(path))


# ---------------------------------------------------------------- discovery in a demo folder


def _walk(root: Path, name: str, depth: int = 3) -> list[Path]:
    found = []
    for d in range(depth + 1):
        found += sorted(root.glob("/".join(["*"] * d + [name])))
    return found


def _alignments_source(path: Path) -> str:
    try:
        return Path(json.loads(path.read_text(encoding="utf-8"))["source"]["path"]).name
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def discover(root: str | Path) -> dict:
    """What a demo (or earlier forensics) folder already holds: synth folder, extract folders of A and B, train runs."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"from={root} is not a folder; give the out= folder of 'faceswap demo' (or of an earlier forensics run)")
    found: dict = {"synth": None, "extract": {}, "runs": []}
    for a in _walk(root, "A.mp4"):
        if all((a.parent / f).is_file() for f in ("B.mp4",)):
            found["synth"] = a.parent
            break
    for al in _walk(root, "alignments.json"):
        src = _alignments_source(al)
        for who in ("A", "B"):
            if src == f"{who}.mp4" and who not in found["extract"]:
                found["extract"][who] = al.parent
    for latest in _walk(root, "checkpoints/latest", depth=2):
        found["runs"].append(latest.parent.parent)
    return found


# ---------------------------------------------------------------- making what is missing


def prepare(fcfg, out: Path, from_dir: str | Path | None, seed: int = 0, device: str = "auto", progress: bool = False,
            log=print) -> Materials:
    """Find or make: synth videos, extracts of A and B, the train runs, and the swaps of B (main, other models, counter-measures).

    Every product lands in ``out/pipeline`` and is reused when it already exists there (an interrupted run resumes).
    """
    work = out / "pipeline"
    found = discover(from_dir) if from_dir else {"synth": None, "extract": {}, "runs": []}
    own = discover(work) if work.is_dir() else {"synth": None, "extract": {}, "runs": []}
    p = fcfg.pipeline
    flags = [f"device={device}", f"progress={str(bool(progress)).lower()}"]

    # 1. Actors: A, B and the true B-as-A.
    synth = found["synth"] or own["synth"]
    if synth is None:
        synth = work / "synth"
        run_stage("synth", [f"out={_q(synth)}", f"seed={seed}", *p.synth], log)
    missing = [f for f in SYNTH_FILES[:2] if not (synth / f).is_file()]
    if missing:
        raise UserError(f"{synth} lacks {', '.join(missing)}; give from= the out folder of 'faceswap demo' or drop from=")

    # 2. Faces of A and B, with the alignments every crop (real and swapped) is cut with.
    extract = {}
    for who in ("A", "B"):
        folder = found["extract"].get(who) or own["extract"].get(who)
        if folder is None:
            folder = work / f"extract_{who}"
            run_stage("extract", [f"input={_q(synth / f'{who}.mp4')}", f"out={_q(folder)}", *flags, *p.extract], log)
        extract[who] = folder
    mats = Materials(synth, extract)

    # 3. Checkpoints: the first model may be the demo's own run; the others are trained here.
    models = list(p.models)
    if not models:
        raise UserError("forensics.pipeline.models is empty; name at least one training run")
    for k, spec in enumerate(models):
        name = str(spec.name)
        run = work / f"run_{name}"
        earlier = Path(from_dir) / "pipeline" / f"run_{name}" if from_dir else None
        if not (run / "checkpoints" / "latest").is_file() and earlier is not None and (earlier / "checkpoints" / "latest").is_file():
            run = earlier  # from= is an earlier forensics run: reuse its checkpoint of the same name
            mats.notes[_swap_key(k, name)] = f"swap by the checkpoint of {run} (reused)"
        elif k == 0 and found["runs"] and not (run / "checkpoints" / "latest").is_file():
            run = found["runs"][0]
            mats.notes[_swap_key(k, name)] = f"swap by the checkpoint of {run} (reused)"
        else:
            if not (run / "checkpoints" / "latest").is_file():
                run_stage("train", [f"data.a={_q(extract['A'])}", f"data.b={_q(extract['B'])}", f"out={_q(run)}", *flags,
                                    *p.train, *spec.overrides], log)
            mats.notes[_swap_key(k, name)] = f"swap by a checkpoint trained with {' '.join([*p.train, *spec.overrides]) or 'defaults'}"
        mats.runs[name] = run

    # 4. Swaps of B's video: one per checkpoint, and the main checkpoint under each counter-measure.
    main = str(models[0].name)
    jobs = [(_swap_key(k, str(s.name)), str(s.name), []) for k, s in enumerate(models)]
    for cm in p.countermeasures:
        jobs.append((f"cm:{cm.name}", main, list(cm.overrides)))
        mats.notes[f"cm:{cm.name}"] = f"main checkpoint; the plain swap's convert settings plus {' '.join(cm.overrides)}"
    for key, _, _ in jobs[:len(models)]:
        mats.notes[key] += f"; convert with {' '.join(p.convert) or 'its defaults'}"
    for key, model, extra in jobs:
        name = f"{key.replace(':', '_')}.mp4"
        dst = work / "swaps" / name
        earlier = Path(from_dir) / "pipeline" / "swaps" / name if from_dir else None
        if not dst.is_file() and earlier is not None and earlier.is_file():
            dst = earlier  # from= is an earlier forensics run: its swaps are reused as they are
        elif not dst.is_file():
            run_stage("convert", [f"input={_q(synth / 'B.mp4')}", f"checkpoint={_q(mats.runs[model])}", f"out={_q(dst)}",
                                  "direction=b_to_a", f"alignments={_q(extract['B'])}", *flags, *p.convert, *extra], log)
        mats.swaps[key] = dst
    return mats


def _swap_key(k: int, name: str) -> str:
    return "main" if k == 0 else f"model:{name}"


# ---------------------------------------------------------------- face sets


SPLIT_NOTE = ("Real faces: {reals}. Swapped faces: B's video with A's face pasted in, cut with B's alignments. "
              "Per timeline, frames are split by time into contiguous blocks: the first {pct}% of the frames with a face "
              "train, the next {gap} frames are dropped, the rest test. A's own video is one timeline; B's video, its swaps "
              "and B's true rendering as A share B's timeline and are cut at the same frame, so no moment of a performance "
              "(nor its near-identical neighbours) is on both sides. Compressed copies reuse the same frames and split. "
              "{encode}")
REAL_NOTE = {"A": "A's own video (cut with A's alignments)",
             "B": "B's own video, the very frames the swap was made from (as FaceForensics++ pairs each fake with its source)",
             "truth": "B's performance truly rendered as A (same scene and motion as the swap)"}


def build_corpus(mats: Materials, fcfg, out: Path, progress: bool = False, log=print) -> Corpus:
    """Cut real and swapped crops at every level (cached as .npz under ``out/faces``)."""
    d = fcfg.data
    levels = [str(lv) for lv in d.levels]
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or "raw" not in levels:
        raise UserError(f"forensics.data.levels must include raw and use only {', '.join(LEVELS)}; got {levels}")
    reals = []
    for name in d.real:
        if name == "A":
            reals.append(VideoSource("A", mats.synth / "A.mp4", mats.extract["A"] / "alignments.json", REAL, "A"))
        elif name == "B":
            reals.append(VideoSource("B", mats.synth / "B.mp4", mats.extract["B"] / "alignments.json", REAL, "B"))
        elif name == "truth":
            if mats.truth is None:
                log("  (no truth_B_as_A.mp4: real faces come from A's video only)")
                continue
            reals.append(VideoSource("truth", mats.truth, mats.extract["B"] / "alignments.json", REAL, "B"))
        else:
            raise UserError(f"forensics.data.real lists '{name}'; use any of A, B, truth")
    if not reals:
        raise UserError("forensics.data.real is empty; use any of [A, B, truth]")
    second = d.get("real_second_encode")
    for src in reals:
        src.second_encode = None if second is None else int(second)
    fakes = {k: VideoSource(k.replace(":", "_"), v, mats.extract["B"] / "alignments.json", FAKE, "B") for k, v in mats.swaps.items()}
    cache = out / "faces"

    def faces(src: VideoSource, level: str) -> FaceSet:
        path = cache / f"{src.name}_{level}_{d.size}_{d.margin}_{d.every}_{d.train_fraction}_{d.gap}_{src.second_encode}.npz"
        if path.is_file():
            return FaceSet.load(path)
        fs = source_faces(src, int(d.size), float(d.margin), level, out / "pipeline" / "reencoded", int(d.every),
                          float(d.train_fraction), int(d.gap), progress)
        fs.save(path)
        return fs

    real = {lv: FaceSet.concat([faces(s, lv) for s in reals]) for lv in levels}
    fake = {key: {lv: faces(src, lv) for lv in (levels if key == "main" else ["raw"])} for key, src in fakes.items()}
    notes = dict(mats.notes)
    encode = ("Every video has been H.264-encoded twice before any c23/c40 step: the swaps by their source and by "
              f"convert, the real videos by their source and once more at CRF {second} (the way convert writes), so "
              "the encoding history of the background cannot tell them apart." if second is not None else
              "The real videos are used as rendered (one H.264 encoding); the swaps were encoded twice (source, convert).")
    notes["_split"] = SPLIT_NOTE.format(reals="; ".join(REAL_NOTE[s.name] for s in reals),
                                        pct=int(round(100 * float(d.train_fraction))), gap=int(d.gap), encode=encode)
    return Corpus(real, fake, "main", notes)
