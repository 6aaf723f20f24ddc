"""The Slack adapter end to end: signed requests through real slack-bolt, a fake Slack Web API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from adapters.seen import SeenEvents
from adapters.slack import SlackAdapter, SlackConfig, SlackConfigError, SlackStartError
from adapters.slack_blocks import (
    FEEDBACK_BLOCK,
    MAX_BLOCKS,
    MAX_TEXT,
    MAX_VALUE,
    SHARE,
    VOTE_DOWN,
    VOTE_UP,
    answer_blocks,
    button_value,
    from_slack,
    read_button_value,
)
from bot.admin import AdminActions
from bot.answer import Answer
from bot.conversation import Conversation
from bot.metrics import Metrics
from bot.records import RecordStore, user_hash
from bot.serve import build_adapters, run_adapters
from bot.service import RolecallService
from bot.settings import SettingsError, load_settings
from index.types import Hit, Passage
from tests.conftest import REPO, SMALL_KNOWLEDGE, held_answers, make_service, write_docs
from tests.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlack,
    SlackClient,
    block_actions,
    free_port,
    wait_for,
)

PAY_QUESTION = "<@UBOT> what does a senior back-end engineer earn?"
PAY_HIGHLIGHT = "*In the United States a senior back-end software engineer earns about $120,000"


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> RolecallService:
    """One read-only service over the small knowledge for the tests that only ask questions."""
    root = tmp_path_factory.mktemp("slack-shared")
    service = make_service(write_docs(root / "knowledge", SMALL_KNOWLEDGE), root / "index", real_embedder)
    service.open()
    return service


@pytest.fixture
def own_service(small_knowledge: Path, tmp_path: Path, real_embedder: Any) -> RolecallService:
    """A service of the test's own, for tests that change the knowledge and reindex."""
    service = make_service(small_knowledge, tmp_path / "index", real_embedder)
    service.open()
    return service


@pytest.fixture
def records(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "data" / "rolecall.sqlite3")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    yield slack
    await slack.stop()


@dataclass
class Running:
    adapter: SlackAdapter
    slack: SlackClient
    fake: FakeSlack


@contextlib.asynccontextmanager
async def running(
    fake: FakeSlack,
    service: RolecallService,
    records: RecordStore,
    *,
    admins: frozenset[str] = frozenset(),
    trust_workspace_admins: bool = False,
    socket_mode: bool = False,
    working_sign_after: float = 1.0,
    conversation: Conversation | None = None,
) -> AsyncIterator[Running]:
    """The adapter on the shared aiohttp server of `rolecall serve`, pointed at the fake Slack."""
    settings = load_settings(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_APP_TOKEN=APP_TOKEN if socket_mode else None,
        SLACK_API_URL=fake.api_url,
        ROLECALL_SLACK_TRUST_WORKSPACE_ADMINS=trust_workspace_admins,
    )
    admin = AdminActions(service, records, admins)
    adapter = SlackAdapter(
        SlackConfig.from_settings(settings),
        service,
        admin,
        working_sign_after=working_sign_after,
        conversation=conversation,
    )
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(run_adapters([adapter], "127.0.0.1", port, stop))
    try:
        await wait_for(lambda: adapter.is_connected() or server.done(), "the adapter to start")
        if server.done():
            server.result()  # start-up failed: raise it here
        async with aiohttp.ClientSession() as session:
            yield Running(
                adapter, SlackClient(f"http://127.0.0.1:{port}/slack/events", session=session), fake
            )
    finally:
        stop.set()
        await asyncio.wait_for(server, 30)


def mention(text: str, ts: str = "1700000000.000100", channel: str = "C1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "UALICE",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        **extra,
    }


def dm(text: str, ts: str = "1700000001.000100", channel: str = "D1", **extra: Any) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": "UALICE",
        "text": text,
        "ts": ts,
    }
    return {**event, "event_ts": ts, **extra}


def command(text: str, response_url: str, user: str = "UALICE") -> dict[str, str]:
    return {
        "token": "unused",
        "team_id": "T1",
        "team_domain": "test",
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/career",
        "text": text,
        "api_app_id": "A1",
        "response_url": response_url,
        "trigger_id": "1.2.3",
    }


