"""Questions about other occupations or walks of life ("what does a dentist earn?"), refused even when pay passages score well."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from index.terms import whole_words

SCOPE_FILE = Path(__file__).with_name("scope.json")
# Words before an occupation that make it where the asker goes ("become a nurse", "switching from nursing to
# midwifery", "move into dentistry", "switch and train as a midwife"), not where they were ("I used to be a
# nurse", "I went to nursing school", "I trained to be a pharmacist")
_GOING_TO = re.compile(
    r"(?:\b(?:into|become|becoming|(?:re)?train(?:ing)? as)|\b(?:switch|mov|chang|transition|go|jump|pivot)\w*\b[^.?!,;]*?\b(?:to|as))"
    r"\s+(?:be(?:ing|come)?\s+)?(?:an?\s+|the\s+)?$",
    re.IGNORECASE,
)
_GOING_TO_REACH = 60
# Words before an occupation that make it someone the asker hires for their own career ("worth paying a lawyer
# to look at my severance?", "should I consult an accountant about my options?"), not what they ask about
_HIRING = re.compile(
    r"\b(?:pay(?:ing)?|hir(?:e|ing)|consult(?:ing)?|(?:talk|speak)(?:ing)?\s+to|check(?:ing)?\s+with)"
    r"\s+(?:an?\s+|my\s+|the\s+|your\s+)?(?:\w+\s+)?$",
    re.IGNORECASE,
)
_HIRING_REACH = 40


class OccupationScope:
    """Knows occupations the bot has no documents for, and the words that bring a question back into scope."""

    def __init__(
        self,
        other_occupations: Iterable[str],
        field_words: Iterable[str],
        change_words: Iterable[str] = (),
        advisers: Iterable[str] = (),
    ) -> None:
        self._other = whole_words(other_occupations, plural=True)
        self._field = whole_words(field_words, plural=True)
        self._change = whole_words(change_words, plural=True)
        self._advisers = whole_words(advisers, plural=True)

    def mentions_another_occupation(self, normalised_question: str) -> bool:
        """Does the question name an occupation or subject from the lists at all? (The cheap first test.)"""
        return self._other is not None and self._other.search(normalised_question) is not None

    def is_about_another_occupation(self, normalised_question: str, names_a_known_role: bool) -> bool:
        """True for "how much does a registered nurse make?", false once the question names one of our
        roles or the software field ("I'm a nurse, how do I become a developer?")."""
        if self._other is None or names_a_known_role:
            return False
        asked_about = [
            m for m in self._other.finditer(normalised_question) if not self._hired(normalised_question, m)
        ]
        if not asked_about:
            return False
        if self._field and self._field.search(normalised_question):
            return False
        # "thinking of switching, where do I start?" changes careers into ours; "switching to nursing" does not
        changes_careers = self._change is not None and self._change.search(normalised_question) is not None
        return not changes_careers or any(
            _GOING_TO.search(normalised_question[max(0, m.start() - _GOING_TO_REACH) : m.start()])
            for m in asked_about
        )

    def _hired(self, normalised_question: str, mention: re.Match[str]) -> bool:
        """Is this mention an adviser the asker hires ("paying a lawyer"), not a job asked about?"""
        return (
            self._advisers is not None
            and self._advisers.fullmatch(mention.group(0)) is not None
            and _HIRING.search(normalised_question[max(0, mention.start() - _HIRING_REACH) : mention.start()])
            is not None
        )


@lru_cache(maxsize=1)
def default_scope() -> OccupationScope:
    """The scope shipped in bot/scope.json."""
    data = json.loads(SCOPE_FILE.read_text(encoding="utf-8"))
    other = [
        *data["other_occupations"],
        *data.get("other_subjects", []),
        *data.get("other_walks_of_life", []),
    ]
    return OccupationScope(other, data["field_words"], data.get("change_words", ()), data.get("advisers", ()))
