"""The extract stage: frames -> detections -> target track -> smoothed landmarks -> aligned crops + alignments.json."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from faceswap.errors import UserError
from faceswap.extract.align import alignment_matrix, template_points, warp_to_crop
from faceswap.extract.alignments import (Alignments, Face, FrameRecord, alignments_from_dict, load_alignments,
                                         save_alignments)
from faceswap.extract.detect import Detection, Detector, DetectorSettings
from faceswap.extract.smooth import LandmarkSmoother, SmoothingSettings
from faceswap.extract.track import TARGET_RULES, TargetTracker, TrackerSettings, face_descriptor, iou

ALIGNMENTS = "alignments.json"
PARTIAL = "alignments.partial.json"


@dataclass
class ExtractSettings:
    size: int = 256
    coverage: float = 0.75
    target: str = "largest"
    reference: str | None = None
    save_every: int = 100
    masks: bool = True
    temporal: str = "auto"  # auto: track and smooth across a video's frames, not across an image folder's photos
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    smoothing: SmoothingSettings = field(default_factory=SmoothingSettings)

    def __post_init__(self) -> None:
        if self.target not in TARGET_RULES:
            raise UserError(f"extract.target must be one of {', '.join(TARGET_RULES)}, got {self.target!r}")
        if self.target == "reference" and not self.reference:
            raise UserError("extract.target=reference needs extract.reference=IMAGE (a photo of the person to extract)")
        if int(self.size) < 16 or int(self.size) > 4096:
            raise UserError(f"extract.size must be a crop side in px between 16 and 4096, got {self.size}")
        if not 0.1 <= float(self.coverage) <= 2.0:
            raise UserError(f"extract.coverage must be in [0.1, 2.0] (fraction of the crop taken by the face square), got {self.coverage}")
        self.temporal = str(self.temporal).lower()
        if self.temporal not in ("auto", "true", "false"):
            raise UserError(f"extract.temporal must be auto, true or false, got {self.temporal!r}")
        if int(self.save_every) < 1:
            raise UserError(f"extract.save_every must be >= 1 frame, got {self.save_every}")
        self.size, self.coverage = int(self.size), float(self.coverage)

    @classmethod
    def from_config(cls, cfg: Any) -> "ExtractSettings":
        """From the ``extract`` node of the composed config (a DictConfig or a plain dict)."""
        from omegaconf import DictConfig, OmegaConf

        d = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise UserError(f"unknown extract setting(s) {', '.join(sorted(unknown))}; see 'faceswap extract --cfg job'")

        def sub(klass, key):
            part = d.pop(key, None) or {}
            bad = set(part) - set(klass.__dataclass_fields__)
            if bad:
                raise UserError(f"unknown extract.{key} setting(s) {', '.join(sorted(bad))}; see 'faceswap extract --cfg job'")
            try:
                return klass(**part)
            except (TypeError, ValueError) as exc:
                raise UserError(f"extract.{key}: {exc}; see 'faceswap extract --cfg job'") from None

        parts = dict(detector=sub(DetectorSettings, "detector"), tracker=sub(TrackerSettings, "tracker"),
                     smoothing=sub(SmoothingSettings, "smoothing"))
        try:
            return cls(**parts, **d)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad extract setting ({exc}); see 'faceswap extract --cfg job'") from None

    def record(self) -> dict:
        """What decides the output (written into alignments.json; a resume needs the same)."""
        d = asdict(self)
        d["detector"]["thresholds"] = list(d["detector"]["thresholds"])
        d["reference"] = str(Path(self.reference).resolve()) if self.reference else None
        del d["save_every"]
        return d


@dataclass
class Timings:
    """Seconds spent per step; the benchmark reads these rather than timing the stage itself."""

    decode: float = 0.0
    detect: float = 0.0
    align: float = 0.0
    write: float = 0.0
    total: float = 0.0
    frames: int = 0  # frames processed in this call (a resume counts only the new ones)

    def shares(self) -> dict[str, float]:
        parts = self.decode + self.detect + self.align + self.write
        return {k: (getattr(self, k) / parts if parts else 0.0) for k in ("decode", "detect", "align", "write")}

    @property
    def fps(self) -> float:
        return self.frames / self.total if self.total > 0 else 0.0


@dataclass
class ExtractResult:
    out: Path
    alignments: Alignments
    timings: Timings
    nothing_to_do: bool = False
    resumed_from: int = 0  # first frame processed in this call

    def summary(self) -> dict:
        return {**self.alignments.summary(), "seconds": round(self.timings.total, 3),
                "frames_per_s": round(self.timings.fps, 3), "resumed_from": self.resumed_from}

    def summary_line(self) -> str:
        s = self.alignments.summary()
        unread = f", {s['errors']} unreadable" if s["errors"] else ""
        resumed = f", resumed at frame {self.resumed_from}" if self.resumed_from else ""
        return (f"extract: {s['frames']} frames, {s['faces']} faces, {s['targets']} frames with a target, "
                f"{s['misses']} misses{unread}, {self.timings.total:.1f} s ({self.timings.fps:.1f} frames/s{resumed}) -> {self.out}")


# --- small helpers ----------------------------------------------------------------------------------------------

def frame_names(source) -> list[str]:
    """Output names per frame: the zero-padded index for a video, the file stem for images (kept unique)."""
    if source.is_video:
        return [f"{i:06d}" for i in range(len(source))]
    stems = [p.stem for p in source.images]
    dup = {s for s in stems if stems.count(s) > 1}
    return [p.name.replace(".", "_") if p.stem in dup else p.stem for p in source.images]


def synth_mask_dir(input_path: Path) -> Path | None:
    """For a synth video ``DIR/A.mp4`` the true masks live in ``DIR/A/masks/``."""
    if input_path.is_file():
        d = input_path.with_suffix("") / "masks"
        return d if d.is_dir() else None
    return None


def source_record(source, path: Path) -> dict:
    rec = {"path": str(path.resolve()), "kind": "video" if source.is_video else "images", "frames": len(source),
           "width": int(source.info.width), "height": int(source.info.height), "fps": float(source.info.fps)}
    if getattr(source.info, "shortfall", None):  # a truncated or corrupt video: what it promised vs what decoded
        rec["shortfall"] = source.info.shortfall.record()
    return rec


def crop_record(settings: ExtractSettings) -> dict:
    return {"size": settings.size, "coverage": settings.coverage,
            "template": np.round(template_points(settings.size, settings.coverage), 4).tolist()}


def reference_descriptor(path: str, detector: Detector) -> np.ndarray:
    """Descriptor of the largest face in the reference photo; a photo without a face is a user error."""
    from faceswap.video import read_image

    p = Path(path)
    if not p.is_file():
        raise UserError(f"extract.reference={p} does not exist; give a photo or crop of the person to extract")
    img = read_image(p)
    faces = detector.detect([img])[0]
    if not faces:
        # A tight crop may hold a face too big for the pyramid's context: retry with a border around it.
        h, w = img.shape[:2]
        pad = max(h, w) // 2
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        faces = detector.detect([img])[0]
    if not faces:
        raise UserError(f"extract.reference={p}: no face found in the reference image; give a clearer, frontal photo "
                        f"with a face of at least {detector.settings.min_face_size} px")
    best = max(faces, key=lambda f: f.area)
    return face_descriptor(img, best.landmarks)


def _progress_enabled(flag: bool) -> bool:
    return bool(flag) and sys.stderr.isatty()


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# --- per frame: which face, and where its landmarks are -----------------------------------------------------------

class TargetLocator:
    """Detections of one frame -> all usable faces, the target's index and its smoothed landmarks.

    The one place the per-frame logic lives (convert reuses it on the fly): a tracked face the detector
    missed is looked for again where it should be (``Detector.redetect``), the tracker picks the target,
    and the one-euro smoother runs on the target's track (reset whenever the track is new).
    """

    def __init__(self, detector: Detector, tracker: TargetTracker, smoother: LandmarkSmoother):
        self.detector, self.tracker, self.smoother = detector, tracker, smoother
        self.redetect_seconds = 0.0

    @classmethod
    def from_settings(cls, settings: ExtractSettings, device: str = "auto", fps: float = 25.0) -> "TargetLocator":
        detector = Detector(settings.detector, device)
        ref = reference_descriptor(settings.reference, detector) if settings.target == "reference" else None
        return cls(detector, TargetTracker(settings.target, settings.tracker, ref),
                   LandmarkSmoother(settings.smoothing, fps=fps))

    def locate(self, image: np.ndarray | None, faces: list[Detection]) -> tuple[list[Detection], int | None, np.ndarray | None]:
        """(faces, target index or None, the target's smoothed (5, 2) landmarks or None) for one frame."""
        if image is None:
            self.tracker.update(None, [])
            self.smoother.miss()
            return [], None, None
        faces = [f for f in faces if _usable(f.landmarks)]
        if self.tracker.last is not None and not self.tracker.continues(faces):
            t0 = time.perf_counter()
            found = self.detector.redetect(image, self.tracker.predicted().landmarks)
            if found is not None and _usable(found.landmarks) and all(iou(found.box, f.box) < 0.5 for f in faces):
                faces = [*faces, found]  # (a face the detector did find, only too far to continue, is not doubled)
            self.redetect_seconds += time.perf_counter() - t0
        target = self.tracker.update(image, faces)
        if not self.tracker.continued:
            self.smoother.reset()  # a new track: don't drag the landmarks over from another face
        if target is None:
            return faces, None, None
        return faces, target, self.smoother(faces[target].landmarks)

    def state(self) -> dict:
        return {"smoother": self.smoother.state(), "tracker": self.tracker.state()}

    def reset(self) -> None:
        """Forget the track and the smoothing: the next frame is judged on its own."""
        self.tracker.reset()
        self.smoother.reset()

    def load_state(self, state: dict) -> None:
        self.smoother.load_state(state.get("smoother"))
        self.tracker.load_state(state.get("tracker"))


def _usable(landmarks: np.ndarray) -> bool:
    """Landmarks a similarity can be fitted to (finite, not all on one spot)."""
    p = np.asarray(landmarks, dtype=np.float64)
    return bool(np.isfinite(p).all() and np.ptp(p, axis=0).max() > 1e-3)


# --- the stage ----------------------------------------------------------------------------------------------------

class _Run:
    """One extract run's state: the frame loop, and what a resume needs."""

    def __init__(self, source, input_path: Path, out: Path, settings: ExtractSettings, device: str):
        self.source, self.input_path, self.out, self.settings = source, input_path, out, settings
        self.names = frame_names(source)
        self.locator = TargetLocator.from_settings(settings, device, fps=source.info.fps)
        # An image folder is usually unrelated photos: a face in one says nothing about the next.
        self.temporal = source.is_video if settings.temporal == "auto" else settings.temporal == "true"
        self.detector = self.locator.detector
        self.mask_dir = synth_mask_dir(input_path) if settings.masks else None
        self.missing_masks = 0
        self.timings = Timings()
        self.alignments = Alignments(source_record(source, input_path), crop_record(settings), settings.record(), [])

    # resume -------------------------------------------------------------------------------------------------
    def same_job(self, other: Alignments) -> bool:
        a, b = other.source, self.alignments.source
        return (other.settings == self.alignments.settings and other.crop.get("size") == self.settings.size
                and math.isclose(float(other.crop.get("coverage", -1)), self.settings.coverage)
                and all(a.get(k) == b.get(k) for k in ("path", "kind", "frames", "width", "height")))

    def outputs_present(self, al: Alignments) -> bool:
        for rec in al.frames:
            if rec.target is not None:
                if not (self.out / "faces" / f"{rec.name}.png").is_file():
                    return False
                if self.mask_dir is not None and (self.mask_dir / f"{rec.index:06d}.png").is_file() \
                        and not (self.out / "masks" / f"{rec.name}.png").is_file():
                    return False
        return True

    def try_resume(self) -> tuple[str, int]:
        """('done', n) when the output is complete; ('resume', k) to continue at frame k; ('fresh', 0)."""
        final = self.out / ALIGNMENTS
        if final.is_file():
            try:
                done = load_alignments(final)
            except UserError:
                done = None
            if done is not None and self.same_job(done) and self.outputs_present(done) \
                    and any(r.target is not None for r in done.frames):
                self.alignments = done
                return "done", len(done)
            if done is not None and not self.same_job(done):
                self.clear_outputs(done)
        partial = self.out / PARTIAL
        if partial.is_file():
            from faceswap.utils import read_json

            try:
                data = read_json(partial, "progress file")
                al = alignments_from_dict(data, complete=False)
                state = data.get("resume") or {}
            except (UserError, ValueError):
                _warn(f"progress file {partial} is unreadable; starting over")
                return "fresh", 0
            if not self.same_job(al) or not self.outputs_present(al):
                _warn(f"progress file {partial} belongs to another input or settings; starting over")
                return "fresh", 0
            self.alignments.frames = al.frames
            self.locator.load_state(state)
            return "resume", len(al.frames)
        return "fresh", 0

    def clear_outputs(self, old: Alignments) -> None:
        """Remove the crops and masks of an earlier run with other input or settings: they would mix in."""
        for rec in old.frames:
            for sub in ("faces", "masks"):
                (self.out / sub / f"{rec.name}.png").unlink(missing_ok=True)

    def save_partial(self) -> None:
        save_alignments(self.alignments, self.out / PARTIAL, extra={"resume": self.locator.state()})

    # the loop ---------------------------------------------------------------------------------------------
    def process_frame(self, frame, faces: list[Detection]) -> FrameRecord:
        t0 = time.perf_counter()
        name = self.names[frame.index]
        rec = FrameRecord(frame.index, name, [], None, frame.error)
        redetect_before = self.locator.redetect_seconds
        if not self.temporal:
            self.locator.reset()
        faces, target, smoothed = self.locator.locate(frame.image, faces)
        for j, det in enumerate(faces):
            lm = smoothed if j == target else det.landmarks
            rec.faces.append(Face(det.box, det.score, det.landmarks, np.asarray(lm),
                                  alignment_matrix(lm, self.settings.size, self.settings.coverage)))
        rec.target = target
        redetect = self.locator.redetect_seconds - redetect_before
        t0 += redetect  # a second look for a missed face counts as detection, not alignment
        self.timings.detect += redetect
        crop = mask = None
        if rec.target is not None:
            m = rec.faces[rec.target].matrix
            crop = warp_to_crop(frame.image, m, self.settings.size)
            if self.mask_dir is not None:
                mask = self._true_mask(frame.index, m)
        t2 = time.perf_counter()
        self._write(rec, crop, mask)
        t3 = time.perf_counter()
        self.timings.align += t2 - t0  # selection, smoothing and matrices count as alignment
        self.timings.write += t3 - t2
        return rec

    def _true_mask(self, index: int, matrix: np.ndarray) -> np.ndarray | None:
        path = self.mask_dir / f"{index:06d}.png"
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if m is None:
            self.missing_masks += 1
            return None
        return warp_to_crop(m, matrix, self.settings.size, border=cv2.BORDER_CONSTANT)

    def _write(self, rec: FrameRecord, crop: np.ndarray | None, mask: np.ndarray | None) -> None:
        from faceswap.video import write_image

        face_path = self.out / "faces" / f"{rec.name}.png"
        mask_path = self.out / "masks" / f"{rec.name}.png"
        if crop is not None:
            write_image(face_path, crop)
        elif face_path.exists():
            face_path.unlink()  # left from an earlier run with other settings: it would be a wrong face
        if mask is not None:
            write_image(mask_path, mask)
        elif mask_path.exists():
            mask_path.unlink()

    def loop(self, start: int, progress: bool) -> None:
        from tqdm import tqdm

        bs = int(self.settings.detector.batch_size)
        save_every = int(self.settings.save_every)
        last_save = start
        frames_iter = self.source.iter_range(start, None)
        bar = tqdm(total=len(self.source), initial=start, unit="frame", desc="extract",
                   disable=not _progress_enabled(progress), dynamic_ncols=True)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    batch = list(islice(frames_iter, bs))
                except (RuntimeError, OSError) as exc:
                    raise UserError(f"input {self.input_path} failed to decode after frame "
                                    f"{len(self.alignments.frames)} ({exc}); check the file or re-encode it") from None
                t1 = time.perf_counter()
                self.timings.decode += t1 - t0
                if not batch:
                    break
                good = [f for f in batch if f.image is not None]
                dets = self.detector.detect([f.image for f in good]) if good else []
                by_index = {f.index: d for f, d in zip(good, dets)}
                self.timings.detect += time.perf_counter() - t1
                for frame in batch:
                    if frame.error:
                        _warn(f"{frame.error}; recorded as a frame without faces")
                    self.alignments.frames.append(self.process_frame(frame, by_index.get(frame.index, [])))
                    self.timings.frames += 1
                bar.update(len(batch))
                if len(self.alignments.frames) - last_save >= save_every:
                    self.save_partial()
                    last_save = len(self.alignments.frames)
        except BaseException:
            # Keep what is done (Ctrl-C, a crash): the next run resumes after the last complete frame.
            if len(self.alignments.frames) > last_save:
                self.save_partial()
            raise
        finally:
            bar.close()


def extract(input: str | Path, out: str | Path, settings: ExtractSettings | None = None, device: str = "auto",
            progress: bool = True) -> ExtractResult:
    """Run the extract stage on a video or image folder into ``out``; resumes or skips finished work."""
    from faceswap.video import FrameSource

    t_start = time.perf_counter()
    settings = settings or ExtractSettings()
    input_path, out = Path(str(input)).expanduser(), Path(str(out)).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder for the faces and alignments.json")
    t0 = time.perf_counter()
    source = FrameSource(input_path)
    probe_s = time.perf_counter() - t0
    run = _Run(source, input_path, out, settings, device)
    run.timings.decode += probe_s
    state, start = run.try_resume()
    _clear_killed_writes(out, done=state == "done")
    if state == "done":
        run.timings.total = time.perf_counter() - t_start
        return ExtractResult(out, run.alignments, run.timings, nothing_to_do=True)
    out.mkdir(parents=True, exist_ok=True)
    run.loop(start, progress)
    al = run.alignments
    if len(al.frames) != al.source["frames"]:
        # The container's count and the decoded stream disagree: the decoded frames are the truth.
        _warn(f"{input_path}: decoded {len(al.frames)} frames, the file reported {al.source['frames']}")
        al.source["frames"] = len(al.frames)
    if run.missing_masks:
        _warn(f"{run.missing_masks} frame(s) had no true mask in {run.mask_dir}; their masks/ entry is missing")
    t_w = time.perf_counter()
    save_alignments(al, out / ALIGNMENTS)
    (out / PARTIAL).unlink(missing_ok=True)
    run.timings.write += time.perf_counter() - t_w
    run.timings.total = time.perf_counter() - t_start
    return ExtractResult(out, al, run.timings, resumed_from=start)


def _clear_killed_writes(out: Path, done: bool) -> None:
    """Temp files a killed run left (hidden ``.NAME.partial`` crops, JSON temps), and a finished run's stale progress file."""
    if not out.is_dir():
        return
    for folder in (out, out / "faces", out / "masks", out / ".faceswap"):
        for p in folder.glob(".*.partial*") if folder.is_dir() else []:
            if p.is_file():
                p.unlink(missing_ok=True)
    if done:  # killed between writing alignments.json and removing the progress file
        (out / PARTIAL).unlink(missing_ok=True)


def run(cfg) -> int:
    """`faceswap extract input=... out=...`: the CLI entry point."""
    from faceswap.config import require, save_config

    input_path = require(cfg, "input", "extract", "a video file or a folder of images (faceswap extract VIDEO out=DIR)")
    out = require(cfg, "out", "extract", "the folder for faces/ and alignments.json")
    settings = ExtractSettings.from_config(cfg.extract)
    result = extract(input_path, out, settings, device=str(cfg.get("device", "auto")), progress=bool(cfg.get("progress", True)))
    if result.nothing_to_do:
        if not (Path(str(out)) / ".faceswap" / "extract.yaml").is_file():  # killed before it was saved
            save_config(cfg, out, "extract")
        s = result.alignments.summary()
        print(f"extract: nothing to do, {Path(str(out)) / ALIGNMENTS} is complete ({s['frames']} frames, "
              f"{s['targets']} with a target)")
        return 0
    save_config(cfg, out, "extract")
    print(result.summary_line())
    if result.alignments.summary()["targets"] == 0:
        raise UserError(f"no face found in any of the {len(result.alignments)} frames of {input_path}; check that it "
                        f"shows a face of at least extract.detector.min_face_size={settings.detector.min_face_size} px")
    return 0


__all__ = ["ExtractSettings", "Timings", "ExtractResult", "extract", "run", "frame_names", "synth_mask_dir",
           "reference_descriptor", "ALIGNMENTS", "PARTIAL"]