def texts(value: Any) -> Iterator[str]:
    """Every string under a "text" key in a Block Kit structure."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def all_text(blocks: Any) -> str:
    return "\n".join(texts(blocks))


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks if b["type"] == "actions" for e in b["elements"]}


def with_blocks(responses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in responses if r.get("blocks")]


def check_limits(message: dict[str, Any]) -> None:
    assert len(message["blocks"]) <= MAX_BLOCKS
    assert all(len(t) <= MAX_TEXT for t in texts(message["blocks"]))
    assert len(message["text"]) <= MAX_TEXT
    assert all(len(b["value"]) <= MAX_VALUE for b in buttons(message["blocks"]).values())


# -- questions ----------------------------------------------------------------------------------


async def test_mention_is_answered_in_its_thread_with_the_right_passage(
    fake, shared_service, records, monkeypatch
):
    release = held_answers(shared_service, monkeypatch)
    async with running(fake, shared_service, records) as run:
        # Slack wants the event acknowledged within 3 s: it is, while the answer is still being made.
        status, _, _ = await asyncio.wait_for(run.slack.event(mention(PAY_QUESTION)), 30)
        assert status == 200 and not fake.posts()
        release.set()
        post = (await wait_for(lambda: fake.posts("C1"), "the answer"))[0]
        assert post["thread_ts"] == "1700000000.000100"
        body = all_text(post["blocks"])
        assert "*You asked:* what does a senior back-end engineer earn?" in body
        assert "Senior Back-End Software Engineer › Pay" in body
        assert PAY_HIGHLIGHT in body  # the answering sentence in bold
        assert "`senior-back-end-engineer.md`" in body
        # no per-passage number: the order is the ranking, and a cosine shown beside it could contradict it
        assert "relevance" not in body
        assert post["text"].startswith("Senior Back-End Software Engineer › Pay: In the United States")
        assert post["parse"] == "none" and "link_names" not in post
        assert set(buttons(post["blocks"])) == {VOTE_UP, VOTE_DOWN}
        check_limits(post)

        # a mention inside a thread is answered in that same thread
        in_thread = mention("<@UBOT> which tools do site reliability engineers use?", ts="1700000000.000300")
        await run.slack.event({**in_thread, "thread_ts": "1700000000.000200"})
        reply = (await wait_for(lambda: fake.posts("C1")[1:], "the threaded answer"))[0]
        assert reply["thread_ts"] == "1700000000.000200"
        assert "Kubernetes" in all_text(reply["blocks"])


async def test_dm_is_answered_in_the_dm_without_a_mention(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        status, _, _ = await run.slack.event(dm("which tools do site reliability engineers use?"))
        assert status == 200
        post = (await wait_for(lambda: fake.posts("D1"), "the DM answer"))[0]
        assert "thread_ts" not in post
        assert "Kubernetes" in all_text(post["blocks"]) and "site-reliability-engineer.md" in all_text(
            post["blocks"]
        )


async def test_a_greeting_gets_the_usage_message_not_a_search(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        await run.slack.event(dm("hi!"))
        await run.slack.event(mention("<@UBOT> help", ts="1700000000.000500"))
        dm_post = (await wait_for(lambda: fake.posts("D1"), "the DM usage"))[0]
        channel_post = (await wait_for(lambda: fake.posts("C1"), "the channel usage"))[0]
        for post in (dm_post, channel_post):
            assert post["text"].startswith("*Rolecall* answers career questions")
            assert "reindex" in post["text"]
        assert channel_post["thread_ts"] == "1700000000.000500"


async def test_slow_answer_shows_a_working_reaction_until_posted(fake, shared_service, records):
    async with running(fake, shared_service, records, working_sign_after=0.0) as run:
        await run.slack.event(dm("what does a site reliability engineer do?", ts="1700000002.000100"))
        await wait_for(lambda: fake.of("reactions.remove"), "the working reaction to go")
        names = [
            c.method
            for c in fake.calls
            if c.method in ("reactions.add", "chat.postMessage", "reactions.remove")
        ]
        assert names == ["reactions.add", "chat.postMessage", "reactions.remove"]
        added = fake.of("reactions.add")[0].data
        assert {k: added[k] for k in ("channel", "timestamp", "name")} == {
            "channel": "D1",
            "timestamp": "1700000002.000100",
            "name": "hourglass_flowing_sand",
        }

        # a private answer cannot carry a reaction: a placeholder comes first and the answer replaces it
        await run.slack.command(
            command("what does a site reliability engineer do?", fake.response_url("slow"))
        )
        replies = await wait_for(
            lambda: with_blocks(fake.responses("slow")) and fake.responses("slow"), "the private answer"
        )
        assert [bool(r.get("blocks")) for r in replies] == [False, True]
        assert "Looking that up" in replies[0]["text"] and replies[0]["response_type"] == "ephemeral"
        assert replies[1]["replace_original"] is True


async def test_slash_command_answers_privately_and_can_be_shared(fake, shared_service, records, monkeypatch):
    release = held_answers(shared_service, monkeypatch)
    async with running(fake, shared_service, records) as run:
        asked = run.slack.command(
            command("how do I get promoted from senior to staff?", fake.response_url("cmd"))
        )
        status, _, _ = await asyncio.wait_for(asked, 30)
        assert status == 200 and not with_blocks(fake.responses("cmd"))  # acknowledged before the answer
        release.set()
        reply = (await wait_for(lambda: with_blocks(fake.responses("cmd")), "the private answer"))[0]
        assert reply["response_type"] == "ephemeral"
        assert "career-ladder.md" in all_text(reply["blocks"])
        check_limits(reply)
        controls = buttons(reply["blocks"])
        assert set(controls) == {VOTE_UP, VOTE_DOWN, SHARE}

        share = block_actions(
            SHARE, controls[SHARE]["value"], "UALICE", fake.response_url("share"), None, "C1"
        )
        status, _, _ = await run.slack.action(share)
        assert status == 200

        def deleted() -> list[dict[str, Any]]:
            return [r for r in fake.responses("share") if r.get("delete_original")]

        await wait_for(deleted, "the private copy to be deleted")
        shared = [r for r in fake.responses("share") if r.get("response_type") == "in_channel"]
        assert len(shared) == 1
        assert "career-ladder.md" in all_text(shared[0]["blocks"])
        assert "Shared by <@UALICE>" in all_text(shared[0]["blocks"])
        assert set(buttons(shared[0]["blocks"])) == {VOTE_UP, VOTE_DOWN}
        assert not fake.posts()  # everything went through response URLs


async def test_slash_command_roles_and_help(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        await run.slack.command(command("roles", fake.response_url("roles")))
        await run.slack.command(command("help", fake.response_url("help")))
        await run.slack.command(command("", fake.response_url("empty")))
        roles = (await wait_for(lambda: fake.responses("roles"), "the roles"))[0]
        listing = all_text(roles["blocks"])
        for title in (
            "Engineering Career Ladder",
            "Senior Back-End Software Engineer",
            "Site Reliability / DevOps Engineer",
        ):
            assert f"• {title}" in listing
        # the ladder has aliases but names no role: it follows the roles, as another document
        assert (
            listing.index("• Site Reliability")
            < listing.index("and 1 other document:")
            < listing.index("• Engineering Career Ladder")
        )
        for name in ("help", "empty"):
            reply = (await wait_for(functools.partial(fake.responses, name), f"the help for {name!r}"))[0]
            assert "`/career roles`" in reply["text"] and "`/career reindex`" in reply["text"]
            assert reply["response_type"] == "ephemeral"


async def test_off_topic_question_says_so_and_lists_the_roles(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        await run.slack.event(mention("<@UBOT> what is a good sourdough bread recipe?"))
        post = (await wait_for(lambda: fake.posts("C1"), "the answer"))[0]
        body = all_text(post["blocks"])
        assert "I don't know that one" in body and "I don't know that one" in post["text"]
        for title in (
            "Engineering Career Ladder",
            "Senior Back-End Software Engineer",
            "Site Reliability / DevOps Engineer",
        ):
            assert title in body
        assert set(buttons(post["blocks"])) == {VOTE_UP, VOTE_DOWN}


async def test_a_question_just_under_the_floor_names_the_nearest_section(fake, shared_service, records):
    # k8s and the pager are the SRE page's words, but no sentence says this: no passage is shown, and the
    # refusal names the section to ask about (Slack escapes the ">" of the section trail)
    async with running(fake, shared_service, records) as run:
        await run.slack.event(mention("<@UBOT> my k8s clusters keep falling over at night, pager hell"))
        post = (await wait_for(lambda: fake.posts("C1"), "the answer"))[0]
        body = all_text(post["blocks"])
        nearest = "The nearest I have is “Site Reliability / DevOps Engineer &gt; Tools (site-reliability-engineer.md)”"
        assert "I'm not sure I know that one. " + nearest in body and nearest in post["text"]
        assert "Engineering Career Ladder" in body  # the known roles are still listed


async def test_retried_and_doubled_events_are_answered_once(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        question = mention("<@UBOT> what does a site reliability engineer do?", ts="1700000003.000100")
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        first = await run.slack.event(question, event_id="EvRETRY")
        again = await run.slack.event(question, event_id="EvRETRY", headers=retry)
        # one DM delivered twice: as message.im and as app_mention, with different event ids
        in_dm = dm("<@UBOT> which tools do SREs use?", ts="1700000003.000200", channel="D2")
        as_message = await run.slack.event(in_dm, event_id="EvDM1")
        as_mention = await run.slack.event({**in_dm, "type": "app_mention"}, event_id="EvDM2")
        assert [r[0] for r in (first, again, as_message, as_mention)] == [200, 200, 200, 200]
        await wait_for(lambda: fake.posts("C1") and fake.posts("D2"), "both answers")
        assert await run.adapter.drain(20)
        assert len(fake.posts("C1")) == 1 and len(fake.posts("D2")) == 1
    assert len(fake.posts()) == 2  # still once each after shutdown finished everything in flight


async def test_bad_signature_and_stale_timestamp_are_rejected(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        event = mention(PAY_QUESTION)
        bad, _, _ = await run.slack.event(event, secret="not-the-secret")
        stale, _, _ = await run.slack.event(event, timestamp=int(time.time()) - 6 * 60)
        assert (bad, stale) == (401, 401)
        challenge = {"token": "unused", "challenge": "abc123", "type": "url_verification"}
        status, body, _ = await run.slack.envelope(challenge)
        assert status == 200 and json.loads(body) == {"challenge": "abc123"}
        assert await run.adapter.drain(20)
    assert not fake.posts()


async def test_a_timestamp_that_is_no_number_is_a_bad_signature_that_nothing_acts_on(
    fake, shared_service, records, caplog
):
    """Bolt's own check raises on such a timestamp and hands the unsigned body to the error handler, which
    apologised to the response_url and channel the body named: anyone could make the bot post."""
    caplog.set_level(logging.DEBUG)
    async with running(fake, shared_service, records) as run:
        statuses = []
        for stamp in (
            "notanumber",
            "",
            "-1",
            "1e9",
            "\uff11\uff17\uff10\uff10",
        ):  # the last: full-width digits
            headers = {"X-Slack-Request-Timestamp": stamp}
            asked = command("what does an SRE do?", fake.response_url("attacker"))
            statuses.append((await run.slack.command(asked, headers=headers))[0])
            statuses.append(
                (await run.slack.event(mention(PAY_QUESTION, channel="CANY"), headers=headers))[0]
            )
        assert await run.adapter.drain(20)
    assert statuses == [401] * 10
    assert not fake.posts() and not fake.responses("attacker")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_unreadable_bodies_get_a_4xx_without_a_logged_traceback(fake, shared_service, records, caplog):
    """Anyone can POST to /slack/events: a body that is not UTF-8, names an unknown charset or does not
    parse is refused with a 4xx and at most a one-line warning, never a 500 with a traceback per request."""
    caplog.set_level(logging.DEBUG)
    form = "application/x-www-form-urlencoded"
    unsigned = [
        (b"\xff\xfe", form),
        (b"token=x&command=%2Fcareer&text=hi", f"{form}; charset=nosuch"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"payload=%7Bnot+json", form),
        (b"payload=%5B1%5D", form),
        (b"[" * 100_000, "application/json"),  # too deep for the JSON parser
        (b'{"type": "event_callback", "event": "x", "authorizations": 1}', "application/json"),
    ]
    async with running(fake, shared_service, records) as run:
        assert run.slack.session is not None
        statuses = []
        for body, content_type in unsigned:
            async with run.slack.session.post(
                run.slack.url, data=body, headers={"Content-Type": content_type}
            ) as response:
                statuses.append(response.status)
        # signed by someone who knows the secret, but not UTF-8: Slack never sends that, so refused too
        signed, _, _ = await run.slack.post(b"text=\xff\xfe", form)
        assert await run.adapter.drain(20)
    # decoded, then refused by the signature check as any unsigned request is
    assert statuses[:2] == [401, 401]
    assert all(400 <= status < 500 for status in statuses), statuses
    assert signed == 401
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert "\ufffd" not in caplog.text and "not json" not in caplog.text  # no body in the log either
    assert not fake.posts() and not fake.of("response_url")


async def test_own_messages_other_bots_edits_and_notices_are_ignored(fake, shared_service, records):
    question = "what does a site reliability engineer do?"
    ignored = [
        dm(question, ts="1.1", user=BOT_USER_ID, bot_id="BBOT"),  # our own answer in the DM
        dm(question, ts="1.2", user="UOTHERBOT", bot_id="BOTHER", subtype="bot_message"),
        {**dm(question, ts="1.3"), "subtype": "message_changed", "message": {"text": question, "ts": "1.0"}},
        dm(question, ts="1.4", edited={"user": "UALICE", "ts": "1.5"}),
        {
            "type": "message",
            "subtype": "channel_join",
            "channel": "C1",
            "user": "UALICE",
            "ts": "1.6",
            "text": "<@UALICE> has joined",
        },
        {
            "type": "message",
            "channel_type": "channel",
            "channel": "C1",
            "user": "UALICE",
            "ts": "1.7",
            "text": question,
        },
        mention(f"<@UBOT> {question}", ts="1.8", bot_id="BOTHER"),
        {"type": "member_joined_channel", "user": "UALICE", "channel": "C1", "event_ts": "1.9"},
    ]
    async with running(fake, shared_service, records) as run:
        for event in ignored:
            status, _, _ = await run.slack.event(event)
            assert status == 200  # acknowledged, so Slack does not retry
        await run.slack.event(dm(question, ts="2.0", channel="D9"))
        await wait_for(lambda: fake.posts("D9"), "the one real question")
        assert await run.adapter.drain(20)
    assert [p["channel"] for p in fake.posts()] == ["D9"]


async def test_malformed_events_neither_crash_nor_answer_none(fake, shared_service, records, caplog):
    """A subtype that is no string is nobody writing; a text that is no string is an empty question."""
    caplog.set_level(logging.DEBUG)
    question = "what does a site reliability engineer do?"
    strange = [
        dm(question, ts="3.1", channel="D3", subtype=["file_share"]),  # unhashable
        dm(question, ts="3.2", channel="D3", subtype={"name": "file_share"}),
        dm(question, ts="3.3", channel="D3", subtype=7),
        mention(f"<@UBOT> {question}", ts="3.4", channel="C3", subtype=["thread_broadcast"]),
    ]
    async with running(fake, shared_service, records) as run:
        for event in strange:
            assert (await run.slack.event(event))[0] == 200
        await run.slack.event({**dm("", ts="3.5", channel="D4"), "text": None})
        await run.slack.event({**mention("", ts="3.6", channel="C4"), "text": None})
        await run.slack.event({**dm("", ts="3.7", channel="D5"), "text": ["what", "is", "an", "SRE"]})
        await wait_for(
            lambda: fake.posts("D4") and fake.posts("C4") and fake.posts("D5"), "the usage replies"
        )
        assert await run.adapter.drain(20)
    gc.collect()  # an exception nobody retrieved is reported when its task is collected
    assert not fake.posts("D3") and not fake.posts("C3")
    for post in fake.posts():
        assert post["text"].startswith("*Rolecall* answers career questions"), post["text"]
        assert "None" not in json.dumps(post) and "blocks" not in post
    assert sorted(p["channel"] for p in fake.posts()) == ["C4", "D4", "D5"]  # one usage reply each
    assert fake.posts("C4")[0]["thread_ts"] == "3.6"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "never retrieved" not in caplog.text


async def test_broadcast_mentions_in_a_question_are_not_echoed(fake, shared_service, records):
    text = (
        "<@UBOT> <!channel> <!here> <!everyone> <!subteam^S123|@devs> <@U999|bob> @here what does an SRE do?"
    )
    async with running(fake, shared_service, records) as run:
        await run.slack.event(mention(text))
        post = (await wait_for(lambda: fake.posts("C1"), "the answer"))[0]
    raw = json.dumps(post, ensure_ascii=False)
    for ping in ("<!channel", "<!here", "<!everyone", "<!subteam", "<@U999"):
        assert ping not in raw
    echoed = all_text(post["blocks"]).splitlines()[0]
    assert (
        echoed
        == "*You asked:* @\u200bchannel @\u200bhere @\u200beveryone @devs @bob @\u200bhere what does an SRE do?"
    )
    assert "link_names" not in post and post["parse"] == "none"
    assert all(b["text"].get("verbatim") for b in post["blocks"] if b["type"] == "section")


async def test_broadcast_mentions_in_a_document_are_not_posted(
    fake, small_knowledge, tmp_path, real_embedder, records
):
    # A knowledge file pasted from a chat export: its pings must reach nobody when a passage quotes them.
    (small_knowledge / "on-call.md").write_text(
        "---\ntitle: On-Call Rota\n---\n# On-Call Rota\n\n## Handover\n"
        "The on-call engineer hands over every Monday: <!channel> <!here> @everyone <@U999> <!subteam^S1|@sre>"
        " please read the incident log before the on-call handover.\n",
        encoding="utf-8",
    )
    service = make_service(small_knowledge, tmp_path / "index", real_embedder)
    service.open()
    async with running(fake, service, records) as run:
        await run.slack.event(mention("<@UBOT> how does the on-call handover work?"))
        post = (await wait_for(lambda: fake.posts("C1"), "the answer"))[0]
    assert "On-Call Rota" in all_text(post["blocks"])
    raw = json.dumps(post, ensure_ascii=False)
    for ping in ("<!channel", "<!here", "<!everyone", "<!subteam", "<@U999"):
        assert ping not in raw
    assert "@everyone" not in all_text(post["blocks"])  # shown with a zero-width space after the @
    assert "link_names" not in post and post["parse"] == "none"


# -- feedback -----------------------------------------------------------------------------------


async def test_votes_are_stored_and_the_buttons_become_a_thank_you(fake, shared_service, records):
    async with running(fake, shared_service, records) as run:
        await run.slack.event(dm(PAY_QUESTION))
        call = (await wait_for(lambda: fake.of("chat.postMessage"), "the answer"))[0]
        posted = {"type": "message", "user": BOT_USER_ID, "bot_id": "BBOT", "ts": call.response["ts"]}
        posted.update(text=call.data["text"], blocks=call.data["blocks"])
        up = buttons(call.data["blocks"])[VOTE_UP]
        await run.slack.action(
            block_actions(VOTE_UP, up["value"], "UALICE", fake.response_url("v1"), posted, "D1")
        )
        update = (await wait_for(lambda: fake.of("chat.update"), "the message update"))[0].data
        assert update["channel"] == "D1" and update["ts"] == call.response["ts"]
        assert update["parse"] == "none"  # chat.update parses as the client does unless told: no pings
        assert not buttons(update["blocks"])
        assert "👍 Thanks for the feedback!" in all_text(update["blocks"])
        assert all_text(update["blocks"]).startswith(all_text(call.data["blocks"][:3]))  # the answer stays

        # a vote on a private (ephemeral) answer: Slack sends no message, the answer is rendered again
        await run.slack.command(
            command("what does a site reliability engineer do?", fake.response_url("cmd"), "UBOB")
        )
        private = (await wait_for(lambda: with_blocks(fake.responses("cmd")), "the private answer"))[0]
        down = buttons(private["blocks"])[VOTE_DOWN]
        await run.slack.action(
            block_actions(VOTE_DOWN, down["value"], "UBOB", fake.response_url("v2"), None, "C1")
        )
        thanked = (await wait_for(lambda: fake.responses("v2"), "the private thank-you"))[0]
        assert thanked["replace_original"] is True
        assert "👎 Thanks for the feedback!" in all_text(thanked["blocks"])
        assert set(buttons(thanked["blocks"])) == {SHARE}

    votes = records.votes()
    assert [(v.platform, v.vote) for v in votes] == [("slack", "up"), ("slack", "down")]
    assert votes[0].question == "what does a senior back-end engineer earn?"
    assert votes[0].sources[0] == "senior-back-end-engineer.md"
    assert votes[0].user_hash == user_hash("slack", "UALICE") and "UALICE" not in votes[0].user_hash
    assert votes[1].sources[0] == "site-reliability-engineer.md"


async def test_in_a_channel_everyone_may_vote_once_and_the_buttons_stay(fake, shared_service, records):
    """The first click changed the answer for the whole channel and disabled its buttons: a bystander's vote
    locked the asker out. Now each person's vote is thanked privately and counted once."""
    async with running(fake, shared_service, records) as run:
        await run.slack.event(mention(PAY_QUESTION))
        call = (await wait_for(lambda: fake.of("chat.postMessage"), "the answer"))[0]
        posted = {"type": "message", "user": BOT_USER_ID, "bot_id": "BBOT", "ts": call.response["ts"]}
        posted.update(text=call.data["text"], blocks=call.data["blocks"])
        controls = buttons(call.data["blocks"])
        clicks = [
            ("UBOB", VOTE_DOWN, "bob"),  # a bystander first
            ("UALICE", VOTE_UP, "alice"),  # the asker still can
            ("UALICE", VOTE_DOWN, "alice-again"),  # once each
        ]
        for user, action_id, url in clicks:
            await run.slack.action(
                block_actions(
                    action_id, controls[action_id]["value"], user, fake.response_url(url), posted, "C1"
                )
            )
        replies = []
        for _, _, url in clicks:
            replies.append((await wait_for(functools.partial(fake.responses, url), f"the reply to {url}"))[0])
        assert await run.adapter.drain(20)
    assert [r["text"] for r in replies] == [
        "👎 Thanks for the feedback!",
        "👍 Thanks for the feedback!",
        "You rated this answer already. Thanks!",
    ]
    assert all(r["response_type"] == "ephemeral" and r["replace_original"] is False for r in replies)
    assert not fake.of("chat.update")  # the answer and its buttons stay as they are for everyone
    assert [(v.user_hash, v.vote) for v in records.votes()] == [
        (user_hash("slack", "UBOB"), "down"),
        (user_hash("slack", "UALICE"), "up"),
    ]


