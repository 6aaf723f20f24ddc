"""The platform-neutral question and answer objects that adapters render."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from index.chunking import split_sentences
from index.terms import default_fillers
from index.types import Hit

CONTEXT_CHARS = 420
# A message that greets the bot or asks what it does, rather than asking a career question.
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|yo)(?:[\s,]+(?:there|rolecall|bot))?[\s,!.]+(?=\w))?"  # "hey rolecall, what can…"
    r"(?:hi|hello|hey|hiya|howdy|yo|good (?:morning|afternoon|evening)|help|usage|commands?|"
    r"what can you (?:do|help (?:me )?with)|what do you (?:do|know)|who are you|how do(?:es)? (?:this|you|it) work)"
    r"(?:[\s,]+(?:there|all|everyone|rolecall|bot))?[\s!?.,:)]*$",
    re.IGNORECASE,
)
# Only a thank-you or an acknowledgement.
_THANKS = re.compile(
    r"^(?:(?:thanks|thank you|thx|ty|cheers|much appreciated|great|perfect|awesome|cool|nice|ok(?:ay)?|"
    r"got it|makes sense|that(?:'s| is| was)? (?:helpful|useful|great)|that help(?:s|ed)(?: a lot)?|very helpful)"
    r"[\s,!.]*)+(?:(?:so much|a lot|again|rolecall|bot)[\s,!.:)]*)*$",
    re.IGNORECASE,
)
# Function words that say a question is written in another language (Spanish, French, German, Portuguese,
# Italian, Dutch), none of them also an English word ("die", "was", "come", "son", "per" are left out) ...
_OTHER_LANGUAGE_WORDS = frozenset(
    """de en se por el la los las que qué cómo cuánto cuanto cuánta cuál cuáles para una del es está pero mi yo hola gana
    ganan puedo debo también muy hacer le les des est combien comment quel quelle quels pour avec je mon ma une
    sont être qui dans du au aux bonjour gagne gagner devenir faut il elle nous vous der das ist und wie viel ein
    eine ich mein meine wer nicht mit für verdient werden kann soll welche hallo auch oder um uma quanto quanta
    você meu minha não é ganha posso sou gli che sono mio guadagna essere het een hoe veel ik mijn niet zijn""".split()  # noqa: SIM905
)
# ... and English ones, none of them also a word of those languages ("a", "i", "in", "me", "do", "no" are)
_ENGLISH_WORDS = frozenset(
    """the is are am were be does did how what which who why when where can could should would will my you your
    we our to of for at with and or but not it this that get make earn""".split()  # noqa: SIM905
)
MAX_ROLES_LISTED = 15
MAX_TOPICS_LISTED = 8


def _some(titles: tuple[str, ...], limit: int, separator: str) -> str:
    """At most `limit` titles, then how many more there are."""
    shown = separator.join(titles[:limit])
    more = len(titles) - limit
    return f"{shown}{separator}and {more} more" if more > 0 else shown


def cut_question(text: str, limit: int) -> tuple[str, bool]:
    """The question within `limit` characters, cut at a word boundary when possible; (text, was cut)."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(), True


def cut_note(kept: int, asked: int, limit: int) -> str:
    """What an answer says about a question cut from `asked` to `kept` characters."""
    return f"Your question was cut to its first {kept} of {asked} characters (the limit is {limit})."


def is_thanks(text: str) -> bool:
    """Is this only a thank-you or an acknowledgement ("thanks!", "ok cool", "ty :pray:"), not a question to
    search?"""
    return bool(_THANKS.match(default_fillers()(text).strip()))


def is_greeting(text: str) -> bool:
    """Is this a hello or a request for help ("hi", "help", "what can you do?", "hi 👋"), not a question to
    search?"""
    return bool(_GREETING.match(default_fillers()(text).strip()))


