"""No secret in a log line: `rolecall serve` with every token set (Slack in HTTP mode, then in Socket Mode)
and every logger at DEBUG logs no token, and the text of a DM in no line at INFO or above; the record
store's errors leave out the database password.

The real command runs in a child process against the fake Slack and Discord on 127.0.0.1. The child
forces slack_bolt, slack_sdk, discord, aiohttp, asyncio and websockets to DEBUG (past the caps the
adapters put on them), so the test sees what an operator chasing a problem with everything turned up
would see. Everything it does is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.records import Database, RecordStore
from tests.conftest import REPO, SMALL_KNOWLEDGE, make_service, write_docs
from tests.fake_discord import DM_CHANNEL_ID, FakeDiscord
from tests.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    SlackClient,
    event_callback,
    free_port,
    wait_for,
)

DISCORD_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.Gsecret.discord-bot-token-never-logged"
SECRETS = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "DISCORD_TOKEN": DISCORD_TOKEN,
}
# Unique words, so a hit in the log can only come from the DM.
SLACK_DM = "what does a senior back-end engineer earn? asking for quokka-violet-7731"
DISCORD_DM = "which tools does a site reliability engineer use? asking for narwhal-amber-5519"
SLACK_COMMAND = "how do I move from senior to staff engineer? heron-cobalt-2284"
ADMIN_SLACK, ADMIN_DISCORD = "UADMIN", 940_000_000_000_000_777

SERVE = r"""
import logging, sys
import adapters.discord
adapters.discord._quiet_library = lambda: None  # keep discord.py at DEBUG as well
for name in ("slack_bolt", "slack_sdk", "discord", "aiohttp", "asyncio", "websockets", "adapters.slack.library"):
    logging.getLogger(name).setLevel(logging.DEBUG)
