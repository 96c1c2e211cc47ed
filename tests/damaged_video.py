"""Damaged copies of a single-track MP4 for tests: cut off after frame k (truncated download), one frame overwritten."""
from __future__ import annotations

import struct
from pathlib import Path


def _box_payload(data: bytes, name: bytes) -> int:
    """Offset just past the first box header called ``name`` (a 4-byte size, then the name)."""
    at = data.find(name)
    if at < 4:
        raise ValueError(f"no {name!r} box")
    return at + 4


def sample_spans(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of each video sample. A one-track file written in one go stores its samples back to back
    from the first chunk offset, in decode order (no B-frames with the ``ultrafast`` preset: display order too)."""
    data = Path(path).read_bytes()
    p = _box_payload(data, b"stsz") + 4  # version/flags
    fixed, count = struct.unpack(">II", data[p:p + 8])
    sizes = [fixed] * count if fixed else list(struct.unpack(f">{count}I", data[p + 8:p + 8 + 4 * count]))
    p = _box_payload(data, b"stco") + 4
    first = struct.unpack(">I", data[p + 4:p + 8])[0]
    spans, at = [], first
    for n in sizes:
        spans.append((at, n))
        at += n
    return spans


def truncate_after(src: Path, dst: Path, frames: int) -> Path:
    """A copy that ends right after video sample ``frames - 1``: the header still promises every frame."""
    spans = sample_spans(src)
    end = spans[frames - 1][0] + spans[frames - 1][1] if frames else spans[0][0]
    dst.write_bytes(Path(src).read_bytes()[:end])
    return dst


def corrupt_frame(src: Path, dst: Path, index: int) -> Path:
    """A copy whose sample ``index`` is overwritten with 0xFF (its NAL length prefix included): that frame does not decode."""
    off, size = sample_spans(src)[index]
    data = bytearray(Path(src).read_bytes())
    data[off:off + size] = b"\xff" * size
    dst.write_bytes(bytes(data))
    return dst