async def test_share_and_vote_beyond_the_rate_limit_get_the_limit_reply_not_a_search(
    fake, shared_service, records, monkeypatch
):
    """A button that answers again (Share, a vote on a private answer) is a question for the rate limit."""
    searches: list[str] = []
    search = shared_service.ask_async

    async def counted(question: str, k: int | None = None) -> Answer:
        searches.append(question)
        return await search(question, k)

    monkeypatch.setattr(shared_service, "ask_async", counted)
    metrics = Metrics()
    conversation = Conversation(shared_service, records, rate_limit=2, metrics=metrics)
    async with running(fake, shared_service, records, conversation=conversation) as run:
        first = "what does a site reliability engineer do?"
        second = "how do I get promoted from senior to staff?"
        await run.slack.command(command(first, fake.response_url("q1")))
        await run.slack.command(command(second, fake.response_url("q2")))
        private = (await wait_for(lambda: with_blocks(fake.responses("q2")), "the private answer"))[0]
        await wait_for(lambda: with_blocks(fake.responses("q1")), "the first answer")
        controls = buttons(private["blocks"])

        share = block_actions(
            SHARE, controls[SHARE]["value"], "UALICE", fake.response_url("share"), None, "C1"
        )
        assert (await run.slack.action(share))[0] == 200
        shared = (await wait_for(lambda: fake.responses("share"), "the reply to Share"))[0]

        down = block_actions(
            VOTE_DOWN, controls[VOTE_DOWN]["value"], "UALICE", fake.response_url("vote"), None, "C1"
        )
        assert (await run.slack.action(down))[0] == 200
        voted = (await wait_for(lambda: fake.responses("vote"), "the reply to the vote"))[0]

        await run.slack.command(
            command("what does a senior back-end engineer earn?", fake.response_url("q3"))
        )
        asked = (await wait_for(lambda: fake.responses("q3"), "the reply to a third question"))[0]
        assert await run.adapter.drain(20)

    limit = "You've asked 2 questions in the last minute, which is my limit. Please try again in "
    for reply in (asked, shared, voted):
        assert reply["text"].startswith(limit) and "blocks" not in reply, reply
        assert reply["response_type"] == "ephemeral"
    for reply in (shared, voted):  # a new private message: the private answer stays, to share or vote later
        assert reply["replace_original"] is False
    assert len(fake.responses("share")) == 1 and len(fake.responses("vote")) == 1
    assert not fake.posts()  # nothing went to the channel, nothing was deleted
    assert searches == [first, second]  # no search for the buttons or the third question
    assert [v.vote for v in records.votes()] == ["down"]  # the vote itself still counts
    rate_limited = {"platform": "slack", "outcome": "rate_limited"}
    assert metrics.registry.get_sample_value("rolecall_questions_total", rate_limited) == 3


