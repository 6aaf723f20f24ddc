"""Faults an operator meets: a killed `rolecall index`, damaged index files, a knowledge folder that
vanishes during a reindex, a locked or read-only record store.

tests/test_killed_build.py kills a build (fake embedder, timed kills) at spread-out moments; here the
real `rolecall index` command is stopped at named points with no timing at all: a hook in the child
prints `PAUSED <point>` and blocks, the test reads that line and sends SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.admin import AdminActions
from bot.cli import main
from bot.records import RecordStore
from bot.service import RolecallService, ServiceConfig
from index import store
from index.errors import IndexMissingError, RolecallError
from index.search import SearchIndex
from tests.conftest import REPO, SMALL_KNOWLEDGE, make_service, write_docs

PAY_QUESTION = "What does a senior back-end engineer earn?"
PAY_SOURCE = "senior-back-end-engineer.md"
NEW_DOC = {
    "data-scientist.md": """---
title: Data Scientist
level: mid
---
# Data Scientist

## Responsibilities
A data scientist frames business questions as experiments, builds statistical models and explains the results to product teams.

## Tools
Data scientists work in Python with pandas, scikit-learn and Jupyter notebooks, and query warehouses with SQL.

## Pay
A data scientist in the United States earns about $110,000 a year according to 2023 job-listing data.
""",
}
DATA_QUESTION = "Which tools does a data scientist use?"

# -- SIGKILL of `rolecall index` at named points ------------------------------------------------------

# Runs the real CLI (`rolecall index`, real model) with pause points patched in. Each pause prints a
# line and blocks forever, so the parent kills at that exact point without guessing at timings.
KILL_SCRIPT = r"""
import os, sys, threading
import numpy as np
from index import embedding, keyword, store

point = sys.argv[1]

def pause(name):
    if name == point:
        print(f"PAUSED {name}", flush=True)
        threading.Event().wait()

# Batches of one passage, so killing "after two embedding batches" lands inside the model's work.
_init = embedding.SentenceTransformerEmbedder.__init__
embedding.SentenceTransformerEmbedder.__init__ = lambda self, spec, batch_size=64: _init(self, spec, 1)
_loaded = embedding.SentenceTransformerEmbedder._loaded

def loaded(self):
    model = _loaded(self)
    if not getattr(model, "_rolecall_hooked", False):
        forward, done = model.forward, [0]
        def counted(*args, **kwargs):
            out = forward(*args, **kwargs)
            done[0] += 1
            if done[0] == 2:
                pause("embedding-batch-2")
            return out
        model.forward = counted
        model._rolecall_hooked = True
    return model

embedding.SentenceTransformerEmbedder._loaded = loaded

# The default embedder is ONNX Runtime: the same, one text per run, counted on its session.
from index import onnx_embedder
_onnx_init = onnx_embedder.OnnxEmbedder.__init__
onnx_embedder.OnnxEmbedder.__init__ = (
    lambda self, spec, cache_dir, threads=0, batch_size=32, **options: _onnx_init(self, spec, cache_dir, threads, 1, **options)
)
_onnx_session = onnx_embedder._session
onnx_runs = [0]

class CountedSession:
    def __init__(self, inner):
        self._inner = inner
    def __getattr__(self, name):
        return getattr(self._inner, name)
    def run(self, *args, **kwargs):
        out = self._inner.run(*args, **kwargs)
        onnx_runs[0] += 1
        if onnx_runs[0] == 2:
            pause("embedding-batch-2")
        return out

onnx_embedder._session = lambda path, threads: CountedSession(_onnx_session(path, threads))

_save = np.save
def save(path, *args, **kwargs):
    if str(path).endswith(store.VECTORS_FILE):
        pause("passages-written")  # passages.jsonl is on disk, vectors.npy not yet
    return _save(path, *args, **kwargs)
np.save = save

_keyword_save = keyword.KeywordIndex.save
def keyword_save(self, folder):
    _keyword_save(self, folder)
    pause("keyword-written")  # everything but the manifest
keyword.KeywordIndex.save = keyword_save

_fsync_tree = store._fsync_tree
def fsync_tree(folder):
    _fsync_tree(folder)
    pause("build-complete")  # the whole version folder is written, still under .build-*
