"""A fake Slack on 127.0.0.1 (Web API, response URLs, a Socket Mode websocket) and signed-request helpers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

BOT_TOKEN = "xoxb-1-test-bot-token"
APP_TOKEN = "xapp-1-test-app-token"
SIGNING_SECRET = "test-signing-secret"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"


@dataclass
class Call:
    """One request the fake received: a Web API method, a response_url post or a websocket message."""

    method: str  # "chat.postMessage", …, "response_url", "socket"
    data: dict[str, Any]
    path: str = ""
    token: str = ""
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeSlack:
    """Records every call; answers like Slack would for the methods Rolecall uses."""

    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # users.info answers by user id
    # Each hook may turn a call into a Slack error: return an error code, or None to let it through.
    failures: list[Callable[[Call], str | None]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self.socket_connected = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes(
            [
                web.route("*", "/api/{method}", self._api),  # users.info comes as a GET
                web.post("/response/{name}", self._response_url),
                web.get("/socket", self._socket),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    # -- what was called -----------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            c.data for c in self.of("chat.postMessage") if channel is None or c.data.get("channel") == channel
        ]

    def responses(self, name: str) -> list[dict[str, Any]]:
        return [c.data for c in self.of("response_url") if c.path == f"/response/{name}"]

    # -- handlers ------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            data = dict(await request.json())
        elif request.method != "POST":
            data = {}
        else:
            data = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        data.update(request.query)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        call = Call(method, data, request.path, token)
        self.calls.append(call)
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        for failure in self.failures:
            error = failure(call)
            if error:
                call.response = {"ok": False, "error": error}
                return web.json_response(call.response)
        call.response = self._answer(method, data)
        return web.json_response(call.response)

    def _answer(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://test.slack.com/",
                "team": "Test",
                "user": "rolecall",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method in ("chat.postMessage", "chat.update"):
            ts = data.get("ts") or f"{int(time.time())}.{next(self._ts):06d}"
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts}
            message.update({k: data[k] for k in ("text", "blocks", "thread_ts") if k in data})
            return {"ok": True, "channel": data.get("channel"), "ts": ts, "message": message}
        if method == "users.info":
            user = self.users.get(str(data.get("user")))
            return (
                {"ok": True, "user": user} if user is not None else {"ok": False, "error": "user_not_found"}
            )
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        self.calls.append(Call("response_url", dict(await request.json()), request.path))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        self.socket_connected.set()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.calls.append(Call("socket", json.loads(message.data), request.path))
        return ws

    async def send_envelope(self, payload: dict[str, Any], envelope_type: str = "events_api") -> str:
        """Push one Socket Mode envelope to the connected app; returns its envelope id."""
        envelope_id = f"env-{next(self._ts)}"
        live = [ws for ws in self._sockets if not ws.closed]
        assert live, "no Socket Mode connection"
        await live[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "payload": payload,
                "accepts_response_payload": False,
            }
        )
        return envelope_id


# -- signed requests to the app ----------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature: v0= HMAC-SHA256 of 'v0:{timestamp}:{body}'."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_event_ids = itertools.count(1)


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """An Events API envelope around one event."""
    return {
        "token": "unused",
        "team_id": TEAM_ID,
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):04d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        "event": event,
    }


def block_actions(
    action_id: str, value: str, user: str, response_url: str, message: dict[str, Any] | None, channel: str
) -> dict[str, Any]:
    """The payload Slack sends when someone clicks a button."""
    container: dict[str, Any] = {"type": "message", "channel_id": channel, "is_ephemeral": message is None}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "api_app_id": "A1",
        "channel": {"id": channel},
        "container": container,
        "response_url": response_url,
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value}],
    }
    if message is not None:
        container["message_ts"] = message["ts"]
        payload["message"] = message
    return payload


@dataclass
class SlackClient:
    """Sends signed requests to the app's /slack/events, as Slack does."""

    url: str
    secret: str = SIGNING_SECRET
    session: aiohttp.ClientSession | None = None

    async def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, float]:
        """(status, body, seconds to the response)."""
        assert self.session is not None
        all_headers = {
            "Content-Type": content_type,
            **sign(secret or self.secret, body, timestamp),
            **(headers or {}),
        }
        started = time.monotonic()
        async with self.session.post(self.url, data=body, headers=all_headers) as response:
            text = await response.text()
            return response.status, text, time.monotonic() - started

    async def event(
        self, event: dict[str, Any], event_id: str | None = None, **kwargs: Any
    ) -> tuple[int, str, float]:
        return await self.post(
            json.dumps(event_callback(event, event_id)).encode(), "application/json", **kwargs
        )

    async def envelope(self, envelope: dict[str, Any], **kwargs: Any) -> tuple[int, str, float]:
        return await self.post(json.dumps(envelope).encode(), "application/json", **kwargs)

    async def command(self, fields: dict[str, str], **kwargs: Any) -> tuple[int, str, float]:
        body = urllib.parse.urlencode(fields).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)

    async def action(self, payload: dict[str, Any], **kwargs: Any) -> tuple[int, str, float]:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def gather_bounded(*aws: Awaitable[Any], timeout: float = 20.0) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*aws), timeout))