# -- admins -------------------------------------------------------------------------------------


async def test_reindex_by_an_admin_runs_and_others_are_refused_and_audited(
    fake, own_service, records, small_knowledge
):
    async with running(fake, own_service, records, admins=frozenset({"slack:UADMIN"})) as run:
        await run.slack.command(command("reindex", fake.response_url("bob"), user="UBOB"))
        refusal = (await wait_for(lambda: fake.responses("bob"), "the refusal"))[0]
        assert refusal["response_type"] == "ephemeral" and "only Rolecall admins" in refusal["text"]

        (small_knowledge / "data-engineer.md").write_text(
            "---\ntitle: Data Engineer\n---\n# Data Engineer\n\n## Tools\n"
            "Data engineers build pipelines with Apache Airflow and dbt and store data in Snowflake.\n",
            encoding="utf-8",
        )
        (small_knowledge / "career-ladder.md").write_text(
            SMALL_KNOWLEDGE["career-ladder.md"]
            + "\n## Staff to principal\nPrincipal engineers set direction.\n",
            encoding="utf-8",
        )
        await run.slack.command(command("reindex", fake.response_url("admin"), user="UADMIN"))
        replies = await wait_for(
            lambda: fake.responses("admin")[1:] and fake.responses("admin"), "the summary"
        )
        assert "Reindex requested" in replies[0]["text"]
        summary = all_text(replies[1]["blocks"])
        assert "added 1, changed 1, removed 0, unchanged 2" in summary
        assert "added: data-engineer.md" in summary and "changed: career-ladder.md" in summary

        await run.slack.event(mention("<@UBOT> which tools do data engineers use?"))
        post = (await wait_for(lambda: fake.posts("C1"), "an answer from the new index"))[0]
        assert "data-engineer.md" in all_text(post["blocks"])
    assert not fake.of("users.info")  # workspace admins are not trusted unless configured
    audit = records.audit_entries()
    assert [(a.platform, a.action, a.result) for a in audit] == [
        ("slack", "reindex", "refused"),
        ("slack", "reindex", "allowed"),
    ]
    assert [a.user_hash for a in audit] == [user_hash("slack", "UBOB"), user_hash("slack", "UADMIN")]


