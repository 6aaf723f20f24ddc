"""The Discord adapter end to end: real discord.py and the real service against a fake Discord on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import DiscordAdapter, DiscordConfig, DiscordStartError
from adapters.discord_embeds import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    answer_embed,
    clip_lines,
    roles_embed,
)
from bot.admin import AdminActions
from bot.answer import Answer
from bot.cli import main
from bot.records import RecordStore, user_hash
from bot.service import RolecallService
from index.keyword import KeywordIndex
from index.types import Hit, Passage
from tests.conftest import SMALL_KNOWLEDGE, held_answers, make_service, write_docs
from tests.fake_discord import (
    APP_ID,
    BOT_ID,
    BOT_ROLE_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    EVERYDAY_PERMISSIONS,
    GUILD_ID,
    MANAGE_GUILD,
    MESSAGE_CONTENT_INTENT,
    OTHER_BOT_ID,
    OTHER_CHANNEL_ID,
    ROLE_ID,
    USER_ID,
    Call,
    FakeDiscord,
    user,
)

TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.fake.discord-bot-token-for-tests"
ADMIN_ID = 940_000_000_000_000_777
SERVER_ADMIN_ID = 940_000_000_000_000_888
DEFAULT_REST, DEFAULT_GATEWAY = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
PAY_QUESTION = "What does a senior back-end engineer earn?"
SRE_QUESTION = "Which tools does a site reliability engineer use?"
NO_PINGS: dict[str, list[str]] = {"parse": []}


@dataclass
class Bot:
    fake: FakeDiscord
    adapter: DiscordAdapter
    records: RecordStore


@pytest.fixture(scope="module")
def built_index(tmp_path_factory: pytest.TempPathFactory, real_embedder: object) -> tuple[Path, Path]:
    """The small knowledge indexed once with the real model: (knowledge folder, index folder)."""
    folder = tmp_path_factory.mktemp("discord-index")
    knowledge = write_docs(folder / "knowledge", SMALL_KNOWLEDGE)
    make_service(knowledge, folder / "index", real_embedder).open()
    return knowledge, folder / "index"


@pytest.fixture
def service(tmp_path: Path, built_index: tuple[Path, Path], real_embedder: object) -> RolecallService:
    """A service on its own copy of the module's index (the knowledge folder is shared, read-only)."""
    knowledge, index = built_index
    shutil.copytree(index, tmp_path / "index")
    service = make_service(knowledge, tmp_path / "index", real_embedder)
    service.open()
    return service


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path, **config: object
) -> AsyncIterator[Bot]:
    records = RecordStore(tmp_path / "data" / "rolecall.sqlite3")
    admin = AdminActions(service, records, frozenset({f"discord:{ADMIN_ID}", "slack:U1"}))
    settings = {"guild_ready_timeout": 0.05, "startup_timeout": 20.0, "stop_timeout": 20.0, **config}
    adapter = DiscordAdapter(
        DiscordConfig(token=TOKEN, api_url=fake.api_url, gateway_url=fake.gateway_url, **settings),  # type: ignore[arg-type]
        service,
        admin,
    )
    await adapter.start()
    try:
        yield Bot(fake, adapter, records)
    finally:
        await adapter.stop()
        assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (DEFAULT_REST, DEFAULT_GATEWAY)


@pytest.fixture
async def bot(fake: FakeDiscord, service: RolecallService, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running(fake, service, tmp_path) as started:
        yield started


BOT_USER = user(BOT_ID, "Rolecall", bot=True)


def mention(text: str) -> str:
    return f"<@{BOT_ID}> {text}"


def only_embed(call: Call) -> dict:
    embeds = call.body["embeds"]
    assert len(embeds) == 1
    return embeds[0]


def callback_types(fake: FakeDiscord) -> list[int]:
    return [c.body["type"] for c in fake.requests("POST", "/interactions/")]


# -- questions in messages -----------------------------------------------------------------------


async def test_a_dm_is_answered_in_the_dm_with_an_embed_typing_first(bot: Bot) -> None:
    fake = bot.fake
    assert bot.adapter.is_connected()
    # Guilds, guild messages and DMs; no privileged intent unless the operator asks for it.
    assert fake.identify is not None and fake.identify["intents"] == (1 << 0) | (1 << 9) | (1 << 12)

    await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))

    [reply] = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    [typing] = fake.requests("POST", f"/channels/{DM_CHANNEL_ID}/typing")
    assert typing.at <= reply.at
    assert all(c.authorization == f"Bot {TOKEN}" for c in fake.calls)
    assert "message_reference" not in reply.body
    assert reply.body["allowed_mentions"] == NO_PINGS
    embed = only_embed(reply)
    assert embed["title"] == PAY_QUESTION
    first = embed["fields"][0]
    assert first["name"] == "Senior Back-End Software Engineer › Pay"
    assert re.search(r"\*\*[^*]*\$120,000[^*]*\*\*", first["value"])  # the answering sentence in bold
    assert embed["footer"]["text"].startswith("Sources: senior-back-end-engineer.md")
    buttons = reply.body["components"][0]["components"]
    assert [b["emoji"]["name"] for b in buttons] == ["👍", "👎"]


