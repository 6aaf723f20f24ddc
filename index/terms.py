"""Job-title and jargon normalisation ("Sr. SWE" -> "senior software engineer"), driven by terms.json."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

TERMS_FILE = Path(__file__).with_name("terms.json")


def whole_words(phrases: Iterable[str], plural: bool = False) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any of the phrases as whole words (not inside a word or a
    hyphenated word), longer phrases first; with `plural` an optional trailing "s". None for no phrases."""
    ordered = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    if not ordered:
        return None
    alternatives = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![\w-])(?:{alternatives}){'s?' if plural else ''}(?![\w-])", re.IGNORECASE)


class TermNormaliser:
    """Rewrites variants to their canonical phrase, longest variant first, whole words only."""

    def __init__(self, table: dict[str, list[str]], not_after: dict[str, list[str]] | None = None) -> None:
        """`not_after` maps a variant to the words that, just before it, make it another word: "pay"
        after "to" or "i" is the verb, not the salary, and stays as typed."""
        pairs = [
            (variant.lower(), canonical) for canonical, variants in table.items() for variant in variants
        ]
        pairs.sort(key=lambda pair: len(pair[0]), reverse=True)
        self._canonical = {variant: canonical for variant, canonical in pairs}
        self._pattern = whole_words(variant for variant, _ in pairs)
        self._not_after = {
            variant.lower(): {w.lower() for w in words} for variant, words in (not_after or {}).items()
        }
        # A variant matches only where a word starts that is its first word ("sr" of "sr."): the pattern is
        # tried there alone, as trying its alternatives at every character took ~40 µs a sentence.
        firsts = [_WORD.match(variant) for variant, _ in pairs]
        self._first_words = frozenset(m.group(0) for m in firsts if m is not None)
        self._anywhere = any(m is None for m in firsts)  # a variant starting with a sign: scan everywhere

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        if self._anywhere:
            return pattern.sub(lambda m: self._replacement(m, text), text)
        pieces: list[str] = []
        end = 0
        for word in _WORD.finditer(text):
            start = word.start()
            if start < end or word.group(0).lower() not in self._first_words:
                continue
            match = pattern.match(text, start)
            if match is None:
                continue
            pieces += (text[end:start], self._replacement(match, text))
            end = match.end()
        if not pieces:
            return text
        pieces.append(text[end:])
        return "".join(pieces)

    def _replacement(self, match: re.Match[str], text: str) -> str:
        variant = match.group(0).lower()
        guard = self._not_after.get(variant)
        if guard:
            before = _PREVIOUS_WORD.search(text, max(0, match.start() - _LOOKBACK), match.start())
            if before is not None and before.group(1).lower() in guard:
                return match.group(0)
        return self._canonical[variant]


_PREVIOUS_WORD = re.compile(r"([\w']+)\W*$")
_WORD = re.compile(r"\w+")
_LOOKBACK = 40  # characters read back for that word, so a long passage is not rescanned per match


class FillerRemover:
    """Cuts chat interjections and hedges ("lol", "ngl", "tbh", "kinda") out of a question, with the
    punctuation right after them, and emoji (Unicode ones, Slack's ":pray:" and Discord's "<:name:id>"): they
    say nothing of what is asked, and in "is my football stats app worth putting on my resume lol" they pulled
    the closest sentence's cosine under the relevance floor."""

    def __init__(self, fillers: Iterable[str]) -> None:
        pattern = whole_words(fillers)
        self._pattern = re.compile(rf"{pattern.pattern}[,.!]*", re.IGNORECASE) if pattern else None

    def __call__(self, question: str) -> str:
        cut = _EMOJI_CODE.sub(" ", question)
        if any(ord(char) > 0x2000 for char in cut):  # most questions are ASCII: no per-character pass
            cut = "".join(" " if _is_emoji(char) else char for char in cut)
        if self._pattern is not None:
            cut = self._pattern.sub("", cut)
        cut = _SPACES.sub(" ", cut).strip(" ,")
        return re.sub(r"\s+([,.?!])", r"\1", cut) if cut else question


_SPACES = re.compile(r"\s{2,}")
# Slack's ":thinking_face:" / ":+1:" and Discord's custom "<:name:123>" / "<a:name:123>"
_EMOJI_CODE = re.compile(r"(?<![\w:]):[a-z0-9_+'-]{2,}:(?![\w:])|<a?:\w+:\d+>", re.IGNORECASE)


def _is_emoji(char: str) -> bool:
    """A pictograph or symbol ("🤔", "🎉", "✅"), or what joins and shades them (ZWJ, variation selector,
    skin tones)."""
    return (
        unicodedata.category(char) == "So" or char in "\u200d\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff"
    )


@lru_cache(maxsize=1)
def _shipped_table() -> dict[str, Any]:
    """index/terms.json, read once."""
    table: dict[str, Any] = json.loads(TERMS_FILE.read_text(encoding="utf-8"))
    return table


@lru_cache(maxsize=1)
def default_fillers() -> FillerRemover:
    """The remover for the `_fillers` listed in index/terms.json."""
    return FillerRemover(_shipped_table().get("_fillers", []))


@lru_cache(maxsize=1)
def default_normaliser() -> TermNormaliser:
    """The normaliser for the table shipped in index/terms.json."""
    table = _shipped_table()
    return TermNormaliser({k: v for k, v in table.items() if not k.startswith("_")}, table.get("_not_after"))
