"""Frame I/O: read videos and image folders as RGB frames, write H.264 MP4 (audio kept) or image folders, atomically."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from faceswap.errors import UserError

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Shortfall:
    """What a video's container promises against what its stream decodes to: a truncated file, corrupt frames.

    ``promised``: frames the container's header announces (None: it announces none we trust).
    ``decoded``: pictures the decoder produced. ``repeated``: slots the reader fills with a neighbouring
    picture to keep the frame rate (a frame that failed to decode in the middle). ``errors``: the
    decoder's first complaints.
    """

    promised: int | None
    decoded: int
    repeated: int = 0
    errors: tuple[str, ...] = ()
    tolerance: int = 0  # a promise estimated from a duration may be one frame off

    @property
    def missing(self) -> int:
        return max(0, self.promised - self.decoded) if self.promised is not None else 0

    def __bool__(self) -> bool:
        return self.missing > self.tolerance or bool(self.errors)

    def describe(self, path: str | os.PathLike) -> str:
        """One line for stderr: promised vs decoded, and what it means for the frames that are read."""
        if self.promised is not None and self.missing > self.tolerance:
            head = f"video {path}: only {self.decoded} of the {self.promised} frames its container promises decode"
            if self.repeated:
                head += f" ({self.repeated} corrupt frame(s) in the middle, each slot filled with a neighbouring frame)"
            elif self.decoded:
                head += f" (the file looks truncated after frame {self.decoded - 1})"
        else:
            head = f"video {path}: the decoder reported corrupt data ({self.decoded} frames decode"
            head += f", {self.repeated} slot(s) filled with a neighbouring frame)" if self.repeated else ")"
        why = f"; decoder: {self.errors[0]}" if self.errors else ""
        return f"{head}{why}; the frames that decode are used: re-encode or re-copy the file for a complete one"

    def record(self) -> dict:
        """For output records (alignments.json ``source.shortfall``, convert's summary)."""
        return {"promised": self.promised, "decoded": self.decoded, "missing": self.missing,
                "repeated": self.repeated, "errors": list(self.errors)}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  # frames a read yields (decoded, plus any repeated in place of a corrupt one)
    has_audio: bool
    codec: str = ""
    shortfall: Shortfall | None = None  # set when the decode falls short of the container's promise


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (\w+)")
# ISO-BMFF (MP4/MOV) headers count each track's samples; Matroska tags each stream's duration. Elsewhere (AVI,
# MPEG-PS, FLV, ...) the only figure is the whole file's duration, audio included: no promise is trusted.
_ISO_BMFF = {".mp4", ".mov", ".m4v", ".3gp"}
_MATROSKA = {".mkv", ".webm"}
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
# Same frame-rate handling for the count and for the read, so both yield the same frames.
_FPS_MODE = ["-fps_mode", "cfr"]
_probed: dict[tuple, "VideoInfo"] = {}


def _boxes(fh, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO-BMFF boxes between two offsets."""
    at = start
    while at + 8 <= end:
        fh.seek(at)
        head = fh.read(8)
        if len(head) < 8:
            return
        size, kind = int.from_bytes(head[:4], "big"), head[4:]
        body = at + 8
        if size == 1:
            size, body = int.from_bytes(fh.read(8), "big"), at + 16
        elif size == 0:
            size = end - at
        if size < body - at:
            return
        yield kind, body, min(at + size, end)
        at += size


def _mp4_video_track(path: Path) -> tuple[int | None, float | None]:
    """(sample count, seconds its edit list shows or None) of the first video track, read from the header alone.

    A stream-copy cut keeps the samples back to the keyframe before the cut and hides them with an edit list:
    those samples are in the file but were never promised as frames.
    """
    with open(path, "rb") as fh:
        end = fh.seek(0, 2)
        timescale = [0]

        def walk(start: int, stop: int, found: dict) -> None:
            for kind, body, box_end in _boxes(fh, start, stop):
                if kind == b"trak":
                    track: dict = {}
                    walk(body, box_end, track)
                    if track.get("vide") and "samples" in track and "samples" not in found:
                        found.update(samples=track["samples"], edit=track.get("edit"))
                elif kind in _CONTAINERS or kind == b"edts":
                    walk(body, box_end, found)
                elif kind == b"mvhd":
                    fh.seek(body)
                    v1 = fh.read(1) == b"\x01"
                    fh.seek(body + (20 if v1 else 12))
                    timescale[0] = int.from_bytes(fh.read(4), "big")
                elif kind == b"hdlr":
                    fh.seek(body + 8)
                    if fh.read(4) == b"vide":  # (QuickTime has a second, data-reference hdlr in minf)
                        found["vide"] = True
                elif kind in (b"stsz", b"stz2"):
                    fh.seek(body + 8)
                    found["samples"] = int.from_bytes(fh.read(4), "big")
                elif kind == b"elst":
                    fh.seek(body)
                    v1 = fh.read(4)[0] == 1
                    count = int.from_bytes(fh.read(4), "big")
                    shown = 0
                    for _ in range(min(count, 1000)):
                        entry = fh.read(20 if v1 else 12)
                        n = 8 if v1 else 4
                        duration = int.from_bytes(entry[:n], "big")
                        media_time = int.from_bytes(entry[n:2 * n], "big", signed=True)
                        shown += duration if media_time != -1 else 0  # -1: an empty edit (a delay), no frames
                    found["edit"] = shown

        found: dict = {}
        walk(0, end, found)
    edit = found.get("edit")
    return found.get("samples"), (edit / timescale[0] if edit is not None and timescale[0] else None)


def _promised_frames(path: Path, header: str, fps: float) -> tuple[int | None, int]:
    """(frames the container promises or None, how far off that figure may be)."""
    ext = path.suffix.lower()
    if ext in _MATROSKA:
        video = re.search(r"Stream #\d+:\d+.*?: Video:.*?(?=\n\s*Stream #|\Z)", header, re.S)
        m = re.search(r"DURATION\s*:\s*(\d+):(\d+):([\d.]+)", video.group(0)) if video else None
        if m is None:
            return None, 0
        secs = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        return int(round(secs * fps)), 1
    if ext in _ISO_BMFF:
        try:
            samples, shown = _mp4_video_track(path)
        except (OSError, IndexError, ValueError):
            return None, 0
        if not samples:
            return None, 0
        if shown is not None and abs(round(shown * fps) - samples) > 1:
            return int(round(shown * fps)), 1  # an edit list hides some samples: it promises what it shows
        return samples, 0
    return None, 0


def _decode_count(path: Path) -> tuple[int, int, int, tuple[str, ...]]:
    """(frames a read yields, pictures decoded, repeated slots, decoder errors): one full decode, nothing kept."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-v", "error", "-i", str(path), "-map", "0:v:0",
                           *_FPS_MODE, "-f", "null", "-", "-progress", "pipe:1"], capture_output=True, text=True)
    last: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        k, _, v = line.partition("=")
        last[k.strip()] = v.strip()
    frames = int(last.get("frame", "0") or 0)
    dup, drop = int(last.get("dup_frames", "0") or 0), int(last.get("drop_frames", "0") or 0)
    errors: list[str] = []
    for line in proc.stderr.splitlines():
        msg = re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip().rstrip(".")  # drop "[h264 @ 0x...]" prefixes
        if msg and msg not in errors:
            errors.append(msg)
    # A truncated download's telling line first; no frame at all is the caller's error to raise, with the promise.
    errors.sort(key=lambda e: "partial file" not in e)
    return frames, frames - dup + drop, dup, tuple(errors[:3])


