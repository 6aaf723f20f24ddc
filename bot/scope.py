"""Questions about other occupations ("what does a dentist earn?"), refused even when pay passages score well."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

SCOPE_FILE = Path(__file__).with_name("scope.json")


def _whole_words(phrases: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(p) for p in ordered) + r")s?(?![\w-])", re.I)


class OccupationScope:
    """Knows occupations the bot has no documents for, and the words that bring a question back into scope."""

    def __init__(self, other_occupations: Iterable[str], field_words: Iterable[str]) -> None:
        self._other = _whole_words(other_occupations)
        self._field = _whole_words(field_words)

    def is_about_another_occupation(self, normalised_question: str, names_a_known_role: bool) -> bool:
        """True for "how much does a registered nurse make?", false once the question names one of our
        roles or the software field ("I'm a nurse, how do I become a developer?")."""
        if self._other is None or names_a_known_role or not self._other.search(normalised_question):
            return False
        return not (self._field and self._field.search(normalised_question))


@lru_cache(maxsize=1)
def default_scope() -> OccupationScope:
    """The scope shipped in bot/scope.json."""
    data = json.loads(SCOPE_FILE.read_text(encoding="utf-8"))
    return OccupationScope(data["other_occupations"], data["field_words"])