from bot.cli import main
sys.exit(main(["serve"]))
"""
RECORD_START = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): "
)
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def records(output: str) -> list[tuple[int, str, str]]:
    """(level, logger, whole record text) for each log record; traceback lines stay with their record."""
    out: list[tuple[int, str, str]] = []
    for line in output.splitlines():
        match = RECORD_START.match(line)
        if match:
            out.append((LEVELS[match[1]], match[2], line))
        elif out:
            level, name, text = out[-1]
            out[-1] = (level, name, text + "\n" + line)
        else:
            out.append((LEVELS["WARNING"], "?", line))  # not a log record (e.g. a bare print): count it high
    return out


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, slack: FakeSlack, discord: FakeDiscord, extra_env: dict[str, str]
) -> AsyncIterator[tuple[Any, list[str], int]]:
    knowledge, index = tmp_path / "knowledge", tmp_path / "index"
    port = free_port()
    env = {
        **os.environ,
        **SECRETS,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "SLACK_API_URL": slack.api_url,
        "DISCORD_API_URL": discord.api_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
        "ROLECALL_HTTP_HOST": "127.0.0.1",
        "ROLECALL_HTTP_PORT": str(port),
        "ROLECALL_LOG_LEVEL": "DEBUG",
        "ROLECALL_KNOWLEDGE_DIR": str(knowledge),
        "ROLECALL_INDEX_DIR": str(index),
        "ROLECALL_DATA_DIR": str(tmp_path / "data"),
        "ROLECALL_ADMINS": f"slack:{ADMIN_SLACK},discord:{ADMIN_DISCORD}",
        **extra_env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []

    async def pump() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    reader = asyncio.create_task(pump())
    try:
        await wait_for(
            lambda: (
                process.returncode is not None or any("discord adapter started" in line for line in lines)
            ),
            "rolecall serve to start both adapters",
            timeout=240,
        )
        assert process.returncode is None, "\n".join(lines[-30:])
        yield process, lines, port
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 90)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait_for(reader, 30)


@pytest.fixture
def built(tmp_path: Path, real_embedder: Any) -> None:
    make_service(
        write_docs(tmp_path / "knowledge", SMALL_KNOWLEDGE), tmp_path / "index", real_embedder
    ).open()


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_serve_logs_no_token_at_debug_and_no_dm_text_at_info(
    mode: str, tmp_path: Path, built: None
) -> None:
    secrets = {**SECRETS, **({"SLACK_APP_TOKEN": APP_TOKEN} if mode == "socket" else {})}
    slack = await FakeSlack().start()
    discord = await FakeDiscord().start()
    dm = {"type": "message", "channel_type": "im", "channel": "D1", "user": "UALICE"}
    dm.update(text=SLACK_DM, ts="1700000001.000100", event_ts="1700000001.000100")
    command = {
        "token": "unused", "team_id": "T1", "channel_id": "C1", "user_id": ADMIN_SLACK,
        "command": "/career", "text": SLACK_COMMAND, "api_app_id": "A1",
        "response_url": slack.response_url("ask"), "trigger_id": "1.2.3",
    }  # fmt: skip
    reindex = {**command, "text": "reindex", "response_url": slack.response_url("reindex")}
    try:
        async with serving(tmp_path, slack, discord, secrets) as (process, lines, port):
            if mode == "http":
                async with aiohttp.ClientSession() as session:
                    client = SlackClient(f"http://127.0.0.1:{port}/slack/events", session=session)
                    assert (await client.event(dm))[0] == 200
                    assert (await client.command(command))[0] == 200
                    assert (await client.command(reindex))[0] == 200
                    bad, _, _ = await client.event(dm, secret="not-the-signing-secret")
                    assert bad == 401
            else:
                await wait_for(slack.socket_connected.is_set, "the Socket Mode connection", timeout=60)
                await slack.send_envelope(event_callback(dm))
                await slack.send_envelope(command, "slash_commands")
                await slack.send_envelope(reindex, "slash_commands")
            await wait_for(lambda: slack.posts("D1"), "the Slack DM answer", timeout=60)
            await wait_for(
                lambda: [r for r in slack.responses("ask") if r.get("blocks")],
                "the command answer",
                timeout=60,
            )
            await wait_for(
                lambda: any("index" in r.get("text", "") for r in slack.responses("reindex")[1:]),
                "the reindex summary",
                timeout=120,
            )

            await discord.dispatch("MESSAGE_CREATE", discord.message_event(DISCORD_DM, dm=True))
            await discord.wait_for("POST", f"/channels/{DM_CHANNEL_ID}/messages", timeout=60)
            await discord.dispatch(
                "INTERACTION_CREATE", discord.command_event("ask", {"question": SLACK_COMMAND})
            )
            await discord.wait_for("POST", "/webhooks/", timeout=60)

            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 90) == 0
    finally:
        await discord.stop()
        await slack.stop()

    output = "\n".join(lines)
    (tmp_path / "serve.log").write_text(output, encoding="utf-8")
    logged = records(output)
    # The capture did reach the libraries' DEBUG lines (otherwise the checks below prove little).
    # (Bolt logs through the logger the adapter hands it, adapters.slack.library.)
    debug_from = {name for level, name, _ in logged if level == LEVELS["DEBUG"]}
    for wanted in ("adapters.slack.library", "slack_sdk.", "discord."):
        assert any(name.startswith(wanted) for name in debug_from), (wanted, debug_from)
    assert any("answered a Slack DM" in text for _, _, text in logged)

    for name, secret in secrets.items():
        leaks = [text for _, _, text in logged if secret in text]
        assert not leaks, f"{name} appears in the log:\n" + "\n".join(leaks[:3])
    for private in (SLACK_DM, DISCORD_DM, "quokka-violet-7731", "narwhal-amber-5519"):
        shown = [text for level, _, text in logged if level >= LEVELS["INFO"] and private in text]
        assert not shown, "a DM's text is logged at INFO or above:\n" + "\n".join(shown[:3])
    # Slack's signature and the Authorization headers are not secrets to print either.
    assert not re.search(r"X-Slack-Signature['\"]?: ['\"]?v0=[0-9a-f]{64}", output)
    assert f"Bot {DISCORD_TOKEN}" not in output and json.dumps(DISCORD_TOKEN) not in output


def test_a_database_error_is_logged_without_the_urls_password(caplog: pytest.LogCaptureFixture) -> None:
    # A driver may quote the URL's password in its error (psycopg does for a bad %-escape); the
    # password is replaced as typed and as decoded.
    database = Database("postgresql://rc:p%40ss-word@127.0.0.1:9/rolecall")
    assert database.redact("no connection for p@ss-word (p%40ss-word)") == "no connection for *** (***)"
    # and on one line: the CLI prints each line of an error as an error of its own
    assert (
        database.redact("refused\n\tIs the server running on host?")
        == "refused Is the server running on host?"
    )
    store = RecordStore(database)
    store.database.connect = _failing_with("cannot log in as rc with p@ss-word")  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.ERROR):
        assert store.record_admin_action("slack", "U1", "reindex", "allowed") is False
    assert "could not write to the record store" in caplog.text and "p@ss-word" not in caplog.text


def _failing_with(message: str) -> Callable[[], contextlib.AbstractContextManager[object]]:
    @contextlib.contextmanager
    def connect() -> Iterator[object]:
        raise OSError(message)
        yield  # pragma: no cover

    return connect