def probe(path: str | os.PathLike, count: bool = True) -> VideoInfo:
    """Size, fps, exact frame count (decoded, not guessed from the header) and whether there is audio.

    With ``count`` the whole stream is decoded once, and a shortfall against the container's promise
    (truncated file, corrupt frames) is set on the result and named once on stderr: every stage that
    opens a video comes through here, so each notices it the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video {path} does not exist")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, count)
    if key in _probed:
        return _probed[key]
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    text = proc.stderr
    streams = _STREAM_RE.findall(text)
    video = [c for kind, c in streams if kind == "Video"]
    if not video:
        raise UserError(f"{path} is not a readable video (ffmpeg found no video stream); check the file or re-encode it")
    m = re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", text)
    fps_m = re.search(r"([\d.]+) fps", text) or re.search(r"([\d.]+) tbr", text)
    width, height = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    fps = float(fps_m.group(1)) if fps_m else 25.0
    frames, shortfall = 0, None
    if count:
        frames, decoded, repeated, errors = _decode_count(path)
        promised, tolerance = _promised_frames(path, text, fps)
        found = Shortfall(promised, decoded, repeated, errors, tolerance)
        if found:
            shortfall = found
        if found and frames:  # nothing at all decoding is the caller's error to raise, not a warning
            print(f"warning: {found.describe(path)}", file=sys.stderr)
    info = VideoInfo(width, height, fps, int(frames), any(k == "Audio" for k, _ in streams), video[0], shortfall)
    if len(_probed) > 64:
        _probed.clear()
    _probed[key] = info
    return info


def read_video(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of a video, streamed from an ffmpeg process (decode runs beside our work)."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise UserError(f"video {path} does not exist")
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=list(_FPS_MODE))
    try:
        try:
            meta = next(gen)
        except (RuntimeError, OSError, StopIteration) as exc:
            raise UserError(f"{path} is not a readable video ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}); check the file or re-encode it") from None
        w, h = meta["size"]
        for i, buf in enumerate(gen):
            if stop is not None and i >= stop:
                break
            if i < start:
                continue
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    finally:
        gen.close()


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read any common image as RGB uint8 (grayscale is replicated, alpha dropped, 16-bit scaled)."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise UserError(f"image {path} does not exist")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise UserError(f"image {path} could not be decoded; replace or remove it")
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) uint8 image; the format follows the extension."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", img)
    if not ok:
        raise OSError(f"could not encode image {path}")
    tmp = path.with_name(f".{path.name}.partial")
    buf.tofile(str(tmp))
    os.replace(tmp, path)


def list_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))


@dataclass
class Frame:
    index: int
    name: str  # a stable key: zero-padded index for videos, file name for image folders
    image: np.ndarray | None  # None when an image in a folder could not be read
    error: str | None = None


class FrameSource:
    """A video file or an image folder, iterated as ``Frame`` objects in order."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"input {self.path} does not exist; give a video file or a folder of images")
        self.is_video = self.path.is_file()
        if self.is_video:
            if self.path.suffix.lower() in IMAGE_EXTS:
                raise UserError(f"input {self.path} is a single image; put it in a folder and pass the folder")
            if self.path.stat().st_size == 0:
                raise UserError(f"video {self.path} is empty (0 bytes); give a valid video file")
            self.info = probe(self.path)
            if self.info.frames == 0:
                promised = self.info.shortfall.promised if self.info.shortfall else None
                said = f" (its container promises {promised})" if promised else ""
                raise UserError(f"video {self.path} has no decodable frames{said}; check the file or re-encode it")
            self.images: list[Path] = []
        else:
            self.images = list_images(self.path)
            if not self.images:
                raise UserError(f"folder {self.path} holds no images ({', '.join(sorted(IMAGE_EXTS))}); give a video or a folder of images")
            first = None
            for p in self.images:
                try:
                    first = read_image(p)
                    break
                except UserError:
                    continue
            if first is None:
                raise UserError(f"no image in {self.path} could be read; check the files")
            self.info = VideoInfo(first.shape[1], first.shape[0], 25.0, len(self.images), False, "images")

    def __len__(self) -> int:
        return self.info.frames

    def frame_name(self, index: int) -> str:
        return self.images[index].name if not self.is_video else f"{index:06d}"

    def __iter__(self) -> Iterator[Frame]:
        return self.iter_range(0, None)

    def iter_range(self, start: int = 0, stop: int | None = None) -> Iterator[Frame]:
        if self.is_video:
            for i, img in enumerate(read_video(self.path, start, stop), start=start):
                yield Frame(i, f"{i:06d}", img)
            return
        for i, p in enumerate(self.images[start:stop], start=start):
            try:
                yield Frame(i, p.name, read_image(p))
            except UserError as exc:
                yield Frame(i, p.name, None, str(exc))