async def test_a_reindex_whose_response_url_is_unreachable_still_runs_and_is_audited(
    fake, own_service, records, small_knowledge, caplog
):
    # Slack's response_url can fail (network, expiry); the acknowledgement is lost, the reindex is not.
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/response/gone"
    (small_knowledge / "data-engineer.md").write_text(
        "---\ntitle: Data Engineer\n---\n# Data Engineer\n\n## Tools\n"
        "Data engineers build pipelines with Apache Airflow and dbt and store data in Snowflake.\n",
        encoding="utf-8",
    )
    async with running(fake, own_service, records, admins=frozenset({"slack:UADMIN"})) as run:
        await run.slack.command(command("reindex", dead_url, user="UADMIN"))
        await wait_for(lambda: records.audit_entries(), "the reindex's audit row", timeout=60)
        await run.slack.event(mention("<@UBOT> which tools do data engineers use?"))
        post = (await wait_for(lambda: fake.posts("C1"), "an answer from the new index"))[0]
        assert "data-engineer.md" in all_text(post["blocks"])
    assert [(a.action, a.result) for a in records.audit_entries()] == [("reindex", "allowed")]
    assert "added 1" in records.audit_entries()[0].detail
    assert (
        "Could not acknowledge a reindex" in caplog.text and "Could not post a reindex summary" in caplog.text
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # two warnings, no error traceback


async def test_a_replayed_slash_command_or_click_is_not_handled_again(fake, own_service, records):
    """A signed request captured and sent again within Slack's five minutes: the reindex does not run again,
    the vote is not counted again. A new request (a new timestamp) is handled as usual."""
    async with running(fake, own_service, records, admins=frozenset({"slack:UADMIN"})) as run:
        stamp = int(time.time())
        reindex = command("reindex", fake.response_url("admin"), user="UADMIN")
        assert (await run.slack.command(reindex, timestamp=stamp))[0] == 200
        await wait_for(lambda: records.audit_entries(), "the reindex's audit row", timeout=60)
        assert (await run.slack.command(reindex, timestamp=stamp))[0] == 200  # acknowledged, ignored
        assert (await run.slack.command(reindex, timestamp=stamp + 1))[0] == 200
        await wait_for(lambda: records.audit_entries()[1:], "the second reindex's audit row", timeout=60)

        await run.slack.command(command("what does an SRE do?", fake.response_url("q")))
        private = (await wait_for(lambda: with_blocks(fake.responses("q")), "the private answer"))[0]
        up = buttons(private["blocks"])[VOTE_UP]
        click = block_actions(VOTE_UP, up["value"], "UALICE", fake.response_url("vote"), None, "C1")
        for _ in range(3):
            assert (await run.slack.action(click, timestamp=stamp))[0] == 200
        assert await run.adapter.drain(20)
    assert [a.result for a in records.audit_entries()] == ["allowed", "allowed"]
    assert [v.vote for v in records.votes()] == ["up"]
    assert len(fake.responses("vote")) == 1


async def test_workspace_admins_may_reindex_only_when_trusted(fake, own_service, records):
    fake.users.update(
        UOWNER={"id": "UOWNER", "is_admin": False, "is_owner": True},
        UMEMBER={"id": "UMEMBER", "is_admin": False, "is_owner": False},
    )
    async with running(fake, own_service, records, trust_workspace_admins=True) as run:
        await run.slack.command(command("reindex", fake.response_url("owner"), user="UOWNER"))
        await run.slack.command(command("reindex", fake.response_url("member"), user="UMEMBER"))
        owner = await wait_for(
            lambda: fake.responses("owner")[1:] and fake.responses("owner"), "the owner's summary"
        )
        member = (await wait_for(lambda: fake.responses("member"), "the member's refusal"))[0]
        assert "index already up to date" in all_text(owner[1]["blocks"])
        assert "only Rolecall admins" in member["text"]
    assert sorted(c.data["user"] for c in fake.of("users.info")) == ["UMEMBER", "UOWNER"]
    assert sorted(a.result for a in records.audit_entries()) == ["allowed", "refused"]


async def test_questions_are_answered_while_a_reindex_runs(fake, own_service, records, small_knowledge):
    filler = "They plan delivery with product managers, review designs, mentor colleagues and report risks weekly. "
    for number in range(12):  # enough new passages to keep the reindex busy for a few seconds
        sections = "\n".join(
            f"## Part {part}\nRole {number}, task {part}: {filler * 3}\n" for part in range(8)
        )
        (small_knowledge / f"role-{number}.md").write_text(
            f"---\ntitle: Role {number}\n---\n# Role {number}\n{sections}"
        )
    async with running(fake, own_service, records, admins=frozenset({"slack:UADMIN"})) as run:
        await run.slack.command(command("reindex", fake.response_url("first"), user="UADMIN"))
        await wait_for(lambda: fake.responses("first"), "the reindex to start")
        await run.slack.event(mention(PAY_QUESTION))
        answer = await wait_for(lambda: fake.of("chat.postMessage"), "an answer during the reindex")
        assert PAY_HIGHLIGHT in all_text(answer[0].data["blocks"])  # from the old index

        await run.slack.command(command("reindex", fake.response_url("second"), user="UADMIN"))
        busy = (await wait_for(lambda: fake.responses("second")[1:], "the busy reply"))[0]
        assert "already running" in busy["text"]
        replies = await wait_for(lambda: fake.responses("first")[1:], "the first reindex summary", timeout=40)
        assert "added 12" in all_text(replies[0]["blocks"])
        order = [id(c.data) for c in fake.calls]
        assert order.index(id(answer[0].data)) < order.index(id(busy)) < order.index(id(replies[0]))
    assert [a.result for a in records.audit_entries()] == ["busy", "allowed"]


async def test_the_working_reaction_goes_when_the_answer_cannot_be_posted(fake, shared_service, records):
    fake.failures.append(lambda call: "msg_too_long" if call.data.get("blocks") else None)
    async with running(fake, shared_service, records, working_sign_after=0.0) as run:
        await run.slack.event(
            dm("what does a site reliability engineer do?", channel="D7", ts="1700000007.000100")
        )
        await wait_for(
            lambda: [p for p in fake.posts("D7") if p.get("text", "").startswith("Sorry")], "the apology"
        )
        await wait_for(lambda: fake.of("reactions.remove"), "the working reaction to go")
        removed = fake.of("reactions.remove")[0].data
        assert (removed["channel"], removed["timestamp"]) == ("D7", "1700000007.000100")


# -- errors, start-up and configuration ---------------------------------------------------------


async def test_an_error_gives_the_user_a_reference_and_the_log_a_traceback(
    fake, shared_service, records, caplog
):
    caplog.set_level(logging.DEBUG)
    secret_words = "what does a site reliability engineer do about my secret plan"
    fake.failures.append(
        lambda call: "msg_too_long" if call.data.get("blocks") and call.data.get("channel") == "D5" else None
    )
    async with running(fake, shared_service, records) as run:
        await run.slack.event(dm(secret_words, channel="D5", ts="1700000005.000100"))
        apology = await wait_for(
            lambda: [p for p in fake.posts("D5") if p.get("text", "").startswith("Sorry")], "the apology"
        )
    ref = apology[0]["text"].removeprefix("Sorry, something went wrong (ref ").removesuffix(").")
    assert len(ref) == 6
    errors = [r for r in caplog.records if f"ref={ref}" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None and errors[0].levelno == logging.ERROR
    assert "msg_too_long" in caplog.text  # the traceback is there
    for private in ("secret plan", BOT_TOKEN, SIGNING_SECRET):
        assert private not in caplog.text


async def test_socket_mode_acks_the_envelope_and_answers(fake, shared_service, records):
    async with running(fake, shared_service, records, socket_mode=True) as run:
        assert run.adapter.routes() == []
        await wait_for(fake.socket_connected.is_set, "the websocket")
        assert fake.of("apps.connections.open")[-1].token == APP_TOKEN
        from tests.fake_slack import event_callback

        envelope_id = await fake.send_envelope(
            event_callback(dm("which tools do site reliability engineers use?"))
        )
        await wait_for(
            lambda: [c for c in fake.of("socket") if c.data.get("envelope_id") == envelope_id], "the ack"
        )
        post = (await wait_for(lambda: fake.posts("D1"), "the answer"))[0]
        assert "Kubernetes" in all_text(post["blocks"])
        assert run.adapter.is_connected()
    assert not run.adapter.is_connected()


async def test_start_up_fails_with_one_line_when_slack_refuses_a_token(fake, shared_service, records):
    admin = AdminActions(shared_service, records, frozenset())
    wrong_bot = SlackAdapter(
        SlackConfig("xoxb-wrong", SIGNING_SECRET, api_url=fake.api_url), shared_service, admin
    )
    with pytest.raises(SlackStartError, match=r"^Slack rejected SLACK_BOT_TOKEN: invalid_auth$"):
        await wrong_bot.start()
    wrong_app = SlackAdapter(
        SlackConfig(BOT_TOKEN, "", "xapp-wrong", api_url=fake.api_url), shared_service, admin
    )
    with pytest.raises(SlackStartError, match=r"^Slack rejected SLACK_APP_TOKEN: invalid_auth$"):
        await wrong_app.start()
    await wrong_app.stop()
    unreachable = SlackAdapter(
        SlackConfig(BOT_TOKEN, SIGNING_SECRET, api_url=f"http://127.0.0.1:{free_port()}/api/"),
        shared_service,
        admin,
    )
    with pytest.raises(SlackStartError, match="cannot reach the Slack Web API"):
        await unreachable.start()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, ["SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"]),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, ["SLACK_APP_TOKEN"]),
        ({"SLACK_BOT_TOKEN": APP_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}, ["SLACK_BOT_TOKEN"]),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": "slack.com"},
            ["SLACK_API_URL"],
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s", "ROLECALL_SLACK_COMMAND": "career"},
            ["ROLECALL_SLACK_COMMAND"],
        ),
    ],
)
def test_inconsistent_settings_stop_start_up_with_one_line(env, names, monkeypatch, shared_service, records):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    admin = AdminActions(shared_service, records, frozenset())
    # Settings itself refuses some values (a malformed SLACK_API_URL) with the same kind of one-line error
    with pytest.raises((SlackConfigError, SettingsError)) as raised:
        build_adapters(load_settings(), shared_service, admin)
    message = str(raised.value)
    assert "\n" not in message and all(name in message for name in names)
    assert BOT_TOKEN not in message and APP_TOKEN not in message