def is_other_language(text: str) -> bool:
    """Is this question written in another language than English ("¿cuánto gana un ingeniero senior?")? The
    model and the documents are English: such a question drew passages that only shared a job title."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    english = sum(word in _ENGLISH_WORDS for word in words)
    return english == 0 and sum(word in _OTHER_LANGUAGE_WORDS for word in words) >= 2


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
    known_roles: tuple[str, ...] = ()  # titles of the role documents
    notes: tuple[str, ...] = field(default=())
    known_topics: tuple[str, ...] = ()  # titles of the other documents
    # not answered: the first passage, close enough to name its section ("the nearest I have is …")
    nearest: Hit | None = None

    @property
    def answered(self) -> bool:
        return bool(self.hits)

    def refusal_text(self) -> str:
        """What the bot says when nothing it knows is relevant, or how to use it when greeted."""
        if is_thanks(self.question):
            return "You're welcome! Ask me another career question any time."
        if is_other_language(self.question):
            return (
                "Sorry, I can only read questions in English for now. Could you ask me in English? For example:"
                " “What does a senior engineer earn?”"
            )
        known = self._what_i_know()
        if is_greeting(self.question):
            example = f' (e.g. "What does a {self.known_roles[0]} earn?")' if self.known_roles else ""
            return f"Hi! I answer career questions{example} with passages from my documents, each with its source. {known}"
        ask_about = (
            "Ask about responsibilities, skills, tools, education, pay, where the jobs are, "
            "how to become one, or interviews."
            if self.known_roles
            else "Ask about one of those."
        )
        if self.nearest is not None:
            nearest = f"{self.nearest.passage.section} ({self.nearest.passage.source})"
            return (
                f"I'm not sure I know that one. The nearest I have is “{nearest}”: if that is what you mean,"
                f" ask me about it in other words. {known}"
            )
        return f"I don't know that one: I only answer from my career documents. {known} {ask_about}"

    def _what_i_know(self) -> str:
        """The roles, then a few of the other documents' titles: a short message even over 60 documents."""
        parts: list[str] = []
        if self.known_roles:
            parts.append(f"I know about these roles: {_some(self.known_roles, MAX_ROLES_LISTED, ', ')}.")
        if self.known_topics:
            lead = "And topics such as" if self.known_roles else "I know about topics such as"
            parts.append(f"{lead}: {_some(self.known_topics, MAX_TOPICS_LISTED, '; ')}.")
        return " ".join(parts) or "My knowledge folders hold no documents yet."

    def to_json(self) -> dict[str, Any]:
        """The `rolecall ask --json` shape; "notes" only when there are some (e.g. the question was cut)."""
        shape: dict[str, Any] = {
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
        if self.nearest is not None:
            shape["nearest"] = {
                "source": self.nearest.passage.source,
                "section": self.nearest.passage.section,
                "score": round(self.nearest.score, 4),
            }
        if self.notes:
            shape["notes"] = list(self.notes)
        return shape


def _sentence_starts(text: str) -> list[int]:
    """Where each sentence of `text` begins, as the index splits them ("U.S." and "e.g." end none)."""
    starts, position = [], 0
    for sentence in split_sentences(text):
        at = text.find(sentence, position)
        if at < 0:
            break
        starts.append(at)
        position = at + len(sentence)
    return starts


def context_around(text: str, highlight: str, limit: int = CONTEXT_CHARS) -> tuple[str, str, str]:
    """Split a passage into (before, highlight, after), trimmed to about `limit` chars: whole sentences before
    the highlight (up to two thirds of the room it leaves), then the text after it to a word boundary."""
    start = text.find(highlight)
    if start < 0:
        return "", highlight, ""
    before, after = text[:start], text[start + len(highlight) :]
    room = max(0, limit - len(highlight))
    if len(before) > room * 2 // 3:  # whole sentences before the highlight, or none: never half of one
        starts = _sentence_starts(before)
        first = next((i for i in starts if len(before) - i <= room * 2 // 3), len(before))
        before = "… " + before[first:].lstrip(" ") if before[first:].strip() else "… "
    keep_after = max(0, min(len(after), room - len(before)))
    if len(after) > keep_after:
        cut = after[:keep_after]
        after = (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
    return before, highlight, after
