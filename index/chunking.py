"""Split documents into passages that follow headings and sentences and fit the model's window."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from index.types import Document, Passage

SECTION_SEPARATOR = " > "
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "sr",
        "jr",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "no",
        "approx",
        "inc",
        "ltd",
        "co",
        "u.s",
        "u.k",
        "a.k.a",
        "ph.d",
        "b.s",
        "m.s",
        "fig",
        "esp",
    ]
)
_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$£€])"  # ". The", "?) 2"
    r"|(?<=[。！？])[」』）\"']*\s*(?=\S)"  # Chinese and Japanese full stops need no space after them
)
# The tokenizer splits at spaces, punctuation and Chinese characters, and reads a run of over 100 other
# characters (base64, a hash) as one [UNK]: such a run is noise to the model and to the reader.
_UNREADABLE_WORD = re.compile(r"[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{101,}")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; list items and other lines each stand alone."""
    return [sentence for line in _logical_lines(text) for sentence in _line_sentences(line)]


def _sentences_and_line_starts(text: str) -> list[tuple[str, bool]]:
    """split_sentences, each with whether it begins a line (a paragraph, list item or table row)."""
    return [
        (sentence, i == 0)
        for line in _logical_lines(text)
        for i, sentence in enumerate(_line_sentences(line))
    ]


