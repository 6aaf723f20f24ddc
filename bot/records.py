"""Feedback votes, the admin audit and claimed event keys in SQLite or Postgres; failures never stop answers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from index.errors import RolecallError

log = logging.getLogger(__name__)

SUPPORTED_URLS = "sqlite:///path/to/file.sqlite3 or postgresql://user:password@host:5432/database"
CONNECT_TIMEOUT_SECONDS = 2

_SQLITE_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS claimed_keys (
    key TEXT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL
);
"""
_POSTGRES_SCHEMA = [
    statement.replace("id INTEGER PRIMARY KEY", "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    for statement in _SQLITE_SCHEMA.split(";")
    if statement.strip()
]
# Replicas starting together would race on CREATE TABLE IF NOT EXISTS: one transaction-scoped lock.
_POSTGRES_SCHEMA_LOCK = 0x524F4C45  # "ROLE"


class DatabaseError(RolecallError):
    """ROLECALL_DATABASE_URL is unusable (unsupported scheme, missing driver); the message says what to do."""


def user_hash(platform: str, user_id: str) -> str:
    """A stable pseudonym for a user: the store never holds raw user ids."""
    return hashlib.sha256(f"{platform}:{user_id}".encode()).hexdigest()[:16]


def check_database_url(url: str) -> str:
    """`url` unchanged if its scheme is supported, else a ValueError naming what is."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite" and url.lower().startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return url
    if scheme in ("postgresql", "postgres"):
        parts = urllib.parse.urlsplit(url)
        try:
            parts.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError("the database URL's port is not a number from 0 to 65535") from None
        if parts.password and _BAD_ESCAPE.search(parts.password):
            # the driver would fail on every write, quoting the password in its error
            raise ValueError(
                "the database URL's password has a '%' that is not a %XX escape; write '%' as %25"
            )
        return url
    raise ValueError(f"unsupported database URL; supported: {SUPPORTED_URLS}")


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Database:
    """Where records live: a SQLite file (one host) or a Postgres server (shared by replicas).

    Every operation opens its own connection and transaction, so a restarted server or a replaced
    file is picked up without a restart, and nothing is shared between threads.
    """

    def __init__(self, target: Path | str) -> None:
        self.kind: Literal["sqlite", "postgres"]
        if isinstance(target, Path):
            self.kind, self.path, self._url = "sqlite", target, ""
        else:
            check_database_url(target)
            if target.lower().startswith("sqlite:"):
                self.kind, self._url = "sqlite", ""
                # sqlite:///relative/file or sqlite:////absolute/file, as SQLAlchemy spells them
                self.path = Path(urllib.parse.unquote(target[len("sqlite:///") :]))
            else:
                self.kind, self._url = "postgres", target
                self.path = Path()
        self.errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)
        self._schema_ready = False
        if self.kind == "postgres":
            try:
                import psycopg
            except ImportError:
                raise DatabaseError(
                    "ROLECALL_DATABASE_URL is a Postgres URL but the psycopg driver is not installed:"
                    " pip install 'psycopg[binary]'"
                ) from None
            self.errors = (psycopg.Error, OSError)

    def __repr__(self) -> str:
        return f"Database({self.describe()})"

    @property
    def shared(self) -> bool:
        """True for a server several hosts can reach; a SQLite file is one host's."""
        return self.kind == "postgres"

    def describe(self) -> str:
        """The file path, or the server URL without its password (safe to log)."""
        if self.kind == "sqlite":
            return str(self.path)
        parts = urllib.parse.urlsplit(self._url)
        host = parts.hostname or "local socket"
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}{host}{port}{parts.path}"

    def redact(self, text: str) -> str:
        """`text` (a driver's error, say) on one line, with the URL's password replaced by ***, as typed or
        decoded (psycopg's "connection refused" runs over two lines, "\tIs the server running…" the second)."""
        password = urllib.parse.urlsplit(self._url).password if self._url else None
        for secret in sorted(
            {password, urllib.parse.unquote(password)} if password else set(), key=len, reverse=True
        ):
            text = text.replace(secret, "***")
        return " ".join(text.split())

    def exists(self) -> bool:
        """Whether there may be rows to read (a missing SQLite file has none; a server is asked)."""
        return self.kind == "postgres" or self.path.exists()

    @contextlib.contextmanager
    def connect(self) -> Iterator[_Connection]:
        """One connection with one transaction: committed on success, rolled back on an exception."""
        if self.kind == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=CONNECT_TIMEOUT_SECONDS)
            try:
                connection.executescript(_SQLITE_SCHEMA)
                with connection:
                    yield _Connection(connection, "?")
            finally:
                connection.close()
            return
        import psycopg

        with psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as pg:
            if not self._schema_ready:
                pg.execute("SELECT pg_advisory_xact_lock(%s)", (_POSTGRES_SCHEMA_LOCK,))
                for statement in _POSTGRES_SCHEMA:
                    pg.execute(statement)
                pg.commit()
                self._schema_ready = True
            yield _Connection(pg, "%s")