store._fsync_tree = fsync_tree

_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if os.path.basename(dst) == store.CURRENT_FILE:
        pause("before-switch")  # the new version folder is renamed into place, CURRENT is old
    return _replace(src, dst, *args, **kwargs)
os.replace = replace

_prune = store._prune_versions
def prune(index_dir, keep):
    pause("after-switch")  # CURRENT names the new version; old versions not pruned yet
    return _prune(index_dir, keep)
store._prune_versions = prune

from bot.cli import main
sys.exit(main(sys.argv[2:]))
"""

KILL_POINTS = (
    "embedding-batch-2",
    "passages-written",
    "keyword-written",
    "build-complete",
    "before-switch",
    "after-switch",
)


def _index_command(knowledge: Path, index_dir: Path, point: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    argv = ["index", "--knowledge", str(knowledge), "--index", str(index_dir)]
    return subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, point or "-", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], wanted: str, timeout: float = 180.0) -> str:
    """The first stdout line starting with `wanted`; fails on timeout or when the child exits first."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"no '{wanted}' line within {timeout}s") from None
        if line is None:
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the child exited ({process.wait()}) before '{wanted}': {err}")
        if line.startswith(wanted):
            return line


def _answers_pay(service: RolecallService) -> None:
    answer = service.ask(PAY_QUESTION)
    assert answer.answered and answer.hits[0].passage.source == PAY_SOURCE


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> tuple[Path, Path]:
    """SMALL_KNOWLEDGE indexed once with the real model: (knowledge folder, index folder)."""
    root = tmp_path_factory.mktemp("faults-index")
    knowledge = write_docs(root / "knowledge", SMALL_KNOWLEDGE)
    make_service(knowledge, root / "index", real_embedder).open()
    return knowledge, root / "index"


@pytest.fixture
def copied(small_index: tuple[Path, Path], tmp_path: Path, real_embedder: Any) -> tuple[Path, Path]:
    """The test's own copy of the small knowledge and its index."""
    knowledge, index_dir = small_index
    shutil.copytree(knowledge, tmp_path / "knowledge")
    shutil.copytree(index_dir, tmp_path / "index")
    # The manifest keys documents by their folder's absolute path: refresh it for the copy's folder, so
    # the index is up to date for it (a damaged index then cannot be repaired by a change-driven rebuild).
    report = make_service(tmp_path / "knowledge", tmp_path / "index", real_embedder).reindex()
    assert report.wrote_new_version
    return tmp_path / "knowledge", tmp_path / "index"


def test_sigkill_of_rolecall_index_at_each_point_keeps_a_loadable_answering_index(
    copied: tuple[Path, Path], real_embedder: Any
) -> None:
    knowledge, index_dir = copied
    baseline = SearchIndex.open(index_dir).manifest.passage_count
    write_docs(knowledge, NEW_DOC)  # so every killed run has embedding and writing to do

    for point in KILL_POINTS:
        process = _index_command(knowledge, index_dir, point)
        try:
            _wait_for_line(process, f"PAUSED {point}")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL

        opened = SearchIndex.open(index_dir)
        assert len(opened.passages) == len(opened.vectors) == opened.manifest.passage_count
        switched = point == "after-switch"  # the new version was already live when the kill came
        assert (
            (opened.manifest.passage_count > baseline)
            if switched
            else (opened.manifest.passage_count == baseline)
        ), point
        rebuilds: list[str] = []
        service = make_service(knowledge, index_dir, real_embedder)
        service.open(notify=rebuilds.append)
        assert rebuilds == [], f"{point}: the index left behind did not load: {rebuilds}"
        _answers_pay(service)

    finisher = _index_command(knowledge, index_dir)
    out, err = finisher.communicate(timeout=180)
    assert finisher.returncode == 0, err
    assert "index updated" in out or "already up to date" in out  # after-switch published it already
    service = make_service(knowledge, index_dir, real_embedder)
    service.open()
    # Killed runs leave version folders that never went live (or were not pruned yet); a run with
    # nothing to change leaves them, the next run that writes a version prunes them.
    write_docs(knowledge, {"career-ladder.md": SMALL_KNOWLEDGE["career-ladder.md"] + "\nOne more line.\n"})
    assert service.reindex().wrote_new_version
    assert not list(index_dir.glob(".build-*")) and not list(index_dir.glob(".CURRENT.*"))
    assert len(list(index_dir.glob("v-*"))) == store.KEEP_VERSIONS
    _answers_pay(service)
    answer = service.ask(DATA_QUESTION)
    assert answer.answered and answer.hits[0].passage.source == "data-scientist.md"


