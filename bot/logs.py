"""The one logging setup: readable lines on a terminal, or one JSON object per line for log collectors."""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from typing import Literal, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "rolecall"
# Libraries whose INFO lines read as errors: faiss.loader logs which CPU build it tries at every start,
# with "Could not load library with AVX512 support due to: ModuleNotFoundError(...)" for the ones it skips.
QUIET_BELOW_DEBUG = ("faiss", "faiss.loader")


def error_reference() -> str:
    """A short id (e.g. "3FA2C1") shown to the user with an apology and logged with the traceback."""
    return secrets.token_hex(3).upper()


class JsonFormatter(logging.Formatter):
    """time (UTC, ISO 8601), level, logger, message, and the traceback as one string when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes each record to whatever sys.stderr is at that moment (it may be replaced after set-up)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(
    level: str = "INFO", log_format: Literal["text", "json"] = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (stderr); calling it again replaces the handler.

    faiss's loader reports at WARNING and above unless `level` is DEBUG."""
    handler: logging.StreamHandler = logging.StreamHandler(stream) if stream else _StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_BELOW_DEBUG:  # their warnings and errors still show; all of it at DEBUG
        logging.getLogger(name).setLevel(logging.NOTSET if level.upper() == "DEBUG" else logging.WARNING)
    logging.captureWarnings(True)
    return handler