def _line_sentences(line: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        candidate = line[start : match.start()].strip()
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".").lower()
        if last_word in _ABBREVIATIONS or len(candidate) < 2:
            continue
        sentences.append(candidate)
        start = match.end()
    tail = line[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _logical_lines(text: str) -> list[str]:
    """Join soft-wrapped prose lines; keep list items, table rows and short lines separate."""
    lines: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        current = ""
        for raw in paragraph.splitlines():
            line = raw.strip()
            if not line:
                continue
            structural = bool(_LIST_ITEM.match(raw)) or "|" in line
            if current and not structural and not _ends_line(current):
                current = f"{current} {line}"
                continue
            if current:
                lines.append(current)
            current = line
        if current:
            lines.append(current)
    return lines


def _ends_line(text: str) -> bool:
    return bool(_LIST_ITEM.match(text)) or "|" in text or text.endswith(":")


def section_label(title: str, heading_trail: Sequence[str]) -> str:
    """The section shown to users and embedded with the passage: 'Title > Heading > Subheading'."""
    return SECTION_SEPARATOR.join((title, *heading_trail))


_SPACED = re.compile(r"\S\s{3,}\S")  # columns aligned with spaces
_CODE_END = re.compile(r"[;{}]\s*$")
_CODE_START = re.compile(r"^\s*(?:def|class|return|import|for|while|if)\b.*[:(]")
_CALL_END = re.compile(r"\w\(.*\)\s*$")
_ASSIGNMENT = re.compile(r"^[^.!?]*\s=\s[^.!?]*$")
_WHITESPACE_AS_SPACE = {c: " " for c in range(0x3001) if chr(c).isspace() and re.match(r"\s", chr(c))}


def is_prose(sentence: str) -> bool:
    """Is this a sentence a person reads as an answer, not a line of code or of space-aligned columns?
    (Markdown table rows count as prose: "L5 | $355,000" answers a pay question.)

    Each pattern runs only when the characters it needs are there: this runs for every sentence of a
    passage the first time it is shown, on the ask path.
    """
    if "\t" in sentence:
        return False
    if "   " in sentence.translate(_WHITESPACE_AS_SPACE) and _SPACED.search(sentence):
        return False
    if (";" in sentence or "{" in sentence or "}" in sentence) and _CODE_END.search(sentence):
        return False
    if _CODE_START.search(sentence):
        return False
    if ")" in sentence and _CALL_END.search(sentence):
        return False
    return not ("=" in sentence and _ASSIGNMENT.search(sentence))


def passage_sentences(passage: Passage) -> list[str]:
    """The sentences a passage's highlight is chosen from (the whole text when it has none)."""
    return split_sentences(passage.text) or [passage.text]


def embedding_text(passage: Passage) -> str:
    """What the model embeds for a passage: where it sits in its document, then its text."""
    return f"{passage.section}: {passage.text}"


def chunk_document(
    document: Document,
    count_tokens: Callable[[str], int],
    max_tokens: int,
    target_tokens: int = 160,
    overlap_sentences: int = 1,
) -> list[Passage]:
    """Passages of at most `target_tokens` (never above the model's `max_tokens`), heading by heading.

    Neighbouring windows inside a section share `overlap_sentences` sentences so an answer that
    straddles a boundary is still found whole in one of them.
    """
    passages: list[Passage] = []
    for section in document.sections:
        label = section_label(document.title, section.heading_trail)
        prefix_tokens = count_tokens(f"{label}: ")
        budget = min(target_tokens, max_tokens) - prefix_tokens
        budget = max(budget, 16)
        pieces = _fit_sentences(_sentences_and_line_starts(section.text), count_tokens, budget)
        for window in _windows(pieces, count_tokens, budget, overlap_sentences):
            passages.append(Passage(document.source, document.title, label, window))
    return passages


def _fit_sentences(
    sentences: list[tuple[str, bool]], count_tokens: Callable[[str], int], budget: int
) -> list[tuple[str, bool]]:
    """Cut any sentence longer than the budget into word runs that fit (the first run keeps its line start)."""
    fitted: list[tuple[str, bool]] = []
    for sentence, starts_line in sentences:
        sentence = _UNREADABLE_WORD.sub("…", sentence)
        if count_tokens(sentence) <= budget:
            fitted.append((sentence, starts_line))
            continue
        for run in _word_runs(sentence, count_tokens, budget):
            fitted.append((run, starts_line))
            starts_line = False
    return fitted


def _word_runs(sentence: str, count_tokens: Callable[[str], int], budget: int) -> list[str]:
    """A long sentence as greedy runs of whole words of at most `budget` word pieces each.

    Linear in the sentence's length: a word is measured once (words are tokenized one by one, so a run
    costs the sum of its words plus [CLS] and [SEP]) and each run once more, in case a tokenizer counts
    a run otherwise (a 5 MB one-line file took minutes when every run was measured at every word).
    """
    pieces_of: dict[str, list[str]] = {}
    cost_of: dict[str, int] = {}
    words: list[str] = []
    for word in sentence.split():
        if word not in pieces_of:
            pieces_of[word] = _cut_word(word, count_tokens, budget)
        words.extend(pieces_of[word])
    runs: list[str] = []
    start = 0
    while start < len(words):
        end, used = start, 2
        while end < len(words):
            cost = cost_of.get(words[end])
            if cost is None:
                cost = cost_of[words[end]] = count_tokens(words[end]) - 2
            if end > start and used + cost > budget:
                break
            used += cost
            end += 1
        while end - start > 1 and count_tokens(" ".join(words[start:end])) > budget:
            end -= 1
        runs.append(" ".join(words[start:end]))
        start = end
    return runs


_MAX_CHARS_PER_PIECE = 20  # bisect over at most this many characters per word piece of the budget


def _cut_word(word: str, count_tokens: Callable[[str], int], budget: int) -> list[str]:
    """A run without spaces (Chinese or Japanese text, say) in pieces of at most `budget` word pieces."""
    pieces: list[str] = []
    while (
        count_tokens(word[: budget * _MAX_CHARS_PER_PIECE]) > budget
        or len(word) > budget * _MAX_CHARS_PER_PIECE
    ):
        # the longest prefix that fits, by bisection
        low, high = 1, min(len(word), budget * _MAX_CHARS_PER_PIECE)
        while low < high:
            middle = (low + high + 1) // 2
            if count_tokens(word[:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        pieces.append(word[:low])
        word = word[low:]
    return [*pieces, word] if word else pieces


def _windows(
    sentences: list[tuple[str, bool]], count_tokens: Callable[[str], int], budget: int, overlap: int
) -> list[str]:
    """Greedy sentence windows under the budget, each starting with the previous one's last sentences."""
    costs = [count_tokens(sentence) - 2 for sentence, _ in sentences]  # minus [CLS] and [SEP]
    windows: list[str] = []
    start = 0
    while start < len(sentences):
        end = start
        used = 2
        while end < len(sentences) and (end == start or used + costs[end] + 1 <= budget):
            used += costs[end] + 1
            end += 1
        windows.append(_join(sentences[start:end]))
        if end >= len(sentences):
            break
        start = max(end - overlap, start + 1)
    return windows


def _join(sentences: Sequence[tuple[str, bool]]) -> str:
    """Rejoin sentences as the document had them: a paragraph, list item or table row on its own line."""
    return "".join(("\n" if starts_line else " ") + sentence for sentence, starts_line in sentences)[1:]