def test_a_build_killed_before_the_switch_leaves_a_folder_the_next_build_drops_not_the_live_one(
    copied: tuple[Path, Path], real_embedder: Any
) -> None:
    """The killed run renamed its version into place but never made it live; being the newest folder
    must not save it from the next build's prune, nor cost the version readers were still opening."""
    knowledge, index_dir = copied
    live = _live(index_dir)
    versions_before = set(index_dir.glob("v-*"))
    write_docs(knowledge, NEW_DOC)
    process = _index_command(knowledge, index_dir, "before-switch")
    try:
        _wait_for_line(process, "PAUSED before-switch")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    (leftover,) = set(index_dir.glob("v-*")) - versions_before  # renamed into place, never live
    assert _live(index_dir) == live

    service = make_service(knowledge, index_dir, real_embedder)
    assert service.reindex().wrote_new_version
    new = _live(index_dir)
    assert new not in (live, leftover)
    # The version live until this build is kept for readers still opening it: whole and loadable.
    assert live.is_dir(), f"{live.name}, live until this build, was pruned; {leftover.name} was kept"
    passages = (live / store.PASSAGES_FILE).read_text().splitlines()
    assert store.read_manifest(live).passage_count == len(passages)
    assert (live / store.VECTORS_FILE).is_file()
    assert not leftover.exists()
    assert set(index_dir.glob("v-*")) == {live, new}
    answer = service.ask(DATA_QUESTION)
    assert answer.answered and answer.hits[0].passage.source == "data-scientist.md"


def test_a_killed_index_run_leaves_no_lock_behind(copied: tuple[Path, Path], real_embedder: Any) -> None:
    """The build lock is an flock: the kernel drops it with the process, so the next reindex runs at once."""
    knowledge, index_dir = copied
    write_docs(knowledge, NEW_DOC)
    process = _index_command(knowledge, index_dir, "passages-written")
    try:
        _wait_for_line(process, "PAUSED passages-written")
        busy = make_service(knowledge, index_dir, real_embedder)
        with pytest.raises(RolecallError, match="another reindex"):
            busy.reindex()  # the child holds the lock while paused
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    report = make_service(knowledge, index_dir, real_embedder).reindex()
    assert report.wrote_new_version and "data-scientist.md" in report.added


