"""The Slack adapter: mentions, DMs, the slash command and buttons -> the Rolecall service -> Block Kit.

Slack Bolt (AsyncApp) does the protocol work: request signatures, acks, Socket Mode. This module only
translates. HTTP mode mounts `/slack/events` on the shared aiohttp server of `rolecall serve`; Socket
Mode (when SLACK_APP_TOKEN is set) opens an outbound websocket instead and needs no public URL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.seen import SEEN_TTL_SECONDS, SeenEvents
from adapters.slack_blocks import (
    ALREADY_VOTED,
    SHARE,
    THANKS,
    VOTE_DOWN,
    VOTE_UP,
    answer_blocks,
    answer_text,
    escape,
    from_slack,
    read_button_value,
    text_blocks,
    thanks_blocks,
    vote_emoji,
)
from bot.admin import AdminActions
from bot.answer import Answer, Question, is_greeting
from bot.conversation import Conversation
from bot.logs import error_reference
from bot.records import ClaimStore, user_hash
from bot.service import RolecallService
from bot.settings import Settings
from index.errors import RolecallError

log = logging.getLogger(__name__)

T = TypeVar("T")

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"
WORKING_REACTION = "hourglass_flowing_sand"
DEFAULT_API_URL = "https://slack.com/api/"
_COMMAND = re.compile(r"^/[a-z0-9_.\-]{1,31}$")
# Message subtypes that are a person writing something; joins, edits, topics and bots are not.
_ANSWERABLE_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_NETWORK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError, OSError)
REINDEX_REQUESTED = (
    "Reindex requested: reading the knowledge folders. I keep answering from the current index until the new one"
    " is ready."
)


class SlackConfigError(RolecallError):
    """A Slack setting is missing or inconsistent; the one-line message names the variable."""


class SlackStartError(RolecallError):
    """Slack refused the tokens or could not be reached at start-up."""


@dataclass(frozen=True)
class SlackConfig:
    """What the adapter needs from Settings; the secrets are plain strings here and only here."""

    bot_token: str = field(repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    command: str = "/career"
    trust_workspace_admins: bool = False

    def __post_init__(self) -> None:
        if not self.bot_token:
            raise SlackConfigError("SLACK_BOT_TOKEN is not set")
        if self.bot_token.startswith("xapp-"):
            raise SlackConfigError(
                "SLACK_BOT_TOKEN holds an app-level token (xapp-…): put it in SLACK_APP_TOKEN and set"
                " SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…)"
            )
        if not self.bot_token.startswith("xoxb-"):
            raise SlackConfigError(
                "SLACK_BOT_TOKEN must be the Bot User OAuth Token, starting with xoxb- (OAuth & Permissions)"
            )
        if self.app_token and not self.app_token.startswith("xapp-"):
            raise SlackConfigError(
                "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information >"
                " App-Level Tokens, scope connections:write); unset it to use HTTP events instead"
            )
        if not self.app_token and not self.signing_secret:
            raise SlackConfigError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET"
                f" (HTTP events at {EVENTS_PATH}) is: set one of them"
            )
        if not self.api_url.startswith(("https://", "http://")):
            raise SlackConfigError(f"SLACK_API_URL must be an http(s) URL, got {self.api_url!r}")
        if not _COMMAND.match(self.command):
            raise SlackConfigError(
                f"ROLECALL_SLACK_COMMAND must look like /career (lowercase, at most 32 characters), got {self.command!r}"
            )

    @property
    def mode(self) -> Literal["socket", "http"]:
        """Socket Mode when an app-level token is given, else HTTP events on the shared server."""
        return "socket" if self.app_token else "http"

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackConfig:
        def secret(value: Any) -> str:
            return value.get_secret_value().strip() if value is not None else ""

        api_url = settings.slack_api_url.strip() or DEFAULT_API_URL
        return cls(
            bot_token=secret(settings.slack_bot_token),
            signing_secret=secret(settings.slack_signing_secret),
            app_token=secret(settings.slack_app_token),
            api_url=api_url if api_url.endswith("/") else api_url + "/",
            command=settings.slack_command.strip(),
            trust_workspace_admins=settings.slack_trust_workspace_admins,
        )


class SlackSignature:
    """Slack's request signature (an HMAC of timestamp and body, the timestamp within five minutes).

    The same check Bolt makes, but a timestamp that is no number is a bad signature here, where Bolt's
    raises and hands the unsigned body to the app's error handler."""

    def __init__(self, signing_secret: str) -> None:
        # no secret (Socket Mode, where no HTTP route is served): nothing counts as signed
        self._verifier = SignatureVerifier(signing_secret) if signing_secret.strip() else None

    def is_signed(self, body: str, headers: Mapping[str, Sequence[str]]) -> bool:
        timestamp = _first(headers.get("x-slack-request-timestamp"))
        signature = _first(headers.get("x-slack-signature"))
        if self._verifier is None or not (timestamp.isascii() and timestamp.isdigit() and signature):
            return False
        return self._verifier.is_valid(body, timestamp, signature)


