"""Rate limit, long questions, /healthz and /metrics through the real adapters, fake Slack and Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.discord import DiscordAdapter, DiscordConfig
from adapters.slack import SlackAdapter, SlackConfig
from adapters.slack_blocks import VOTE_UP
from bot.admin import AdminActions
from bot.conversation import Conversation, cut_question, try_again_text
from bot.metrics import Metrics
from bot.records import RecordStore
from bot.serve import run_adapters
from bot.service import RolecallService
from tests.conftest import SMALL_KNOWLEDGE, make_service, write_docs
from tests.fake_discord import DM_CHANNEL_ID, FakeDiscord, user
from tests.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    SlackClient,
    block_actions,
    free_port,
    wait_for,
)

PAY_QUESTION = "what does a senior back-end engineer earn?"
DISCORD_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.fake.discord-bot-token-for-ops-tests"


class FakeClock:
    """A monotonic clock that only moves when the test says so: no test depends on real time passing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> RolecallService:
    root = tmp_path_factory.mktemp("ops-chat")
    opened = make_service(write_docs(root / "knowledge", SMALL_KNOWLEDGE), root / "index", real_embedder)
    opened.open()
    return opened


def metric_values(page: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} from a Prometheus text page."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def dm_event(text: str, ts: str, user_id: str = "UALICE", channel: str = "D1") -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": user_id,
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }


def texts_of(blocks: Any) -> str:
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                if key == "text" and isinstance(inner, str):
                    found.append(inner)
                else:
                    walk(inner)
        elif isinstance(item, list):
            for inner in item:
                walk(inner)

    walk(blocks)
    return "\n".join(found)


@contextlib.asynccontextmanager
async def serving(
    adapter: Any, service: RolecallService, metrics: Metrics, port: int
) -> AsyncIterator[asyncio.Task[None]]:
    """`run_adapters` as `rolecall serve` runs it, stopped (and awaited, bounded) on the way out."""
    stop = asyncio.Event()
    server = asyncio.create_task(
        run_adapters([adapter], "127.0.0.1", port, stop, service=service, metrics=metrics)
    )
    try:
        await wait_for(lambda: adapter.is_connected() or server.done(), "the adapter to start")
        if server.done():
            server.result()
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