async def test_a_mention_in_a_channel_is_answered_as_a_reply(bot: Bot) -> None:
    fake = bot.fake
    event = fake.message_event(mention(SRE_QUESTION), mentions=(BOT_USER,))

    await fake.dispatch("MESSAGE_CREATE", event)

    [reply] = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    assert str(reply.body["message_reference"]["message_id"]) == event["id"]
    assert reply.body["allowed_mentions"] == {**NO_PINGS, "replied_user": False}
    embed = only_embed(reply)
    assert embed["title"] == SRE_QUESTION  # the mention itself is not part of the question
    assert embed["fields"][0]["name"].startswith("Site Reliability / DevOps Engineer › ")
    assert fake.requests("POST", f"/channels/{CHANNEL_ID}/typing")


async def test_a_mention_of_the_bots_role_counts_and_a_bare_mention_gets_usage(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch(
        "MESSAGE_CREATE",
        fake.message_event(f"<@&{BOT_ROLE_ID}> {PAY_QUESTION}", role_mentions=(BOT_ROLE_ID,)),
    )
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(f"<@!{BOT_ID}>", mentions=(BOT_USER,)))
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(f"<@!{BOT_ID}> hi there!", mentions=(BOT_USER,)))

    replies = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages", count=3)
    usages = [c for c in replies if c.body.get("content")]
    assert len(usages) == 2 and all("/career ask" in c.body["content"] for c in usages)
    answered = next(c for c in replies if c.body.get("embeds"))
    assert only_embed(answered)["title"] == PAY_QUESTION


async def test_messages_not_meant_for_the_bot_are_ignored(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION))  # no mention
    other_bot = user(OTHER_BOT_ID, "otherbot", bot=True)
    await fake.dispatch(
        "MESSAGE_CREATE", fake.message_event(mention(PAY_QUESTION), mentions=(BOT_USER,), author=other_bot)
    )
    itself = fake.message_event(PAY_QUESTION, dm=True, author=BOT_USER)
    await fake.dispatch("MESSAGE_CREATE", itself)
    # A DM afterwards: once it is answered, the three events before it have long been handled.
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(SRE_QUESTION, dm=True))

    [reply] = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    assert only_embed(reply)["title"] == SRE_QUESTION
    await asyncio.sleep(0.2)
    assert [c.path for c in fake.calls if c.path.startswith("/channels/")] == [
        f"/channels/{DM_CHANNEL_ID}/typing",
        f"/channels/{DM_CHANNEL_ID}/messages",
    ]


async def test_everyone_roles_and_users_quoted_in_a_question_ping_nobody(bot: Bot) -> None:
    fake = bot.fake
    loud = f"@everyone @here <@&{ROLE_ID}> <@{USER_ID}> {PAY_QUESTION}"
    await fake.dispatch(
        "MESSAGE_CREATE",
        fake.message_event(
            mention(loud),
            mentions=(BOT_USER, user(USER_ID, "asker")),
            role_mentions=(ROLE_ID,),
            mention_everyone=True,
        ),
    )
    await fake.dispatch("INTERACTION_CREATE", fake.command_event("ask", {"question": loud}))

    [reply] = await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    [follow_up] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/")
    for call in (reply, follow_up):
        mentions = call.body["allowed_mentions"]
        assert mentions["parse"] == []
        assert not mentions.get("users") and not mentions.get("roles") and not mentions.get("replied_user")
        assert "@everyone" in only_embed(call)["title"]  # shown, not pinged


