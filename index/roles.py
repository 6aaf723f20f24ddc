"""Which roles a question names, from the documents' titles and front-matter aliases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from index.terms import default_normaliser

LEVEL_WORDS = ("junior", "senior", "staff", "principal", "distinguished")
_COMPARISON = re.compile(r"\b(vs\.?|versus|compared?|comparison|difference|differ|between|or|better)\b", re.I)


@dataclass(frozen=True)
class RoleDocument:
    """A document that describes a role: its source, title and aliases (from front matter)."""

    source: str
    title: str
    aliases: tuple[str, ...]
    level: str = ""


class RoleMatcher:
    """Finds role names in a normalised question; the longest name wins where names overlap."""

    def __init__(self, documents: Iterable[RoleDocument]) -> None:
        normalise = default_normaliser()
        names: dict[str, str] = {}
        level_titles: dict[str, list[tuple[int, str]]] = {}
        for doc in documents:
            for name in (doc.title, *doc.aliases):
                key = normalise(name).lower().strip()
                if key:
                    names.setdefault(key, doc.source)
            first_word = doc.title.split()[0].lower() if doc.title else ""
            if first_word in LEVEL_WORDS:
                level_titles.setdefault(first_word, []).append((len(doc.title), doc.source))
        # A bare level word ("staff", "senior") names the most general role whose title starts with it.
        for word, candidates in level_titles.items():
            names.setdefault(word, min(candidates)[1])
        ordered = sorted(names, key=len, reverse=True)
        self._names = names
        self._pattern = (
            re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in ordered) + r")(?![\w-])", re.I)
            if ordered
            else None
        )

    def roles_in(self, normalised_question: str) -> list[str]:
        """Sources of the role documents the question names, in the order it names them."""
        if self._pattern is None:
            return []
        found: list[str] = []
        for match in self._pattern.finditer(normalised_question):
            source = self._names[match.group(1).lower()]
            if source not in found:
                found.append(source)
        return found


def is_comparison(question: str) -> bool:
    """Does the question weigh one thing against another ("senior vs staff", "EM or IC?")?"""
    return bool(_COMPARISON.search(question))