def test_the_mode_follows_the_tokens_and_secrets_stay_out_of_repr(monkeypatch, shared_service, records):
    admin = AdminActions(shared_service, records, frozenset())
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    (http,) = build_adapters(load_settings(), shared_service, admin)
    assert isinstance(http, SlackAdapter) and http.config.mode == "http"
    assert [(r.method, r.path) for r in http.routes()] == [("POST", "/slack/events")]
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    (socket,) = build_adapters(load_settings(), shared_service, admin)
    assert isinstance(socket, SlackAdapter) and socket.config.mode == "socket" and socket.routes() == []
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
        assert secret not in repr(socket.config)


def test_manifest_matches_what_the_adapter_handles():
    manifest = yaml.safe_load((REPO / "slack-manifest.yml").read_text(encoding="utf-8"))
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.im"}
    assert settings["interactivity"]["is_enabled"] and settings["socket_mode_enabled"]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [load_settings().slack_command]
    assert manifest["features"]["app_home"]["messages_tab_enabled"]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "chat:write",
        "commands",
        "im:history",
        "reactions:write",
        "users:read",
    } <= scopes


# -- rendering ----------------------------------------------------------------------------------


def test_slack_markup_becomes_plain_text_without_pings():
    text = (
        "<@UBOT> hi <@U1|ann> <#C1|general> <https://x.io?a=1&amp;b=2|docs> &lt;!channel&gt; <!date^1|today>"
    )
    assert from_slack(text, "UBOT") == "hi @ann #general docs <!channel> today"


