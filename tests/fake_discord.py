"""A fake Discord on 127.0.0.1: the gateway websocket (sharded) and the REST API in one aiohttp app, recording calls."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = 900_000_000_000_000_001
APP_ID = BOT_ID  # Discord gives a bot user the id of its application
GUILD_ID = 910_000_000_000_000_001  # on shard 0 of 2: (GUILD_ID >> 22) % 2 == 0
CHANNEL_ID = 920_000_000_000_000_001
OTHER_CHANNEL_ID = 920_000_000_000_000_002
SECOND_GUILD_ID = GUILD_ID + (1 << 22)  # on shard 1 of 2
SECOND_GUILD_CHANNEL_ID = 920_000_000_000_000_003
DM_CHANNEL_ID = 930_000_000_000_000_001
USER_ID = 940_000_000_000_000_001
OTHER_BOT_ID = 940_000_000_000_000_002
ROLE_ID = 950_000_000_000_000_001
BOT_ROLE_ID = 950_000_000_000_000_002
API_PREFIX = "/api/v10"

MESSAGE_CONTENT_INTENT = 1 << 15
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | MESSAGE_CONTENT_INTENT
MANAGE_GUILD = 1 << 5
EVERYDAY_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 31)  # view channel, send messages, use app commands


@dataclass
class Call:
    """One REST request as the fake received it."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    authorization: str
    at: float = field(default_factory=time.monotonic)


