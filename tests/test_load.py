"""A smaller run of bench/load.py: every event acked and answered exactly once, no errors.

No timed assertions; every wait is bounded (bench.load gives up after `timeout` seconds and then
counts what arrived, so a hang fails here as missing answers, not as a stuck test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.load import discord_load, slack_load
from bot.records import RecordStore
from bot.service import RolecallService
from tests.conftest import SMALL_KNOWLEDGE, make_service, write_docs

QUESTIONS = (
    "What does a senior back-end engineer earn?",
    "Which tools does a site reliability engineer use?",
    "How do I move from senior to staff engineer?",
    "what does an SRE do on call?",
    "which databases do backend engineers use?",
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> RolecallService:
    root = tmp_path_factory.mktemp("load")
    service = make_service(write_docs(root / "knowledge", SMALL_KNOWLEDGE), root / "index", real_embedder)
    service.open()
    return service


async def test_fifty_concurrent_slack_events_are_each_acked_and_answered_once(
    service: RolecallService, tmp_path: Path
) -> None:
    result = await slack_load(service, RecordStore(tmp_path / "r.sqlite3"), QUESTIONS, 50, timeout=240)
    assert result.errors == []
    assert (result.acked, result.answered, result.duplicates) == (50, 50, 0)
    assert len(result.ack_latencies) == len(result.answer_latencies) == 50


async def test_a_batch_of_discord_mentions_is_each_answered_once(
    service: RolecallService, tmp_path: Path
) -> None:
    result = await discord_load(service, RecordStore(tmp_path / "r.sqlite3"), QUESTIONS, 20, timeout=240)
    assert result.errors == []
    assert (result.answered, result.duplicates) == (20, 0)
