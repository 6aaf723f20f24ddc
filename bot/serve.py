"""`rolecall serve`: run every configured chat adapter and the HTTP server in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web

from bot.admin import AdminActions
from bot.conversation import Conversation
from bot.logs import setup_logging
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.metrics import Metrics
from bot.records import RecordStore
from bot.service import RolecallService, ServiceConfig
from bot.settings import Settings
from index.errors import RolecallError

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
WATCH_STOP_SECONDS = 30.0


class Adapter(Protocol):
    """A chat platform connection: translates events to service calls and answers to messages."""

    name: str

    def routes(self) -> Sequence[web.RouteDef]:
        """HTTP routes this adapter needs on the shared server (empty if none)."""
        ...

    async def start(self) -> None:
        """Connect and begin handling events; returns once running."""
        ...

    async def stop(self) -> None:
        """Stop taking new events, finish those in flight, disconnect."""
        ...

    def is_connected(self) -> bool: ...


class OpsEndpoints:
    """/healthz and /metrics on the shared HTTP server, reading the service and the adapters live."""

    def __init__(
        self, adapters: Sequence[Adapter], service: RolecallService | None, metrics: Metrics
    ) -> None:
        self.adapters = adapters
        self.service = service
        self.metrics = metrics
        for adapter in adapters:
            metrics.declare_platform(adapter.name)
        self.started = False  # every adapter has started
        self.stopping = False  # SIGTERM (or `stop`) received

    def routes(self) -> list[web.RouteDef]:
        return [web.get(HEALTH_PATH, self.healthz), web.get(METRICS_PATH, self.metrics_page)]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the JSON body): ready means the index answers and every adapter is connected."""
        connected = {adapter.name: adapter.is_connected() for adapter in self.adapters}
        loaded = self.service.is_loaded if self.service is not None else True
        ready = self.started and not self.stopping and loaded and all(connected.values())
        if self.stopping:
            status = "stopping"
        elif not self.started:
            status = "starting"
        else:
            status = "ok" if ready else "degraded"
        body: dict[str, Any] = {"status": status, "adapters": connected}
        if self.service is not None:
            body["index"] = {"loaded": loaded, "passages": self.service.passage_count}
            body["model"] = self.service.spec.model_id
        return ready, body

    async def healthz(self, request: web.Request) -> web.Response:
        ready, body = self.health()
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        if self.service is not None:  # read live: a reindex may have swapped the index since
            self.metrics.passages.set(self.service.passage_count)
        return web.Response(body=self.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})


async def follow_index(service: RolecallService, stop: asyncio.Event) -> None:
    """Every `alias_check_seconds` until `stop`: answer from a version another process published."""
    every = service.config.alias_check_seconds
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(service.follow_current)
        except Exception:  # looking again in a moment; the live index keeps answering
            log.exception("could not look for a new index version; answering from the live one")


async def run_adapters(
    adapters: Sequence[Adapter],
    host: str,
    port: int,
    stop: asyncio.Event | None = None,
    *,
    service: RolecallService | None = None,
    metrics: Metrics | None = None,
    watch: bool = False,
) -> None:
    """Serve HTTP (adapter routes, /healthz, /metrics), open the index if needed, start the adapters,
    wait for SIGTERM/SIGINT (or `stop`), then stop taking questions, finish those in flight and close.

    With `watch`, the service's knowledge folders are reindexed in the background when they change. An
    index version another process publishes (`rolecall index` beside the server) is answered from within
    `alias_check_seconds`.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            loop.add_signal_handler(signum, _on_signal, signum, stop)
            handled.append(signum)
    ops = OpsEndpoints(adapters, service, metrics or (service.metrics if service else Metrics()))
    app = web.Application()
    app.add_routes(ops.routes())
    for adapter in adapters:
        app.add_routes(list(adapter.routes()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening on %s:%s (%s, %s)", host, port, HEALTH_PATH, METRICS_PATH)
    watcher: asyncio.Task[None] | None = None
    follower: asyncio.Task[None] | None = None
    try:
        if service is not None:
            if not service.is_loaded:
                await asyncio.to_thread(service.open, log.info)
            started = time.monotonic()
            prepared = await asyncio.to_thread(service.prepare)
            embedding = await asyncio.to_thread(lambda: service.query_embedding)
            log.info(
                "index ready: %d passages (%d prepared for highlights in %.2f s); questions embedded by %s",
                service.passage_count,
                prepared,
                time.monotonic() - started,
                embedding,
            )
        for adapter in adapters:
            if stop.is_set():  # SIGTERM while the index was being built: do not connect at all
                break
            await adapter.start()
            log.info("%s adapter started", adapter.name)
        ops.started = True
        if service is not None and not service.uses_qdrant:  # a Qdrant source follows its alias itself
            follower = asyncio.create_task(follow_index(service, stop), name="rolecall-follow-index")
        if watch and service is not None:
            from bot.watch import watch_knowledge

            watcher = asyncio.create_task(watch_knowledge(service, stop), name="rolecall-watch")
        await stop.wait()
        ops.stopping = True
        log.info("stopping: no new questions; finishing the ones in flight")
    finally:
        ops.stopping = True
        stop.set()
        # All at once: each stops taking questions at the same moment, and the drains overlap, so the
        # whole stop takes the longest adapter's grace, not the sum of them.
        outcomes = await asyncio.gather(*(adapter.stop() for adapter in adapters), return_exceptions=True)
        for adapter, outcome in zip(adapters, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("error while stopping the %s adapter", adapter.name, exc_info=outcome)
        await runner.cleanup()
        if follower is not None:
            follower.cancel()
        if watcher is not None:  # a reindex it started runs in a thread: let it finish, bounded
            done, _ = await asyncio.wait({watcher}, timeout=WATCH_STOP_SECONDS)
            if not done:
                watcher.cancel()
        for signum in handled:
            loop.remove_signal_handler(signum)
        log.info("stopped")


def _on_signal(signum: signal.Signals, stop: asyncio.Event) -> None:
    log.info("received %s", signum.name)
    stop.set()


def build_adapters(
    settings: Settings,
    service: RolecallService,
    admin: AdminActions,
    conversation: Conversation | None = None,
) -> list[Adapter]:
    """The composition root: one adapter per configured platform, each imported only when asked for."""
    adapters: list[Adapter] = []
    if settings.slack_bot_token:
        from adapters.slack import SlackAdapter

        adapters.append(SlackAdapter.from_settings(settings, service, admin, conversation))
    if settings.discord_token:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter.from_settings(settings, service, admin, conversation))
    return adapters


def serve(settings: Settings) -> int:
    """Run `rolecall serve` until SIGTERM; a missing configuration is a one-line RolecallError."""
    problem = settings.chat_platform_problem()  # nothing set, or Slack without its bot token
    if problem:
        raise RolecallError(problem)
    setup_logging(settings.log_level, settings.log_format)
    metrics = Metrics()
    service = RolecallService(ServiceConfig.from_settings(settings), metrics=metrics)
    records = RecordStore(settings.database)
    log.info("feedback and audit records: %s", records.database.describe())
    admin = AdminActions(service, records, settings.admins)
    conversation = Conversation(
        service,
        records,
        rate_limit=settings.rate_limit,
        max_question_chars=settings.max_question_chars,
        metrics=metrics,
    )
    adapters = build_adapters(settings, service, admin, conversation)
    asyncio.run(
        run_adapters(
            adapters,
            settings.http_host,
            settings.http_port,
            service=service,
            metrics=metrics,
            watch=settings.watch,
        )
    )
    return 0
