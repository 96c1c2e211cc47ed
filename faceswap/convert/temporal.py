"""Temporal help for conversion: filling short detection gaps by interpolating landmarks, in a bounded stream."""
from __future__ import annotations

from typing import Callable, Generic, Iterable, Iterator, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def interpolate_landmarks(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation between two landmark sets, ``t`` in [0, 1] (0 gives ``a``)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (1.0 - t) * a + t * b


def fill_gaps(landmarks: Sequence[np.ndarray | None], max_gap: int) -> list[tuple[np.ndarray | None, bool]]:
    """Fill runs of ``None`` of at most ``max_gap`` frames that lie between two known frames.

    Returns per frame ``(landmarks or None, interpolated?)``. A run at the start or the end of the
    sequence, or longer than ``max_gap``, stays ``None``: there is nothing on one side to interpolate
    towards, and a long gap is more likely a cut or an exit than a missed detection.
    """
    out: list[tuple[np.ndarray | None, bool]] = []
    filler = GapFiller(max_gap, lambda x: x[0], lambda x, lm: (lm, True))
    for lm in landmarks:
        out.extend(filler.push((None if lm is None else np.asarray(lm, dtype=np.float64), False)))
    out.extend(filler.flush())
    return out


class GapFiller(Generic[T]):
    """Streaming gap filling: holds at most ``max_gap`` missed items until the next hit (or gives up on them).

    ``get(item)`` reads an item's landmarks (None for a miss); ``fill(item, landmarks)`` returns the item
    with interpolated landmarks. ``push`` returns the items that are ready, in order; ``flush`` the rest.
    ``brk()`` (a cut: an item that is not part of the track, e.g. outside the frame range) gives up on
    the pending gap without a hit.
    """

    def __init__(self, max_gap: int, get: Callable[[T], np.ndarray | None], fill: Callable[[T, np.ndarray], T]):
        if int(max_gap) < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.max_gap = int(max_gap)
        self.get, self.fill = get, fill
        self.last: np.ndarray | None = None
        self.pending: list[T] = []

    def push(self, item: T) -> list[T]:
        lm = self.get(item)
        if lm is None:
            if self.last is None or self.max_gap == 0:
                return [item]
            self.pending.append(item)
            if len(self.pending) > self.max_gap:
                return self.brk()
            return []
        ready: list[T] = []
        if self.pending:
            n = len(self.pending)
            ready = [self.fill(p, interpolate_landmarks(self.last, lm, (k + 1) / (n + 1)))
                     for k, p in enumerate(self.pending)]
            self.pending = []
        self.last = np.asarray(lm, dtype=np.float64)
        return ready + [item]

    def brk(self) -> list[T]:
        ready, self.pending, self.last = self.pending, [], None
        return ready

    def flush(self) -> list[T]:
        return self.brk()

    def __len__(self) -> int:
        return len(self.pending)


def stream_fill(items: Iterable[T], filler: GapFiller[T], is_break: Callable[[T], bool] = lambda _: False) -> Iterator[T]:
    """Run ``filler`` over a stream; an item for which ``is_break`` holds ends the current gap and passes straight on."""
    for item in items:
        if is_break(item):
            yield from filler.brk()
            yield item
        else:
            yield from filler.push(item)
    yield from filler.flush()


__all__ = ["interpolate_landmarks", "fill_gaps", "GapFiller", "stream_fill"]