def _first(values: Sequence[str] | None) -> str:
    """The first value of a header Bolt normalised to a list ("" when it is missing)."""
    return values[0] if values else ""


class _NoRejectedBody(logging.Filter):
    """Bolt logs a request with a bad signature or timestamp at INFO with its whole body, which is a
    message's text (a DM's too, e.g. a delayed retry): keep the line, leave out the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if ", body: " in message:
            record.msg, record.args = message.split(", body: ", 1)[0] + ", body not logged)", None
        return True


_REQUEST_VERIFICATION_LOGGER = "slack_bolt.RequestVerification"


def _library_logger() -> logging.Logger:
    """The logger handed to Bolt and the Slack SDK: WARNING unless configured, because their INFO and
    DEBUG lines can carry request bodies (message text)."""
    logger = logging.getLogger("adapters.slack.library")
    for item in (logger, logging.getLogger("slack_bolt"), logging.getLogger("slack_sdk")):
        if item.level == logging.NOTSET:
            item.setLevel(logging.WARNING)
    verification = logging.getLogger(_REQUEST_VERIFICATION_LOGGER)
    if not any(isinstance(f, _NoRejectedBody) for f in verification.filters):
        verification.addFilter(_NoRejectedBody())  # in case someone turns slack_bolt up to INFO
    return logger


def _describe(body: dict[str, Any]) -> str:
    """What a request was, without anything a person wrote."""
    if body.get("command"):
        return f"command {body['command']}"
    event = body.get("event")
    if isinstance(event, dict):
        subtype = f"/{event['subtype']}" if isinstance(event.get("subtype"), str) else ""
        return f"event {event.get('type')}{subtype} {body.get('event_id', '')}".strip()
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return f"action {actions[0].get('action_id')}"
    return str(body.get("type") or "request")


class SlackAdapter:
    """One Slack workspace: questions in channels (mentions), DMs and a slash command; votes; reindex."""

    name = "slack"

    def __init__(
        self,
        config: SlackConfig,
        service: RolecallService,
        admin: AdminActions,
        *,
        working_sign_after: float = 1.0,
        stop_timeout: float = 20.0,
        conversation: Conversation | None = None,
    ) -> None:
        self.config = config
        self.service = service
        self.admin = admin
        self.conversation = conversation or Conversation(service, admin.records)
        self.working_sign_after = working_sign_after
        self.stop_timeout = stop_timeout
        self.seen = SeenEvents(shared=ClaimStore(admin.records.database, SEEN_TTL_SECONDS))
        self._verifier = SlackSignature(config.signing_secret)
        self._library_log = _library_logger()
        # Every argument explicit: Bolt falls back to SLACK_* environment variables for missing ones.
        self.app = AsyncApp(
            name="rolecall",
            logger=self._library_log,
            token=config.bot_token,
            signing_secret=config.signing_secret,
            process_before_response=False,  # ack first, answer afterwards
            request_verification_enabled=True,  # HTTP requests must be signed; Socket Mode skips it
            raise_error_for_unhandled_request=False,
        )
        # The client Bolt built (and copies for each request) talks to SLACK_API_URL. Set here rather than
        # by passing our own client, which makes Bolt read SLACK_BOT_TOKEN from the environment and warn.
        self.app.client.base_url = config.api_url if config.api_url.endswith("/") else config.api_url + "/"
        self._socket: AsyncSocketModeHandler | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._started = False
        self._stopping = False
        self._bot_user_id = ""
        self._register()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        service: RolecallService,
        admin: AdminActions,
        conversation: Conversation | None = None,
    ) -> SlackAdapter:
        """Validate the Slack settings (one-line SlackConfigError) and build the adapter."""
        return cls(SlackConfig.from_settings(settings), service, admin, conversation=conversation)

    # -- the Adapter protocol ------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(EVENTS_PATH, self._handle_http)] if self.config.mode == "http" else []

    async def start(self) -> None:
        """Check the bot token (and app token), then open the Socket Mode connection if configured."""
        try:
            auth = await self.app.client.auth_test()
        except SlackApiError as exc:
            raise SlackStartError(f"Slack rejected SLACK_BOT_TOKEN: {_error_code(exc)}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise SlackStartError(
                f"cannot reach the Slack Web API at {self.config.api_url} (SLACK_API_URL): {str(exc) or type(exc).__name__}"
            ) from None
        self._bot_user_id = str(auth.get("user_id") or "")
        if self.config.mode == "socket":
            await self._connect_socket()
        self._started = True
        log.info("Slack adapter ready: %s mode, bot user %s", self.config.mode, self._bot_user_id)

    async def stop(self) -> None:
        """Close the websocket (or answer 503 so Slack retries elsewhere), then finish answers in flight."""
        self._stopping = True
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if not await self.drain(self.stop_timeout):
            log.warning(
                "cancelling %d Slack answers still running after %ss", len(self._inflight), self.stop_timeout
            )
            for task in list(self._inflight):
                task.cancel()
        self._started = False

    def is_connected(self) -> bool:
        if not self._started or self._stopping:
            return False
        if self.config.mode == "http":
            return True
        client = self._socket.client if self._socket else None
        session = client.current_session if client else None
        return bool(client and not client.closed and session is not None and not session.closed)

    async def drain(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until no question or command is being handled."""
        deadline = time.monotonic() + timeout
        while True:
            pending = {t for t in self._inflight if t is not asyncio.current_task() and not t.done()}
            if not pending:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(pending, timeout=remaining)

    # -- transport -------------------------------------------------------------------------------

    async def _handle_http(self, request: web.Request) -> web.Response:
        if self._stopping:
            # Not acknowledged, so Slack retries: the next instance (or this one, restarted) answers.
            return web.Response(status=503, text="shutting down")
        bolt_request, problem = await _to_bolt_request(request)
        if bolt_request is None:
            log.warning("rejected a request to %s: its body is no Slack payload (%s)", EVENTS_PATH, problem)
            return web.Response(status=400, text="bad request")
        # Checked before Bolt sees it: a timestamp that is no number makes Bolt's check raise, and Bolt's error
        # handler (ours) would then act on the unsigned body (post to its response_url or channel).
        if not self._verifier.is_signed(bolt_request.raw_body, bolt_request.headers):
            log.warning("rejected a request to %s: bad signature or timestamp", EVENTS_PATH)
            return web.Response(status=401, text="invalid request")
        if await self._is_replayed(bolt_request):
            log.warning("ignored a replayed slash command or button click (its signature was seen before)")
            return web.Response(status=200)
        response = await self.app.async_dispatch(bolt_request)
        if response.status == 401:
            log.warning("rejected a request to %s: bad signature or timestamp", EVENTS_PATH)
        return await to_aiohttp_response(response)

    async def _is_replayed(self, bolt_request: AsyncBoltRequest) -> bool:
        """A slash command or button click whose signed request was handled before (a replay within Slack's
        five minutes would run a reindex or count a vote again). Slack never retries those; events are
        retried, and have their own ids (`_take_event`)."""
        if bolt_request.body.get("type") in ("event_callback", "url_verification"):
            return False
        key = f"request:{_first(bolt_request.headers.get('x-slack-signature'))}"
        return not self.seen.claim(key) or not await self.seen.claim_shared(key)

    async def _connect_socket(self) -> None:
        handler = AsyncSocketModeHandler(
            self.app, app_token=self.config.app_token, logger=self._library_log, web_client=self.app.client
        )
        try:
            # Fails fast on a wrong app token, where connect() would log and retry forever.
            await handler.client.issue_new_wss_url()
            await asyncio.wait_for(handler.connect_async(), timeout=30)
        except SlackApiError as exc:
            await handler.close_async()
            raise SlackStartError(f"Slack rejected SLACK_APP_TOKEN: {_error_code(exc)}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            await handler.close_async()
            raise SlackStartError(
                f"cannot open the Slack Socket Mode connection: {str(exc) or type(exc).__name__}"
            ) from None
        self._socket = handler

    # -- listeners -------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        # Anything else Slack sends is acknowledged, so it is not retried and not logged as unhandled.
        app.event(re.compile(".*"))(self._on_other)
        app.command(self.config.command)(self._on_command)
        app.action(VOTE_UP)(self._on_vote)
        app.action(VOTE_DOWN)(self._on_vote)
        app.action(SHARE)(self._on_share)
        app.action(re.compile(".*"))(self._on_other_action)
        app.error(self._on_error)

    def _spawn(self, body: dict[str, Any], work: Coroutine[Any, Any, None]) -> None:
        """Run the slow part of a listener after the ack, tracked so stop() lets it finish.

        Bolt would run it too, but an exception there soon after ack() can turn the ack into a 404;
        here a failure goes to the same error handler and the ack stands.
        """
        task = asyncio.create_task(self._guarded(body, work))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _guarded(self, body: dict[str, Any], work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as error:  # noqa: BLE001 - the one error handler logs it with its traceback
            await self._on_error(error, body)

    async def _on_other(self) -> None:
        return None

    async def _on_other_action(self, ack: Callable[[], Awaitable[Any]]) -> None:
        await ack()

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        self._take_event(event, body, client)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        # Only DMs: in channels the bot answers mentions, which arrive as app_mention.
        if event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D"):
            self._take_event(event, body, client)

    def _take_event(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        """Answer a message once: Bolt has acknowledged it already (Events API listeners ack first)."""
        if not self._is_person_writing(event):
            return
        # The event id catches Slack's retries; channel+ts catches one message sent as both message and app_mention.
        keys = [f"message:{event.get('channel')}:{event.get('ts')}"]
        if body.get("event_id"):
            keys.append(f"event:{body['event_id']}")
        if self.seen.claim(*keys):  # this process has not seen it: ask the other replicas
            self._spawn(body, self._answer_event_once(keys, event, client))

    async def _answer_event_once(
        self, keys: list[str], event: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if await self.seen.claim_shared(*keys):
            await self._answer_event(event, client)

    def _is_person_writing(self, event: dict[str, Any]) -> bool:
        """A new message typed by a person: not us, not another bot, not an edit, join or notice.

        Fields of an unexpected type (a list as subtype, a number as user) are nobody writing.
        """
        user, subtype = event.get("user"), event.get("subtype")
        return bool(
            (subtype is None or isinstance(subtype, str))
            and subtype in _ANSWERABLE_SUBTYPES
            and isinstance(user, str)
            and user
            and user != self._bot_user_id
            and not event.get("bot_id")
            and not event.get("bot_profile")
            and not event.get("edited")
            and not event.get("hidden")
        )

    async def _answer_event(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        is_dm = event.get("channel_type") == "im" or channel.startswith("D")
        thread_ts = event.get("thread_ts") or (None if is_dm else ts)
        text = event.get("text")  # None or missing for a message with only files or attachments
        question = Question(
            from_slack(text if isinstance(text, str) else "", self._bot_user_id),
            str(event["user"]),
            channel,
            PLATFORM,
        )
        if not question.text or is_greeting(question.text):
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=self._help_text(), parse="none", unfurl_links=False
            )
            return

        reacted = False

        async def add_reaction() -> bool:
            nonlocal reacted
            reacted = await self._react(client, "add", channel, ts)
            return reacted

        started = time.monotonic()
        try:
            reply, _ = await self._with_working_sign(self.conversation.ask(question), add_reaction)
            if reply.answer is None:  # rate limited
                await client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_ts,
                    text=escape(reply.text),
                    parse="none",
                    unfurl_links=False,
                )
                return
            answer = reply.answer
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=answer_text(answer),
                blocks=answer_blocks(answer),
                parse="none",
                unfurl_links=False,
                unfurl_media=False,
            )
        finally:  # also when the answer could not be posted: the apology follows, the ⏳ must not stay
            if reacted:
                await self._react(client, "remove", channel, ts)
        self._log_answer("DM" if is_dm else "mention", question, answer, started)

    async def _on_command(
        self,
        ack: Callable[[], Awaitable[Any]],
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        self._spawn(command, self._run_command(command, respond, client))

    async def _run_command(
        self, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        text = from_slack(str(command.get("text", "")))
        word = text.lower().strip(" .!?")
        user_id = str(command.get("user_id", ""))
        if word in ("", "help"):
            await respond(text=self._help_text(), response_type="ephemeral")
        elif word == "roles":
            roles, topics = await asyncio.to_thread(
                lambda: (self.service.known_roles, self.service.known_topics)
            )
            listing = "\n".join(f"• {role}" for role in roles) or "none yet"
            message = f"I know about these roles:\n{listing}"
            if topics:
                other = f"\nand {len(topics)} other document{'s' * (len(topics) != 1)}:\n"
                message += other + "\n".join(f"• {topic}" for topic in topics)
            await respond(text=escape(message)[:3000], blocks=text_blocks(message), response_type="ephemeral")
        elif word == "reindex":
            await self._reindex(user_id, respond, client)
        else:
            await self._answer_command(
                Question(text, user_id, str(command.get("channel_id", "")), PLATFORM), respond
            )

    async def _answer_command(self, question: Question, respond: AsyncRespond) -> None:
        async def placeholder() -> bool:
            await respond(text=":hourglass_flowing_sand: Looking that up…", response_type="ephemeral")
            return True

        started = time.monotonic()
        reply, replaced = await self._with_working_sign(self.conversation.ask(question), placeholder)
        if reply.answer is None:  # rate limited
            await respond(
                text=escape(reply.text), response_type="ephemeral", replace_original=replaced or None
            )
            return
        answer = reply.answer
        await respond(
            text=answer_text(answer),
            blocks=answer_blocks(answer, shareable=True),
            response_type="ephemeral",
            replace_original=replaced or None,
        )
        self._log_answer("command", question, answer, started)

    async def _reindex(self, user_id: str, respond: AsyncRespond, client: AsyncWebClient) -> None:
        platform_admin = False
        if not self.admin.is_admin(PLATFORM, user_id) and self.config.trust_workspace_admins:
            platform_admin = await self._is_workspace_admin(client, user_id)
        # The acknowledgement goes out beside the reindex: a slow or lost response_url neither delays nor stops
        # the reindex and its audit row
        acknowledged = (
            asyncio.create_task(self._post_to_requester(respond, "acknowledge a reindex", REINDEX_REQUESTED))
            if self.admin.is_admin(PLATFORM, user_id, platform_admin)
            else None
        )
        outcome = await self.admin.reindex(PLATFORM, user_id, platform_admin)
        log.info("Slack reindex by %s: %s", user_hash(PLATFORM, user_id), outcome.result)
        if acknowledged is not None:
            await acknowledged  # "requested" before the summary
        code = outcome.result in ("allowed", "failed")
        await self._post_to_requester(
            respond,
            "post a reindex summary",
            escape(outcome.message.splitlines()[0]) if outcome.message else outcome.result,
            text_blocks(outcome.message, code=code),
        )

    async def _post_to_requester(
        self, respond: AsyncRespond, what: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """A private reply through response_url; a network failure is one warning line (what it was for)."""
        try:
            await respond(text=text, blocks=blocks, response_type="ephemeral")
        except _NETWORK_ERRORS as exc:
            log.warning("Could not %s through response_url: %s", what, _error_code(exc))

    async def _is_workspace_admin(self, client: AsyncWebClient, user_id: str) -> bool:
        try:
            response = await client.users_info(user=user_id)
        except _NETWORK_ERRORS as exc:
            log.warning("users.info failed, treating the user as no workspace admin: %s", _error_code(exc))
            return False
        user = response.get("user") or {}
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    async def _on_vote(
        self,
        ack: Callable[[], Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        self._spawn(body, self._record_vote(body, action, respond, client))

    async def _record_vote(
        self, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        vote = "up" if action.get("action_id") == VOTE_UP else "down"
        question, sources = read_button_value(str(action.get("value", "")))
        user_id = str((body.get("user") or {}).get("id", ""))
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        # An answer in a channel: everyone there sees its buttons. Each person's vote counts once and is
        # thanked privately; the buttons stay for the others (the first click locked out the asker).
        in_channel = (
            bool(message.get("blocks")) and not container.get("is_ephemeral") and not channel.startswith("D")
        )
        key = f"vote:{channel}:{message.get('ts')}:{user_id}"
        if in_channel and (not self.seen.claim(key) or not await self.seen.claim_shared(key)):
            await respond(text=ALREADY_VOTED, response_type="ephemeral", replace_original=False)
            return
        await self.conversation.record_vote(PLATFORM, user_id, question, sources, vote)
        log.info("Slack vote %s from %s", vote, user_hash(PLATFORM, user_id))
        if in_channel:
            await respond(
                text=f"{vote_emoji(vote)} {THANKS}", response_type="ephemeral", replace_original=False
            )
            return
        if not message.get("blocks"):
            # Slack leaves the message out of clicks on ephemeral messages: render the answer again. That
            # is a search like a question's (and the value may hold any question): rate limited, counted.
            reply = await self.conversation.ask(_button_question(body, question, user_id))
            if reply.answer is None:  # rate limited: the vote is stored, the private answer stays
                await respond(text=escape(reply.text), response_type="ephemeral", replace_original=False)
                return
            answer = reply.answer
            await respond(
                text=answer_text(answer),
                blocks=answer_blocks(answer, shareable=True, voted=vote),
                response_type="ephemeral",
                replace_original=True,
            )
            return
        blocks = thanks_blocks(message["blocks"], vote)
        text = str(message.get("text", ""))
        if not container.get("is_ephemeral") and channel and message.get("ts"):
            try:
                await client.chat_update(
                    channel=channel, ts=message["ts"], text=text, blocks=blocks, parse="none"
                )
                return
            except SlackApiError as exc:  # e.g. a shared answer in a channel the bot is not a member of
                log.info("chat.update failed (%s); updating through response_url", _error_code(exc))
        await respond(text=text, blocks=blocks, replace_original=True)

    async def _on_share(
        self,
        ack: Callable[[], Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
    ) -> None:
        await ack()
        self._spawn(body, self._share(body, action, respond))

    async def _share(self, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        """Post a private answer in the channel through the response URL (works where the bot is no member)."""
        question, _ = read_button_value(str(action.get("value", "")))
        user_id = str((body.get("user") or {}).get("id", ""))
        # The answer is searched again, as for a question: rate limited and counted.
        reply = await self.conversation.ask(_button_question(body, question, user_id))
        if reply.answer is None:  # rate limited: the private answer stays, to share later
            await respond(text=escape(reply.text), response_type="ephemeral", replace_original=False)
            return
        answer = reply.answer
        await respond(
            text=answer_text(answer),
            blocks=answer_blocks(answer, shared_by=user_id),
            response_type="in_channel",
            replace_original=False,
        )
        await respond(delete_original=True)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        """The one error handler: a reference id for the user, the traceback under that id in the log.

        It never raises: Bolt runs it in a task nobody awaits, where an exception is only reported as
        "Task exception was never retrieved", and the user would hear nothing either way.
        """
        ref = error_reference()
        body = body if isinstance(body, dict) else {}
        try:
            what = _describe(body)
        except Exception:  # noqa: BLE001 - a strange body must not hide the error it came with
            what = "request"
        log.error("slack error ref=%s while handling %s", ref, what, exc_info=error)
        try:
            await self._apologise(body, f"Sorry, something went wrong (ref {ref}).")
        except Exception as exc:  # noqa: BLE001 - one line; the error itself is logged above
            log.warning("could not tell the user about ref=%s: %s", ref, _error_code(exc))

    async def _apologise(self, body: dict[str, Any], text: str) -> None:
        response_url = body.get("response_url")
        if isinstance(response_url, str) and response_url:
            await AsyncWebhookClient(response_url, logger=self._library_log).send_dict(
                {"text": text, "response_type": "ephemeral", "replace_original": False}
            )
            return
        event = body.get("event") or {}
        channel = event.get("channel")
        if isinstance(channel, str) and channel and self._is_person_writing(event):
            is_dm = event.get("channel_type") == "im" or channel.startswith("D")
            thread_ts = event.get("thread_ts") or (None if is_dm else event.get("ts"))
            await self.app.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

    # -- helpers ---------------------------------------------------------------------------------

    async def _with_working_sign(
        self, work: Awaitable[T], show_sign: Callable[[], Awaitable[bool]]
    ) -> tuple[T, bool]:
        """Await `work`; if it takes longer than a moment, show a working sign first. Returns (result, shown)."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.working_sign_after)
            shown = False if done else await show_sign()
            return await task, shown
        finally:
            if not task.done():
                task.cancel()

    async def _react(
        self, client: AsyncWebClient, what: Literal["add", "remove"], channel: str, ts: str
    ) -> bool:
        """Add or remove the working reaction; a failure here never stops the answer."""
        try:
            if what == "add":
                await client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
            else:
                await client.reactions_remove(channel=channel, timestamp=ts, name=WORKING_REACTION)
            return True
        except _NETWORK_ERRORS as exc:
            log.warning("reactions.%s failed: %s", what, _error_code(exc))
            return False

    def _help_text(self) -> str:
        command = self.config.command
        return (
            "*Rolecall* answers career questions from the team's role documents, each answer with its source.\n"
            f"• `{command} &lt;question&gt;`: a private answer you can share in the channel\n"
            f"• `{command} roles`: the roles I know about\n"
            f"• `{command} reindex`: re-read the knowledge folders (admins only)\n"
            f"• `{command} help`: this message\n"
            "You can also mention me in a channel (I answer in a thread) or send me a direct message."
        )

    def _log_answer(self, kind: str, question: Question, answer: Answer, started: float) -> None:
        # Never the text: a DM is private, and a channel message is not ours to copy into logs.
        log.info(
            "answered a Slack %s from %s in %.2fs: %d passages",
            kind,
            user_hash(PLATFORM, question.user),
            time.monotonic() - started,
            len(answer.hits),
        )


async def _to_bolt_request(request: web.Request) -> tuple[AsyncBoltRequest | None, str]:
    """Bolt's request for a POST to /slack/events: (request, "") or, when the body is none, (None, why).

    Slack sends UTF-8 and signs the bytes; Bolt checks the signature over the text encoded as UTF-8 again.
    So the body is decoded as UTF-8 whatever charset the request names, and bytes that are no UTF-8 become
    U+FFFD: Bolt's signature check then refuses the request (401) as it refuses any unsigned one. (Bolt's
    own to_bolt_request decodes with the named charset and raises on both, a 500 with a traceback.)
    Bolt parses the body before it checks the signature, so a body that does not parse as a payload
    (JSON that is no object, nested too deep, …) is refused here, named by its exception type only.
    """
    body = (await request.read()).decode("utf-8", errors="replace")
    try:
        return AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers)), ""
    except Exception as exc:  # noqa: BLE001 - anyone can send anything here; nothing of it is logged
        return None, type(exc).__name__


def _button_question(body: dict[str, Any], question: str, user_id: str) -> Question:
    """The question a button carries, asked again by the person who clicked it, where they clicked it."""
    channel, container = body.get("channel"), body.get("container")
    channel_id = (channel.get("id") if isinstance(channel, dict) else None) or (
        container.get("channel_id") if isinstance(container, dict) else None
    )
    return Question(question, user_id, str(channel_id or ""), PLATFORM)


def _error_code(exc: BaseException) -> str:
    """A short, text-free name for a failed call: Slack's error code, the HTTP status, or the exception type."""
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"
    return type(exc).__name__