class VideoWriter:
    """H.264 MP4 writer through ffmpeg; writes to a temp name and renames on a clean close.

    ``audio_from``: copy the audio stream of that file (if it has one). ``metadata``: container tags.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int] | None = None, crf: int = 18,
                 preset: str = "medium", audio_from: str | os.PathLike | None = None,
                 metadata: dict[str, str] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix or ".mp4"
        # A killed run's encoder may still be finishing its temp file: each run writes its own, and clears the old.
        for stale in self.path.parent.glob(f".{glob.escape(self.path.stem)}.partial*{glob.escape(suffix)}"):
            stale.unlink(missing_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial-{uuid.uuid4().hex[:8]}{suffix}")
        self.fps, self.size, self.crf, self.preset = float(fps), size, int(crf), preset
        self.audio_from = Path(audio_from) if audio_from else None
        self.metadata = dict(metadata or {})
        self._gen = None
        self.frames = 0

    def _start(self, width: int, height: int) -> None:
        import imageio_ffmpeg

        out = ["-crf", str(self.crf), "-preset", self.preset, "-movflags", "+faststart", "-map_metadata", "-1"]
        for k, v in self.metadata.items():
            out += ["-metadata", f"{k}={v}"]
        audio = None
        if self.audio_from is not None and probe(self.audio_from, count=False).has_audio:
            # no -shortest: audio that ends before the video must not cut frames off
            audio = str(self.audio_from)
        self._gen = imageio_ffmpeg.write_frames(
            str(self.tmp), (width, height), fps=self.fps, codec="libx264", quality=None,
            macro_block_size=2, output_params=out, audio_path=audio, audio_codec="copy" if audio else None,
            ffmpeg_log_level="error",
        )
        self._gen.send(None)

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._gen is None:
            if self.size is None:
                self.size = (w, h)
            if (w, h) != tuple(self.size):
                raise ValueError(f"frame size {w}x{h} differs from the writer's {self.size}")
            if w % 2 or h % 2:
                raise UserError(f"H.264 needs even frame sizes, got {w}x{h}; crop or pad the input")
            self._start(w, h)
        elif (w, h) != tuple(self.size):
            raise ValueError(f"frame size {w}x{h} differs from the writer's {self.size}")
        self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames += 1

    def close(self, before_rename=None) -> None:
        """Finish the file; ``before_rename(temp path)`` runs on the complete file before it takes its name."""
        if self._gen is None:
            raise ValueError(f"no frames were written to {self.path}")
        self._gen.close()
        self._gen = None
        if before_rename is not None:
            before_rename(self.tmp)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._gen is not None:
            try:
                self._gen.close()
            except Exception:  # noqa: BLE001 - the file is thrown away anyway
                pass
            self._gen = None
        if self.tmp.exists():
            self.tmp.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_container_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The container's global tags (title, comment, ...) as ffmpeg reports them."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True)
    tags: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if "=" in line and not line.startswith(";"):
            k, v = line.split("=", 1)
            # ffmpeg's metadata dump escapes '=', ';', '#', '\\' and newlines with a backslash
            tags[k.strip().lower()] = re.sub(r"\\(.)", r"\1", v.strip())
    return tags


__all__ = [
    "Shortfall", "VideoInfo", "probe", "read_video", "read_image", "write_image", "list_images", "Frame", "FrameSource",
    "VideoWriter", "read_container_metadata", "ffmpeg_exe",
]
