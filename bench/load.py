"""Load on the chat adapters: N concurrent signed Slack events over HTTP mode, and N Discord mentions
through the gateway, each against the loopback fakes in tests/ and the real model and index.

    python -m bench.load                      # 200 Slack events, 200 Discord messages, bundled knowledge
    python -m bench.load --events 50 --knowledge knowledge

Slack: every event is a signed POST to the adapter's /slack/events route on the shared aiohttp server of
`rolecall serve` (`bot.serve.run_adapters`), half DMs (each in its own D… channel) and half channel
mentions (each its own ts). Ack latency is the time to the HTTP response; answer latency is the time from
sending the event to the fake Web API receiving the answer's chat.postMessage. Discord: every message is
a MESSAGE_CREATE mentioning the bot, pushed through the fake gateway; answer latency runs from pushing it
to the fake REST API receiving the reply that references it (Discord has no per-event ack to time).
Figures are reported, not asserted; tests/test_load.py runs a smaller load and checks the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from adapters.discord import DiscordAdapter, DiscordConfig
from adapters.slack import SlackAdapter, SlackConfig
from bot.admin import AdminActions
from bot.records import RecordStore
from bot.serve import run_adapters
from bot.service import RolecallService, ServiceConfig
from bot.settings import load_settings
from tests.fake_discord import BOT_ID, CHANNEL_ID, FakeDiscord, user
from tests.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack, SlackClient, free_port, wait_for

APOLOGY = "Sorry, something went wrong"
DISCORD_TOKEN = "MTk4NjIyNDgzNDcxOTI1MjQ4.bench.discord-bot-token"
FALLBACK_QUESTIONS = (
    "What does a senior back-end engineer earn?",
    "Which tools does a site reliability engineer use?",
    "How do I move from senior to staff engineer?",
)


@dataclass
class LoadResult:
    """What one load run saw; latencies in seconds."""

    platform: str
    sent: int
    acked: int = 0
    answered: int = 0  # questions with at least one answer
    duplicates: int = 0  # answers beyond the first for a question
    errors: list[str] = field(default_factory=list)
    ack_latencies: list[float] = field(default_factory=list)
    answer_latencies: list[float] = field(default_factory=list)
    wall: float = 0.0

    def lines(self) -> list[str]:
        head = f"{self.platform}: sent {self.sent}"
        if self.ack_latencies or self.platform.startswith("slack"):
            head += f", acked {self.acked}/{self.sent}"
        head += (
            f", answered {self.answered}/{self.sent}, duplicate answers {self.duplicates},"
            f" errors {len(self.errors)}"
        )
        out = [head]
        if self.ack_latencies:
            out.append(f"  ack latency     {_percentiles(self.ack_latencies)}")
        if self.answer_latencies:
            out.append(f"  answer latency  {_percentiles(self.answer_latencies)}")
        rate = self.answered / self.wall if self.wall else 0.0
        out.append(f"  wall {self.wall:.1f} s, {rate:.1f} answers/s")
        out.extend(f"  error: {error}" for error in self.errors[:10])
        if len(self.errors) > 10:
            out.append(f"  … and {len(self.errors) - 10} more errors")
        return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _percentiles(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {_percentile(ms, 0.5):7.0f} ms   p99 {_percentile(ms, 0.99):7.0f} ms"
        f"   max {max(ms):7.0f} ms   mean {statistics.fmean(ms):7.0f} ms"
    )


class _ErrorLog(logging.Handler):
    """Collects ERROR (and worse) log lines of a run as errors."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"log {record.name}: {record.getMessage()}")


@contextlib.contextmanager
def _errors_logged() -> Iterator[list[str]]:
    handler = _ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.messages
    finally:
        root.removeHandler(handler)


# -- Slack ----------------------------------------------------------------------------------------