def user(user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def member(
    user_payload: dict[str, Any] | None, roles: tuple[int, ...] = (), permissions: int | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "roles": [str(role) for role in roles],
        "nick": None,
        "avatar": None,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if user_payload is not None:
        payload["user"] = user_payload
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def role(role_id: int, name: str, permissions: int, managed: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": 1 if managed else 0,
        "permissions": str(permissions),
        "managed": managed,
        "mentionable": False,
        "flags": 0,
    }
    if managed:
        payload["tags"] = {"bot_id": str(BOT_ID)}
    return payload


def text_channel(channel_id: int, name: str, guild_id: int = GUILD_ID) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """The shard Discord sends a guild's events to; DMs (no guild) go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


# The guilds the bot is in: id -> (name, its text channels as (id, name)).
GUILDS: dict[int, tuple[str, tuple[tuple[int, str], ...]]] = {
    GUILD_ID: ("Careers Club", ((CHANNEL_ID, "careers"), (OTHER_CHANNEL_ID, "ask-rolecall"))),
    SECOND_GUILD_ID: ("Second Server", ((SECOND_GUILD_CHANNEL_ID, "general"),)),
}


def guild(guild_id: int = GUILD_ID) -> dict[str, Any]:
    name, channels = GUILDS[guild_id]
    return {
        "id": str(guild_id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(USER_ID + 99),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [
            role(guild_id, "@everyone", EVERYDAY_PERMISSIONS),
            role(BOT_ROLE_ID, "Rolecall", EVERYDAY_PERMISSIONS, managed=True),
            role(ROLE_ID, "engineers", 0),
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "large": False,
        "unavailable": False,
        "member_count": 2,
        "channels": [text_channel(channel_id, channel, guild_id) for channel_id, channel in channels],
        "threads": [],
        "members": [member(user(BOT_ID, "Rolecall", bot=True), roles=(BOT_ROLE_ID,))],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


class FakeDiscord:
    """Serves GET /gateway (websocket) and /api/v10/... on one port; tests dispatch gateway events.

    Several gateway connections may be open, one per shard: IDENTIFY's `shard` field ([id, count],
    absent = [0, 1]) says which; each gets READY and GUILD_CREATE for the guilds of its shard only, and
    `dispatch` sends an event to the shard of its guild (DMs to shard 0), as Discord does.
    """

    def __init__(
        self, refuse_privileged_intents: bool = False, guilds: tuple[int, ...] = (GUILD_ID,)
    ) -> None:
        self.refuse_privileged_intents = refuse_privileged_intents
        self.guilds = guilds
        self.calls: list[Call] = []
        self.identify: dict[str, Any] | None = None  # the latest IDENTIFY
        self.identifies: list[dict[str, Any]] = []
        self.delivered: list[tuple[int, str, str]] = []  # (shard id, event name, payload id) per dispatch
        self.shard_count = 1
        self.commands: list[dict[str, Any]] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.fail_next: dict[tuple[str, str], int] = {}  # (method, path) -> status of one failing answer
        self._ids = itertools.count(960_000_000_000_000_001)
        self._sequence = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._shard_sockets: dict[int, web.WebSocketResponse] = {}  # shard id -> its identified socket
        self._ready: dict[int, asyncio.Event] = {}
        self._interaction_channels: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        shard_id: int | None = None
        await socket.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 41_250}, "s": None, "t": None})
        )
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                if payload["op"] == 1:
                    await socket.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif payload["op"] == 2:
                    self.identify = payload["d"]
                    self.identifies.append(payload["d"])
                    if self.refuse_privileged_intents and payload["d"]["intents"] & PRIVILEGED_INTENTS:
                        await socket.close(code=4014, message=b"Disallowed intent(s).")
                        break
                    shard_id, self.shard_count = payload["d"].get("shard") or (0, 1)
                    if not 0 <= shard_id < self.shard_count:
                        await socket.close(code=4010, message=b"Invalid shard.")
                        break
                    self._shard_sockets[shard_id] = socket
                    mine = [g for g in self.guilds if shard_of(g, self.shard_count) == shard_id]
                    await self._send(socket, "READY", self._ready_payload(mine, [shard_id, self.shard_count]))
                    for guild_id in mine:
                        await self._send(socket, "GUILD_CREATE", guild(guild_id))
                    self._ready_event(shard_id).set()
        finally:
            self._sockets.remove(socket)
            if shard_id is not None and self._shard_sockets.get(shard_id) is socket:
                del self._shard_sockets[shard_id]
                self._ready_event(shard_id).clear()
        return socket

    def _ready_event(self, shard_id: int) -> asyncio.Event:
        return self._ready.setdefault(shard_id, asyncio.Event())

    def _ready_payload(self, guild_ids: list[int], shard: list[int]) -> dict[str, Any]:
        bot = user(BOT_ID, "Rolecall", bot=True)
        return {
            "v": 10,
            "user": {**bot, "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guild_ids],
            "session_id": f"fake-session-{shard[0]}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": shard,
        }

    async def _send(self, socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        await socket.send_str(json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send one gateway event to the connection of its guild's shard (DMs: shard 0)."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        shard_id = shard_of(guild_id, self.shard_count)
        await asyncio.wait_for(self._ready_event(shard_id).wait(), timeout=10)
        if event == "INTERACTION_CREATE":
            self._interaction_channels[data["token"]] = int(data["channel"]["id"])
        self.delivered.append((shard_id, event, str(data.get("id", ""))))
        await self._send(self._shard_sockets[shard_id], event, data)

    # -- REST --------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        self.calls.append(
            Call(request.method, path, dict(request.query), body, request.headers.get("Authorization", ""))
        )
        status = self.fail_next.pop((request.method, path), None)
        if status is not None:
            return _json({"message": "fake failure", "code": 0}, status)
        parts = path.strip("/").split("/")
        match request.method, parts:
            case "GET", ["users", "@me"]:
                return _json({**user(BOT_ID, "Rolecall", bot=True), "verified": True, "flags": 0})
            case "GET", ["oauth2", "applications", "@me"]:
                return _json(self._application())
            case "GET", ["applications", _, "commands"]:
                return _json(self.commands)
            case "PUT", ["applications", _, "commands"]:
                self.commands = [self._stored_command(command) for command in body or []]
                return _json(self.commands)
            case "POST", ["channels", _channel, "typing"]:
                return web.Response(status=204)
            case "POST", ["channels", channel, "messages"]:
                return _json(self._message(int(channel), body or {}))
            case "POST", ["interactions", interaction_id, _token, "callback"]:
                return _json(self._callback(interaction_id, body or {}))
            case "POST", ["webhooks", _app, token]:
                return _json(self._message(self._channel_of(token), body or {}, webhook=True))
            case "PATCH", ["webhooks", _app, token, "messages", _message]:
                return _json(self._message(self._channel_of(token), body or {}, webhook=True))
        return _json({"message": f"fake Discord has no {request.method} {path}", "code": 0}, 404)

    def _stored_command(self, command: dict[str, Any]) -> dict[str, Any]:
        """A command as Discord echoes it: ids and version added, localisations null, empty lists gone."""

        def echo(option: dict[str, Any]) -> dict[str, Any]:
            out = {**option, "name_localizations": None, "description_localizations": None}
            if out.get("options"):
                out["options"] = [echo(child) for child in out["options"]]
            else:
                out.pop("options", None)
            return out

        return {
            **echo(command),
            "id": str(next(self._ids)),
            "application_id": str(APP_ID),
            "version": str(next(self._ids)),
        }

    def _channel_of(self, interaction_token: str) -> int:
        return self._interaction_channels.get(interaction_token, CHANNEL_ID)

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "Rolecall",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": user(USER_ID + 99, "owner"),
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
        }

    def _message(self, channel_id: int, body: dict[str, Any], webhook: bool = False) -> dict[str, Any]:
        message_id = next(self._ids)
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": user(BOT_ID, "Rolecall", bot=True),
            "content": body.get("content") or "",
            "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 19 if body.get("message_reference") else 0,
            "flags": body.get("flags") or 0,
        }
        if body.get("message_reference"):
            payload["message_reference"] = body["message_reference"]
        if webhook:
            payload["webhook_id"] = str(APP_ID)
            payload["application_id"] = str(APP_ID)
        self.messages[message_id] = payload
        return payload

    def _callback(self, interaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
        flags = (body.get("data") or {}).get("flags") or 0
        return {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": body.get("type") == 5,
                "response_message_ephemeral": bool(flags & 64),
            },
            "resource": {"type": body.get("type")},
        }

    # -- what tests look at ------------------------------------------------------------------

    def requests(self, method: str, path_prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    async def wait_for(
        self, method: str, path_prefix: str, count: int = 1, timeout: float = 20.0
    ) -> list[Call]:
        """The first `count` matching calls, polling for at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(method, path_prefix)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [f"{c.method} {c.path}" for c in self.calls]
                raise AssertionError(f"no {count}x {method} {path_prefix} within {timeout} s; saw {seen}")
            await asyncio.sleep(0.02)

    # -- event payloads ----------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def message_event(
        self,
        content: str,
        *,
        dm: bool = False,
        channel_id: int = CHANNEL_ID,
        author: dict[str, Any] | None = None,
        mentions: tuple[dict[str, Any], ...] = (),
        role_mentions: tuple[int, ...] = (),
        mention_everyone: bool = False,
        guild_id: int = GUILD_ID,
    ) -> dict[str, Any]:
        author = author or user(USER_ID, "asker")
        payload: dict[str, Any] = {
            "id": str(self.next_id()),
            "channel_id": str(DM_CHANNEL_ID if dm else channel_id),
            "author": author,
            "content": content,
            "timestamp": "2024-01-01T00:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": mention_everyone,
            "mentions": [{**m, "member": member(None)} if not dm else m for m in mentions],
            "mention_roles": [str(r) for r in role_mentions],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if not dm:
            payload["guild_id"] = str(guild_id)
            payload["member"] = member(None)
        return payload

    def command_event(
        self,
        subcommand: str,
        options: dict[str, str] | None = None,
        *,
        dm: bool = False,
        user_id: int = USER_ID,
        permissions: int = EVERYDAY_PERMISSIONS,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE for /career <subcommand> [option:value ...]."""
        sub = {
            "name": subcommand,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()],
        }
        data = {"id": str(self.next_id()), "name": "career", "type": 1, "options": [sub]}
        return self._interaction(2, data, dm=dm, user_id=user_id, permissions=permissions)

    def button_event(self, message: dict[str, Any], custom_id: str, user_id: int = USER_ID) -> dict[str, Any]:
        """INTERACTION_CREATE for a click on a button of a message the bot sent."""
        payload = self._interaction(
            3,
            {"custom_id": custom_id, "component_type": 2},
            dm=int(message["channel_id"]) == DM_CHANNEL_ID,
            user_id=user_id,
            permissions=EVERYDAY_PERMISSIONS,
            channel_id=int(message["channel_id"]),
        )
        payload["message"] = message
        return payload

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        dm: bool,
        user_id: int,
        permissions: int,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        asker = user(user_id, "asker")
        payload: dict[str, Any] = {
            "id": str(self.next_id()),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "token": f"interaction-token-{self.next_id()}",
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(EVERYDAY_PERMISSIONS),
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)} if not dm else {"1": str(user_id)},
        }
        if dm:
            payload["context"] = 1
            payload["channel"] = {"id": str(DM_CHANNEL_ID), "type": 1, "recipients": [asker]}
            payload["channel_id"] = str(DM_CHANNEL_ID)
            payload["user"] = asker
        else:
            payload["context"] = 0
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "en-US"
            channel = channel_id or CHANNEL_ID
            payload["channel"] = text_channel(channel, "careers")
            payload["channel_id"] = str(channel)
            payload["member"] = member(asker, permissions=permissions)
        return payload


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json, so no
    # charset parameter (which web.json_response would add).
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )
