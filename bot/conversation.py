"""The front door every chat adapter uses: per-user rate limit, long questions cut, outcomes counted."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.answer import Answer, Question, cut_note, cut_question
from bot.metrics import Metrics
from bot.records import RecordStore
from bot.service import RolecallService

Clock = Callable[[], float]
WINDOW_SECONDS = 60.0
# Users idle for longer than this are forgotten, so the limiter's memory stays small.
_SWEEP_EVERY = 1000


class RateLimiter:
    """At most `limit` questions per user in any `window` seconds (a sliding window); 0 = no limit."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._asked: dict[str, deque[float]] = {}
        self._checks = 0

    def try_acquire(self, user_key: str) -> float:
        """0 when the user may ask now (and the question is counted), else seconds until they may."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        self._checks += 1
        if self._checks % _SWEEP_EVERY == 0:
            self._forget_idle(now)
        asked = self._asked.setdefault(user_key, deque())
        while asked and asked[0] <= now - self.window:
            asked.popleft()
        if len(asked) >= self.limit:
            return max(asked[0] + self.window - now, 0.001)
        asked.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, asked in self._asked.items() if not asked or asked[-1] <= now - self.window]:
            del self._asked[key]


def try_again_text(seconds: float) -> str:
    """'in 42 seconds' / 'in a minute', for the rate-limit reply."""
    whole = max(1, math.ceil(seconds))
    if whole >= 60:
        return "in a minute"
    return f"in {whole} second{'s' if whole != 1 else ''}"


@dataclass(frozen=True)
class Reply:
    """What to send back: an answer to render, or (when rate limited) a short text instead."""

    answer: Answer | None = None
    text: str = ""


class Conversation:
    """Questions and votes from every platform: limits, cutting and metrics implemented once."""

    def __init__(
        self,
        service: RolecallService,
        records: RecordStore | None = None,
        *,
        rate_limit: int = 10,
        max_question_chars: int = 500,
        metrics: Metrics | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.service = service
        self.records = records
        self.metrics = metrics or service.metrics
        self.limiter = RateLimiter(rate_limit, clock=clock)
        self.max_question_chars = max_question_chars

    async def ask(self, question: Question) -> Reply:
        """Answer one question off the event loop, unless its user asked too many in the last minute.

        An exception from the service is counted as an error and raised for the adapter's error handler.
        """
        wait = self.limiter.try_acquire(f"{question.platform}:{question.user}")
        if wait:
            self.metrics.count_question(question.platform, "rate_limited")
            return Reply(
                text=(
                    f"You've asked {self.limiter.limit} questions in the last minute, which is my limit."
                    f" Please try again {try_again_text(wait)}."
                )
            )
        text, was_cut = cut_question(question.text, self.max_question_chars)
        started = time.monotonic()
        try:
            answer = await self.service.ask_async(text)
        except Exception:
            self.metrics.count_question(question.platform, "error")
            raise
        seconds = time.monotonic() - started
        self.metrics.count_question(question.platform, "answered" if answer.answered else "refused", seconds)
        if was_cut:
            note = cut_note(len(text), len(question.text), self.max_question_chars)
            answer = replace(answer, notes=(*answer.notes, note))
        return Reply(answer=answer)

    async def record_vote(
        self, platform: str, user_id: str, question: str, sources: Sequence[str], vote: str
    ) -> bool:
        """Store a 👍/👎 (off the event loop) and count it; False when the store could not be written."""
        self.metrics.count_vote(platform, vote)
        if self.records is None:
            return False
        return await asyncio.to_thread(self.records.record_vote, platform, user_id, question, sources, vote)
