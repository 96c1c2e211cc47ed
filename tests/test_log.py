"""The logging helper: console streams by level, the run folder's log file, quiet progress bars."""
import logging

from faceswap import log


def test_info_to_stdout_warnings_to_stderr(capsys):
    logger = log.get("t")
    logger.info("an info line")
    logger.warning("WARNING: a warning line")
    logger.debug("a debug line")
    out, err = capsys.readouterr()
    assert out == "an info line\n" and err == "WARNING: a warning line\n"


def test_configure_levels(capsys):
    logger = log.get("t")
    try:
        log.configure(-1)
        assert log.quiet()
        logger.info("hidden")
        logger.warning("shown")
        log.configure(1)
        logger.debug("debug shown")
        out, err = capsys.readouterr()
        assert out == "debug shown\n" and err == "shown\n"
    finally:
        log.configure(0)
    assert not log.quiet()


def test_run_log_keeps_every_level_and_appends(tmp_path, capsys):
    logger = log.get("t")
    log.configure(-1)
    try:
        with log.run_log(tmp_path) as path:
            logger.debug("one")
            logger.info("two")
            logger.warning("three")
        logger.info("after the block")
        with log.run_log(tmp_path):
            logger.error("four")
    finally:
        log.configure(0)
    lines = path.read_text().splitlines()
    assert [ln.split(": ", 1)[1] for ln in lines] == ["one", "two", "three", "four"]
    assert [ln.split()[2] for ln in lines] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert "faceswap.t" in lines[0]
    assert capsys.readouterr().out == ""  # quiet: the terminal got no INFO line, the file got them all
    assert not [h for h in logging.getLogger("faceswap").handlers if getattr(h, "baseFilename", None) == str(path)]


def test_progress_is_off_when_quiet_or_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert not log.progress(total=3, enabled=True).disable
    assert log.progress(total=3, enabled=False).disable
    log.configure(-1)
    try:
        assert log.progress(total=3, enabled=True).disable
    finally:
        log.configure(0)
