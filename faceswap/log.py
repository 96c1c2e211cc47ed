"""Logging for every stage: what a run says on the terminal, in its run folder's log file, and its progress bars.

* ``get(name)`` gives a stage its logger (``faceswap.<name>``). Messages are one line each, as the
  stages always wrote them: INFO lines go to stdout, WARNING and ERROR lines to stderr, both
  without a prefix the message does not carry itself (``WARNING: ...``, ``note: ...``).
* ``configure(verbosity)`` is called once by the command (``-q``: warnings and errors only,
  ``-v``: also DEBUG lines); without it the stages log at INFO, so library callers and tests see
  what the command would print.
* ``run_log(folder)`` copies every message of a run, timestamped and with its level, into
  ``folder/faceswap.log`` (appending: a resumed run continues the same file).
* ``progress(...)`` is the one progress bar: shown only on a terminal, when the run asked for it and
  is not quiet.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterable, Iterator

ROOT = "faceswap"
LOG_FILE = "faceswap.log"
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Console(logging.Handler):
    """INFO and below to stdout, WARNING and above to stderr; the streams are looked up at each message, so a
    redirected or captured ``sys.stdout`` gets the line."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        try:
            stream.write(self.format(record) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe or stream: the message has nowhere to go
            pass


def _console() -> _Console:
    """The console handler of the package's root logger (installed on first use, at INFO)."""
    logger = logging.getLogger(ROOT)
    for h in logger.handlers:
        if isinstance(h, _Console):
            return h
    handler = _Console(level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)  # each handler filters: the terminal by the chosen level, a run's file takes all
    return handler


def get(name: str) -> logging.Logger:
    """The logger of one part of the toolkit (``get("convert")`` -> ``faceswap.convert``)."""
    _console()
    return logging.getLogger(f"{ROOT}.{name}")


def configure(verbosity: int = 0) -> None:
    """-1 (``-q``): warnings and errors only; 0: INFO; 1 or more (``-v``): DEBUG too."""
    _console().setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO)


def quiet() -> bool:
    """Whether the terminal shows only warnings and errors (``-q``)."""
    return _console().level > logging.INFO


@contextlib.contextmanager
def run_log(folder: str | Path) -> Iterator[Path]:
    """Copy every message logged inside the block, DEBUG included, into ``folder/faceswap.log`` (appending)."""
    path = Path(folder) / LOG_FILE
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    _console()
    root = logging.getLogger(ROOT)
    root.addHandler(handler)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        handler.close()


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, **kwargs):
    """A tqdm bar on stderr, shown only on a terminal, when ``enabled`` and the run is not quiet."""
    from tqdm import tqdm

    show = bool(enabled) and sys.stderr.isatty() and not quiet()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not show, dynamic_ncols=True, **kwargs)
