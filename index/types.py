"""Frozen value types that cross the retrieval core's seams: documents, passages, hits, skips."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of body text under one heading trail, in document order."""

    heading_trail: tuple[str, ...]  # e.g. ("Salary", "United States"); empty before the first heading
    text: str  # paragraphs separated by blank lines; lists and tables kept as plain text lines


@dataclass(frozen=True)
class Document:
    """One loaded knowledge file, already stripped of markup."""

    source: str  # path relative to its knowledge folder, with forward slashes
    title: str
    sections: tuple[Section, ...]
    content_hash: str  # sha256 of the raw file bytes
    aliases: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class SkippedFile:
    """A file the loader could not use, and why, in one line."""

    source: str
    reason: str


@dataclass(frozen=True)
class Passage:
    """One chunk of one document: what is searched and shown."""

    source: str
    title: str
    section: str  # heading trail joined with " > ", starting with the document title
    text: str


@dataclass(frozen=True)
class Hit:
    """A passage chosen for a question, with its relevance score and best sentence."""

    passage: Passage
    score: float
    highlight: str
    exact: bool = False  # the highlight holds an exact term of the question (a figure, an acronym)
    rare_term: bool = False  # the highlight holds a word of the question that few passages hold ("debounce")
    role_named: bool = False  # the passage's document is the page of a role the question names (not a topic)
    question_words: int = 0  # the question's keyword stems (stopwords left out)
    highlight_holds: int = 0  # how many of them the highlight holds
