"""The convert stage: stream frames -> locate the face -> encode, decode with the other identity -> colour, paste back -> stamp -> write.

Three threads overlap the work: a reader (the ffmpeg decoder process feeds it), the main thread
(detection, model, blending) and a writer (stamping and the ffmpeg encoder process). Bounded
queues between them, and bounded buffers inside the main thread (a detector batch, a gap of at
most ``max_gap`` frames, a model batch), keep memory independent of the video's length.

The pieces live beside this file: ``settings`` (the validated knobs), ``stream`` (the threads and
the frame record), ``faces`` (locating, swapping and blending a face) and ``outputs`` (where the
result goes). This module is the run that joins them.
"""
from __future__ import annotations

import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from faceswap.convert.faces import FaceBlender, Swapper, by_detection, fill_missed, finish_frame, from_alignments, swap_stream
from faceswap.convert.outputs import (SUMMARY_SCHEMA, SUMMARY_VERSION, ImageFolderWriter, check_alignments, check_output,
                                      find_alignments, summary_path)
from faceswap.convert.settings import (ConvertSettings, _number, frames_in_flight_bound, provenance_warnings,
                                       training_crop, watermark_fits)
from faceswap.convert.stream import TIMING_KEYS, BackgroundSink, Counter, Item, Prefetcher, Timings
from faceswap import log
from faceswap.errors import UserError

logger = log.get("convert")


@dataclass
class ConvertResult:
    out: Path
    summary_path: Path
    summary: dict = field(default_factory=dict)


@dataclass
class FrameTally:
    """What happened to the frames that reached the writer."""

    read: int = 0
    written: int = 0
    swapped: int = 0
    interpolated: int = 0
    poisson: int = 0
    no_face: int = 0
    out_of_range: int = 0
    too_small: int = 0
    unreadable: list = field(default_factory=list)

    def count(self, x: Item, too_small: bool) -> None:
        self.too_small += int(too_small)
        self.written += 1
        self.swapped += int(x.swapped)
        self.interpolated += int(x.swapped and x.how == "interpolated")
        self.poisson += int(x.poisson)
        self.out_of_range += int(not x.in_range)
        self.no_face += int(x.in_range and not x.swapped)


