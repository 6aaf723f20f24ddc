"""Slack event de-duplication cost: one claim in memory (the per-process baseline) vs SQLite vs Postgres."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from adapters.slack import SEEN_TTL_SECONDS, SeenEvents
from bot.records import ClaimStore


def timings(claim: Callable[[list[str]], bool], events: int) -> list[float]:
    """Milliseconds per claim of one event's two keys; every event is new, so every claim must win."""
    out = []
    for n in range(events):
        keys = [f"event:Ev{n:06d}", f"message:C1:1700000000.{n:06d}"]
        started = time.perf_counter()
        assert claim(keys)
        out.append((time.perf_counter() - started) * 1000)
    return out


def row(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"| {name} | {len(ms)} | {statistics.median(ms):.3f} | {p95:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    print("| store | claims | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- |")
    memory = SeenEvents()
    print(
        row("in memory (per process, the baseline)", timings(lambda keys: memory.claim(*keys), args.events))
    )
    with tempfile.TemporaryDirectory() as scratch:
        sqlite = ClaimStore(Path(scratch) / "rolecall.sqlite3", SEEN_TTL_SECONDS)
        print(row("SQLite file (one host)", timings(sqlite.claim, args.events)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver
        except ImportError:
            print("| Postgres | - | pgserver not installed (dev extra) | |")
            return
        server = pgserver.get_server(Path(scratch) / "postgres", cleanup_mode="stop")
        try:
            server.psql("CREATE DATABASE rolecall_bench;")
            postgres = ClaimStore(server.get_uri("rolecall_bench"), SEEN_TTL_SECONDS)
            print(
                row("Postgres 16 (pgserver, Unix socket, same machine)", timings(postgres.claim, args.events))
            )
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