async def test_slack_rate_limit_long_questions_health_and_metrics(
    service: RolecallService, tmp_path: Path
) -> None:
    clock = FakeClock()
    metrics = Metrics()
    records = RecordStore(tmp_path / "data" / "rolecall.sqlite3")
    conversation = Conversation(
        service, records, rate_limit=10, max_question_chars=60, metrics=metrics, clock=clock
    )
    fake = await FakeSlack().start()
    port = free_port()
    adapter = SlackAdapter(
        SlackConfig(BOT_TOKEN, SIGNING_SECRET, api_url=fake.api_url),
        service,
        AdminActions(service, records, frozenset()),
        conversation=conversation,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with serving(adapter, service, metrics, port), aiohttp.ClientSession() as http:
            slack = SlackClient(f"{base}/slack/events", session=http)

            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
                health = await response.json()
            assert health["status"] == "ok" and health["adapters"] == {"slack": True}
            assert health["index"] == {"loaded": True, "passages": service.passage_count}
            assert health["index"]["passages"] > 0 and health["model"]

            # Ten questions in the same minute are answered.
            for number in range(10):
                await slack.event(dm_event(PAY_QUESTION, ts=f"1700000100.{number:06d}"))
            answers = await wait_for(lambda: len(fake.posts("D1")) >= 10 and fake.posts("D1"), "ten answers")
            assert all(post.get("blocks") for post in answers)

            # The eleventh, 18 seconds later, gets the friendly limit reply instead of an answer.
            clock.now += 18
            await slack.event(dm_event(PAY_QUESTION, ts="1700000100.000011"))
            limited = (await wait_for(lambda: fake.posts("D1")[10:], "the rate-limit reply"))[0]
            assert "blocks" not in limited
            assert limited["text"] == (
                "You've asked 10 questions in the last minute, which is my limit."
                " Please try again in 42 seconds."
            )

            # The limit is per user: someone else is answered at the same moment.
            await slack.event(dm_event(PAY_QUESTION, ts="1700000100.000012", user_id="UBOB", channel="D2"))
            bob = (await wait_for(lambda: fake.posts("D2"), "Bob's answer"))[0]
            assert "$120,000" in texts_of(bob["blocks"])

            # A minute after her first question, Alice may ask again.
            clock.now += 43
            await slack.event(dm_event(PAY_QUESTION, ts="1700000100.000013"))
            again = (await wait_for(lambda: fake.posts("D1")[11:], "Alice's next answer"))[0]
            assert "$120,000" in texts_of(again["blocks"])

            # A long question is cut, answered, and the answer says it was cut.
            long_question = (PAY_QUESTION + " I am asking because " + "I really want to know. " * 20).strip()
            await slack.event(dm_event(long_question, ts="1700000100.000014", user_id="UCAROL", channel="D3"))
            cut_post = (await wait_for(lambda: fake.posts("D3"), "the answer to the long question"))[0]
            body = texts_of(cut_post["blocks"])
            kept, _ = cut_question(long_question, 60)
            assert f"*You asked:* {kept}" in body and len(kept) <= 60
            assert (
                f"Your question was cut to its first {len(kept)} of {len(long_question)} characters" in body
            )
            assert "(the limit is 60)" in body and "$120,000" in body

            # A vote is counted too.
            button = next(
                element
                for block in bob["blocks"]
                if block["type"] == "actions"
                for element in block["elements"]
                if element["action_id"] == VOTE_UP
            )
            await slack.action(
                block_actions(VOTE_UP, button["value"], "UBOB", fake.response_url("vote"), None, "D2")
            )
            await wait_for(lambda: fake.responses("vote"), "the thank-you")

            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                samples = metric_values(await response.text())
    finally:
        await fake.stop()

    questions = "rolecall_questions_total"
    # 13 questions, and Bob's vote on his private answer: Slack leaves the answer out of that click, so
    # it is searched again, counted (and rate limited) as a question
    assert value(samples, questions, platform="slack", outcome="answered") == 14
    assert value(samples, questions, platform="slack", outcome="rate_limited") == 1
    assert value(samples, "rolecall_answer_seconds_count", platform="slack") == 14
    assert value(samples, "rolecall_passages_indexed") == service.passage_count
    assert value(samples, "rolecall_feedback_votes_total", platform="slack", vote="up") == 1
    assert [v.vote for v in records.votes()] == ["up"]


async def test_discord_eleventh_question_in_a_minute_gets_the_limit_reply(
    service: RolecallService, tmp_path: Path
) -> None:
    clock = FakeClock()
    metrics = Metrics()
    records = RecordStore(tmp_path / "data" / "rolecall.sqlite3")
    conversation = Conversation(service, records, metrics=metrics, clock=clock)  # the default 10 a minute
    fake = await FakeDiscord().start()
    port = free_port()
    adapter = DiscordAdapter(
        DiscordConfig(
            token=DISCORD_TOKEN, api_url=fake.api_url, gateway_url=fake.gateway_url, guild_ready_timeout=0.05
        ),
        service,
        AdminActions(service, records, frozenset()),
        conversation,
    )
    path = f"/channels/{DM_CHANNEL_ID}/messages"
    try:
        async with serving(adapter, service, metrics, port), aiohttp.ClientSession() as http:
            for _ in range(10):
                await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))
            answers = await fake.wait_for("POST", path, count=10)
            assert all(call.body.get("embeds") for call in answers)

            await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))
            limited = (await fake.wait_for("POST", path, count=11))[10]
            assert not limited.body.get("embeds")
            assert "10 questions in the last minute" in limited.body["content"]
            assert limited.body["content"].endswith("Please try again in a minute.")

            # Another user is still answered.
            other = user(940_000_000_000_000_555, "colleague")
            await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True, author=other))
            assert (await fake.wait_for("POST", path, count=12))[11].body.get("embeds")

            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["adapters"] == {"discord": True}
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                samples = metric_values(await response.text())
    finally:
        await fake.stop()
    assert value(samples, "rolecall_questions_total", platform="discord", outcome="answered") == 11
    assert value(samples, "rolecall_questions_total", platform="discord", outcome="rate_limited") == 1
    for outcome in ("refused", "error"):  # declared up front, so dashboards and alerts see a 0
        assert value(samples, "rolecall_questions_total", platform="discord", outcome=outcome) == 0


async def test_an_off_topic_question_counts_as_refused_and_a_failure_as_error(
    service: RolecallService, tmp_path: Path
) -> None:
    metrics = Metrics()
    conversation = Conversation(service, metrics=metrics)
    from bot.answer import Question

    reply = await conversation.ask(Question("what is a good sourdough recipe?", "U1", "C1", "slack"))
    assert reply.answer is not None and not reply.answer.answered

    class Broken(RolecallService):
        async def ask_async(self, question: str, k: int | None = None) -> Any:
            raise RuntimeError("the index went away")

    broken = Conversation(Broken.__new__(Broken), metrics=metrics)
    with pytest.raises(RuntimeError):
        await broken.ask(Question("anything", "U1", "C1", "slack"))
    samples = metric_values(metrics.render().decode())
    assert value(samples, "rolecall_questions_total", platform="slack", outcome="refused") == 1
    assert value(samples, "rolecall_questions_total", platform="slack", outcome="error") == 1


def test_two_metrics_objects_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.count_question("slack", "answered", 0.1)
    assert (
        value(
            metric_values(first.render().decode()),
            "rolecall_questions_total",
            platform="slack",
            outcome="answered",
        )
        == 1
    )
    assert "rolecall_questions_total{" not in second.render().decode()


def test_limit_reply_wording_and_cutting_at_a_word() -> None:
    assert try_again_text(41.2) == "in 42 seconds"
    assert try_again_text(0.2) == "in 1 second"
    assert try_again_text(60) == "in a minute"
    assert cut_question("short", 10) == ("short", False)
    assert cut_question("one two three four", 12) == ("one two", True)
    assert cut_question("x" * 30, 10) == ("x" * 10, True)
    assert json.dumps(cut_question("é" * 5, 3)) == json.dumps(("ééé", True))