def test_a_killed_first_build_leaves_no_index_and_the_next_ask_builds_one(
    tmp_path: Path, cli_with_shared_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    knowledge = write_docs(tmp_path / "knowledge", SMALL_KNOWLEDGE)
    index_dir = tmp_path / "index"
    process = _index_command(knowledge, index_dir, "build-complete")
    try:
        _wait_for_line(process, "PAUSED build-complete")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert store.current_version(index_dir) is None and list(index_dir.glob(".build-*"))
    with pytest.raises(IndexMissingError):
        SearchIndex.open(index_dir)

    assert (
        main(["ask", PAY_QUESTION, "--json", "--knowledge", str(knowledge), "--index", str(index_dir)]) == 0
    )
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == f"no index in {index_dir} yet; building the index from {knowledge}…"
    assert json.loads(out)["passages"][0]["source"] == PAY_SOURCE
    assert not list(index_dir.glob(".build-*"))


# -- damaged index files -------------------------------------------------------------------------------


def _live(index_dir: Path) -> Path:
    version = store.current_version(index_dir)
    assert version is not None
    return version


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage(index_dir: Path, kind: str) -> None:
    live = _live(index_dir)
    if kind == "truncated dense vectors":
        # vectors.npy feeds FAISS; a persisted FAISS file (if a version has one) is cut as well.
        for name in ("dense.faiss", store.VECTORS_FILE):
            if (live / name).exists():
                _truncate(live / name)
    elif kind == "garbage manifest":
        (live / store.MANIFEST_FILE).write_bytes(os.urandom(512))
    elif kind == "manifest of the wrong shape":
        (live / store.MANIFEST_FILE).write_text(json.dumps({"documents": "none", "hello": 1}))
    elif kind == "truncated passages":
        _truncate(live / store.PASSAGES_FILE)
    elif kind == "damaged keyword index":
        for path in (live / "keyword").iterdir():
            path.write_bytes(b"\x00garbage")
    elif kind == "CURRENT names a missing version":
        (index_dir / store.CURRENT_FILE).write_text("v-19990101T000000-gone")
    elif kind == "garbage CURRENT":
        (index_dir / store.CURRENT_FILE).write_bytes(b"../../\x00\xff")
    else:  # pragma: no cover
        raise AssertionError(kind)


DAMAGE = (
    "truncated dense vectors",
    "garbage manifest",
    "manifest of the wrong shape",
    "truncated passages",
    "damaged keyword index",
    "CURRENT names a missing version",
    "garbage CURRENT",
)


@pytest.fixture
def cli_with_shared_model(monkeypatch: pytest.MonkeyPatch, real_embedder: Any) -> None:
    """`rolecall` commands in this process, using the session's loaded model instead of loading another."""
    monkeypatch.setattr("bot.cli.RolecallService", lambda config: RolecallService(config, real_embedder))


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_index_gives_one_clear_line_and_is_rebuilt_from_the_knowledge(
    kind: str,
    copied: tuple[Path, Path],
    cli_with_shared_model: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    knowledge, index_dir = copied
    locations = ["--knowledge", str(knowledge), "--index", str(index_dir)]

    _damage(index_dir, kind)
    assert main(["ask", PAY_QUESTION, "--json", *locations]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.endswith(f"building the index from {knowledge}…"), first
    assert any(word in first for word in ("damaged", "manifest", "does not name")), first
    answer = json.loads(out)
    assert answer["answered"] and answer["passages"][0]["source"] == PAY_SOURCE

    _damage(index_dir, kind)
    assert main(["index", *locations]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].startswith("rebuilt from scratch: "), out
    assert lines[2] == "index updated" and "added 3" in lines[3]
    SearchIndex.open(index_dir)  # whole again


# -- a knowledge folder that disappears during a reindex -------------------------------------------


def _vanish_when_scanned(folder: Path, vanished: list[str]) -> Any:
    def progress(message: str) -> None:
        if message.startswith(f"scanning {folder}:") and not vanished:
            shutil.rmtree(folder)  # the files are listed; now each read fails
            vanished.append(message)

    return progress


def test_the_only_knowledge_folder_vanishing_mid_reindex_fails_and_the_old_index_serves(
    copied: tuple[Path, Path], real_embedder: Any
) -> None:
    knowledge, index_dir = copied
    service = make_service(knowledge, index_dir, real_embedder)
    service.open()
    before = store.current_version(index_dir)
    write_docs(knowledge, NEW_DOC)
    vanished: list[str] = []
    with pytest.raises(RolecallError) as failure:
        service.reindex(progress=_vanish_when_scanned(knowledge, vanished))
    assert vanished and "\n" not in str(failure.value)
    assert str(knowledge) in str(failure.value)
    assert store.current_version(index_dir) == before
    _answers_pay(service)
    _answers_pay(make_service(knowledge, index_dir, real_embedder))  # and after a restart


def test_one_of_two_knowledge_folders_vanishing_mid_reindex_fails_instead_of_dropping_its_documents(
    tmp_path: Path, real_embedder: Any
) -> None:
    roles = write_docs(tmp_path / "roles", {k: SMALL_KNOWLEDGE[k] for k in ("senior-back-end-engineer.md",)})
    more = write_docs(
        tmp_path / "more", {k: v for k, v in SMALL_KNOWLEDGE.items() if k != "senior-back-end-engineer.md"}
    )
    config = ServiceConfig((roles, more), tmp_path / "index", "", 3, 0.42, 20 * 1024 * 1024)
    service = RolecallService(config, real_embedder)
    service.open()
    before = store.current_version(tmp_path / "index")
    write_docs(more, NEW_DOC)
    vanished: list[str] = []
    with pytest.raises(RolecallError) as failure:
        service.reindex(progress=_vanish_when_scanned(more, vanished))
    assert vanished and str(more) in str(failure.value)
    assert store.current_version(tmp_path / "index") == before
    _answers_pay(service)
    sources = {p.source for p in SearchIndex.open(tmp_path / "index").passages}
    assert sources == set(SMALL_KNOWLEDGE)


def admin_over(
    copied: tuple[Path, Path], real_embedder: Any
) -> tuple[RolecallService, RecordStore, AdminActions]:
    """A service over the test's copy, its record store, and admin actions that UADMIN may take on Slack."""
    _, index_dir = copied
    service = make_service(*copied, real_embedder)
    service.open()
    records = RecordStore(index_dir.parent / "data" / "rolecall.sqlite3")
    return service, records, AdminActions(service, records, frozenset({"slack:UADMIN"}))


async def test_an_admin_reindex_reports_a_vanished_folder_and_audits_the_failure(
    copied: tuple[Path, Path], real_embedder: Any
) -> None:
    knowledge, _ = copied
    service, records, admin = admin_over(copied, real_embedder)
    shutil.rmtree(knowledge)
    outcome = await admin.reindex("slack", "UADMIN")
    assert outcome.result == "failed"
    assert outcome.message.startswith("Reindex failed, the previous index keeps serving: ")
    assert str(knowledge) in outcome.message
    assert [(e.action, e.result) for e in records.audit_entries()] == [("reindex", "failed")]
    answer = await service.ask_async(PAY_QUESTION)
    assert answer.hits[0].passage.source == PAY_SOURCE


async def test_an_admin_reindex_cancelled_while_it_builds_is_audited_when_the_build_ends(
    copied: tuple[Path, Path], real_embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An adapter that stops cancels the requests still running; the build in its thread goes on and swaps
    # the index in, so the attempt must still be audited (it was not: the row was written after the await).
    knowledge, _ = copied
    service, records, admin = admin_over(copied, real_embedder)
    write_docs(knowledge, NEW_DOC)
    building, release = threading.Event(), threading.Event()
    real_reindex = service.reindex

    def held_reindex(*args: Any, **kwargs: Any) -> Any:
        building.set()
        release.wait(30)
        return real_reindex(*args, **kwargs)

    monkeypatch.setattr(service, "reindex", held_reindex)
    request = asyncio.create_task(admin.reindex("slack", "UADMIN"))
    assert await asyncio.to_thread(building.wait, 30)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    release.set()
    for _ in range(600):
        if records.audit_entries():
            break
        await asyncio.sleep(0.1)
    assert [(e.action, e.result) for e in records.audit_entries()] == [("reindex", "allowed")]
    assert "added 1" in records.audit_entries()[0].detail
    answer = await service.ask_async("What does a data scientist do?")
    assert answer.hits[0].passage.source == "data-scientist.md"


# -- the record store locked or read-only ------------------------------------------------------------


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "rolecall.sqlite3"
    assert RecordStore(path).record_vote("slack", "U0", "earlier question", ["a.md"], "up")
    return path


def _locked(path: Path) -> Iterator[None]:
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def _read_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(0o755)
            path.chmod(0o644)
        return
    # root writes through file modes, so open the store the way a read-only mount behaves.
    connect = sqlite3.connect

    def read_only(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if Path(database) == path:
            return connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    yield


def _not_a_database(path: Path) -> Iterator[None]:
    path.write_bytes(b"this is not an SQLite file " * 200)
    yield


@pytest.fixture(params=["locked", "read-only", "not a database"])
def broken_store(
    request: pytest.FixtureRequest, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "locked":
        fault = _locked(store_path)
    elif request.param == "read-only":
        fault = _read_only(store_path, monkeypatch)
    else:
        fault = _not_a_database(store_path)
    next(fault)
    try:
        yield request.param
    finally:
        next(fault, None)
    if request.param != "not a database":  # nothing half-written
        assert [v.question for v in RecordStore(store_path).votes()] == ["earlier question"]


async def test_a_broken_record_store_logs_the_failure_and_answers_still_flow(
    broken_store: str,
    store_path: Path,
    copied: tuple[Path, Path],
    real_embedder: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the Slack adapter: a DM is answered, a vote still says thanks, an admin still reindexes."""
    from adapters.slack_blocks import VOTE_UP
    from tests.fake_slack import FakeSlack, block_actions, wait_for
    from tests.test_slack import dm, running

    caplog.set_level(logging.INFO)
    knowledge, index_dir = copied
    service = make_service(knowledge, index_dir, real_embedder)
    service.open()
    records = RecordStore(store_path)
    fake = await FakeSlack().start()
    try:
        async with running(fake, service, records, admins=frozenset({"slack:UALICE"})) as run:
            status, _, _ = await run.slack.event(dm(PAY_QUESTION, channel="D7", ts="1700000007.000100"))
            assert status == 200
            call = (await wait_for(lambda: fake.of("chat.postMessage"), "the answer"))[0]
            assert call.data["channel"] == "D7" and PAY_SOURCE in json.dumps(call.data["blocks"])
            up = next(
                e
                for b in call.data["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
                if e["action_id"] == VOTE_UP
            )
            message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "ts": call.response["ts"]}
            message.update(text=call.data["text"], blocks=call.data["blocks"])
            click = block_actions(VOTE_UP, up["value"], "UALICE", fake.response_url("vote"), message, "D7")
            assert (await run.slack.action(click))[0] == 200
            await wait_for(lambda: fake.of("chat.update"), "the thank-you", timeout=30)

            write_docs(knowledge, NEW_DOC)
            outcome = await run.adapter.admin.reindex("slack", "UALICE")
            assert outcome.result == "allowed" and "added: data-scientist.md" in outcome.message
            assert run.adapter.is_connected()
        failures = [r for r in caplog.records if "could not write to the record store" in r.getMessage()]
        assert len(failures) == 2 and all(r.levelno == logging.ERROR for r in failures)  # vote + audit
        assert "Traceback" not in caplog.text
    finally:
        await fake.stop()


# -- the disk fills up while a new version is written ------------------------------------------------


@pytest.mark.parametrize("where", ["vectors.npy", "CURRENT"])
def test_a_full_disk_during_a_reindex_is_one_line_and_the_old_index_serves(
    where: str,
    copied: tuple[Path, Path],
    cli_with_shared_model: None,
    real_embedder: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    import numpy as np

    knowledge, index_dir = copied
    before = store.current_version(index_dir)
    write_docs(knowledge, NEW_DOC)
    real_save, real_replace = np.save, os.replace

    def full(path: Any) -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def save(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).endswith(store.VECTORS_FILE):
            raise full(path)
        real_save(path, *args, **kwargs)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(dst).name == store.CURRENT_FILE:
            raise full(dst)
        real_replace(src, dst, *args, **kwargs)

    if where == "CURRENT":
        monkeypatch.setattr(os, "replace", replace)
    else:
        monkeypatch.setattr(np, "save", save)
    assert main(["index", "--knowledge", str(knowledge), "--index", str(index_dir)]) == 2
    _, err = capsys.readouterr()
    *progress, error = err.strip().splitlines()  # "scanning …", "embedding …", then the one error line
    assert "Traceback" not in err and not any(line.startswith("rolecall: error") for line in progress), err
    assert error.startswith("rolecall: error: ") and "No space left on device" in error
    assert store.current_version(index_dir) == before and not list(index_dir.glob(".build-*"))
    assert not list(index_dir.glob(f".{store.CURRENT_FILE}.*"))
    service = make_service(knowledge, index_dir, real_embedder)
    _answers_pay(service)
    # From chat: the admin is told, the attempt is audited, answers go on.
    records = RecordStore(index_dir.parent / "data" / "rolecall.sqlite3")
    outcome = asyncio.run(
        AdminActions(service, records, frozenset({"slack:UADMIN"})).reindex("slack", "UADMIN")
    )
    assert outcome.result == "failed" and "No space left on device" in outcome.message
    assert [(e.action, e.result) for e in records.audit_entries()] == [("reindex", "failed")]
    _answers_pay(service)

    monkeypatch.setattr(np, "save", real_save)  # space again: the next reindex publishes
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["index", "--knowledge", str(knowledge), "--index", str(index_dir)]) == 0
    assert "added: data-scientist.md" in capsys.readouterr().out