class TimedFakeSlack(FakeSlack):
    """The fake Web API, also noting when each chat.postMessage arrived."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.posted: list[tuple[dict[str, Any], float]] = []

    def _answer(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            self.posted.append((dict(data), time.monotonic()))
        return super()._answer(method, data)


def _slack_event(i: int, question: str) -> tuple[dict[str, Any], str]:
    """Event number i (even: a DM in its own channel, odd: a channel mention) and its answer key."""
    ts = f"1700000000.{i:06d}"
    if i % 2 == 0:
        channel = f"D{i:05d}"
        event = {"type": "message", "channel_type": "im", "channel": channel, "user": f"U{i:05d}"}
        event.update(text=question, ts=ts, event_ts=ts)
        return event, f"dm:{channel}"
    event = {"type": "app_mention", "channel": "C1", "user": f"U{i:05d}", "text": f"<@UBOT> {question}"}
    event.update(ts=ts, event_ts=ts)
    return event, f"thread:{ts}"


def _slack_answer_key(data: dict[str, Any]) -> str:
    channel = str(data.get("channel", ""))
    return f"dm:{channel}" if channel.startswith("D") else f"thread:{data.get('thread_ts')}"


@contextlib.asynccontextmanager
async def _slack_server(
    fake: FakeSlack, service: RolecallService, records: RecordStore
) -> AsyncIterator[tuple[SlackAdapter, str]]:
    settings = load_settings(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url
    )
    adapter = SlackAdapter(
        SlackConfig.from_settings(settings), service, AdminActions(service, records, frozenset())
    )
    adapter.stop_timeout = 120.0
    port = free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(run_adapters([adapter], "127.0.0.1", port, stop))
    try:
        await wait_for(lambda: adapter.is_connected() or server.done(), "the Slack adapter to start")
        if server.done():
            server.result()
        yield adapter, f"http://127.0.0.1:{port}/slack/events"
    finally:
        stop.set()
        await asyncio.wait_for(server, 180)  # stop() lets the answers in flight finish


async def slack_load(
    service: RolecallService,
    records: RecordStore,
    questions: Sequence[str],
    events: int,
    timeout: float = 300.0,
) -> LoadResult:
    """`events` signed Slack events at once over HTTP mode; returns the counts and latencies."""
    result = LoadResult("slack (HTTP events)", events)
    fake = TimedFakeSlack()
    await fake.start()
    cycle = itertools.cycle(questions)
    planned = [_slack_event(i, next(cycle)) for i in range(events)]
    sent_at: dict[str, float] = {}
    try:
        with _errors_logged() as logged:
            async with _slack_server(fake, service, records) as (_adapter, url):
                connector = aiohttp.TCPConnector(limit=0)
                async with aiohttp.ClientSession(connector=connector) as session:
                    client = SlackClient(url, session=session)

                    async def send(event: dict[str, Any], key: str) -> tuple[int, float]:
                        sent_at[key] = time.monotonic()
                        status, _, seconds = await client.event(event)
                        return status, seconds

                    started = time.monotonic()
                    acks = await asyncio.wait_for(
                        asyncio.gather(*(send(e, k) for e, k in planned), return_exceptions=True), timeout
                    )
                    for ack in acks:
                        if isinstance(ack, BaseException):
                            result.errors.append(f"request failed: {type(ack).__name__}: {ack}")
                        elif ack[0] != 200:
                            result.errors.append(f"ack status {ack[0]}")
                        else:
                            result.acked += 1
                            result.ack_latencies.append(ack[1])
                    keys = {k for _, k in planned}
                    with contextlib.suppress(AssertionError):  # missing answers are counted below
                        await wait_for(
                            lambda: keys <= {_slack_answer_key(d) for d, _ in fake.posted},
                            "every answer",
                            timeout=timeout,
                        )
                    result.wall = time.monotonic() - started
            result.errors.extend(logged)
    finally:
        await fake.stop()
    _count_answers(
        result,
        [(_slack_answer_key(d), at, str(d.get("text", ""))) for d, at in fake.posted],
        sent_at,
    )
    return result


def _count_answers(
    result: LoadResult, posts: list[tuple[str, float, str]], sent_at: dict[str, float]
) -> None:
    seen: set[str] = set()
    for key, at, text in sorted(posts, key=lambda p: p[1]):
        if text.startswith(APOLOGY):
            result.errors.append(f"apology posted for {key}: {text}")
        if key not in sent_at:
            result.errors.append(f"an answer to nothing that was asked: {key}")
        elif key in seen:
            result.duplicates += 1
        else:
            seen.add(key)
            result.answer_latencies.append(at - sent_at[key])
    result.answered = len(seen)
    missing = len(sent_at) - len(seen)
    if missing:
        result.errors.append(f"{missing} questions got no answer")
    if result.duplicates:
        result.errors.append(f"{result.duplicates} questions were answered more than once")


# -- Discord --------------------------------------------------------------------------------------


async def discord_load(
    service: RolecallService,
    records: RecordStore,
    questions: Sequence[str],
    messages: int,
    timeout: float = 300.0,
) -> LoadResult:
    """`messages` channel mentions pushed through the fake gateway at once; counts and latencies."""
    result = LoadResult("discord (gateway)", messages)
    fake = await FakeDiscord().start()
    admin = AdminActions(service, records, frozenset())
    config = DiscordConfig(
        token=DISCORD_TOKEN,
        api_url=fake.api_url,
        gateway_url=fake.gateway_url,
        guild_ready_timeout=0.05,
        startup_timeout=30.0,
        stop_timeout=180.0,
    )
    adapter = DiscordAdapter(config, service, admin)
    bot_user = user(BOT_ID, "Rolecall", bot=True)
    cycle = itertools.cycle(questions)
    events = [fake.message_event(f"<@{BOT_ID}> {next(cycle)}", mentions=(bot_user,)) for _ in range(messages)]
    sent_at: dict[str, float] = {}
    path = f"/channels/{CHANNEL_ID}/messages"

    def replies() -> list[tuple[str, float, str]]:
        out = []
        for call in fake.requests("POST", path):
            body = call.body or {}
            reference = str((body.get("message_reference") or {}).get("message_id", ""))
            out.append((reference, call.at, str(body.get("content") or "")))
        return out

    try:
        with _errors_logged() as logged:
            await adapter.start()
            try:
                started = time.monotonic()
                for event in events:  # one websocket: pushed back to back, handled concurrently
                    sent_at[event["id"]] = time.monotonic()
                    await fake.dispatch("MESSAGE_CREATE", event)
                with contextlib.suppress(AssertionError):
                    await wait_for(
                        lambda: set(sent_at) <= {r for r, _, _ in replies()}, "every reply", timeout=timeout
                    )
                result.wall = time.monotonic() - started
            finally:
                await adapter.stop()  # lets the answers in flight finish
            result.errors.extend(logged)
    finally:
        await fake.stop()
    _count_answers(result, replies(), sent_at)
    return result


# -- the command ----------------------------------------------------------------------------------


def read_questions(path: Path | None) -> list[str]:
    """The `q` of each answerable case in an eval file, or a few built-in questions."""
    if path is None or not path.is_file():
        return list(FALLBACK_QUESTIONS)
    cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(c["q"]) for c in cases if not c.get("abstain")] or list(FALLBACK_QUESTIONS)


async def run(service: RolecallService, records: RecordStore, questions: Sequence[str], events: int) -> None:
    print(f"{events} questions per platform, {len(questions)} distinct; CPUs: {os.cpu_count()}")
    load_before = os.getloadavg()[0]
    for result in (
        await slack_load(service, records, questions, events),
        await discord_load(service, records, questions, events),
    ):
        print("\n".join(result.lines()), flush=True)
    print(f"load average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200, help="questions sent at once per platform (200)")
    parser.add_argument("--knowledge", type=Path, action="append", help="corpus folder (default: bundled)")
    parser.add_argument(
        "--questions",
        type=Path,
        default=Path("eval/knowledge.jsonl"),
        help="eval file whose questions are asked",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    with tempfile.TemporaryDirectory() as scratch:
        config = ServiceConfig.from_settings(settings)
        folders = tuple(args.knowledge or settings.knowledge_dirs)
        config = ServiceConfig(
            **{**config.__dict__, "knowledge_dirs": folders, "index_dir": Path(scratch) / "index"}
        )
        service = RolecallService(config)
        started = time.perf_counter()
        service.open()
        service.ask("warm up")
        print(
            f"index of {', '.join(map(str, folders))}: {len(service.retriever.index)} passages,"
            f" built and warmed in {time.perf_counter() - started:.1f} s"
        )
        records = RecordStore(Path(scratch) / "rolecall.sqlite3")
        asyncio.run(run(service, records, read_questions(args.questions), args.events))


if __name__ == "__main__":
    main()
