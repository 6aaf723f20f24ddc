"""Discord rendering of answers: embeds within Discord's size limits, and reading votes back from them."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.answer import CONTEXT_CHARS, Answer, context_around
from index.types import Hit

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

SOURCES_PREFIX = "Sources: "
SOURCES_SEPARATOR = " · "
ANSWER_COLOUR = discord.Colour.blurple()
REFUSAL_COLOUR = discord.Colour.light_grey()
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, at a word boundary when one is near, marked with '…'."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > len(cut) * 0.6:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def clip_content(text: str) -> str:
    """Plain message content within Discord's 2,000 characters."""
    return clip(text, CONTENT_LIMIT)


def clip_lines(text: str, limit: int = CONTENT_LIMIT) -> str:
    """`text` cut after its last whole line that fits in `limit` characters, with a last line saying how many
    lines were left out (a reindex summary: a line cut in half would hide a file's name or reason)."""
    lines = text.strip().splitlines()
    text = "\n".join(lines)  # counted as sent: "\r\n" and other line breaks are one "\n" after the join
    if len(text) <= limit:
        return text
    shown, used = 0, 0  # `used`: the characters of lines[:shown], each with its newline
    while used + len(lines[shown]) + 1 + len(f"… {len(lines) - shown - 1} more lines not shown") <= limit:
        used += len(lines[shown]) + 1
        shown += 1
    if shown == 0:
        return clip(text, limit)
    return "\n".join([*lines[:shown], f"… {len(lines) - shown} more lines not shown"])


def answer_embed(answer: Answer) -> discord.Embed:
    """The question as title, one field per passage, the sources in the footer; the refusal lists roles."""
    title = clip(answer.question, TITLE_LIMIT) or "Your question"
    if not answer.answered:
        notes = "".join(f"*{note}*\n\n" for note in answer.notes)
        return discord.Embed(
            title=title,
            description=clip(notes + discord.utils.escape_markdown(answer.refusal_text()), DESCRIPTION_LIMIT),
            colour=REFUSAL_COLOUR,
        )
    embed = discord.Embed(title=title, colour=ANSWER_COLOUR)
    if answer.notes:
        embed.description = clip("\n".join(f"*{note}*" for note in answer.notes), DESCRIPTION_LIMIT)
    sources = list(dict.fromkeys(hit.passage.source for hit in answer.hits))
    embed.set_footer(text=clip(SOURCES_PREFIX + SOURCES_SEPARATOR.join(sources), FOOTER_LIMIT))
    hits = answer.hits[:FIELDS_LIMIT]
    names = [clip(field_name(hit), FIELD_NAME_LIMIT) for hit in hits]
    # Share what the 6,000-character total leaves after title, description, footer and field names.
    room = EMBED_TOTAL_LIMIT - len(embed) - sum(len(name) for name in names)
    per_field = min(FIELD_VALUE_LIMIT, max(room // max(len(hits), 1), 16))
    for name, hit in zip(names, hits, strict=True):
        embed.add_field(name=name, value=field_value(hit, per_field), inline=False)
    return embed


def field_name(hit: Hit) -> str:
    """'Document title › Section › Subsection', the title not repeated when the trail starts with it."""
    parts: list[str] = []
    for part in hit.passage.section.split(" > "):
        part = part.strip()
        if part and (not parts or parts[-1] != part):
            parts.append(part)
    if not parts or parts[0] != hit.passage.title:
        parts.insert(0, hit.passage.title)
    return " › ".join(parts)


def field_value(hit: Hit, limit: int = FIELD_VALUE_LIMIT) -> str:
    """The highlighted sentence in bold with trimmed context around it, escaped, at most `limit` chars."""
    escape = discord.utils.escape_markdown
    highlight = hit.highlight.strip()
    context = CONTEXT_CHARS
    while context > len(highlight):
        before, sentence, after = context_around(hit.passage.text, highlight, context)
        value = f"{escape(before)}**{escape(sentence)}**{escape(after)}".strip()
        if len(value) <= limit:
            return value
        context -= max(len(value) - limit, 20)
    # Not even the sentence fits on its own: cut the sentence itself (before escaping, so no
    # escape is split in half).
    room = limit - 4
    while room > 0:
        value = f"**{escape(clip(highlight, room))}**"
        if len(value) <= limit:
            return value
        room -= len(value) - limit
    return clip(escape(highlight), limit)


def roles_embed(roles: Sequence[str], topics: Sequence[str] = ()) -> discord.Embed:
    """The roles the bot has documents for, then its other documents."""
    if not roles and not topics:
        text = "I have no documents yet: an admin adds them to a knowledge folder and reindexes."
    else:
        text = "\n".join(f"• {discord.utils.escape_markdown(role)}" for role in roles) or "No role documents."
        if topics:
            text += f"\nand {len(topics)} other document{'s' * (len(topics) != 1)}:\n"
            text += "\n".join(f"• {discord.utils.escape_markdown(topic)}" for topic in topics)
    return discord.Embed(
        title="Roles I can answer about",
        description=clip(text, DESCRIPTION_LIMIT),
        colour=ANSWER_COLOUR,
    )


def vote_subject(embed: discord.Embed | None) -> tuple[str, tuple[str, ...]]:
    """(question, sources) read back from an answer embed, for storing a vote on it."""
    if embed is None:
        return "", ()
    question = embed.title or ""
    footer = embed.footer.text or ""
    if not footer.startswith(SOURCES_PREFIX):
        return question, ()
    names = footer[len(SOURCES_PREFIX) :].split(SOURCES_SEPARATOR)
    return question, tuple(name for name in names if name and not name.endswith(ELLIPSIS))