async def test_a_question_just_under_the_floor_names_the_nearest_section(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch(
        "MESSAGE_CREATE",
        fake.message_event("my k8s clusters keep falling over at night, pager hell", dm=True),
    )
    [reply] = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    embed = only_embed(reply)
    assert "fields" not in embed or not embed["fields"]  # no passage is shown as an answer
    assert embed["description"].startswith(
        "I'm not sure I know that one. The nearest I have is “Site Reliability / DevOps Engineer > Tools"
        " (site-reliability-engineer.md)”"
    )


async def test_an_off_topic_question_says_so_and_lists_the_known_roles(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch(
        "MESSAGE_CREATE", fake.message_event("Which pizza topping is best for a party?", dm=True)
    )

    [reply] = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    embed = only_embed(reply)
    assert "fields" not in embed or not embed["fields"]
    assert embed["description"].startswith("I don't know that one")
    for role in (
        "Engineering Career Ladder",
        "Senior Back-End Software Engineer",
        "Site Reliability / DevOps Engineer",
    ):
        assert role in embed["description"]


async def test_channels_listed_with_message_content_answer_every_message(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path
) -> None:
    async with running(fake, service, tmp_path, message_content=True, channels=frozenset({OTHER_CHANNEL_ID})):
        assert fake.identify is not None and fake.identify["intents"] & MESSAGE_CONTENT_INTENT
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION))  # not a listed channel
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(SRE_QUESTION, channel_id=OTHER_CHANNEL_ID))

        [reply] = await fake.wait_for("POST", f"/channels/{OTHER_CHANNEL_ID}/messages")
        assert only_embed(reply)["title"] == SRE_QUESTION
        assert not fake.requests("POST", f"/channels/{CHANNEL_ID}/")


async def test_stop_finishes_an_answer_in_flight_then_disconnects(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path
) -> None:
    async with running(fake, service, tmp_path) as bot:
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))
        await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/typing")  # the answer is under way
        await bot.adapter.stop()
        assert not bot.adapter.is_connected()
        [reply] = fake.requests("POST", f"/channels/{DM_CHANNEL_ID}/messages")
        assert only_embed(reply)["title"] == PAY_QUESTION


# -- slash commands ------------------------------------------------------------------------------


