"""A real Postgres for tests: pgserver (a dev dependency) runs one from its wheel, on a Unix socket."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import pytest

_databases = itertools.count(1)


def start_postgres(folder: Path) -> Any:
    """A throwaway Postgres server with its data in `folder` (skips the test when pgserver is missing)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        pgserver = pytest.importorskip("pgserver", reason="pgserver (dev extra) runs the Postgres tests")
        return pgserver.get_server(folder, cleanup_mode="stop")


def new_database(server: Any) -> str:
    """A fresh, empty database on `server`; its URL."""
    name = f"rolecall_test_{next(_databases)}"
    server.psql(f"CREATE DATABASE {name};")
    return str(server.get_uri(name))
