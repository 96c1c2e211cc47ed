"""Convert's streaming machinery: the frame record, a reader thread, a writer thread, and what they measure.

A reader (the ffmpeg decoder process feeds it), the main thread (detection, model, blending) and a
writer (stamping and the ffmpeg encoder process) overlap. Bounded queues between them keep memory
independent of the video's length; ``Counter`` measures that bound.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

TIMING_KEYS = ("decode", "detect", "align", "model", "blend", "stamp", "encode")


@dataclass
class Item:
    """One frame on its way through the pipeline."""

    index: int
    name: str
    image: np.ndarray | None
    error: str | None = None
    in_range: bool = True
    landmarks: np.ndarray | None = None  # (smoothed) target landmarks in frame pixels
    how: str | None = None  # "file" | "detected" | "interpolated" (where the landmarks came from)
    face: np.ndarray | None = None  # the colour-matched swapped face (crop, uint8) ready to paste
    mask: np.ndarray | None = None  # its crop-space mask
    matrix: np.ndarray | None = None  # frame -> crop
    out: np.ndarray | None = None
    swapped: bool = False
    poisson: bool = False


class Counter:
    """Frames alive between the reader and the writer, and the peak: the memory bound, measured."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def add(self, n: int = 1) -> None:
        with self.lock:
            self.now += n
            self.peak = max(self.peak, self.now)


class Timings(dict):
    """Busy seconds per step, summed over the threads that run it."""

    def __init__(self):
        super().__init__({k: 0.0 for k in TIMING_KEYS})
        self._lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self._lock:
            self[key] += seconds


_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetcher:
    """Iterate ``source`` in a thread into a queue of ``maxsize``; exceptions reach the consumer."""

    def __init__(self, source: Iterable, maxsize: int, timings: Timings | None = None, key: str = "decode",
                 on_item: Callable[[Any], None] | None = None):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.stop = threading.Event()
        self.source, self.timings, self.key, self.on_item = source, timings, key, on_item
        self.thread = threading.Thread(target=self._run, name="convert-reader", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self.source)
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                if self.timings is not None:
                    self.timings.add(self.key, time.perf_counter() - t0)
                if self.on_item is not None:
                    self.on_item(item)
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(_Failure(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


class BackgroundSink:
    """Call ``consume(item)`` in a thread for each item put, through a queue of ``maxsize``; errors reach the producer."""

    def __init__(self, consume: Callable[[Any], None], maxsize: int):
        self.queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.consume = consume
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="convert-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            try:
                self.consume(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                self.error = exc
                return

    def put(self, item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self.thread.is_alive() and self.error is None:
                    raise RuntimeError("the writer thread stopped")

    def finish(self) -> None:
        """Wait for every queued item to be consumed; re-raise the writer's error, if any."""
        if self.thread.is_alive():
            self.put(_END)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        if self.thread.is_alive():
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self.queue.put_nowait(_END)
            except queue.Full:
                pass
            self.thread.join(timeout=10)