class ConvertRun:
    """One conversion, set up and checked before any frame is read: the input, the checkpoint and its crop geometry,
    how faces are found, and the provenance of the output. ``run()`` then streams the frames."""

    def __init__(self, cfg):
        from faceswap.config import require

        self.cfg = cfg
        self.t_start = time.perf_counter()
        self.input_path = Path(str(require(cfg, "input", "convert",
                                           "the video or image folder whose face is replaced"))).expanduser()
        self.ckpt_arg = require(cfg, "checkpoint", "convert", "a run folder of 'faceswap train' (or one of its step_* folders)")
        self.out = Path(str(require(cfg, "out", "convert",
                                    "the output video (.mp4) or, for an image folder, the output folder"))).expanduser()
        self.s = ConvertSettings.from_config(cfg)
        self.weights = str(cfg.get("weights", "auto"))
        if self.weights not in ("auto", "ema", "model"):
            raise UserError(f"weights={self.weights!r} must be auto, ema or model")
        self.overwrite = bool(cfg.get("overwrite", False))
        for line in provenance_warnings(self.s):
            logger.warning(line)
        self.timings = Timings()
        self.tally = FrameTally()
        self.alive = Counter()
        self._open_input()
        self._load_model()
        self._crop_geometry()
        self._face_finder()
        self._provenance()

    # --- set-up -------------------------------------------------------------------------------------------------

    def _open_input(self) -> None:
        from faceswap.video import FrameSource

        t0 = time.perf_counter()
        self.source = FrameSource(self.input_path)
        self.timings.add("decode", time.perf_counter() - t0)
        self.info = info = self.source.info
        check_output(self.out, self.input_path, self.source.is_video, self.overwrite)
        if self.source.is_video and (info.width % 2 or info.height % 2):
            raise UserError(f"input {self.input_path} is {info.width}x{info.height}; H.264 output needs an even width "
                            "and height: crop or pad the input first")
        if self.s.start >= len(self.source):
            raise UserError(f"start={self.s.start} is past the input's last frame ({len(self.source) - 1})")
        self.stop = len(self.source) if self.s.stop is None else min(self.s.stop, len(self.source))

    def _load_model(self) -> None:
        from faceswap.models import load_checkpoint
        from faceswap.utils import resolve_device

        self.device = resolve_device(str(self.cfg.get("device", "auto")))
        self.ckpt = ckpt = load_checkpoint(str(self.ckpt_arg), device=self.device, weights=self.weights)
        self.identities = list(ckpt.model.config.identities)
        for ident in (self.s.source, self.s.target):
            if ident not in self.identities:
                raise UserError(f"direction={self.s.direction}: the checkpoint {ckpt.path} has no identity {ident!r} "
                                f"(it has {', '.join(self.identities)})")
        self.resolution = int(ckpt.model.config.resolution)

    def _crop_geometry(self) -> None:
        """The crop coverage the checkpoint was trained on (or given, or the alignments file's), and the work size."""
        from faceswap.extract.pipeline import frame_names

        ckpt = self.ckpt
        self.alignments, self.al_path = find_alignments(self.cfg.get("alignments", "auto"), self.input_path)
        if self.alignments is not None:
            check_alignments(self.alignments, self.al_path, self.source, frame_names(self.source))
        crop_size, coverage, coverage_from = training_crop(ckpt.state)
        cov_setting = self.cfg.get("coverage", "auto")
        if cov_setting not in (None, "auto"):
            coverage = float(_number(cov_setting, "coverage", 0.1, 2.0))
            coverage_from = "coverage="
        elif coverage is None and self.alignments is not None:
            coverage, crop_size, coverage_from = self.alignments.coverage, self.alignments.size, str(self.al_path)
            logger.warning(f"note: checkpoint {ckpt.path} records no crop coverage; using the alignments file's "
                           f"({coverage:g})")
        if coverage is None:
            raise UserError(f"checkpoint {ckpt.path} records no crop coverage and its training faces are not found; give "
                            "coverage=<the extract.coverage the training faces were extracted with, e.g. 0.75>")
        if self.alignments is not None and not math.isclose(self.alignments.coverage, coverage, rel_tol=1e-6):
            logger.warning(f"note: the alignments file's coverage {self.alignments.coverage:g} differs from the checkpoint's "
                           f"{coverage:g}; faces are re-aligned from the file's landmarks at the checkpoint's coverage")
        self.coverage, self.coverage_from = coverage, coverage_from
        self.work_size = max(self.resolution, int(crop_size or self.resolution))

    def _face_finder(self) -> None:
        """How faces are found. An image folder is usually unrelated photos: no tracking, no gap filling."""
        self.temporal = self.source.is_video
        self.locator, self.det_batch = None, 0
        if self.alignments is None:
            from faceswap.extract.pipeline import ExtractSettings, TargetLocator

            es = ExtractSettings.from_config(self.cfg.detect)
            self.locator = TargetLocator.from_settings(es, str(self.device), fps=self.info.fps)
            self.temporal = self.source.is_video if es.temporal == "auto" else es.temporal == "true"
            self.det_batch = int(es.detector.batch_size)

    def _provenance(self) -> None:
        from faceswap.provenance.content_credentials import c2pa_signer

        self.run_id = str(uuid.uuid4())
        self.tags: dict[str, str] = {}
        if self.s.metadata:
            from faceswap.provenance import provenance_metadata

            self.tags = provenance_metadata(self.run_id, {"stage": "convert", "direction": self.s.direction,
                                                          "checkpoint_step": self.ckpt.step,
                                                          "source_name": self.input_path.name})
        # None (and a WARNING) when turned off
        self.sign_c2pa = c2pa_signer(self.cfg, self.run_id, self.s.watermark, self.ckpt, self.s.direction)

    # --- the stream ---------------------------------------------------------------------------------------------

    def _frames(self) -> Iterator[Item]:
        it = iter(self.source)
        while True:
            try:
                f = next(it)
            except StopIteration:
                return
            except (RuntimeError, OSError) as exc:
                raise UserError(f"input {self.input_path} failed to decode after frame {self.tally.read} ({exc}); "
                                "check the file or re-encode it") from None
            self.tally.read += 1
            yield Item(f.index, f.name, f.image, f.error, in_range=self.s.start <= f.index < self.stop)

    def _located(self, stream: Iterable[Item]) -> Iterable[Item]:
        if self.alignments is not None:
            stream = from_alignments(stream, self.alignments)
        else:
            stream = by_detection(stream, self.locator, self.det_batch, self.timings, self.temporal)
        return fill_missed(stream, self.s.max_gap if self.temporal else 0)

    def _render(self, x: Item) -> tuple[Item, np.ndarray | None, bool]:
        """Paste back and stamp one frame (in a worker thread): (item, output frame or None, too small to mark)."""
        from faceswap.provenance import stamp_frame

        finish_frame(x, self.blender, self.timings)
        if x.image is None:
            return x, None, False
        s = self.s
        t0 = time.perf_counter()
        frame = x.out
        mark = s.watermark and x.swapped
        too_small = mark and not watermark_fits(frame.shape)
        mark = mark and not too_small
        if s.label or mark:
            frame = stamp_frame(frame, self.run_id, label=s.label, watermark=mark,
                                text=s.label_text, corner=s.label_corner, strength=s.watermark_strength)
        self.timings.add("stamp", time.perf_counter() - t0)
        return x, frame, too_small

    def _consume(self, job) -> None:
        """Write one rendered frame (in the writer thread), in the order the frames were submitted."""
        try:
            x, frame, too_small = job.result()
            if frame is None:
                self.tally.unreadable.append(x.name)
                return
            t1 = time.perf_counter()
            if self.source.is_video:
                self.writer.write(frame)
            else:
                self.writer.write(x.name, frame)
            self.timings.add("encode", time.perf_counter() - t1)
            self.tally.count(x, too_small)
        finally:
            self.alive.add(-1)

    def _open_writer(self):
        if not self.source.is_video:
            return ImageFolderWriter(self.out, self.overwrite)
        from faceswap.video import VideoWriter

        info = self.info
        return VideoWriter(self.out, fps=info.fps, size=(info.width, info.height), crf=int(self.cfg.get("crf", 18)),
                           preset=str(self.cfg.get("preset", "medium")), audio_from=self.input_path, metadata=self.tags)

    def _announce(self) -> None:
        info, ckpt = self.info, self.ckpt
        kind = "video" if self.source.is_video else "images"
        audio = ", audio" if info.has_audio else ""
        faces = f"from {self.al_path}" if self.alignments is not None else "detected on the fly"
        logger.info(f"convert: {self.input_path} ({kind} {info.width}x{info.height}, {len(self.source)} frames, "
                    f"{info.fps:g} fps{audio}) -> {self.out}")
        logger.info(f"convert: checkpoint {ckpt.path} (step {ckpt.step}, {self.resolution} px, coverage "
                    f"{self.coverage:g} from {self.coverage_from}), {self.s.direction} (decoder {self.s.target!r}), "
                    f"device {self.device}; faces {faces}")
        logger.debug(f"convert: settings {self.s.record()}; work size {self.work_size} px, queue {self.s.queue}, "
                     f"{self.s.workers} paste-back worker(s)")

    def run(self) -> ConvertResult:
        """The stream: reader thread -> locate -> fill gaps -> swap -> paste-back workers -> writer thread."""
        s = self.s
        self.writer = self._open_writer()
        swapper = Swapper(self.ckpt.model, s.target, self.device, s.amp)
        self.blender = FaceBlender(s, self.resolution)
        bar = log.progress(total=len(self.source), unit="frame", desc="convert", enabled=self.cfg.get("progress", True))
        reader = Prefetcher(self._frames(), s.queue, self.timings, "decode", on_item=lambda _: self.alive.add(1))
        sink = BackgroundSink(self._consume, s.queue)
        # Paste-back and stamping depend only on their own frame: a few threads do them side by side (OpenCV and
        # numpy release the GIL), in order, since the writer takes the results in the order they were submitted.
        pool = ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="convert-paste")
        self._announce()
        try:
            for x in swap_stream(self._located(reader), swapper, self.blender, s, self.coverage, self.work_size,
                                 self.timings):
                sink.put(pool.submit(self._render, x))
                bar.update(1)
            sink.finish()
            pool.shutdown()
            bar.close()
            if self.writer.frames == 0:
                raise UserError(f"no frame of {self.input_path} could be written" if self.source.is_video else
                                f"no image in {self.input_path} could be read; nothing was written")
            summary = self._summary(time.perf_counter() - self.t_start)
            return ConvertResult(self.out, self._commit(summary), summary)
        except BaseException:
            reader.close()
            pool.shutdown(wait=True, cancel_futures=True)
            sink.abandon()
            bar.close()
            self.writer.abort()
            raise
        finally:
            reader.close()

    # --- the record ---------------------------------------------------------------------------------------------

    def _summary(self, wall: float) -> dict:
        from omegaconf import OmegaConf

        from faceswap.provenance import run_tag

        s, t, info, ckpt = self.s, self.tally, self.info, self.ckpt
        n = t.written
        return {
            "schema": SUMMARY_SCHEMA, "version": SUMMARY_VERSION, "run_id": self.run_id,
            "input": str(self.input_path.resolve()), "output": str(self.out.resolve()),
            "kind": "video" if self.source.is_video else "images",
            "frames": n, "input_frames": len(self.source),
            # a truncated or corrupt input: the output is as short or as patched as what decoded
            "input_shortfall": info.shortfall.record() if getattr(info, "shortfall", None) else None,
            "swapped": t.swapped, "interpolated": t.interpolated, "passed_through": n - t.swapped,
            "no_face": t.no_face, "out_of_range": t.out_of_range,
            "unreadable": t.unreadable, "poisson_solved": t.poisson, "too_small_for_watermark": t.too_small,
            "range": [s.start, self.stop],
            "faces_from": str(self.al_path) if self.alignments is not None else "detection",
            "checkpoint": {"path": str(ckpt.path), "step": ckpt.step, "weights": ckpt.weights,
                           "resolution": self.resolution, "identities": self.identities},
            "coverage": self.coverage, "coverage_from": self.coverage_from, "work_size": self.work_size,
            "device": str(self.device), "size": [info.width, info.height], "fps": info.fps, "audio": info.has_audio,
            "settings": s.record(),
            "provenance": {"label": s.label, "watermark": s.watermark, "metadata": s.metadata,
                           "watermark_payload": self.run_id if s.watermark else None,
                           "watermark_run_tag": f"{run_tag(self.run_id):06x}" if s.watermark else None,
                           "tags": self.tags, "c2pa": self.sign_c2pa.record if self.sign_c2pa else None},
            "timings": {**{k: round(v, 4) for k, v in self.timings.items()}, "wall": round(wall, 4)},
            "frames_per_s": round(n / wall, 3) if wall > 0 else 0.0,
            "memory": {"peak_frames_in_flight": self.alive.peak, "bound": frames_in_flight_bound(s, self.det_batch)},
            "config": OmegaConf.to_container(self.cfg, resolve=True),
        }

    def _commit(self, summary: dict) -> Path:
        """Sign, record and move the output onto its final name; returns the summary's path."""
        from faceswap.config import save_config
        from faceswap.utils import write_json_atomic

        spath = summary_path(self.out, self.source.is_video)
        if not self.source.is_video:
            if self.sign_c2pa:
                self.sign_c2pa(self.writer.tmp, source=self.input_path)
            write_json_atomic(self.writer.tmp / "convert.json", summary)
            save_config(self.cfg, self.writer.tmp, "convert")
            self.writer.close()
            return spath

        # The video's rename is the commit point: its record is in place first, so a kill at any moment leaves
        # either no video (a re-run redoes it) or a whole one with its summary. The C2PA manifest goes into the
        # temp file before the rename (a final file always carries it), and before the summary, which records
        # the signing.
        def finish(tmp: Path) -> None:
            if self.sign_c2pa:
                self.sign_c2pa(tmp, title=self.out.name, source=self.input_path)
            save_config(self.cfg, self.out.parent, "convert")
            write_json_atomic(spath, summary)

        try:
            self.writer.close(before_rename=finish)
        except BaseException:
            spath.unlink(missing_ok=True)  # no video, so no record of one
            raise
        return spath