def test_long_answers_fit_slack_limits():
    passage = Passage("a/" * 300 + "doc.md", "T" * 200, "T" * 200 + " > " + "S" * 3000, "word " * 2000)
    hits = tuple(Hit(passage, 0.9, "word " * 900) for _ in range(30))
    answer = Answer("q" * 5000, hits, ("Role",))
    blocks = answer_blocks(answer, shareable=True)
    assert len(blocks) <= MAX_BLOCKS and blocks[-1]["block_id"] == FEEDBACK_BLOCK
    assert all(len(t) <= MAX_TEXT for t in texts(blocks))
    value = buttons(blocks)[VOTE_UP]["value"]
    assert len(value) <= MAX_VALUE
    question, sources = read_button_value(value)
    assert question and question == ("q" * 5000)[: len(question)] and sources
    assert read_button_value(button_value("q", ["s"])) == ("q", ("s",))
    assert read_button_value("not json") == ("", ())


def test_seen_events_forget_after_their_time_and_stay_bounded():
    seen = SeenEvents(ttl=60, max_items=2)
    assert seen.claim("a", "b") and not seen.claim("b") and not seen.claim("a")
    assert seen.claim("c") and seen.claim("d")  # holds at most two keys: "a" and "b" are gone
    assert seen.claim("a")
    forgetful = SeenEvents(ttl=0)
    assert forgetful.claim("x") and forgetful.claim("x")
