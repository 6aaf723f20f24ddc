"""ROLECALL_WATCH: a change in a knowledge folder is reindexed in the background while serve runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.serve import run_adapters
from bot.watch import watch_knowledge
from index import store
from tests.conftest import SMALL_KNOWLEDGE, FakeEmbedder, make_service, write_docs
from tests.fake_slack import free_port, wait_for


async def test_a_new_document_is_indexed_without_a_command(
    small_knowledge: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.serve")
    service = make_service(small_knowledge, tmp_path / "index", FakeEmbedder())
    service.open()
    before = service.passage_count
    stop = asyncio.Event()
    server = asyncio.create_task(
        run_adapters([], "127.0.0.1", free_port(), stop, service=service, watch=True)
    )
    try:
        # Written until the watcher has picked it up: the watcher may start a moment after serve does.
        for attempt in range(1, 40):
            (small_knowledge / "data-engineer.md").write_text(
                f"---\ntitle: Data Engineer\n---\n# Data Engineer\n\n## Tools\n"
                f"Data engineers build pipelines with Apache Airflow and dbt (revision {attempt}).\n",
                encoding="utf-8",
            )
            try:
                await wait_for(lambda: service.passage_count > before, "the reindex", timeout=3)
                break
            except AssertionError:
                assert not server.done(), server
        titles = {document.title for document in service.retriever.index.documents}
        assert "Data Engineer" in titles
        # the first build + the change; the run is counted just after the new index is published
        ok_runs = service.metrics.reindex_runs.labels(result="ok")
        await wait_for(lambda: ok_runs._value.get() >= 2, "the reindex counted in the metrics", timeout=10)
        assert service.metrics.reindex_last_success._value.get() > 0
        ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("index ready")]
        # every passage's highlight sentences worked out before the first question (Retriever.prepare)
        assert len(ready) == 1 and re.fullmatch(
            rf"index ready: {before} passages \({before} prepared for highlights in [0-9.]+ s\);"
            " questions embedded by FakeEmbedder",
            ready[0],
        ), ready
    finally:
        stop.set()
        await asyncio.wait_for(server, 60)


async def test_an_unexpected_reindex_failure_is_logged_and_watching_goes_on(
    small_knowledge: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.watch")
    service = make_service(small_knowledge, tmp_path / "index", FakeEmbedder())
    service.open()
    before = service.passage_count
    reindex = service.reindex
    calls: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("unexpected hiccup in the reindex")
        return reindex(*args, **kwargs)

    monkeypatch.setattr(service, "reindex", fails_once)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_knowledge(service, stop, debounce_ms=100))
    try:
        # Changed until the watcher has seen a change: it may start a moment after this test does.
        for attempt in range(1, 40):
            (small_knowledge / "notes.md").write_text(f"# Notes\n\n## Draft\nDraft {attempt}.\n")
            try:
                await wait_for(lambda: calls, "the first reindex", timeout=1)
                break
            except AssertionError:
                assert not watcher.done(), watcher
        failed = await wait_for(
            lambda: [r for r in caplog.records if r.name == "bot.watch" and r.levelno >= logging.ERROR],
            "the failure logged",
            timeout=10,
        )
        assert len(failed) == 1 and failed[0].levelno == logging.ERROR and failed[0].exc_info  # + traceback
        assert failed[0].getMessage().splitlines() == [
            "reindex after a change failed unexpectedly; the previous index keeps serving:"
            " RuntimeError: unexpected hiccup in the reindex"
        ]

        (small_knowledge / "data-engineer.md").write_text(
            "---\ntitle: Data Engineer\n---\n# Data Engineer\n\n## Tools\n"
            "Data engineers build pipelines with Apache Airflow and dbt.\n",
            encoding="utf-8",
        )
        await wait_for(lambda: service.passage_count > before, "the reindex of a later change", timeout=20)
        assert "Data Engineer" in {document.title for document in service.retriever.index.documents}
        assert not watcher.done()
        assert not [r for r in caplog.records if "stopped watching" in r.getMessage()]
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 30)


DATA_ENGINEER = (
    "---\ntitle: Data Engineer\n---\n# Data Engineer\n\n## Tools\n"
    "Data engineers build pipelines with Apache Airflow and dbt and store data in Snowflake.\n"
)


async def test_a_running_server_answers_from_what_rolecall_index_publishes(
    small_knowledge: Path, tmp_path: Path, real_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The server kept the version it opened until restarted, and a second `rolecall index` pruned that
    # version's folder from under it.
    caplog.set_level(logging.INFO, logger="bot.service")
    service = make_service(small_knowledge, tmp_path / "index", real_embedder)
    service.config = replace(service.config, alias_check_seconds=0.2)
    service.open()
    stop = asyncio.Event()
    server = asyncio.create_task(run_adapters([], "127.0.0.1", free_port(), stop, service=service))
    try:
        (small_knowledge / "data-engineer.md").write_text(DATA_ENGINEER, encoding="utf-8")
        index = ["index", "--knowledge", str(small_knowledge), "--index", str(tmp_path / "index")]
        assert await asyncio.to_thread(main, index) == 0  # as an admin runs it beside the server
        await wait_for(lambda: "Data Engineer" in service.known_roles, "the published version", timeout=20)
        answer = await asyncio.to_thread(service.ask, "which tools do data engineers use?")
        assert answer.hits[0].passage.source == "data-engineer.md"
        assert any("published by another process" in r.getMessage() for r in caplog.records)
        assert not server.done()
    finally:
        stop.set()
        await asyncio.wait_for(server, 60)


def test_a_published_version_that_cannot_be_opened_is_logged_once_and_the_live_one_answers(
    small_knowledge: Path, tmp_path: Path, real_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_service(small_knowledge, tmp_path / "index", real_embedder)
    server.open()
    (small_knowledge / "data-engineer.md").write_text(DATA_ENGINEER, encoding="utf-8")
    other = make_service(small_knowledge, tmp_path / "index", real_embedder)
    assert other.reindex().wrote_new_version
    published = store.current_version(tmp_path / "index")
    assert published is not None
    (published / store.MANIFEST_FILE).write_text("garbage")
    assert server.follow_current() is False and server.follow_current() is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"not answering from the index version {published.name}"
    )
    answer = server.ask("what tools do SREs use?")
    assert answer.answered and answer.hits[0].passage.source == "site-reliability-engineer.md"


@contextlib.asynccontextmanager
async def watching(service: Any) -> AsyncIterator[None]:
    """The watcher with short intervals (200 ms debounce, paths looked at every 200 ms) while the block runs;
    it must still be watching at the end."""
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_knowledge(service, stop, debounce_ms=200, rearm_seconds=0.2))
    try:
        await asyncio.sleep(0.5)  # watching
        yield
        assert not watcher.done(), watcher
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)


async def test_a_knowledge_folder_deleted_and_made_again_is_watched_again(
    small_knowledge: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # inotify watches the folder, not its path: after `rm -rf` and a fresh copy nothing was ever reindexed
    caplog.set_level(logging.INFO, logger="bot.watch")
    service = make_service(small_knowledge, tmp_path / "index", FakeEmbedder())
    service.open()
    backup = shutil.copytree(small_knowledge, tmp_path / "backup")
    async with watching(service):
        shutil.rmtree(small_knowledge)
        await wait_for(lambda: "is gone" in caplog.text, "the folder missed", timeout=10)
        shutil.copytree(backup, small_knowledge)
        (small_knowledge / "data-engineer.md").write_text(DATA_ENGINEER, encoding="utf-8")
        await wait_for(lambda: "Data Engineer" in service.known_roles, "the reindex", timeout=30)
        # and it watches the new folder: a later change is indexed too
        (small_knowledge / "ml-engineer.md").write_text(
            "---\ntitle: ML Engineer\n---\n# ML Engineer\n\n## Tools\nML engineers train models.\n",
            encoding="utf-8",
        )
        await wait_for(lambda: "ML Engineer" in service.known_roles, "the next reindex", timeout=30)


async def test_a_knowledge_link_swapped_to_another_release_is_reindexed(tmp_path: Path) -> None:
    # `ln -sfn releases/v2 knowledge`: no change event at all in the folder being watched
    releases = tmp_path / "releases"
    first = write_docs(releases / "v1", SMALL_KNOWLEDGE)
    second = shutil.copytree(first, releases / "v2")
    (second / "data-engineer.md").write_text(DATA_ENGINEER, encoding="utf-8")
    knowledge = tmp_path / "knowledge"
    knowledge.symlink_to(first, target_is_directory=True)
    service = make_service(knowledge, tmp_path / "index", FakeEmbedder())
    service.open()
    async with watching(service):
        swapped = tmp_path / "knowledge.new"
        swapped.symlink_to(second, target_is_directory=True)
        swapped.replace(knowledge)  # an atomic swap, as ln -sfn does it
        await wait_for(lambda: "Data Engineer" in service.known_roles, "the reindex", timeout=30)
