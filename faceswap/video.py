"""Frame I/O: read videos and image folders as RGB frames, write H.264 MP4 (audio kept) or image folders, atomically."""
from __future__ import annotations

import os
import re
import subprocess
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
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    has_audio: bool
    codec: str = ""


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio): (\w+)")


def probe(path: str | os.PathLike, count: bool = True) -> VideoInfo:
    """Size, fps, exact frame count (decoded, not guessed from the header) and whether there is audio."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"video {path} does not exist")
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
    frames = 0
    if count:
        import imageio_ffmpeg

        try:
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        except (RuntimeError, OSError) as exc:
            raise UserError(f"{path} could not be decoded ({exc}); check the file or re-encode it") from None
    return VideoInfo(width, height, fps, int(frames), any(k == "Audio" for k, _ in streams), video[0])


def read_video(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of a video, streamed from an ffmpeg process (decode runs beside our work)."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise UserError(f"video {path} does not exist")
    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
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
                raise UserError(f"video {self.path} has no decodable frames; check the file or re-encode it")
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
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
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
    "VideoInfo", "probe", "read_video", "read_image", "write_image", "list_images", "Frame", "FrameSource",
    "VideoWriter", "read_container_metadata", "ffmpeg_exe",
]
