"""The one logging setup: JSON lines for collectors, readable lines for people."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
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
