"""Replicas sharing one records database (SQLite file, real Postgres): votes, audit, Slack event de-duplication."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.records import ClaimStore, RecordStore, user_hash
from bot.service import RolecallService
from bot.settings import SettingsError, load_settings
from tests.conftest import SMALL_KNOWLEDGE, make_service, write_docs
from tests.fake_slack import FakeSlack, free_port, wait_for
from tests.postgres import new_database, start_postgres
from tests.test_slack import mention, running

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty records database: a SQLite file, then a database on a real Postgres server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared' / 'rolecall.sqlite3'}"
    return new_database(request.getfixturevalue("postgres"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> RolecallService:
    root = tmp_path_factory.mktemp("replicas")
    service = make_service(write_docs(root / "knowledge", SMALL_KNOWLEDGE), root / "index", real_embedder)
    service.open()
    return service


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    yield slack
    await slack.stop()


def test_votes_and_audit_round_trip_and_the_cli_reads_them(database_url, monkeypatch, capsys):
    one, two = RecordStore(database_url), RecordStore(database_url)  # two replicas
    assert one.record_vote("slack", "UALICE", "what does an SRE do?", ["site-reliability-engineer.md"], "up")
    assert two.record_vote("discord", "42", "pay?", ["a.md", "b.md"], "down")
    assert two.record_admin_action("slack", "UBOB", "reindex", "refused")
    assert [(v.platform, v.user_hash, v.sources, v.vote) for v in one.votes()] == [
        ("slack", user_hash("slack", "UALICE"), ("site-reliability-engineer.md",), "up"),
        ("discord", user_hash("discord", "42"), ("a.md", "b.md"), "down"),
    ]
    monkeypatch.setenv("ROLECALL_DATABASE_URL", database_url)
    assert main(["feedback"]) == 0
    out = capsys.readouterr().out
    assert "what does an SRE do?" in out and out.rstrip().endswith("2 votes: 1 up, 1 down")
    assert main(["audit"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 admin action")


def test_a_key_is_claimed_once_until_its_window_ends(database_url):
    replica_a, replica_b = ClaimStore(database_url, ttl=60), ClaimStore(database_url, ttl=60)
    assert replica_a.claim(["event:Ev1", "message:C1:1.0"], now=1000)
    assert not replica_b.claim(["event:Ev1"], now=1001)  # the other replica got it first
    assert not replica_b.claim(["event:Ev2", "message:C1:1.0"], now=1002)  # same message, other event
    assert replica_b.claim(["event:Ev3"], now=1003)
    assert replica_b.claim(["event:Ev1"], now=1061)  # the window is over: a new delivery
    replica_a.claim(["event:Ev4"], now=1200)  # now and then, a claim deletes rows older than the window
    assert replica_a.count() == 1


def test_unsupported_database_urls_stop_start_up_with_one_line(monkeypatch):
    monkeypatch.setenv("ROLECALL_DATABASE_URL", "mysql://db/rolecall")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).count("\n") == 0
    assert "ROLECALL_DATABASE_URL" in str(error.value) and "postgresql://" in str(error.value)
    monkeypatch.setenv("ROLECALL_DATABASE_URL", "postgresql://rolecall:s3cret@db:5432/rolecall")
    assert "s3cret" not in repr(load_settings())


async def test_two_replicas_answer_a_doubled_and_retried_event_once(fake, service, database_url):
    # Two `rolecall serve` replicas, each with its own in-memory filter, one database between them.
    async with (
        running(fake, service, RecordStore(database_url)) as a,
        running(fake, service, RecordStore(database_url)) as b,
    ):
        question = mention("<@UBOT> what does a site reliability engineer do?", ts="1700000010.000100")
        # Slack delivers the event to one replica and (ack too slow) retries it at the other, both at once
        first = await asyncio.gather(
            a.slack.event(question, event_id="EvTWICE"),
            b.slack.event(question, event_id="EvTWICE", headers=RETRY),
        )
        later = await a.slack.event(question, event_id="EvTWICE", headers={**RETRY, "X-Slack-Retry-Num": "2"})
        other = mention("<@UBOT> which tools do site reliability engineers use?", ts="1700000010.000200")
        answered = await b.slack.event(other, event_id="EvOTHER")
        assert [r[0] for r in (*first, later, answered)] == [200, 200, 200, 200]
        await wait_for(lambda: len(fake.posts("C1")) >= 2, "both answers")
        assert await a.adapter.drain(20) and await b.adapter.drain(20)
    posts = fake.posts("C1")
    assert sorted(p["thread_ts"] for p in posts) == ["1700000010.000100", "1700000010.000200"]


async def test_an_unreachable_database_still_answers_and_logs_one_line(fake, service, caplog):
    down = f"postgresql://rolecall:s3cret@127.0.0.1:{free_port()}/rolecall"  # nothing listens there
    caplog.set_level(logging.WARNING)
    async with running(fake, service, RecordStore(down)) as run:
        question = mention("<@UBOT> what does a site reliability engineer do?", ts="1700000011.000100")
        assert (await run.slack.event(question, event_id="EvDOWN"))[0] == 200
        await wait_for(lambda: fake.posts("C1"), "the answer")
        await run.slack.event(question, event_id="EvDOWN", headers=RETRY)  # the in-memory filter holds
        assert await run.adapter.drain(20)
    assert len(fake.posts("C1")) == 1
    lines = [r.getMessage() for r in caplog.records if "de-duplication store" in r.getMessage()]
    assert len(lines) == 1 and "answering anyway" in lines[0] and "127.0.0.1" in lines[0]
    assert "s3cret" not in caplog.text


def test_replicas_racing_for_the_same_events_each_win_a_key_exactly_once(database_url):
    keys = [f"event:Ev{n}" for n in range(60)]
    wins: dict[str, list[str]] = {key: [] for key in keys}

    def replica(name: str) -> None:
        store = ClaimStore(database_url, ttl=900)
        for key in keys:
            if store.claim([key, f"message:C1:{key}"]):
                wins[key].append(name)

    ClaimStore(database_url, ttl=900).count()  # tables created before the race
    threads = [threading.Thread(target=replica, args=(f"r{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(winners) == 1 for winners in wins.values()), wins
