"""The platform-neutral question and answer objects that adapters render."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from index.types import Hit

CONTEXT_CHARS = 420
# A message that greets the bot or asks what it does, rather than asking a career question.
_GREETING = re.compile(
    r"^(?:hi|hello|hey|hiya|howdy|yo|good (?:morning|afternoon|evening)|help|usage|commands?|"
    r"what can you do|what do you (?:do|know)|who are you|how do(?:es)? (?:this|you|it) work)"
    r"(?:[\s,]+(?:there|all|everyone|rolecall|bot))?[\s!?.,:)]*$",
    re.IGNORECASE,
)


def is_greeting(text: str) -> bool:
    """Is this a hello or a request for help ("hi", "help", "what can you do?"), not a question to search?"""
    return bool(_GREETING.match(text.strip()))


@dataclass(frozen=True)
class Question:
    """A question as an adapter hands it over: the text and who asked where."""

    text: str
    user: str = "console"
    channel: str = ""
    platform: str = "console"


@dataclass(frozen=True)
class Answer:
    """Passages that answer a question, best first; no passages means the bot does not know."""

    question: str
    hits: tuple[Hit, ...]
    known_roles: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def answered(self) -> bool:
        return bool(self.hits)

    def refusal_text(self) -> str:
        """What the bot says when nothing it knows is relevant, or how to use it when greeted."""
        roles = ", ".join(self.known_roles) if self.known_roles else "the documents in my knowledge folders"
        if is_greeting(self.question):
            return (
                "Hi! I answer career questions with passages from my role documents, each with its source, "
                "e.g. \"What does a senior back-end engineer earn?\" or \"senior vs staff engineer?\". "
                f"I know about these roles: {roles}."
            )
        return (
            "I don't know that one: I only answer from my career documents. "
            f"I know about these roles: {roles}. "
            "Ask about responsibilities, skills, tools, education, pay, where the jobs are, "
            "how to get there or interviews."
        )

    def to_json(self) -> dict[str, Any]:
        """The `rolecall ask --json` shape."""
        return {
            "question": self.question,
            "answered": self.answered,
            "passages": [
                {
                    "source": hit.passage.source,
                    "title": hit.passage.title,
                    "section": hit.passage.section,
                    "text": hit.passage.text,
                    "highlight": hit.highlight,
                    "score": round(hit.score, 4),
                }
                for hit in self.hits
            ],
        }


def context_around(text: str, highlight: str, limit: int = CONTEXT_CHARS) -> tuple[str, str, str]:
    """Split a passage into (before, highlight, after), trimmed at word boundaries to about `limit` chars."""
    start = text.find(highlight)
    if start < 0:
        return "", highlight, ""
    before, after = text[:start], text[start + len(highlight) :]
    room = max(0, limit - len(highlight))
    keep_before = min(len(before), room // 3)
    keep_after = min(len(after), room - keep_before)
    if len(before) > keep_before:
        cut = before[len(before) - keep_before :]
        before = "…" + (cut.split(" ", 1)[1] if " " in cut else cut)
    if len(after) > keep_after:
        cut = after[:keep_after]
        after = (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
    return before, highlight, after
