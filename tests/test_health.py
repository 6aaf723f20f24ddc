"""/healthz through the real HTTP server of `rolecall serve`: starting, ok, degraded, and the JSON it gives."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.serve import run_adapters
from tests.conftest import FakeEmbedder, make_service
from tests.fake_slack import free_port, wait_for


class StubAdapter:
    """An adapter whose start and connection the test controls."""

    name = "stub"

    def __init__(self) -> None:
        self.may_start = asyncio.Event()
        self.connected = False
        self.stopped = False

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    async def start(self) -> None:
        await asyncio.wait_for(self.may_start.wait(), 30)
        self.connected = True

    async def stop(self) -> None:
        self.stopped = True
        self.connected = False

    def is_connected(self) -> bool:
        return self.connected


async def test_health_is_503_until_ready_200_when_ready_and_503_when_an_adapter_drops(
    small_knowledge: Path, tmp_path: Path
) -> None:
    service = make_service(small_knowledge, tmp_path / "index", FakeEmbedder())  # not opened: serve does it
    adapter = StubAdapter()
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(run_adapters([adapter], "127.0.0.1", port, stop, service=service))
    url = f"http://127.0.0.1:{port}/healthz"

    async with aiohttp.ClientSession() as http:

        async def health() -> tuple[int, dict]:
            try:
                async with http.get(url) as response:
                    return response.status, await response.json()
            except aiohttp.ClientConnectionError:
                return 0, {}

        async def wait_for_health(status: str) -> tuple[int, dict]:
            for _ in range(400):
                code, body = await health()
                if body.get("status") == status:
                    return code, body
                assert not server.done(), server
                await asyncio.sleep(0.05)
            raise AssertionError(f"/healthz never said {status!r}")

        try:
            await wait_for(lambda: service.is_loaded, "serve to build and open the index")
            code, body = await wait_for_health("starting")  # the adapter has not connected yet
            assert code == 503
            assert body["index"]["loaded"] is True and body["adapters"] == {"stub": False}

            adapter.may_start.set()
            code, body = await wait_for_health("ok")
            assert code == 200
            assert body == {
                "status": "ok",
                "adapters": {"stub": True},
                "index": {"loaded": True, "passages": service.passage_count},
                "model": "fake-embedder",
            }
            assert body["index"]["passages"] > 0

            adapter.connected = False  # e.g. the gateway connection was lost for good
            code, body = await wait_for_health("degraded")
            assert code == 503 and body["adapters"] == {"stub": False}
        finally:
            stop.set()
            await asyncio.wait_for(server, 30)
    assert adapter.stopped


async def test_a_stop_while_the_index_is_built_skips_connecting(
    small_knowledge: Path, tmp_path: Path
) -> None:
    service = make_service(small_knowledge, tmp_path / "index", FakeEmbedder())
    adapter = StubAdapter()
    adapter.may_start.set()
    stop = asyncio.Event()
    stop.set()  # SIGTERM arrived before the index was ready
    await asyncio.wait_for(run_adapters([adapter], "127.0.0.1", free_port(), stop, service=service), 60)
    assert service.is_loaded and not adapter.connected and adapter.stopped


class DrainingAdapter(StubAdapter):
    """An adapter whose drain (answers in flight) lasts until the test releases it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.may_start.set()
        self.stopping = asyncio.Event()
        self.drained = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()  # from here on the adapter takes no new questions
        await asyncio.wait_for(self.drained.wait(), 30)
        await super().stop()


async def test_sigterm_stops_every_adapter_taking_questions_at_once(tmp_path: Path) -> None:
    # Adapters were stopped one after another: Discord kept answering new questions while Slack drained,
    # and the drains added up past the container's stop grace period.
    slack, discord = DrainingAdapter("slack"), DrainingAdapter("discord")
    stop = asyncio.Event()
    server = asyncio.create_task(run_adapters([slack, discord], "127.0.0.1", free_port(), stop))
    await wait_for(lambda: slack.connected and discord.connected, "both adapters to start")
    stop.set()
    await asyncio.wait_for(slack.stopping.wait(), 10)
    await asyncio.wait_for(discord.stopping.wait(), 10)  # while Slack is still draining
    assert not server.done()
    discord.drained.set()
    slack.drained.set()
    await asyncio.wait_for(server, 10)
    assert slack.stopped and discord.stopped
