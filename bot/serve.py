"""`rolecall serve`: run every configured chat adapter and the HTTP server in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from bot.admin import AdminActions
from bot.records import RecordStore
from bot.service import RolecallService, ServiceConfig
from bot.settings import Settings
from index.errors import RolecallError

log = logging.getLogger(__name__)


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


async def run_adapters(
    adapters: Sequence[Adapter], host: str, port: int, stop: asyncio.Event | None = None
) -> None:
    """Start the HTTP server and the adapters, wait for SIGTERM/SIGINT (or `stop`), then shut down."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or not POSIX
            loop.add_signal_handler(signum, stop.set)
    app = web.Application()
    for adapter in adapters:
        app.add_routes(list(adapter.routes()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("listening on %s:%s", host, port)
    try:
        for adapter in adapters:
            await adapter.start()
            log.info("%s adapter started", adapter.name)
        await stop.wait()
        log.info("stopping")
    finally:
        for adapter in adapters:
            try:
                await adapter.stop()
            except Exception:
                log.exception("error while stopping the %s adapter", adapter.name)
        await runner.cleanup()


def build_adapters(settings: Settings, service: RolecallService, admin: AdminActions) -> list[Adapter]:
    """The composition root: one adapter per configured platform, each imported only when asked for."""
    adapters: list[Adapter] = []
    if settings.slack_bot_token:
        from adapters.slack import SlackAdapter

        adapters.append(SlackAdapter.from_settings(settings, service, admin))
    if settings.discord_token:
        from adapters.discord import DiscordAdapter

        adapters.append(DiscordAdapter.from_settings(settings, service, admin))
    return adapters


def serve(settings: Settings) -> int:
    """Run `rolecall serve` until SIGTERM; a missing configuration is a one-line RolecallError."""
    if not (settings.slack_bot_token or settings.discord_token):
        raise RolecallError(
            "no chat platform configured: set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN or"
            " SLACK_SIGNING_SECRET) or DISCORD_TOKEN; `rolecall chat` answers in the console"
        )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = RolecallService(ServiceConfig.from_settings(settings))
    service.open(notify=log.info)
    admin = AdminActions(service, RecordStore(settings.database_path), settings.admins)
    adapters = build_adapters(settings, service, admin)
    asyncio.run(run_adapters(adapters, settings.http_host, settings.http_port))
    return 0