class _Connection:
    """The few calls the stores make, with `?` placeholders on either database."""

    def __init__(self, connection: Any, placeholder: str) -> None:
        self._connection = connection
        self._placeholder = placeholder

    def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = self._connection.execute(statement.replace("?", self._placeholder), tuple(params))
        return int(cursor.rowcount)

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.execute(statement.replace("?", self._placeholder), tuple(params))
        return [tuple(row) for row in cursor.fetchall()]


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


def open_database(target: Database | Path | str) -> Database:
    return target if isinstance(target, Database) else Database(target)


class RecordStore:
    """Appends votes and audit entries; every write is its own short transaction."""

    def __init__(self, target: Database | Path | str) -> None:
        self.database = open_database(target)

    @property
    def path(self) -> Path:
        """The SQLite file (an empty path for Postgres)."""
        return self.database.path

    def record_vote(
        self, platform: str, user_id: str, question: str, sources: Sequence[str], vote: str
    ) -> bool:
        """Store one 👍/👎; returns False (and logs) when the store cannot be written."""
        row = (now(), platform, user_hash(platform, user_id), question, json.dumps(list(sources)), vote)
        return self._write(
            "INSERT INTO feedback (at, platform, user_hash, question, sources, vote) VALUES (?,?,?,?,?,?)",
            row,
        )

    def record_admin_action(
        self, platform: str, user_id: str, action: str, result: str, detail: str = "", at: str = ""
    ) -> bool:
        """Audit one admin attempt, allowed or not, as asked at `at` (default: now); returns False on
        failure, after logging who (pseudonymously), what and the outcome, so that nothing is lost."""
        row = (at or now(), platform, user_hash(platform, user_id), action, result, detail)
        written = self._write(
            "INSERT INTO audit (at, platform, user_hash, action, result, detail) VALUES (?,?,?,?,?,?)", row
        )
        if not written:
            log.error("audit row not written: at=%s platform=%s user=%s action=%s result=%s", *row[:5])
        return written

    def _write(self, statement: str, row: tuple[str, ...]) -> bool:
        try:
            with self.database.connect() as connection:
                connection.execute(statement, row)
            return True
        except self.database.errors as exc:
            log.error(
                "could not write to the record store %s: %s",
                self.database.describe(),
                self.database.redact(str(exc)),
            )
            return False

    def votes(self) -> list[Vote]:
        with self.database.connect() as connection:
            rows = connection.rows(
                "SELECT at, platform, user_hash, question, sources, vote FROM feedback ORDER BY id"
            )
        return [Vote(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in rows]

    def audit_entries(self) -> list[AuditEntry]:
        with self.database.connect() as connection:
            rows = connection.rows(
                "SELECT at, platform, user_hash, action, result, detail FROM audit ORDER BY id"
            )
        return [AuditEntry(*r) for r in rows]


class ClaimStore:
    """Keys claimed by whichever replica inserts them first (the table's primary key decides).

    A key older than `ttl` seconds may be claimed again; such rows are deleted now and then.
    Errors are raised (the caller decides); nothing here logs the keys' meaning.
    """

    PRUNE_EVERY_SECONDS = 60.0

    def __init__(self, target: Database | Path | str, ttl: float) -> None:
        self.database = open_database(target)
        self.ttl = ttl
        self._next_prune = 0.0

    def claim(self, keys: Iterable[str], now: float | None = None) -> bool:
        """Insert every key in one transaction; True only if none was claimed within the last `ttl`."""
        now = time.time() if now is None else now
        cutoff = now - self.ttl
        fresh = True
        with self.database.connect() as connection:
            if now >= self._next_prune:
                connection.execute("DELETE FROM claimed_keys WHERE at < ?", (cutoff,))
                self._next_prune = now + self.PRUNE_EVERY_SECONDS
            for key in keys:
                # A new key inserts; an expired one is taken over; a live one changes no row.
                changed = connection.execute(
                    "INSERT INTO claimed_keys (key, at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
                    " SET at = excluded.at WHERE claimed_keys.at < ?",
                    (key, now, cutoff),
                )
                fresh = fresh and changed == 1
        return fresh

    def count(self) -> int:
        with self.database.connect() as connection:
            return int(connection.rows("SELECT COUNT(*) FROM claimed_keys")[0][0])


def now() -> str:
    """The current UTC time as the store writes it (ISO 8601, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
