"""Slack text in and Block Kit out: neutralised user text, answers as blocks within Slack's limits."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.answer import Answer, context_around
from index.types import Hit

Block = dict[str, Any]

MAX_BLOCKS = 50  # blocks in one message
MAX_TEXT = 3000  # characters in one text field
MAX_VALUE = 2000  # characters in one button value
MAX_FALLBACK = 3000  # the notification text; Slack accepts more, nobody reads more

VOTE_UP = "rolecall_vote_up"
VOTE_DOWN = "rolecall_vote_down"
SHARE = "rolecall_share"
FEEDBACK_BLOCK = "rolecall_feedback"
SHARE_BLOCK = "rolecall_share"

THANKS = "Thanks for the feedback!"
ALREADY_VOTED = "You rated this answer already. Thanks!"

# <@U123>, <@U123|name>, <!here>, <!subteam^S1|@team>, <#C1|general>, <https://x|label>, <mailto:a@b>
_ENTITY = re.compile(r"<([^<>]*)>")
# A broadcast word typed as plain text; Slack may still parse it, so it gets a zero-width space.
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]+")


def from_slack(text: str, drop_user: str | None = None) -> str:
    """Slack's message markup as plain text: entities become their labels, nothing in it can ping anyone.

    `drop_user` (the bot's own user id) is removed, so "@Rolecall what does…" becomes "what does…".
    """

    def entity(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if drop_user and target[1:] == drop_user:
                return ""
            return "@" + (label.lstrip("@") or "user")
        if target.startswith("!"):
            name = target[1:]
            if name in ("channel", "here", "everyone"):
                return "@" + name
            if name.startswith("subteam^"):
                return "@" + (label.lstrip("@") or "group")
            return label or ""  # <!date^…|fallback> and friends
        if target.startswith("#"):
            return "#" + (label or "channel")
        return label or target  # links

    plain = html.unescape(_ENTITY.sub(entity, text)) if "<" in text or "&" in text else text
    lines = (_SPACES.sub(" ", line).strip() for line in plain.splitlines())
    return "\n".join(line for line in lines if line)


def escape(text: str) -> str:
    """Plain text made safe for a mrkdwn field: no markup, no entity, no broadcast word that pings."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@\u200b\\1", escaped)


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """At most `limit` characters, ending with … when something was cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def mrkdwn(text: str) -> Block:
    # verbatim: Slack must not turn anything in our (already escaped) text into a link or a mention
    return {"type": "mrkdwn", "text": cut(text), "verbatim": True}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def heading(hit: Hit) -> str:
    """'Document title › Section › Subsection' for one passage."""
    parts = [p for p in hit.passage.section.split(" > ") if p]
    if not parts or parts[0] != hit.passage.title:
        parts.insert(0, hit.passage.title)
    return " › ".join(parts)


def _bold(text: str) -> str:
    # mrkdwn bold needs a non-space character right inside each asterisk and none inside the text
    inner = text.strip().replace("*", "∗")
    return f"*{inner}*" if inner else ""


def passage_text(hit: Hit, number: int) -> str:
    """The passage as mrkdwn: its heading, then trimmed context around the highlighted sentence."""
    before, highlight, after = context_around(hit.passage.text, hit.highlight)
    before, after = escape(before), escape(after)
    if before and not before[-1].isspace():
        before += " "
    if after and not after[0].isspace():
        after = " " + after
    title = _bold(f"{number}. {escape(heading(hit))}")
    return cut(f"{title}\n{before}{_bold(escape(highlight))}{after}")


def button_value(question: str, sources: Sequence[str]) -> str:
    """What a vote or share click needs, as JSON within Slack's 2,000-character value limit.

    The question keeps up to 1,000 characters, then the sources are cut from the end, then the question.
    """
    text = question[:1000]
    kept = list(sources)

    def dump() -> str:
        return json.dumps({"q": text, "s": kept}, ensure_ascii=False, separators=(",", ":"))

    value = dump()
    while len(value) > MAX_VALUE and kept:
        kept.pop()
        value = dump()
    while len(value) > MAX_VALUE and text:
        text = text[: max(0, len(text) - (len(value) - MAX_VALUE) - 1)]
        value = dump()
    return value


def read_button_value(value: str) -> tuple[str, tuple[str, ...]]:
    """(question, sources) from a button value; empty when the value is not ours."""
    try:
        data = json.loads(value)
    except (TypeError, ValueError):
        return "", ()
    if not isinstance(data, dict):
        return "", ()
    question = data.get("q") if isinstance(data.get("q"), str) else ""
    sources = (
        tuple(s for s in data.get("s", ()) if isinstance(s, str)) if isinstance(data.get("s"), list) else ()
    )
    return str(question), sources


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _actions(block_id: str, elements: list[Block]) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": elements}


def answer_blocks(
    answer: Answer,
    *,
    shareable: bool = False,
    voted: str | None = None,
    shared_by: str | None = None,
) -> list[Block]:
    """The answer as Block Kit: the question, each passage with its source, then 👍 / 👎 (and Share)."""
    blocks: list[Block] = [section(f"*You asked:* {escape(answer.question)}")]
    blocks.extend(context(f"_{escape(note)}_") for note in answer.notes)
    if answer.answered:
        for number, hit in enumerate(answer.hits, start=1):
            blocks.append(section(passage_text(hit, number)))
            blocks.append(context(f"source: `{escape(hit.passage.source)}`"))
    else:
        blocks.append(section(escape(answer.refusal_text())))
    if shared_by:
        blocks.append(context(f"Shared by <@{shared_by}>"))
    value = button_value(answer.question, [hit.passage.source for hit in answer.hits])
    share = _button("Share in channel", SHARE, value, "primary")
    if voted:
        blocks.append(context(f"{vote_emoji(voted)} {THANKS}"))
        if shareable:
            blocks.append(_actions(SHARE_BLOCK, [share]))
    else:
        elements = [_button("👍 Helpful", VOTE_UP, value), _button("👎 Not helpful", VOTE_DOWN, value)]
        blocks.append(_actions(FEEDBACK_BLOCK, [*elements, share] if shareable else elements))
    return fit(blocks)


def answer_text(answer: Answer) -> str:
    """The plain `text` that notifications and screen readers show: the top passage, or the refusal."""
    if not answer.answered:
        return cut(escape(answer.refusal_text()), MAX_FALLBACK)
    top = answer.hits[0]
    return cut(escape(f"{heading(top)}: {top.highlight.strip()}"), MAX_FALLBACK)


def vote_emoji(vote: str) -> str:
    return "👍" if vote == "up" else "👎"


def thanks_blocks(blocks: Iterable[Block], vote: str) -> list[Block]:
    """A posted answer's blocks with the vote buttons replaced by a thank-you (a Share button stays)."""
    out: list[Block] = []
    for block in blocks:
        if block.get("block_id") != FEEDBACK_BLOCK:
            out.append(block)
            continue
        out.append(context(f"{vote_emoji(vote)} {THANKS}"))
        rest = [e for e in block.get("elements", ()) if e.get("action_id") not in (VOTE_UP, VOTE_DOWN)]
        if rest:
            out.append(_actions(SHARE_BLOCK, rest))
    return fit(out)


def text_blocks(text: str, *, code: bool = False) -> list[Block]:
    """Plain text (help, roles, a reindex report) as sections of at most 3,000 characters each."""
    escaped = escape(text)
    room = MAX_TEXT - (8 if code else 0)
    chunks: list[str] = []
    current = ""
    for line in escaped.splitlines() or [""]:
        while len(line) > room:  # one enormous line: hard-wrap it
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:room])
            line = line[room:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > room:
            chunks.append(current)
            current = line
        else:
            current = candidate
    chunks.append(current)
    return fit([section(f"```{chunk}```" if code else chunk) for chunk in chunks if chunk.strip()])


def fit(blocks: list[Block]) -> list[Block]:
    """At most 50 blocks; when cutting, the last block (the buttons) is kept."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 2], context("…more was cut to fit in one Slack message."), blocks[-1]]
