"""Discord shards split across processes: each `rolecall serve` answers only its shards' guilds, shard 0 the DMs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter, DiscordConfig, DiscordStartError
from bot.admin import AdminActions
from bot.conversation import Conversation
from bot.metrics import Metrics
from bot.records import RecordStore
from bot.service import RolecallService
from bot.settings import SettingsError, load_settings
from tests.conftest import SMALL_KNOWLEDGE, make_service, write_docs
from tests.fake_discord import (
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    SECOND_GUILD_CHANNEL_ID,
    SECOND_GUILD_ID,
    FakeDiscord,
    user,
)

TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.fake.discord-bot-token-for-tests"
BOT_USER = user(BOT_ID, "Rolecall", bot=True)
PAY_QUESTION = "What does a senior back-end engineer earn?"
SRE_QUESTION = "Which tools does a site reliability engineer use?"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> RolecallService:
    root = tmp_path_factory.mktemp("shards")
    service = make_service(write_docs(root / "knowledge", SMALL_KNOWLEDGE), root / "index", real_embedder)
    service.open()
    return service


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord(guilds=(GUILD_ID, SECOND_GUILD_ID)).start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def process(
    fake: FakeDiscord, service: RolecallService, tmp_path: Path, shard_ids: str
) -> AsyncIterator[tuple[DiscordAdapter, Metrics]]:
    """One `rolecall serve` process's Discord side, configured from the environment settings."""
    settings = load_settings(
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_URL=fake.api_url,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        ROLECALL_DISCORD_SHARD_IDS=shard_ids,
        ROLECALL_DISCORD_SHARD_COUNT=2,
    )
    config = DiscordConfig.from_settings(settings)
    config = DiscordConfig(**{**config.__dict__, "guild_ready_timeout": 0.05, "startup_timeout": 20.0})
    records = RecordStore(tmp_path / "data" / "rolecall.sqlite3")
    metrics = Metrics()  # each process has its own /metrics
    conversation = Conversation(service, records, metrics=metrics)
    adapter = DiscordAdapter(config, service, AdminActions(service, records, frozenset()), conversation)
    await adapter.start()
    try:
        yield adapter, metrics
    finally:
        await adapter.stop()


def answered(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "rolecall_questions_total", {"platform": "discord", "outcome": "answered"}
    )
    return value or 0.0


async def ask_in_both_guilds_and_a_dm(fake: FakeDiscord) -> dict[str, str]:
    """Dispatch a mention in each guild and a DM; the event ids by where they were asked."""
    first = fake.message_event(f"<@{BOT_ID}> {PAY_QUESTION}", mentions=(BOT_USER,))
    second = fake.message_event(
        f"<@{BOT_ID}> {SRE_QUESTION}",
        mentions=(BOT_USER,),
        guild_id=SECOND_GUILD_ID,
        channel_id=SECOND_GUILD_CHANNEL_ID,
    )
    direct = fake.message_event(PAY_QUESTION, dm=True)
    for event in (first, second, direct):
        await fake.dispatch("MESSAGE_CREATE", event)
    await fake.wait_for("POST", f"/channels/{CHANNEL_ID}/messages")
    await fake.wait_for("POST", f"/channels/{SECOND_GUILD_CHANNEL_ID}/messages")
    await fake.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages")
    return {"first": first["id"], "second": second["id"], "dm": direct["id"]}


def replies(fake: FakeDiscord, channel_id: int) -> list[Any]:
    return fake.requests("POST", f"/channels/{channel_id}/messages")


async def test_two_processes_split_the_guilds_and_shard_0_answers_dms(fake, service, tmp_path):
    async with (
        process(fake, service, tmp_path / "p0", "0") as (shard0, metrics0),
        process(fake, service, tmp_path / "p1", "1") as (shard1, metrics1),
    ):
        assert shard0.is_connected() and shard1.is_connected()
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
        ids = await ask_in_both_guilds_and_a_dm(fake)
    # after both stopped (answers in flight finished): each question answered once, by its shard's process
    assert len(replies(fake, CHANNEL_ID)) == 1 and len(replies(fake, SECOND_GUILD_CHANNEL_ID)) == 1
    assert len(replies(fake, DM_CHANNEL_ID)) == 1
    assert str(replies(fake, CHANNEL_ID)[0].body["message_reference"]["message_id"]) == ids["first"]
    assert (
        str(replies(fake, SECOND_GUILD_CHANNEL_ID)[0].body["message_reference"]["message_id"])
        == ids["second"]
    )
    assert sorted((shard, event_id) for shard, _, event_id in fake.delivered) == sorted(
        [(0, ids["first"]), (1, ids["second"]), (0, ids["dm"])]
    )
    assert (answered(metrics0), answered(metrics1)) == (2.0, 1.0)  # guild 1 and the DM; guild 2


async def test_one_process_may_run_several_shards(fake, service, tmp_path):
    async with process(fake, service, tmp_path, "0,1") as (both, metrics):
        assert both.is_connected()
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
        await ask_in_both_guilds_and_a_dm(fake)
    assert answered(metrics) == 3.0
    assert [len(replies(fake, c)) for c in (CHANNEL_ID, SECOND_GUILD_CHANNEL_ID, DM_CHANNEL_ID)] == [1, 1, 1]


@pytest.mark.parametrize(
    ("ids", "count", "message"),
    [
        ("0,2", "2", "ROLECALL_DISCORD_SHARD_IDS must be below ROLECALL_DISCORD_SHARD_COUNT (2)"),
        ("1", "", "ROLECALL_DISCORD_SHARD_IDS needs ROLECALL_DISCORD_SHARD_COUNT"),
        ("zero", "2", "ROLECALL_DISCORD_SHARD_IDS must be shard numbers"),
        ("", "-1", "ROLECALL_DISCORD_SHARD_COUNT"),
    ],
)
def test_inconsistent_shard_settings_are_one_line(ids, count, message, monkeypatch):
    monkeypatch.setenv("ROLECALL_DISCORD_SHARD_IDS", ids)
    if count:
        monkeypatch.setenv("ROLECALL_DISCORD_SHARD_COUNT", count)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_adapter_config_checks_shards_too():
    with pytest.raises(DiscordStartError, match="SHARD_COUNT"):
        DiscordConfig(token=TOKEN, shard_ids=(3,), shard_count=2)
