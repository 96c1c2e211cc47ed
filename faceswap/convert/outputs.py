"""Convert's outputs: where they go, what must not be overwritten, the image-folder writer, and the faces file."""
from __future__ import annotations

import glob
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from faceswap.errors import UserError

SUMMARY_SCHEMA = "faceswap.convert"
SUMMARY_VERSION = 1
VIDEO_OUT_EXTS = (".mp4", ".mov", ".m4v")


class ImageFolderWriter:
    """Writes frames as images into a hidden temp folder beside ``out``; ``close`` renames it onto ``out``."""

    def __init__(self, out: Path, overwrite: bool):
        self.out, self.overwrite = out, overwrite
        # What a killed run left: its temp folder, or the old output it was swapping out.
        for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in out.parent.glob(f".{glob.escape(out.name)}.trash-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
        self.frames = 0

    def write(self, name: str, frame: np.ndarray) -> None:
        from faceswap.video import write_image

        self.tmp.mkdir(parents=True, exist_ok=True)  # on the first frame: nothing is left behind before it
        write_image(self.tmp / name, frame)
        self.frames += 1

    def close(self) -> None:
        trash = None
        if self.out.exists():
            trash = self.out.parent / f".{self.out.name}.trash-{uuid.uuid4().hex[:8]}"
            os.replace(self.out, trash)
        os.replace(self.tmp, self.out)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def summary_path(out: Path, is_video: bool) -> Path:
    return out.with_suffix(".json") if is_video else out / "convert.json"


def check_output(out: Path, input_path: Path, is_video: bool, overwrite: bool) -> None:
    if out.resolve() == input_path.resolve():
        raise UserError(f"out={out} is the input; give another path for the output")
    if is_video:
        if out.suffix.lower() not in VIDEO_OUT_EXTS:
            raise UserError(f"out={out}: a video input makes a video; give a file name ending in "
                            f"{' or '.join(VIDEO_OUT_EXTS)}")
        if out.is_dir():
            raise UserError(f"out={out} is a folder; give the output video's file name (e.g. {out / 'swapped.mp4'})")
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"out={out} is a file; an image folder input makes an image folder, give a folder path")
        try:
            out.resolve().relative_to(input_path.resolve())
            raise UserError(f"out={out} lies inside the input folder; give a folder outside it")
        except ValueError:
            pass
    if out.exists() and not overwrite and (is_video or any(out.iterdir())):
        raise UserError(f"out={out} exists; remove it, pick another name or add overwrite=true")


# --- alignments -----------------------------------------------------------------------------------------------------

def _same_input(al, input_path: Path) -> bool:
    try:
        return Path(str(al.source.get("path", ""))).resolve() == input_path.resolve()
    except OSError:
        return False


def find_alignments(setting: Any, input_path: Path):
    """The Alignments to use (or None: detect on the fly) and where they came from.

    ``none``: detect. A path: that file, or ``alignments.json`` inside that (extract output) folder.
    ``auto``: an ``alignments.json`` inside the input folder, beside the input video, or in a folder
    named like the video beside it, whose recorded source is this input.
    """
    from faceswap.extract.alignments import load_alignments

    if setting is None or str(setting).lower() in ("none", "null", "false", "detect"):
        return None, None
    if str(setting).lower() == "auto":
        candidates = [input_path / "alignments.json"] if input_path.is_dir() else \
            [input_path.parent / "alignments.json", input_path.with_suffix("") / "alignments.json"]
        for path in candidates:
            if path.is_file():
                try:
                    al = load_alignments(path)
                except UserError:
                    continue
                if _same_input(al, input_path):
                    return al, path
        return None, None
    path = Path(str(setting)).expanduser()
    if path.is_dir():
        path = path / "alignments.json"
        if not path.is_file():
            raise UserError(f"alignments={setting}: that folder holds no alignments.json; give an extract output "
                            "folder, an alignments.json, or alignments=none to detect faces on the fly")
    elif not path.is_file():
        raise UserError(f"alignments={setting} does not exist; give an extract output folder, an alignments.json, "
                        "or alignments=none to detect faces on the fly")
    return load_alignments(path), path


def check_alignments(al, path: Path, source, names: list[str]) -> None:
    """An alignments file must describe this input: same frame count, size (video) and frame names (images)."""
    src = al.source
    n = len(source)
    if len(al) != n:
        raise UserError(f"alignments file {path} lists {len(al)} frames but {source.path} has {n}; it belongs to "
                        "another input: re-run 'faceswap extract' on this input or use alignments=none")
    if source.is_video and (int(src.get("width", -1)), int(src.get("height", -1))) != (source.info.width, source.info.height):
        raise UserError(f"alignments file {path} is for {src.get('width')}x{src.get('height')} frames but "
                        f"{source.path} is {source.info.width}x{source.info.height}; it belongs to another input: "
                        "re-run 'faceswap extract' on this input or use alignments=none")
    if not source.is_video:
        bad = next((i for i, (r, nm) in enumerate(zip(al.frames, names)) if r.name != nm), None)
        if bad is not None:
            raise UserError(f"alignments file {path} names frame {bad} {al.frames[bad].name!r} but the input's image "
                            f"is {names[bad]!r}; it belongs to another folder: re-run 'faceswap extract' or use alignments=none")