def convert(cfg) -> ConvertResult:
    """Run the convert stage for a composed ``convert`` config; returns the output and its summary."""
    return ConvertRun(cfg).run()


def summary_line(r: ConvertResult) -> str:
    d = r.summary
    t = d["timings"]
    split = ", ".join(f"{k} {t[k]:.1f}" for k in TIMING_KEYS if t.get(k))
    unread = f", {len(d['unreadable'])} unreadable skipped" if d["unreadable"] else ""
    short = d.get("input_shortfall")
    if short:
        unread += (f"; the input is damaged: {short['decoded']} of {short['promised']} promised frames decoded"
                   if short["promised"] else "; the input is damaged: the decoder reported corrupt data")
    return (f"convert: wrote {r.out}: {d['frames']} frames ({d['swapped']} swapped, {d['interpolated']} of them "
            f"interpolated, {d['passed_through']} passed through{unread}) in {t['wall']:.1f} s "
            f"({d['frames_per_s']:.1f} frames/s; busy s: {split}); run id {d['run_id']}; summary {r.summary_path}")


def run(cfg) -> int:
    """`faceswap convert INPUT checkpoint=RUN_DIR out=OUTPUT [direction=b_to_a] ...`: the CLI entry point."""
    result = convert(cfg)
    logger.info(summary_line(result))
    return 0


