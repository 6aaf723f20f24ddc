"""The Discord adapter: DMs, mentions and /career commands in, answer embeds with vote buttons out.

It only translates. A Discord message or interaction becomes a `Question`, the service answers it
off the event loop, and the `Answer` goes back as an embed (adapters/discord_embeds.py). Admin work
goes through `bot.admin.AdminActions`, votes into the shared `RecordStore`.

    Discord gateway ──MESSAGE_CREATE──▶ on_message ─┐
                   ──INTERACTION_CREATE─▶ /career ──┼─▶ RolecallService.ask_async ─▶ embed + 👍/👎
                                        ▶ 👍 / 👎 ──┘   AdminActions.reindex     ─▶ private summary
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from aiohttp import web
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord_embeds import answer_embed, clip_content, clip_lines, roles_embed, vote_subject
from adapters.seen import SeenEvents
from bot.answer import Question, is_greeting
from bot.conversation import Conversation
from bot.logs import error_reference
from index.errors import RolecallError

if TYPE_CHECKING:
    from bot.admin import AdminActions
    from bot.service import RolecallService
    from bot.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = "discord"
# Every message the bot sends pings nobody, whatever the question quoted (@everyone, roles, users).
NO_PINGS = discord.AllowedMentions.none()
DEFAULT_API_URL = Route.BASE
PORTAL = "https://discord.com/developers/applications"

USAGE = (
    "Ask me a career question, for example “what does a senior back-end engineer earn?” — "
    "mention me with the question, DM me, or use `/career ask`."
)
RESTARTING = "Rolecall is restarting; please ask again in a minute."
THANKS = {"up": "Thanks for the feedback! 👍", "down": "Thanks for the feedback! 👎 I'll pass it on."}
ALREADY_VOTED = "You rated this answer already. Thanks!"
VOTES_REMEMBERED = 50_000  # (answer, person) pairs kept to count each person's vote on an answer once


class DiscordStartError(RolecallError):
    """The Discord adapter could not start: bad token, refused intent, unreachable API or gateway."""


@dataclass(frozen=True)
class DiscordConfig:
    """What the adapter needs from the settings; the token is a plain string only in here."""

    token: str = field(repr=False)
    api_url: str = ""  # REST base, e.g. https://discord.com/api/v10 or a rate-limit proxy; "" = Discord
    gateway_url: str = ""  # e.g. wss://gateway.discord.gg/; "" = Discord
    message_content: bool = False  # the privileged Message Content intent
    channels: frozenset[int] = frozenset()  # answer every message here (needs message_content)
    admin_servers: frozenset[int] = frozenset()  # here, members with Manage Server may reindex too
    sync_commands: bool = True  # register /career with Discord when it differs from what is registered
    shard_ids: tuple[int, ...] = ()  # the shards this process runs; () = all of shard_count
    shard_count: int = 0  # total shards across processes; 0 = one unsharded connection
    guild_ready_timeout: float = 2.0
    startup_timeout: float = 120.0
    stop_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordConfig:
        if settings.discord_token is None:
            raise DiscordStartError("DISCORD_TOKEN is not set")
        return cls(
            token=settings.discord_token.get_secret_value(),
            api_url=settings.discord_api_url,
            gateway_url=settings.discord_gateway_url,
            message_content=settings.discord_message_content,
            channels=settings.discord_channels,
            admin_servers=settings.discord_admin_servers,
            shard_ids=settings.discord_shard_ids,
            shard_count=settings.discord_shard_count,
        )

    def __post_init__(self) -> None:
        if self.shard_ids and not self.shard_count:
            raise DiscordStartError(
                "ROLECALL_DISCORD_SHARD_IDS needs ROLECALL_DISCORD_SHARD_COUNT (the total)"
            )
        if any(not 0 <= i < self.shard_count for i in self.shard_ids):
            raise DiscordStartError(
                f"ROLECALL_DISCORD_SHARD_IDS must be between 0 and ROLECALL_DISCORD_SHARD_COUNT - 1 ({self.shard_count - 1})"
            )

    @property
    def sharded(self) -> bool:
        return self.shard_count > 0

    def describe_shards(self) -> str:
        """E.g. "shards 0, 1 of 4"; "" when unsharded."""
        if not self.sharded:
            return ""
        ids = self.shard_ids or tuple(range(self.shard_count))
        return f"shard{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} of {self.shard_count}"

    def intents(self) -> discord.Intents:
        """Guilds, guild messages and DMs; Message Content only when the operator enabled it."""
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = self.message_content
        return intents


class _Endpoints:
    """Points discord.py at another REST base and gateway while the adapter runs, then puts Discord's back.

    discord.py 2.7 reads both from class attributes: every REST call, including the interaction
    callbacks and follow-ups that go through its webhook adapter, builds its URL from `Route.BASE`;
    the gateway URL comes from `DiscordWebSocket.DEFAULT_GATEWAY` (a `yarl.URL`), which is also where
    it goes back to after an invalidated session. Neither can be set per client, so the override is
    process-wide. `rolecall serve` runs one Discord client; a second one in the same process may
    share the same endpoints but is refused other ones rather than silently redirecting the first.
    """

    _active: tuple[str | None, yarl.URL | None] | None = None
    _saved: tuple[str, yarl.URL] = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    _users = 0

    def __init__(self, api_url: str, gateway_url: str) -> None:
        self.api_base = _api_base(api_url) if api_url else None
        self.gateway = _gateway(gateway_url) if gateway_url else None
        self._applied = False

    @property
    def rest_base(self) -> str:
        return self.api_base or Route.BASE

    def apply(self) -> None:
        wanted = (self.api_base, self.gateway)
        if self._applied or wanted == (None, None):
            return
        cls = _Endpoints
        if cls._users == 0:
            cls._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
            cls._active = wanted
            if self.api_base is not None:
                Route.BASE = self.api_base
            if self.gateway is not None:
                DiscordWebSocket.DEFAULT_GATEWAY = self.gateway
        elif cls._active != wanted:
            raise DiscordStartError(
                "another Discord client in this process already uses other DISCORD_API_URL /"
                " DISCORD_GATEWAY_URL values"
            )
        cls._users += 1
        self._applied = True

    def restore(self) -> None:
        if not self._applied:
            return
        self._applied = False
        cls = _Endpoints
        cls._users -= 1
        if cls._users == 0:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = cls._saved
            cls._active = None


def _api_base(url: str) -> str:
    parsed = yarl.URL(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DiscordStartError(f"invalid setting DISCORD_API_URL: expected an http(s) URL, got {url!r}")
    text = str(parsed).rstrip("/")
    if parsed.path in ("", "/"):
        # A bare host (a proxy, a test server) gets the API version discord.py speaks.
        text += DEFAULT_API_URL[DEFAULT_API_URL.index("/api/") :]
    return text


def _gateway(url: str) -> yarl.URL:
    parsed = yarl.URL(url.strip())
    if parsed.scheme not in ("ws", "wss") or not parsed.host:
        raise DiscordStartError(f"invalid setting DISCORD_GATEWAY_URL: expected a ws(s) URL, got {url!r}")
    return parsed


def privileged_intent_message(intents: discord.Intents) -> str:
    """One line: which privileged intent Discord refused and where to switch it on."""
    wanted = [
        label
        for label, on in (
            ("Message Content", intents.message_content),
            ("Server Members", intents.members),
            ("Presence", intents.presences),
        )
        if on
    ]
    names = " and ".join(wanted) or "a privileged"
    hint = " or unset ROLECALL_DISCORD_MESSAGE_CONTENT" if intents.message_content else ""
    return (
        f"Discord refused the {names} intent: enable it in the Discord Developer Portal ({PORTAL})"
        f" under your application > Bot > Privileged Gateway Intents{hint}"
    )


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"rolecall:vote:(?P<vote>up|down)"
):
    """👍 / 👎 under an answer. The custom id carries the vote and the embed the question and
    sources, so a click counts after a restart too."""

    def __init__(self, vote: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if vote == "up" else "👎",
                custom_id=f"rolecall:vote:{vote}",
            )
        )
        self.vote = vote

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VoteButton:
        return cls(match["vote"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        if isinstance(client, RolecallClient):
            await client.adapter.record_vote(interaction, self.vote)


def vote_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up"))
    view.add_item(VoteButton("down"))
    return view


def voted_view(vote: str) -> discord.ui.View:
    """The buttons after a vote: both disabled, the chosen one coloured."""
    view = discord.ui.View(timeout=None)
    for option, emoji, style in (
        ("up", "👍", discord.ButtonStyle.success),
        ("down", "👎", discord.ButtonStyle.danger),
    ):
        view.add_item(
            discord.ui.Button(
                style=style if option == vote else discord.ButtonStyle.secondary,
                emoji=emoji,
                custom_id=f"rolecall:voted:{option}",
                disabled=True,
            )
        )
    view.stop()  # nothing left to listen for: keep it out of discord.py's view store
    return view


# Explicit contexts and install type, so what Discord echoes back compares equal at the next start.
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
class CareerCommands(app_commands.Group):
    """/career ask, /career roles, /career reindex: in servers and in DMs with the bot."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        super().__init__(name="career", description="Career answers from the team's role documents")
        self.adapter = adapter

    @app_commands.command(name="ask", description="Ask a career question")
    @app_commands.describe(question="For example: what does a senior back-end engineer earn?")
    async def ask(
        self, interaction: discord.Interaction[Any], question: app_commands.Range[str, 1, 1000]
    ) -> None:
        await self.adapter.ask_command(interaction, question)

    @app_commands.command(name="roles", description="List the roles I can answer about")
    async def roles(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.roles_command(interaction)

    # Discord only honours default permissions on top-level commands, so this subcommand is
    # visible to everyone; the permission check happens in bot.admin and refusals are private.
    @app_commands.command(name="reindex", description="Admins: rebuild the index from the knowledge folders")
    async def reindex(self, interaction: discord.Interaction[Any]) -> None:
        await self.adapter.reindex_command(interaction)


class RolecallClient(discord.Client):
    """discord.Client wired to one adapter: messages, the /career tree, vote buttons, one error path."""

    def __init__(self, adapter: DiscordAdapter, **options: Any) -> None:
        super().__init__(**options)
        self.adapter = adapter
        self.tree: app_commands.CommandTree[RolecallClient] = app_commands.CommandTree(self)
        self.tree.add_command(CareerCommands(adapter))
        self.tree.error(adapter.on_app_command_error)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(VoteButton)
        if self.adapter.config.sync_commands:
            await self.adapter.sync_commands()

    async def on_ready(self) -> None:
        log.info("Discord: connected as %s in %d servers", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1] or RuntimeError("unknown error")
        message = args[0] if args and isinstance(args[0], discord.Message) else None
        await self.adapter.report_error(error, event_method, message=message)


class RolecallShardedClient(RolecallClient, discord.AutoShardedClient):
    """The same client over some of the bot's shards (ROLECALL_DISCORD_SHARD_IDS of _COUNT): Discord sends
    a shard the events of the guilds with (guild_id >> 22) % shard_count == its id, and DMs to shard 0."""

    async def on_ready(self) -> None:
        log.info(
            "Discord: connected as %s in %d servers (%s)",
            self.user,
            len(self.guilds),
            self.adapter.config.describe_shards(),
        )


class DiscordAdapter:
    """Runs a discord.py client as a background task on the serve loop; see the module docstring."""

    name = "discord"

    def __init__(
        self,
        config: DiscordConfig,
        service: RolecallService,
        admin: AdminActions,
        conversation: Conversation | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.admin = admin
        self.conversation = conversation or Conversation(service, admin.records)
        self._endpoints = _Endpoints(config.api_url, config.gateway_url)
        self._client: RolecallClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # who voted on which answer: the last VOTES_REMEMBERED votes, however old
        self._votes = SeenEvents(ttl=math.inf, max_items=VOTES_REMEMBERED)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        service: RolecallService,
        admin: AdminActions,
        conversation: Conversation | None = None,
    ) -> DiscordAdapter:
        return cls(DiscordConfig.from_settings(settings), service, admin, conversation)

    # -- lifecycle ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return []  # the gateway is an outgoing websocket: no HTTP routes

    async def start(self) -> None:
        """Log in, connect to the gateway in a background task, return once READY (or raise)."""
        if self._client is not None:
            raise RuntimeError("the Discord adapter is already started")
        if self.config.channels and not self.config.message_content:
            log.warning(
                "ROLECALL_DISCORD_CHANNELS is ignored without ROLECALL_DISCORD_MESSAGE_CONTENT:"
                " without the Message Content intent Discord sends the bot only mentions and DMs"
            )
        _quiet_library()
        self._stopping = False
        self._endpoints.apply()
        intents = self.config.intents()
        options: dict[str, Any] = {
            "intents": intents,
            "allowed_mentions": NO_PINGS,
            "guild_ready_timeout": self.config.guild_ready_timeout,
            "max_messages": None,  # no message cache: DM text is not kept in memory
            "chunk_guilds_at_startup": False,
        }
        client: RolecallClient
        if self.config.sharded:
            client = self._client = RolecallShardedClient(
                self,
                shard_ids=list(self.config.shard_ids) or None,
                shard_count=self.config.shard_count,
                **options,
            )
        else:
            client = self._client = RolecallClient(self, **options)
        try:
            await self._login(client)
            self._task = asyncio.create_task(client.connect(reconnect=True), name="rolecall-discord")
            ready = asyncio.ensure_future(client.wait_until_ready())
            try:
                await asyncio.wait(
                    {self._task, ready},
                    timeout=self.config.startup_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                ready.cancel()
            if self._task.done():
                raise self._start_error(self._task.exception(), intents)
            if not client.is_ready():
                raise DiscordStartError(
                    f"the Discord gateway did not become ready within {self.config.startup_timeout:.0f} s"
                )
        except BaseException:
            await self._shutdown()
            raise
        self._task.add_done_callback(self._connection_ended)

    async def _login(self, client: RolecallClient) -> None:
        try:
            await client.login(self.config.token)
        except discord.LoginFailure:
            raise DiscordStartError(
                "Discord rejected DISCORD_TOKEN (401 Unauthorized): copy the bot token from the Developer"
                " Portal, your application > Bot > Reset Token"
            ) from None
        except discord.HTTPException as exc:
            raise DiscordStartError(
                f"the Discord API at {self._endpoints.rest_base} answered {exc.status} while logging in"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DiscordStartError(
                f"cannot reach the Discord API at {self._endpoints.rest_base}: {exc or type(exc).__name__}"
            ) from None

    def _start_error(self, exc: BaseException | None, intents: discord.Intents) -> DiscordStartError:
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            return DiscordStartError(privileged_intent_message(intents))
        if isinstance(exc, discord.ConnectionClosed):
            if exc.code == 4004:
                return DiscordStartError("the Discord gateway rejected DISCORD_TOKEN (close code 4004)")
            return DiscordStartError(f"the Discord gateway closed the connection (close code {exc.code})")
        if exc is None:
            return DiscordStartError("the Discord connection ended before it was ready")
        return DiscordStartError(f"cannot connect to the Discord gateway: {exc or type(exc).__name__}")

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping or task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            log.error("Discord: the gateway connection ended; the bot no longer answers on Discord")
        else:
            reason = self._start_error(exc, self.config.intents())
            log.error("Discord: the gateway connection failed for good: %s", reason)

    async def stop(self) -> None:
        """Stop taking new messages, let those in flight finish (bounded), then disconnect."""
        self._stopping = True
        pending = {task for task in self._in_flight if task is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=self.config.stop_timeout)
        await self._shutdown()

    async def _shutdown(self) -> None:
        client, task = self._client, self._task
        self._client, self._task = None, None
        try:
            if client is not None and not client.is_closed():
                await client.close()
            if task is not None:
                done, _ = await asyncio.wait({task}, timeout=5)
                if not done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                elif not task.cancelled():
                    task.exception()  # retrieved here; start() or _connection_ended reported it
        finally:
            self._endpoints.restore()

    def is_connected(self) -> bool:
        client = self._client
        if client is None or self._task is None or self._task.done() or not client.is_ready():
            return False
        if isinstance(client, discord.AutoShardedClient):
            shards = client.shards
            return bool(shards) and not any(shard.is_closed() for shard in shards.values())
        return client.ws is not None and client.ws.open

    async def sync_commands(self) -> None:
        """Register /career with Discord, but only when it differs from what Discord already has."""
        client = self._client
        if client is None or client.application_id is None:
            return
        wanted = [command.to_dict(client.tree) for command in client.tree.get_commands()]
        try:
            registered = await client.http.get_global_commands(client.application_id)
            if _command_set(registered) == _command_set(wanted):
                log.debug("Discord: the /career commands are already registered")
                return
            await client.tree.sync()
            log.info("Discord: registered the /career commands")
        except discord.HTTPException as exc:
            log.warning("Discord: could not register the /career commands (%s %s)", exc.status, exc.text)

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._in_flight.discard(task)

    # -- messages ----------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        client = self._client
        if self._stopping or client is None or client.user is None:
            return
        if message.author.bot or message.author.id == client.user.id or message.webhook_id is not None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        text = self._question_text(message, client.user)
        if text is None:
            return
        with self._tracked():
            if not text or is_greeting(text):
                await self._send(message, content=USAGE)
                return
            question = Question(
                text=text, user=str(message.author.id), channel=str(message.channel.id), platform=PLATFORM
            )
            log.info("Discord: question from a %s", "DM" if message.guild is None else "server channel")
            async with _typing(message.channel):
                reply = await self.conversation.ask(question)
            if reply.answer is None:  # rate limited
                await self._send(message, content=clip_content(reply.text))
                return
            await self._send(message, embed=answer_embed(reply.answer), view=vote_view())

    def _question_text(self, message: discord.Message, me: discord.ClientUser) -> str | None:
        """The question in a message meant for the bot, '' for a bare mention, None when not for us."""
        if message.guild is None:
            return message.content.strip()
        own_role = message.guild.self_role
        role_mentioned = own_role is not None and own_role.id in message.raw_role_mentions
        if me.id in message.raw_mentions or role_mentioned:
            text = re.sub(rf"<@!?{me.id}>", " ", message.content)
            if own_role is not None:
                text = text.replace(own_role.mention, " ")
            return " ".join(text.split())
        if self.config.message_content and self._listening_in(message.channel):
            return message.content.strip() or None
        return None

    def _listening_in(self, channel: Any) -> bool:
        ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        return bool(ids & self.config.channels)

    async def _send(
        self, message: discord.Message, *, content: str | None = None, **kwargs: Any
    ) -> discord.Message:
        if message.guild is None:
            return await message.channel.send(content, allowed_mentions=NO_PINGS, **kwargs)
        return await message.reply(content, mention_author=False, allowed_mentions=NO_PINGS, **kwargs)

    # -- slash commands ----------------------------------------------------------------------

    async def _defer(self, interaction: discord.Interaction[Any], ephemeral: bool = False) -> bool:
        """Acknowledge within Discord's 3 seconds ('thinking…'); False when shutting down."""
        if self._stopping:
            await interaction.response.send_message(RESTARTING, ephemeral=True, allowed_mentions=NO_PINGS)
            return False
        await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        return True

    async def ask_command(self, interaction: discord.Interaction[Any], text: str) -> None:
        with self._tracked():
            if not await self._defer(interaction):
                return
            question = Question(
                text=text.strip(),
                user=str(interaction.user.id),
                channel=str(interaction.channel_id or ""),
                platform=PLATFORM,
            )
            reply = await self.conversation.ask(question)
            if reply.answer is None:  # rate limited
                await interaction.followup.send(clip_content(reply.text), allowed_mentions=NO_PINGS)
                return
            await interaction.followup.send(
                embed=answer_embed(reply.answer), view=vote_view(), allowed_mentions=NO_PINGS
            )

    async def roles_command(self, interaction: discord.Interaction[Any]) -> None:
        with self._tracked():
            if not await self._defer(interaction):
                return
            # known_roles may have to open the index: off the event loop
            roles, topics = await asyncio.to_thread(
                lambda: (self.service.known_roles, self.service.known_topics)
            )
            await interaction.followup.send(embed=roles_embed(roles, topics), allowed_mentions=NO_PINGS)

    async def reindex_command(self, interaction: discord.Interaction[Any]) -> None:
        with self._tracked():
            permissions = interaction.permissions
            server_admin = interaction.guild_id in self.config.admin_servers and (
                permissions.manage_guild or permissions.administrator
            )
            declined = self._stopping
            if declined:  # audited before the reply, which may fail (the interaction expired)
                await self._decline_reindex(interaction, server_admin, "Rolecall was shutting down")
            try:
                deferred = await self._defer(interaction, ephemeral=True)
            # expired, or refused by Discord: nothing runs, audited; the error handler logs it
            except discord.HTTPException:
                if not declined:
                    await self._decline_reindex(
                        interaction, server_admin, "Discord refused the acknowledgement"
                    )
                raise
            if not deferred:
                if not declined:  # the bot began stopping meanwhile
                    await self._decline_reindex(interaction, server_admin, "Rolecall was shutting down")
                return
            outcome = await self.admin.reindex(
                PLATFORM, str(interaction.user.id), platform_admin=server_admin
            )
            log.info("Discord: reindex %s", outcome.result)
            await interaction.followup.send(
                clip_lines(outcome.message), ephemeral=True, allowed_mentions=NO_PINGS
            )

    async def _decline_reindex(
        self, interaction: discord.Interaction[Any], server_admin: bool, why: str
    ) -> None:
        user_id = str(interaction.user.id)
        allowed = self.admin.is_admin(PLATFORM, user_id, server_admin)
        reason = why + ("" if allowed else "; not an admin either")
        await self.admin.decline_reindex(PLATFORM, user_id, reason)

    # -- votes -------------------------------------------------------------------------------

    async def record_vote(self, interaction: discord.Interaction[Any], vote: str) -> None:
        with self._tracked():
            try:
                message = interaction.message
                embeds = message.embeds if message else []
                question, sources = vote_subject(embeds[0] if embeds else None)
                # An answer in a server channel: everyone there sees its buttons. Each person's vote counts
                # once and is thanked privately; the buttons stay for the others (the first click disabled
                # them for everyone, the asker too).
                in_server = interaction.guild_id is not None
                if in_server and not self._votes.claim(
                    f"{message.id if message else 0}:{interaction.user.id}"
                ):
                    await interaction.response.send_message(
                        ALREADY_VOTED, ephemeral=True, allowed_mentions=NO_PINGS
                    )
                    return
                await self.conversation.record_vote(
                    PLATFORM, str(interaction.user.id), question, sources, vote
                )
                if in_server:
                    await interaction.response.send_message(
                        THANKS[vote], ephemeral=True, allowed_mentions=NO_PINGS
                    )
                    return
                await interaction.response.edit_message(
                    content=THANKS[vote], view=voted_view(vote), allowed_mentions=NO_PINGS
                )
            except Exception as exc:  # noqa: BLE001 - a button error goes to the one error handler
                await self.report_error(exc, "vote button", interaction=interaction)

    # -- errors ------------------------------------------------------------------------------

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "command"
        await self.report_error(error, f"/{name}", interaction=interaction)

    async def report_error(
        self,
        error: BaseException,
        where: str,
        *,
        interaction: discord.Interaction[Any] | None = None,
        message: discord.Message | None = None,
    ) -> None:
        """The one error path: traceback in the log under a reference id, a short apology to the user.

        The log line names where it failed and the id, never the message text or the token.
        """
        ref = error_reference()
        log.error(
            "discord error ref=%s while handling %s",
            ref,
            where,
            exc_info=(type(error), error, error.__traceback__),
        )
        apology = f"Sorry, something went wrong (ref {ref})."
        try:
            if interaction is not None:
                if interaction.response.is_done():
                    await interaction.followup.send(apology, ephemeral=True, allowed_mentions=NO_PINGS)
                else:
                    await interaction.response.send_message(
                        apology, ephemeral=True, allowed_mentions=NO_PINGS
                    )
            elif message is not None:
                await self._send(message, content=apology)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            log.warning("Discord: could not send the apology for ref %s (%s)", ref, type(exc).__name__)


@contextlib.asynccontextmanager
async def _typing(channel: Any) -> AsyncIterator[None]:
    """'Rolecall is typing…' while answering; a channel that refuses typing still gets the answer."""
    typing = channel.typing()
    try:
        await typing.__aenter__()
        started = True
    except discord.HTTPException as exc:
        log.debug("Discord: typing indicator refused (%s)", exc.status)
        started = False
    try:
        yield
    finally:
        if started:
            await typing.__aexit__(None, None, None)


def _quiet_library() -> None:
    """discord.py logs request bodies and gateway payloads (message text) at DEBUG: cap it at INFO.

    It also warns at every start that voice needs PyNaCl; Rolecall has no voice.
    """
    library = logging.getLogger("discord")
    if library.getEffectiveLevel() < logging.INFO:
        library.setLevel(logging.INFO)
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False


_COMPARED_KEYS = (
    "name",
    "type",
    "description",
    "options",
    "required",
    "choices",
    "value",
    "min_length",
    "max_length",
    "min_value",
    "max_value",
    "autocomplete",
    "default_member_permissions",
    "contexts",
    "integration_types",
    "nsfw",
)


def _comparable(value: Any) -> Any:
    """A command definition as Discord stores it, minus ids, versions and unset defaults, for a diff."""
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, dict):
        return {
            key: _comparable(item)
            for key, item in value.items()
            if key in _COMPARED_KEYS and item not in (None, False, [], "")
        }
    return value


def _command_set(commands: list[Any]) -> list[Any]:
    return sorted(_comparable(commands), key=lambda command: (command.get("type", 1), command["name"]))