async def test_career_ask_defers_as_thinking_then_follows_up_with_the_answer(
    bot: Bot, service: RolecallService, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = bot.fake
    release = held_answers(service, monkeypatch)
    await fake.dispatch("INTERACTION_CREATE", fake.command_event("ask", {"question": PAY_QUESTION}))
    # Discord wants a response within 3 s: the deferral is sent while the answer is still being made.
    [defer] = await fake.wait_for("POST", "/interactions/")
    assert defer.body == {"type": 5}  # deferred channel message: "Rolecall is thinking…"
    assert not fake.requests("POST", f"/webhooks/{APP_ID}/")
    release.set()
    [follow_up] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/")
    assert defer.at <= follow_up.at
    assert follow_up.query.get("wait") in ("1", "true")  # discord.py waits for the created message
    assert not (follow_up.body.get("flags", 0) & 64)  # the answer is public
    embed = only_embed(follow_up)
    assert embed["title"] == PAY_QUESTION
    assert embed["fields"][0]["name"] == "Senior Back-End Software Engineer › Pay"
    assert follow_up.body["components"][0]["components"][0]["custom_id"] == "rolecall:vote:up"


async def test_career_roles_lists_the_indexed_roles(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch("INTERACTION_CREATE", fake.command_event("roles", dm=True))

    [follow_up] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/")
    assert callback_types(fake) == [5]
    description = only_embed(follow_up)["description"]
    assert description.splitlines() == [  # roles first; the ladder is a topic, listed after them
        "• Senior Back-End Software Engineer",
        "• Site Reliability / DevOps Engineer",
        "and 1 other document:",
        "• Engineering Career Ladder",
    ]


def test_the_roles_listing_names_other_documents_apart_from_the_roles() -> None:
    description = roles_embed(["Staff Engineer"], ["Resume tips", "Negotiation"]).description or ""
    assert description.splitlines() == [
        "• Staff Engineer",
        "and 2 other documents:",
        "• Resume tips",
        "• Negotiation",
    ]
    assert (roles_embed([], ["Resume tips"]).description or "").startswith("No role documents.\nand 1 other")


async def test_the_career_commands_are_registered_once_with_discord(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path
) -> None:
    async with running(fake, service, tmp_path):
        [put] = fake.requests("PUT", f"/applications/{APP_ID}/commands")
        [career] = put.body
        assert career["name"] == "career"
        assert [option["name"] for option in career["options"]] == ["ask", "roles", "reindex"]
        assert career["contexts"] == [0, 1] and career["integration_types"] == [0]  # servers and DMs
        question = career["options"][0]["options"][0]
        assert question["name"] == "question" and question["required"] is True
    async with running(fake, service, tmp_path):
        pass  # the same definitions are registered already: no second PUT
    assert len(fake.requests("PUT", f"/applications/{APP_ID}/commands")) == 1
    assert len(fake.requests("GET", f"/applications/{APP_ID}/commands")) == 2


# -- feedback ------------------------------------------------------------------------------------


async def test_a_vote_is_stored_and_the_buttons_are_disabled_with_thanks(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))
    await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    [answer] = [m for m in fake.messages.values() if m["channel_id"] == str(DM_CHANNEL_ID)]

    await fake.dispatch("INTERACTION_CREATE", fake.button_event(answer, "rolecall:vote:down"))

    [update] = await fake.wait_for("POST", "/interactions/")
    assert update.body["type"] == 7  # update the message the button is on
    assert update.body["data"]["content"].startswith("Thanks for the feedback")
    assert update.body["data"]["allowed_mentions"] == NO_PINGS
    buttons = update.body["data"]["components"][0]["components"]
    assert all(b["disabled"] for b in buttons)
    [vote] = bot.records.votes()
    assert vote.platform == "discord" and vote.vote == "down"
    assert vote.question == PAY_QUESTION
    assert vote.sources[0] == "senior-back-end-engineer.md"
    assert vote.user_hash == user_hash("discord", str(USER_ID))


async def test_in_a_server_channel_everyone_may_vote_once_and_the_buttons_stay(bot: Bot) -> None:
    # The first click edited the answer for the whole channel and disabled its buttons: a bystander's
    # vote locked the asker out. Now each person's vote is thanked privately and counted once.
    fake = bot.fake
    await fake.dispatch("MESSAGE_CREATE", fake.message_event(mention(PAY_QUESTION), mentions=(BOT_USER,)))
    await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    [answer] = [m for m in fake.messages.values() if m["channel_id"] == str(CHANNEL_ID)]
    bystander = SERVER_ADMIN_ID
    clicks = [(bystander, "down"), (USER_ID, "up"), (USER_ID, "down")]
    for number, (user_id, vote) in enumerate(clicks, start=1):
        await fake.dispatch(
            "INTERACTION_CREATE", fake.button_event(answer, f"rolecall:vote:{vote}", user_id=user_id)
        )
        await fake.wait_for("POST", "/interactions/", count=number)
    replies = [call.body for call in fake.requests("POST", "/interactions/")]
    assert [r["type"] for r in replies] == [4, 4, 4]  # a new message each, not an update of the answer
    assert all(r["data"]["flags"] & 64 for r in replies)  # seen only by the one who clicked
    assert [r["data"]["content"] for r in replies] == [
        "Thanks for the feedback! 👎 I'll pass it on.",
        "Thanks for the feedback! 👍",
        "You rated this answer already. Thanks!",
    ]
    assert [(v.user_hash, v.vote) for v in bot.records.votes()] == [
        (user_hash("discord", str(bystander)), "down"),
        (user_hash("discord", str(USER_ID)), "up"),
    ]


# -- admin ---------------------------------------------------------------------------------------


def service_before_a_new_role(
    small_knowledge: Path, tmp_path: Path, real_embedder: object
) -> RolecallService:
    """A service of the test's own whose index predates a Data Scientist page just added to its knowledge."""
    service = make_service(small_knowledge, tmp_path / "own-index", real_embedder)
    service.open()
    (small_knowledge / "data-scientist.md").write_text(
        "---\ntitle: Data Scientist\n---\n# Data Scientist\n\n## Tools\n"
        "Data scientists analyse data with Python, pandas and Jupyter notebooks and build statistical models.\n",
        encoding="utf-8",
    )
    return service


async def test_a_listed_admin_reindexes_privately_one_at_a_time_while_questions_are_answered(
    fake: FakeDiscord, small_knowledge: Path, tmp_path: Path, real_embedder: object
) -> None:
    service = service_before_a_new_role(small_knowledge, tmp_path, real_embedder)
    filler = "They plan delivery with product managers, review designs, mentor colleagues and report risks weekly. "
    for number in range(12):  # enough new passages to keep the reindex busy for a few seconds
        sections = "\n".join(
            f"## Part {part}\nRole {number}, task {part}: {filler * 3}\n" for part in range(8)
        )
        (small_knowledge / f"role-{number}.md").write_text(
            f"---\ntitle: Role {number}\n---\n# Role {number}\n{sections}"
        )
    async with running(fake, service, tmp_path, admin_servers=frozenset({GUILD_ID})) as bot:
        first = fake.command_event("reindex", dm=True, user_id=ADMIN_ID)
        second = fake.command_event("reindex", permissions=EVERYDAY_PERMISSIONS | MANAGE_GUILD)
        await fake.dispatch("INTERACTION_CREATE", first)
        await fake.dispatch("INTERACTION_CREATE", second)
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))

        await fake.wait_for("POST", f"/webhooks/{APP_ID}/", count=2, timeout=60)
        [during] = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
        assert only_embed(during)["fields"][0]["name"] == "Senior Back-End Software Engineer › Pay"
        [summary_post] = fake.requests("POST", f"/webhooks/{APP_ID}/{first['token']}")
        assert during.at < summary_post.at  # answered from the old index while the reindex ran
        for event in (first, second):
            [defer] = fake.requests("POST", f"/interactions/{event['id']}/")
            assert defer.body == {"type": 5, "data": {"flags": 64}}  # ephemeral "thinking"
        replies = {c.path: c.body for c in fake.requests("POST", f"/webhooks/{APP_ID}/")}
        assert all(body["flags"] & 64 for body in replies.values())  # only the admin sees them
        summary = replies[f"/webhooks/{APP_ID}/{first['token']}"]["content"]
        busy = replies[f"/webhooks/{APP_ID}/{second['token']}"]["content"]
        assert (
            summary.startswith("index updated")
            and "added 13," in summary
            and "added: data-scientist.md" in summary
        )
        assert busy.startswith("A reindex is already running")
        assert [(e.action, e.result) for e in bot.records.audit_entries()] == [
            ("reindex", "busy"),
            ("reindex", "allowed"),
        ]

        await fake.dispatch(
            "MESSAGE_CREATE", fake.message_event("Which tools do data scientists use?", dm=True)
        )
        _, after = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages", count=2)
        assert only_embed(after)["fields"][0]["name"] == "Data Scientist › Tools"


async def test_a_reindex_asked_while_the_bot_stops_is_told_to_retry_and_audited_as_not_run(
    fake: FakeDiscord,
    small_knowledge: Path,
    tmp_path: Path,
    real_embedder: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = service_before_a_new_role(small_knowledge, tmp_path, real_embedder)
    release = threading.Event()  # the first reindex's build waits here, so stop() waits for it
    real_build = KeywordIndex.build

    def held_build(*args: Any, **kwargs: Any) -> Any:
        release.wait(timeout=60)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(KeywordIndex, "build", held_build)
    async with running(fake, service, tmp_path) as bot:
        first = fake.command_event("reindex", dm=True, user_id=ADMIN_ID)
        await fake.dispatch("INTERACTION_CREATE", first)
        await fake.wait_for("POST", f"/interactions/{first['id']}/")
        stopping = asyncio.create_task(bot.adapter.stop())
        await asyncio.sleep(0)  # stop() marks the adapter as stopping before its first await
        late = [
            fake.command_event("reindex", dm=True, user_id=ADMIN_ID),
            fake.command_event("reindex", dm=True),
        ]
        for event in late:
            await fake.dispatch("INTERACTION_CREATE", event)
        told = [(await fake.wait_for("POST", f"/interactions/{event['id']}/"))[0] for event in late]
        release.set()
        await stopping
    for reply in told:
        assert (
            reply.body["data"]["content"].startswith("Rolecall is restarting")
            and reply.body["data"]["flags"] & 64
        )
    audited = sorted((e.result, e.detail) for e in bot.records.audit_entries())
    assert [result for result, _ in audited] == ["allowed", "not_run", "not_run"]  # the first built on
    assert "added 1," in audited[0][1]
    assert [detail for _, detail in audited[1:]] == [
        "Rolecall was shutting down",
        "Rolecall was shutting down; not an admin either",
    ]


async def test_a_long_reindex_summary_keeps_every_skipped_file_and_its_reason(
    fake: FakeDiscord, small_knowledge: Path, tmp_path: Path, real_embedder: object
) -> None:
    # Past Discord's 2,000 characters the summary is cut: the skipped files, which the admin has to act on,
    # come first, and the cut falls between whole lines and says how many were left out.
    service = make_service(small_knowledge, tmp_path / "own-index", real_embedder)
    service.open()
    for number in range(20):
        (small_knowledge / f"legacy-handbook-page-{number:02d}.docx").write_bytes(b"not a Word file")
    for number in range(40):
        (small_knowledge / f"role-{number:02d}.md").write_text(
            f"# Role {number}\n\n## Duties\nRole {number} plans delivery and reviews designs.\n",
            encoding="utf-8",
        )
    async with running(fake, service, tmp_path) as bot:
        await fake.dispatch("INTERACTION_CREATE", fake.command_event("reindex", dm=True, user_id=ADMIN_ID))
        [reply] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/", timeout=60)
    summary = reply.body["content"]
    assert len(summary) <= 2000 and summary.startswith("index updated")
    skipped = [line for line in summary.splitlines() if line.startswith("  skipped: ")]
    assert skipped == [
        f"  skipped: legacy-handbook-page-{number:02d}.docx: unreadable Word document: File is not a zip file"
        for number in range(20)
    ]
    added_shown = [line for line in summary.splitlines() if line.startswith("  added: role-")]
    assert added_shown and summary.endswith(f"\n… {40 - len(added_shown)} more lines not shown")
    assert bot.records.audit_entries()[0].detail.startswith(
        "added 40, changed 0, removed 0, unchanged 3, skipped 20"
    )


async def test_a_member_with_manage_server_may_reindex_in_a_listed_server_only(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path
) -> None:
    # A public bot can be added to anyone's server, where whoever added it has Manage Server: that
    # counts only in the servers listed in ROLECALL_DISCORD_ADMIN_SERVERS.
    event = fake.command_event(
        "reindex", user_id=SERVER_ADMIN_ID, permissions=EVERYDAY_PERMISSIONS | MANAGE_GUILD
    )
    async with running(fake, service, tmp_path / "unlisted") as unlisted:
        await fake.dispatch("INTERACTION_CREATE", event)
        [refusal] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/")
        assert refusal.body["flags"] & 64 and "only Rolecall admins" in refusal.body["content"]
        assert [e.result for e in unlisted.records.audit_entries()] == ["refused"]

    event = fake.command_event(
        "reindex", user_id=SERVER_ADMIN_ID, permissions=EVERYDAY_PERMISSIONS | MANAGE_GUILD
    )
    async with running(fake, service, tmp_path / "listed", admin_servers=frozenset({GUILD_ID})) as listed:
        await fake.dispatch("INTERACTION_CREATE", event)
        _, summary = await fake.wait_for("POST", f"/webhooks/{APP_ID}/", count=2)
        assert summary.body["flags"] & 64
        assert summary.body["content"].startswith("index already up to date")
        assert [e.result for e in listed.records.audit_entries()] == ["allowed"]


async def test_a_reindex_whose_interaction_expired_does_not_run_and_is_audited(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path
) -> None:
    """Discord refuses the acknowledgement (the interaction expired): nothing runs, and the attempt is still
    in the audit, as other turned-away attempts are."""
    event = fake.command_event("reindex", dm=True, user_id=ADMIN_ID)
    fake.fail_next[("POST", f"/interactions/{event['id']}/{event['token']}/callback")] = 404
    async with running(fake, service, tmp_path) as bot:
        await fake.dispatch("INTERACTION_CREATE", event)
        await fake.wait_for("POST", f"/interactions/{event['id']}/")
        deadline = time.monotonic() + 20
        while not bot.records.audit_entries() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    audited = [(e.action, e.result, e.detail) for e in bot.records.audit_entries()]
    assert audited == [("reindex", "not_run", "Discord refused the acknowledgement")]
    assert not fake.requests("POST", f"/webhooks/{APP_ID}/")  # no summary: the reindex never ran


async def test_a_reindex_that_crashes_is_audited_as_failed_and_the_old_index_keeps_answering(
    fake: FakeDiscord,
    small_knowledge: Path,
    tmp_path: Path,
    real_embedder: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fault injection: an error no code path expects (a bug) inside the real build, after the new document
    # was read and embedded.
    service = service_before_a_new_role(small_knowledge, tmp_path, real_embedder)

    def bug(*args: object) -> None:
        raise RuntimeError("a bug in the keyword index")

    monkeypatch.setattr(KeywordIndex, "build", bug)
    async with running(fake, service, tmp_path) as bot:
        await fake.dispatch("INTERACTION_CREATE", fake.command_event("reindex", dm=True, user_id=ADMIN_ID))
        [reply] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/", timeout=60)
        assert reply.body["flags"] & 64
        assert re.fullmatch(
            r"Reindex failed \(ref [0-9A-F]{6}\); the previous index keeps serving\.", reply.body["content"]
        )
        [entry] = bot.records.audit_entries()
        assert (entry.action, entry.result) == ("reindex", "failed") and entry.detail.startswith(
            "RuntimeError (ref "
        )
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(PAY_QUESTION, dm=True))
        await fake.dispatch(
            "MESSAGE_CREATE", fake.message_event("Which tools do data scientists use?", dm=True)
        )
        posts = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages", count=2)
        by_question = {only_embed(post)["title"]: only_embed(post) for post in posts}
        assert by_question[PAY_QUESTION]["fields"][0]["name"] == "Senior Back-End Software Engineer › Pay"
        # never went live
        assert "Data Scientist" not in str(by_question["Which tools do data scientists use?"])


async def test_a_non_admin_is_refused_privately_and_the_attempt_audited(bot: Bot) -> None:
    fake = bot.fake
    await fake.dispatch("INTERACTION_CREATE", fake.command_event("reindex", permissions=EVERYDAY_PERMISSIONS))

    [refusal] = await fake.wait_for("POST", f"/webhooks/{APP_ID}/")
    assert refusal.body["flags"] & 64
    assert "only Rolecall admins" in refusal.body["content"]
    [entry] = bot.records.audit_entries()
    assert (entry.action, entry.result) == ("reindex", "refused")
    assert entry.user_hash == user_hash("discord", str(USER_ID))


# -- errors --------------------------------------------------------------------------------------


async def test_a_failure_gets_an_apology_with_a_reference_and_the_log_holds_no_token_or_dm_text(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_question = "Pssst, what does a senior back-end engineer earn in Lisbon?"
    async with running(fake, service, tmp_path):
        fake.fail_next[("POST", f"/channels/{DM_CHANNEL_ID}/messages")] = 400
        await fake.dispatch("MESSAGE_CREATE", fake.message_event(secret_question, dm=True))
        _, apology = await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages", count=2)

        event = fake.command_event("ask", {"question": secret_question})
        token_path = f"/webhooks/{APP_ID}/{event['token']}"
        fake.fail_next[("POST", token_path)] = 400
        await fake.dispatch("INTERACTION_CREATE", event)
        _, command_apology = await fake.wait_for("POST", token_path, count=2)

    match = re.fullmatch(r"Sorry, something went wrong \(ref ([0-9A-F]{6})\)\.", apology.body["content"])
    assert match, apology.body
    assert apology.body["allowed_mentions"] == NO_PINGS
    assert command_apology.body["flags"] & 64  # private to the one who asked
    command_ref = re.search(r"ref ([0-9A-F]{6})", command_apology.body["content"])
    assert command_ref
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(match[1] in r.getMessage() and r.exc_info for r in errors)
    assert any(command_ref[1] in r.getMessage() and r.exc_info for r in errors)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in logged
    assert "Lisbon" not in logged


async def test_a_refused_privileged_intent_is_one_line_naming_it(
    service: RolecallService, tmp_path: Path
) -> None:
    fake = await FakeDiscord(refuse_privileged_intents=True).start()
    try:
        with pytest.raises(DiscordStartError) as refused:
            async with running(fake, service, tmp_path, message_content=True):
                pass
    finally:
        await fake.stop()
    message = str(refused.value)
    assert "\n" not in message
    assert "Message Content" in message and "Bot > Privileged Gateway Intents" in message
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (DEFAULT_REST, DEFAULT_GATEWAY)


async def test_rolecall_serve_exits_non_zero_when_discord_refuses_the_intent(
    service: RolecallService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = await FakeDiscord(refuse_privileged_intents=True).start()
    for name, value in {
        "DISCORD_TOKEN": TOKEN,
        "DISCORD_API_URL": f"http://127.0.0.1:{fake.port}",  # a bare host gets /api/v10
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "ROLECALL_DISCORD_MESSAGE_CONTENT": "true",
        "ROLECALL_KNOWLEDGE_DIR": str(service.config.knowledge_dirs[0]),
        "ROLECALL_INDEX_DIR": str(tmp_path / "index"),  # built by the service fixture
        "ROLECALL_HTTP_HOST": "127.0.0.1",
        "ROLECALL_HTTP_PORT": "0",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        status = await asyncio.wait_for(asyncio.to_thread(main, ["serve"]), timeout=30)
    finally:
        await fake.stop()
    assert status == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rolecall: error:")]
    assert len(errors) == 1 and "Message Content" in errors[0]
    assert fake.identify is not None and fake.identify["intents"] & MESSAGE_CONTENT_INTENT


async def test_a_rejected_token_is_one_line(service: RolecallService, tmp_path: Path) -> None:
    fake = await FakeDiscord().start()
    fake.fail_next[("GET", "/users/@me")] = 401
    try:
        with pytest.raises(DiscordStartError, match="rejected DISCORD_TOKEN"):
            async with running(fake, service, tmp_path):
                pass
    finally:
        await fake.stop()


# -- rendering limits (no network) ---------------------------------------------------------------


def test_answer_embeds_stay_within_discords_limits() -> None:
    long_text = " ".join(f"Sentence {i} says *something* about _pay_ and ~tools~." for i in range(300))
    hits = tuple(
        Hit(
            Passage(
                f"doc-{i}.md",
                f"Role {i} " + "x" * 300,
                f"Role {i} > " + " > ".join(["Heading"] * 60),
                long_text,
            ),
            0.9 - i / 100,
            "Sentence 150 says *something* about _pay_ and ~tools~." * 30,
        )
        for i in range(10)
    )
    question = "Why? " * 200
    embed = answer_embed(Answer(question, hits, ("Role",) * 5, notes=("note " * 300,)))
    payload = embed.to_dict()
    assert len(embed) <= EMBED_TOTAL_LIMIT
    assert len(payload["title"]) <= TITLE_LIMIT
    assert len(payload.get("description", "")) <= DESCRIPTION_LIMIT
    assert len(payload["footer"]["text"]) <= FOOTER_LIMIT
    assert 1 <= len(payload["fields"]) <= 25
    for embed_field in payload["fields"]:
        assert len(embed_field["name"]) <= FIELD_NAME_LIMIT
        assert 0 < len(embed_field["value"]) <= FIELD_VALUE_LIMIT
        assert embed_field["value"].startswith("**") or "**" in embed_field["value"]

    refusal = answer_embed(Answer("pizza?", (), tuple(f"Role number {i}" for i in range(1000))))
    assert len(refusal.description or "") <= DESCRIPTION_LIMIT and len(refusal) <= EMBED_TOTAL_LIMIT


def test_markdown_in_passages_is_escaped_around_the_bold_sentence() -> None:
    text = "Use *args and **kwargs in Python. Senior engineers earn $120,000 a year. Ask in #jobs_board."
    hit = Hit(Passage("pay.md", "Pay", "Pay > Money", text), 0.8, "Senior engineers earn $120,000 a year.")
    [embed_field] = answer_embed(Answer("pay?", (hit,))).to_dict()["fields"]
    assert embed_field["name"] == "Pay › Money"
    assert embed_field["value"] == (
        r"Use \*args and \*\*kwargs in Python. **Senior engineers earn $120,000 a year.** Ask in #jobs\_board."
    )


def test_the_config_from_settings_keeps_the_token_out_of_its_repr() -> None:
    from bot.settings import load_settings

    settings = load_settings(DISCORD_TOKEN=TOKEN, ROLECALL_DISCORD_CHANNELS="1, 2")
    config = DiscordConfig.from_settings(settings)
    assert config.token == TOKEN and config.channels == frozenset({1, 2})
    assert TOKEN not in repr(config)
    assert discord.AllowedMentions.none().to_dict() == NO_PINGS


def test_a_summary_with_windows_line_breaks_is_clipped_by_lines_without_an_error() -> None:
    # "\r\n" counted two characters in the length but one between lines: clipping ran past the last line
    fits = "x\r\n" * 700 + "end"  # 2,103 characters as given, 1,403 once its line breaks are "\n"
    assert clip_lines(fits) == "\n".join(["x"] * 700 + ["end"])
    long = "\r\n".join(f"  skipped: file{n}.md: not UTF-8 text" for n in range(300))
    clipped = clip_lines(long)
    assert len(clipped) <= CONTENT_LIMIT and "\r" not in clipped
    assert clipped.splitlines()[-1].endswith("more lines not shown")
