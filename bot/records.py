"""Feedback votes and the admin audit log, in one SQLite file; a failing store never stops answers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    platform TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    question TEXT NOT NULL,
    sources TEXT NOT NULL,
    vote TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    platform TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


def user_hash(platform: str, user_id: str) -> str:
    """A stable pseudonym for a user: the store never holds raw user ids."""
    return hashlib.sha256(f"{platform}:{user_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Vote:
    at: str
    platform: str
    user_hash: str
    question: str
    sources: tuple[str, ...]
    vote: str


@dataclass(frozen=True)
class AuditEntry:
    at: str
    platform: str
    user_hash: str
    action: str
    result: str  # "allowed", "refused", "busy", "failed", ...
    detail: str


class RecordStore:
    """Appends votes and audit entries; every write is its own short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=2.0)
        try:
            connection.executescript(_SCHEMA)
            with connection:
                yield connection
        finally:
            connection.close()

    def record_vote(
        self, platform: str, user_id: str, question: str, sources: Sequence[str], vote: str
    ) -> bool:
        """Store one 👍/👎; returns False (and logs) when the store cannot be written."""
        row = (_now(), platform, user_hash(platform, user_id), question, json.dumps(list(sources)), vote)
        return self._write(
            "INSERT INTO feedback (at, platform, user_hash, question, sources, vote) VALUES (?,?,?,?,?,?)",
            row,
        )

    def record_admin_action(
        self, platform: str, user_id: str, action: str, result: str, detail: str = ""
    ) -> bool:
        """Audit one admin attempt, allowed or not; returns False (and logs) on failure."""
        row = (_now(), platform, user_hash(platform, user_id), action, result, detail)
        return self._write(
            "INSERT INTO audit (at, platform, user_hash, action, result, detail) VALUES (?,?,?,?,?,?)", row
        )

    def _write(self, statement: str, row: tuple[str, ...]) -> bool:
        try:
            with self._connection() as connection:
                connection.execute(statement, row)
            return True
        except (sqlite3.Error, OSError) as exc:
            log.error("could not write to the record store %s: %s", self.path, exc)
            return False

    def votes(self) -> list[Vote]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT at, platform, user_hash, question, sources, vote FROM feedback ORDER BY id"
            ).fetchall()
        return [Vote(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows]

    def audit_entries(self) -> list[AuditEntry]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT at, platform, user_hash, action, result, detail FROM audit ORDER BY id"
            ).fetchall()
        return [AuditEntry(*r) for r in rows]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
