"""`rolecall serve` as a real process: health, metrics, JSON logs and a graceful SIGTERM, against a fake Slack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import REPO, SMALL_KNOWLEDGE, make_service, write_docs
from tests.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackClient, free_port, wait_for

QUESTION = "what does a senior back-end engineer earn?"


class HoldingSlack(FakeSlack):
    """A fake Slack that, once asked to, holds every chat.postMessage until the test releases it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.holding = False
        self.held = 0
        self.release = asyncio.Event()

    async def _api(self, request: web.Request) -> web.Response:
        if self.holding and request.match_info["method"] == "chat.postMessage":
            self.held += 1
            await asyncio.wait_for(self.release.wait(), 60)
        return await super()._api(request)


def dm_event(channel: str, ts: str) -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": "UALICE",
        "text": QUESTION,
        "ts": ts,
    }


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment (conftest removed any developer settings) plus Rolecall's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLECALL_", "SLACK_", "DISCORD_"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", ROLECALL_DATA_DIR=str(tmp_path / "data"))
    env.update(extra)
    return env


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """(status, body), or (0, "") while nothing listens yet."""
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""


async def docker_healthcheck(env: dict[str, str]) -> int:
    """The Dockerfile's HEALTHCHECK command, run without blocking the loop the fake Slack runs on."""
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.healthcheck", cwd=REPO, env=env, stdout=subprocess.DEVNULL
    )
    return await asyncio.wait_for(check.wait(), 60)


async def test_serve_reports_health_and_metrics_and_finishes_answers_on_sigterm(
    tmp_path: Path, real_embedder: Any
) -> None:
    knowledge = write_docs(tmp_path / "knowledge", SMALL_KNOWLEDGE)
    make_service(knowledge, tmp_path / "index", real_embedder).open()  # so the process starts quickly
    fake = HoldingSlack()
    await fake.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = serve_env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        ROLECALL_KNOWLEDGE_DIR=str(knowledge),
        ROLECALL_INDEX_DIR=str(tmp_path / "index"),
        ROLECALL_HTTP_HOST="127.0.0.1",
        ROLECALL_HTTP_PORT=str(port),
        ROLECALL_LOG_FORMAT="json",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", cwd=REPO, env=env, stdout=log_file, stderr=log_file
        )
    try:
        async with aiohttp.ClientSession() as http:
            slack = SlackClient(f"{base}/slack/events", session=http)

            async def healthy() -> tuple[int, str]:
                return await get(http, f"{base}/healthz")

            status, body = 0, ""
            for _ in range(600):  # at most about two minutes: the process loads the model first
                status, body = await healthy()
                if status == 200 or process.returncode is not None:
                    break
                await asyncio.sleep(0.2)
            assert status == 200, log_path.read_text()
            health = json.loads(body)
            assert health["status"] == "ok" and health["adapters"] == {"slack": True}
            assert health["index"]["loaded"] and health["index"]["passages"] > 0
            assert await docker_healthcheck(env) == 0  # the image's HEALTHCHECK command agrees

            # One question answered, and counted.
            assert (await slack.event(dm_event("D1", "1700000200.000001")))[0] == 200
            await wait_for(lambda: fake.posts("D1"), "the first answer")
            status, page = await get(http, f"{base}/metrics")
            assert status == 200
            assert 'rolecall_questions_total{outcome="answered",platform="slack"} 1.0' in page
            assert "rolecall_passages_indexed " in page

            # A second answer is on its way (held by the fake) when SIGTERM arrives.
            fake.holding = True
            assert (await slack.event(dm_event("D2", "1700000200.000002")))[0] == 200
            await wait_for(lambda: fake.held, "the second answer to be under way")
            process.send_signal(signal.SIGTERM)

            async def stopping() -> bool:
                status, body = await healthy()
                return status == 503 and json.loads(body)["status"] == "stopping"

            for _ in range(200):
                if await stopping():
                    break
                await asyncio.sleep(0.05)
            assert await stopping()
            assert await docker_healthcheck(env) == 1
            # New questions are no longer taken: not acknowledged, so Slack would retry them elsewhere.
            assert (await slack.event(dm_event("D3", "1700000200.000003")))[0] == 503

            fake.release.set()
            code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await fake.stop()

    log_text = log_path.read_text()
    assert code == 0, log_text
    assert len(fake.posts("D2")) == 1 and fake.posts("D2")[0].get("blocks")  # finished, not dropped
    assert not fake.posts("D3")
    lines = [json.loads(line) for line in log_text.splitlines() if line.strip()]  # every line is JSON
    messages = [line["message"] for line in lines]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert "received SIGTERM" in messages and messages[-1] == "stopped"
    assert BOT_TOKEN not in log_text and SIGNING_SECRET not in log_text


def test_serve_without_credentials_says_what_to_set_and_fails(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=REPO,
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rolecall: error: no chat platform")
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DISCORD_TOKEN",
        "rolecall chat",
    ):
        assert name in result.stderr


@pytest.mark.parametrize("variable", ["ROLECALL_HTTP_PORT", "ROLECALL_RATE_LIMIT"])
def test_serve_with_an_invalid_setting_names_it_in_one_line(tmp_path: Path, variable: str) -> None:
    env = serve_env(
        tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, **{variable: "-5"}
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"rolecall: error: invalid setting {variable}: Input should be greater than or equal to 0"
    ]
