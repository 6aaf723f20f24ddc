"""The one logging setup: JSON lines for collectors, readable lines for people."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bot.logs import setup_logging
from tests.conftest import REPO


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("faiss", "faiss.loader")}
    yield
    for name, old in quieted.items():
        logging.getLogger(name).setLevel(old)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_format_is_one_object_per_line_with_the_traceback(restore_root: None) -> None:
    stream = io.StringIO()
    setup_logging("info", "json", stream)
    log = logging.getLogger("tests.logs")
    log.debug("not shown at INFO")
    log.info("answered a %s in %.2fs", "DM", 0.25)
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed ref=%s", "ABC123")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "answered a DM in 0.25s"
    assert first["level"] == "INFO" and first["logger"] == "tests.logs"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["level"] == "ERROR" and second["message"] == "failed ref=ABC123"
    assert "ValueError: boom" in second["exception"] and "Traceback" in second["exception"]


def test_text_format_is_readable_and_setting_up_twice_keeps_one_handler(restore_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("DEBUG", "json", first)
    setup_logging("WARNING", "text", second)
    logging.getLogger("tests.logs").info("hidden")
    logging.getLogger("tests.logs").warning("disk %d%% full", 91)
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    assert line.endswith(" WARNING tests.logs: disk 91% full")


def test_faiss_loader_lines_are_shown_at_debug_only(restore_root: None) -> None:
    # Every `rolecall serve` start logged six INFO lines from faiss.loader, one a multi-line
    # "Could not load library with AVX512 support due to: ModuleNotFoundError(...)", which read as errors.
    stream = io.StringIO()
    setup_logging("INFO", "text", stream)
    logging.getLogger("faiss.loader").info("Loading faiss with AVX512 support.")
    logging.getLogger("faiss").info("from faiss itself")
    logging.getLogger("faiss.loader").warning("a real warning")
    logging.getLogger("bot.serve").info("ours")
    assert [line.split(" ", 3)[-1] for line in stream.getvalue().splitlines()] == [
        "faiss.loader: a real warning",
        "bot.serve: ours",
    ]
    debug = io.StringIO()
    setup_logging("debug", "text", debug)  # set up again at DEBUG: they are shown
    logging.getLogger("faiss.loader").info("Loading faiss.")
    assert debug.getvalue().endswith(" INFO faiss.loader: Loading faiss.\n")


def test_importing_faiss_after_the_setup_logs_nothing_at_info() -> None:
    code = "from bot.logs import setup_logging; setup_logging('INFO'); import faiss; print(faiss.__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout == "faiss\n"
    assert result.stderr == ""
