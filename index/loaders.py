"""Turn knowledge files (Markdown/MDX, text, HTML, PDF, Word) into plain-text Documents."""

from __future__ import annotations

import bisect
import codecs
import errno
import hashlib
import html
import io
import itertools
import logging
import os
import re
import stat
import textwrap
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Literal, NamedTuple

import docx
import yaml
from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    PageElement,
    ProcessingInstruction,
    Tag,
)
from docx.document import Document as DocxDocument
from docx.table import Table
from pypdf import PasswordType, PdfReader

from index.errors import KnowledgeFolderError
from index.types import Document, Section, SkippedFile

_SUFFIX_ORDER = (".md", ".mdx", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_SUFFIX_ORDER)
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_ZIP_SUFFIXES = frozenset({".docx"})  # zip archives: the size limit applies to what they unpack to

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def iter_candidate_files(root: Path) -> list[Path]:
    """Every regular, non-hidden file under root (recursively), sorted.

    Also listed, so that nothing vanishes without a word: each entry that cannot be used but may be
    meant as a document (a broken link, a link loop, a file that cannot be looked at), each link to a
    folder (not followed) and each subfolder that cannot be listed (its own path: its files cannot be
    named). load_file turns
    these into a SkippedFile with the reason.
    """
    try:
        info = root.stat()
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise KnowledgeFolderError(f"Knowledge folder not found: {root}") from exc
    except OSError as exc:
        raise KnowledgeFolderError(f"Knowledge folder cannot be read: {root} ({_os_reason(exc)})") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise KnowledgeFolderError(f"Knowledge folder is not a directory: {root}")
    try:
        os.listdir(root)
    except OSError as exc:
        raise KnowledgeFolderError(f"Knowledge folder cannot be read: {root} ({_os_reason(exc)})") from exc

    found: list[Path] = []

    def unlistable(error: OSError) -> None:  # without this, os.walk leaves the folder out silently
        if error.filename is not None and not isinstance(error, FileNotFoundError):  # gone: nothing lost
            found.append(Path(os.fsdecode(error.filename)))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        # a link to a folder is not followed (it may lead back up, or out of the knowledge): named instead
        found.extend(Path(dirpath) / name for name in dirnames if (Path(dirpath) / name).is_symlink())
        for name in filenames:
            candidate = Path(dirpath) / name
            if not name.startswith(".") and _is_candidate(candidate):
                found.append(candidate)
    return sorted(found)


def _is_candidate(path: Path) -> bool:
    """A regular file (or a link to one), or an entry that cannot be looked at or followed."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False  # removed since its folder was listed
    except OSError:
        return True  # e.g. no permission to look inside the folder: load_file says so
    if not stat.S_ISLNK(info.st_mode):
        return stat.S_ISREG(info.st_mode)
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return True  # a broken link or a link loop: load_file says which


def load_file(path: Path, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Document | SkippedFile:
    """Load one file; a file that cannot be used comes back as a SkippedFile, never an exception.

    `path` must lie under `root` (a ValueError otherwise is a caller bug, not a bad file). A path
    that is not a file to read (a folder that cannot be listed, a broken link, a link loop) is
    skipped with that reason too.
    """
    source = path.relative_to(root).as_posix()
    try:
        return _load(path, source, max_bytes)
    except _Unusable as exc:
        return SkippedFile(source, exc.reason)
    except Exception as exc:  # last resort: a parser's bug or limit costs one file, not the whole reindex
        log.debug("unexpected error loading %s", path, exc_info=True)
        return SkippedFile(source, f"cannot parse: {type(exc).__name__}")


def _load(path: Path, source: str, max_bytes: int) -> Document:
    _check_entry(path)
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise _Unusable(_unsupported_reason(suffix))
    raw = _read_bytes(path, max_bytes)
    if suffix in _ZIP_SUFFIXES:
        _check_unpacked_size(raw, max_bytes)
    parsed = loader(raw, _prettify_stem(path.stem))
    sections = _build_sections(parsed.title, parsed.blocks)
    if not sections:
        raise _Unusable("no text after removing markup")
    return Document(
        source=source,
        title=_squash(parsed.title),
        sections=sections,
        content_hash=hashlib.sha256(raw).hexdigest(),
        aliases=parsed.aliases,
        metadata=parsed.metadata,
    )


# ---------------------------------------------------------------------------
# Shared plumbing: reading, skip reasons, blocks -> sections
# ---------------------------------------------------------------------------


class _Unusable(Exception):
    """Raised inside the loader when a file must be skipped; carries the one-line reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Block(NamedTuple):
    """One piece of body text in document order, before it is grouped into sections.

    heading    starts a section at `level` (1 = top)
    paragraph  prose; whitespace is collapsed
    line       a list item or table row; adjacent lines share one paragraph, one per line
    code       preformatted text; line breaks and indentation are kept
    break      ends a run of lines (e.g. between a list and a table)
    """

    kind: Literal["heading", "paragraph", "line", "code", "break"]
    text: str
    level: int = 0


@dataclass
class _Parsed:
    """What a format loader extracts from one file."""

    title: str
    blocks: list[_Block]
    aliases: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def _human_size(size: float) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(size)} B"


def _check_entry(path: Path) -> None:
    """Raise _Unusable for a path that is no file to read: a folder, a broken link, a link loop."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Unusable("link loop (the link leads back to itself)") from exc
        if isinstance(exc, (FileNotFoundError, NotADirectoryError)) and path.is_symlink():
            raise _Unusable(f"broken link (its target {_link_target(path)} does not exist)") from exc
        return  # reading it gives the reason, e.g. permission denied
    if stat.S_ISDIR(info.st_mode):
        if path.is_symlink():
            raise _Unusable(
                f"link to a folder ({_link_target(path)}), not followed: add that folder as a knowledge folder"
            )
        try:
            with os.scandir(path):
                pass
        except OSError as exc:
            raise _Unusable(f"cannot list folder: {_os_reason(exc)}") from exc
        raise _Unusable("not a regular file")


def _link_target(path: Path) -> str:
    try:
        target = _squash(os.readlink(path))
    except OSError:
        return "?"
    return target if len(target) <= 80 else "..." + target[-77:]


def _check_unpacked_size(raw: bytes, max_bytes: int) -> None:
    """The size limit applies to what a zip-based file unpacks to, not only to its size on disk.

    zipfile never unpacks a member beyond its recorded size (it stops there and fails the CRC
    check), so the recorded sizes bound what the parser can be handed. A file that is no valid
    zip is left to its loader, whose error names the problem.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except Exception:  # noqa: BLE001 - zipfile raises many kinds for damaged files; the loader reports them
        return
    if unpacked > max_bytes:
        raise _Unusable(f"unpacks to {_human_size(unpacked)}, over the {_human_size(max_bytes)} limit")


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    too_big = "larger than the {limit} limit ({size})"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a folder, a device or a pipe (which would block the read)
            raise _Unusable("not a regular file")
        size = info.st_size
        if size > max_bytes:
            raise _Unusable(too_big.format(limit=_human_size(max_bytes), size=_human_size(size)))
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # never more than the limit, even if the file grew
    except _Unusable:
        raise
    except IsADirectoryError as exc:
        raise _Unusable("not a regular file") from exc
    except OSError as exc:
        reason = _os_reason(exc)
        raise _Unusable(reason if reason == "permission denied" else f"cannot read file: {reason}") from exc
    if len(raw) > max_bytes:
        raise _Unusable(too_big.format(limit=_human_size(max_bytes), size=f"over {_human_size(max_bytes)}"))
    if not raw:
        raise _Unusable("empty file")
    return raw


def _unsupported_reason(suffix: str) -> str:
    if not suffix:
        return "no file suffix; supported: " + ", ".join(_SUFFIX_ORDER)
    return f"unsupported file type '{suffix}'"


def _short_error(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    text = text or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _decode_text(raw: bytes) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _Unusable("not UTF-8 text (UTF-16; save it as UTF-8)")
    if b"\x00" in raw:
        raise _Unusable("binary content (NUL bytes) in a text file")
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unusable(f"not UTF-8 text (invalid byte at offset {exc.start + start})") from exc
    if not text.strip():
        raise _Unusable("empty file (only whitespace)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# A terminal's escape sequences (colours, a window title) and other control characters: shown raw, they
# would recolour or retitle the reader's terminal (`rolecall ask`, `chat`), so sequences go and the rest
# become spaces.
_TERMINAL_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """`text` without terminal escape sequences, other control characters (but tab and newline) as spaces."""
    return _CONTROL.sub(" ", _TERMINAL_ESCAPE.sub("", text))


def _squash(text: str) -> str:
    """Collapse all whitespace (including non-breaking spaces) to single spaces; no control characters."""
    return " ".join(_printable(text).replace("\u200b", "").split())


def _title_key(text: str) -> str:
    return _squash(text).casefold()


def _prettify_stem(stem: str) -> str:
    """'2021-08-29-senior-back-end-engineer' -> 'Senior Back End Engineer'."""
    bare = re.sub(r"^\d{4}-\d{2}-\d{2}[-_]", "", stem)
    words = [word for word in re.split(r"[-_.\s]+", bare) if word]
    return " ".join(word[:1].upper() + word[1:] for word in words) or stem


def _build_sections(title: str, blocks: Iterable[_Block]) -> tuple[Section, ...]:
    """Group blocks under their heading trail; adjacent list/table lines share one paragraph."""
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    lines: list[str] = []

    def end_lines() -> None:
        if lines:
            paragraphs.append("\n".join(lines))
            lines.clear()

    def end_section() -> None:
        end_lines()
        if not paragraphs:
            return
        headings = tuple(text for _, text in trail)
        text = "\n\n".join(paragraphs)
        paragraphs.clear()
        if not headings and sections and not sections[-1].heading_trail:  # text on both sides of a title H1
            text = sections[-1].text + "\n\n" + text
            sections.pop()
        sections.append(Section(headings, text))

    for block in blocks:
        if block.kind == "heading":
            heading = _squash(block.text)
            if not heading:
                continue
            end_section()
            while trail and trail[-1][0] >= block.level:
                trail.pop()
            if not (block.level == 1 and _title_key(heading) == _title_key(title)):
                trail.append((block.level, heading))
        elif block.kind == "line":
            line = _squash(block.text)
            if line:
                lines.append(line)
        elif block.kind == "break":
            end_lines()
        elif block.kind == "code":
            end_lines()
            code = "\n".join(
                line.rstrip() for line in _printable(block.text).replace("\xa0", " ").split("\n")
            )
            code = re.sub(r"\n{3,}", "\n\n", code).strip("\n")
            if code.strip():
                paragraphs.append(code)
        else:
            end_lines()
            paragraph = _squash(block.text)
            if paragraph:
                paragraphs.append(paragraph)
    end_section()
    return tuple(sections)


# ---------------------------------------------------------------------------
# Markdown / MDX
# ---------------------------------------------------------------------------

_METADATA_CHARS = 1000  # the most text kept of one front-matter value
_METADATA_NODES = 1000  # the most list items looked at while flattening one front-matter value
_METADATA_KEYS = 100  # the most front-matter keys looked at
_DONE = object()  # end of an iterator, for next(iterator, _DONE)
_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|$)", re.DOTALL)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
# A code span opens with a whole run of at most 16 backticks and closes at the next run of the same length on
# its line. Letting the run be cut anywhere made a line of 2,000 backticks take 75 s; runs of every length
# (each unclosed one scanning to the end of the line) grew as n^1.5, 14 s for 400 KB. With the cap, linear.
_CODE_SPAN = r"(?<!`)(?P<ticks>`{1,16}+)(?!`)[^\n]*?(?<!`)(?P=ticks)(?!`)"
_ATTRS = r"""(?:(?:(?!\n[ \t]*\n)[^<>{}"'])|"[^"]*"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\})*"""
_TAG = re.compile(rf"(?P<code>{_CODE_SPAN})|</?(?P<name>[A-Za-z][\w.:-]*)(?:\s{_ATTRS})?/?>")
_DROPPED_OPENING = re.compile(
    rf"(?P<code>{_CODE_SPAN})|<(?P<name>head|script|style|iframe|svg|noscript|template)\b{_ATTRS}>",
    re.IGNORECASE,
)
_INLINE_TAGS = frozenset(
    {"a", "abbr", "b", "code", "em", "i", "kbd", "mark", "s", "small", "span", "strong", "sub", "u"}
)
_SUP = re.compile(r"<sup>([^<]*)</sup>", re.IGNORECASE)
_ESM_LINE = re.compile(
    r"""^(?:import\s+(?:['"]|\{\s*$|[\w${},*\s]+?\s+from\s+['"])"""
    r"|export\s+(?:(?:default|const|let|var|function|class|async)\b|\{|\*))"
)
_ADMONITION = re.compile(r"^\s*:::")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$")
_HEADING_ID = re.compile(r"\s*\{#[^}]*\}\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(?:=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?(.*)$")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+")
# Bracketed parts stop at the next "[": "![" scanning on to the next "]" anywhere made 400 KB of "![" take
# 46 s (0.1 s now).
_LINK_TARGET = r"(?:\((?:[^()]|\([^()]*\))*\)|\[[^\[\]]*\])"  # (url "title") or [ref]
_LINKS = re.compile(
    rf"(?P<code>{_CODE_SPAN})|(?P<image>!\[[^\[\]]*\]{_LINK_TARGET})"
    rf"|\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])+)\]{_LINK_TARGET}|<(?P<url>(?:https?|ftp|mailto):[^>\s]+)>"
)


class _Emphasis(NamedTuple):
    """A delimited span whose markers are dropped: `opening` (group 1 is the marker) starts it and
    the first `closing` after at least one character, on the same line, ends it.

    The same as re.sub(opening (.+?) closing, content) with `closing` a backreference to the marker,
    but linear: every place where a closing marker may stand is found once, in one pass, instead of
    each unclosed opening marker scanning to the end of the line (a 100 KB paragraph of "**a "
    took 40 s).
    """

    opening: re.Pattern[str]
    closing: str  # a zero-width pattern, matching before each possible closing marker; {0} is the marker


_EMPHASIS = (
    _Emphasis(re.compile(r"(\*\*|__)(?=\S)"), r"(?<=\S)(?={0})"),
    _Emphasis(re.compile(r"(?<![\w*\\])(\*)(?=[^\s*])"), r"(?<=[^\s*\\])(?={0}(?![\w*]))"),
    _Emphasis(re.compile(r"(?<![\w\\])(_)(?=\S)"), r"(?<=[^\s\\])(?={0}(?!\w))"),
    _Emphasis(re.compile(r"(~~)(?=\S)"), r"(?<=\S)(?={0})"),
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ESCAPED = re.compile("[\U000f0000-\U000f007f]")  # private-use stand-ins for escaped punctuation


def _load_markdown(raw: bytes, fallback_title: str) -> _Parsed:
    front, body = _split_front_matter(_decode_text(raw))
    blocks: list[_Block] = []
    for is_code, chunk in _split_fences(body):
        blocks.extend([_Block("code", chunk)] if is_code else _markdown_blocks(_clean_mdx(chunk)))
    first_h1 = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), "")
    title = _scalar_text(front.get("title") or "") or _squash(first_h1) or fallback_title
    metadata: dict[str, str] = {}
    for key, value in itertools.islice(front.items(), _METADATA_KEYS):
        if key not in ("title", "aliases") and (text := _scalar_text(value)):
            metadata[key[:_METADATA_CHARS]] = text
    return _Parsed(title, blocks, _aliases(front.get("aliases")), metadata)


def _split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """Separate a leading `---` YAML block; a malformed one is dropped without metadata."""
    match = _FRONT_MATTER.match(text)
    if not match or not re.match(r"\s*[\w-]+\s*:", match.group(1) or ""):
        return {}, text
    body = text[match.end() :]
    try:
        data = yaml.safe_load(match.group(1) or "")
    except Exception:  # noqa: BLE001 - as invalid YAML: also nesting too deep (RecursionError), a bad date (ValueError)
        return {}, body
    if not isinstance(data, dict):
        return {}, body
    return {str(key): value for key, value in data.items()}, body


def _scalar_text(value: object) -> str:
    """Front-matter value as a plain string; lists are comma-joined, mappings are ignored.

    Capped at _METADATA_CHARS characters, and at most _METADATA_NODES items are looked at: YAML
    aliases let a few hundred bytes name billions of items (an alias bomb), and the walk stops
    long before it would expand them.
    """
    parts: list[str] = []
    length = 0
    visited = 0
    pending: list[Iterator[object]] = [iter((value,))]  # an explicit stack: no recursion limit either
    while pending and visited < _METADATA_NODES and length < _METADATA_CHARS:
        item = next(pending[-1], _DONE)
        if item is _DONE:
            pending.pop()
            continue
        visited += 1
        if isinstance(item, (list, tuple, set, frozenset)):  # tuples: !!pairs and !!omap
            pending.append(iter(item))
            continue
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif item is None or isinstance(item, dict):
            continue
        else:
            text = _squash(str(item)[: 4 * _METADATA_CHARS])  # an aliased long string is cut before squashing
        if text:
            parts.append(text)
            length += len(text) + 2
    joined = ", ".join(parts)
    return joined if len(joined) <= _METADATA_CHARS else joined[:_METADATA_CHARS].rstrip(", ")


def _aliases(value: object) -> tuple[str, ...]:
    """Front-matter aliases given as a YAML list or a comma-separated string."""
    items: list[object] = list(value.split(",")) if isinstance(value, str) else []
    if isinstance(value, list):
        items = [item for item in value if isinstance(item, (str, int, float))]
    aliases = (_squash(str(item)) for item in items)
    return tuple(dict.fromkeys(alias for alias in aliases if alias))


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """Cut text into (is_code, chunk) runs; code chunks lose their fence lines and common indent."""
    chunks: list[tuple[bool, str]] = []
    prose: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            prose.append(lines[index])
            index += 1
            continue
        if prose:
            chunks.append((False, "\n".join(prose)))
            prose = []
        marker = opening.group(1)
        closing = re.compile(rf"^\s*{re.escape(marker[0])}{{{len(marker)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        chunks.append((True, textwrap.dedent("\n".join(lines[index + 1 : end]))))
        index = end + 1
    if prose:
        chunks.append((False, "\n".join(prose)))
    return chunks


def _clean_mdx(text: str) -> str:
    """Remove MDX/HTML noise from prose (never code): ESM lines, components, tags, comments, admonitions."""
    text = _drop_between(text, "{/*", "*/}")
    text = _drop_between(text, "<!--", "-->")
    text = _drop_elements(text)
    text = _SUP.sub(_superscript, text)
    text = _TAG.sub(_replace_tag, text)
    text = re.sub(r"\{\s*(['\"])\s\1\s*\}", " ", text)  # JSX {' '}
    kept: list[str] = []
    depth = 0  # open brackets of a multi-line import/export statement being dropped
    for line in text.split("\n"):
        if depth > 0 or _ESM_LINE.match(line):
            depth = max(0, depth + sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}"))
            continue
        if not _ADMONITION.match(line):
            kept.append(line)
    return "\n".join(kept)


def _drop_between(text: str, opening: str, closing: str) -> str:
    """Remove each `opening ... closing` span (e.g. HTML comments), in linear time: once an opening
    has no closing after it, none of the later ones has (re.sub with `.*?` would rescan the rest of
    the text for every unclosed one)."""
    pieces: list[str] = []
    position = 0
    while (start := text.find(opening, position)) >= 0:
        end = text.find(closing, start + len(opening))
        if end < 0:
            break
        pieces.append(text[position:start])
        position = end + len(closing)
    pieces.append(text[position:])
    return "".join(pieces)


def _drop_elements(text: str) -> str:
    """Remove <script>...</script>, <style>...</style> and the like with their content; code spans
    are kept, and so is an element that is never closed (its tag alone goes later, as any tag).

    Each opening tag looks for its closing tag once; a name found unclosed after some point is not
    looked for again after it, so the work is linear (a regex `<script>.*?</script>` rescans to the
    end of the text for every unclosed tag: 16 s for 200 KB of them).
    """
    pieces: list[str] = []
    position = 0  # text before this is in pieces (or dropped)
    search_from = 0
    unclosed_from: dict[str, int] = {}  # tag name -> no closing tag of that name from this offset on
    while match := _DROPPED_OPENING.search(text, search_from):
        if match.group("code"):
            search_from = match.end()
            continue
        name = match.group("name").lower()
        closing = None
        if match.end() < unclosed_from.get(name, len(text) + 1):
            closing = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(text, match.end())
        if closing is None:
            unclosed_from.setdefault(name, match.end())
            search_from = match.start() + 1
            continue
        pieces.append(text[position : match.start()])
        position = search_from = closing.end()
    pieces.append(text[position:])
    return "".join(pieces)


def _superscript(match: re.Match[str]) -> str:
    """'k<sup>th</sup>' -> 'kth', 'n<sup>2</sup>' -> 'n^2', '2<sup>n+1</sup>' -> '2^(n+1)'."""
    text = match.group(1).strip()
    if text.lower() in ("st", "nd", "rd", "th"):
        return text
    return f"^{text}" if text.isalnum() else f"^({text})"


def _replace_tag(match: re.Match[str]) -> str:
    """Keep code spans; drop inline tags without a trace and block tags with a space."""
    if match.group("code"):
        return match.group("code")
    return "" if match.group("name").lower() in _INLINE_TAGS else " "


def _markdown_blocks(text: str) -> list[_Block]:
    """Block structure of cleaned Markdown prose: headings, paragraphs, list items, table rows."""
    blocks: list[_Block] = []
    paragraph: list[str] = []
    in_item = False  # the previous line was a list item (lazy continuation lines join it)

    def end_paragraph() -> None:
        if paragraph:
            blocks.append(_Block("paragraph", _md_inline(" ".join(paragraph))))
            paragraph.clear()

    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        while _QUOTE.match(line):
            line = _QUOTE.sub("", line, count=1)
        stripped = line.strip()
        heading = _HEADING.match(line)
        item = _LIST_ITEM.match(line)
        if paragraph and _SETEXT_UNDERLINE.match(line):
            blocks.append(_Block("heading", _md_inline(" ".join(paragraph)), 1 if "=" in line else 2))
            paragraph.clear()
        elif not stripped or _RULE.match(line) or _LINK_DEFINITION.match(line):
            end_paragraph()
            blocks.append(_Block("break", ""))
            in_item = False
        elif heading:
            end_paragraph()
            text = _md_inline(_HEADING_ID.sub("", heading.group(2) or ""))
            blocks.append(_Block("heading", text, len(heading.group(1))))
            in_item = False
        elif "|" in stripped and index < len(lines) and _is_table_separator(lines[index]):
            end_paragraph()
            index += 1
            rows = [stripped]
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                rows.append(_QUOTE.sub("", lines[index]).strip())
                index += 1
            blocks.extend(
                [_Block("break", ""), *(_Block("line", _table_row(row)) for row in rows), _Block("break", "")]
            )
            in_item = False
        elif item:
            end_paragraph()
            blocks.append(_Block("line", "- " + _md_inline(item.group(1))))
            in_item = True
        elif in_item:
            blocks[-1] = _Block("line", blocks[-1].text + " " + _md_inline(stripped))
        else:
            paragraph.append(stripped)
    end_paragraph()
    return blocks


def _is_table_separator(line: str) -> bool:
    cells = _QUOTE.sub("", line).strip().strip("|").split("|")
    return "-" in line and "|" in line and all(re.fullmatch(r"\s*:?-+:?\s*", cell) for cell in cells)


def _table_row(row: str) -> str:
    """'| a | `x|y` |' -> 'a | x|y': pipes inside code spans or escaped do not split cells."""
    guarded = re.sub(r"`[^`]*`|\\\|", lambda m: m.group(0).replace("|", "\ue000"), row.strip().strip("|"))
    cells = [_md_inline(cell.strip().replace("\ue000", "|")) for cell in guarded.split("|")]
    while cells and not cells[-1]:
        cells.pop()
    return " | ".join(cells)


def _md_inline(text: str) -> str:
    """Strip inline Markdown: images dropped, links to their text, emphasis and code markers removed."""
    text = _ESCAPE.sub(lambda m: chr(0xF0000 + ord(m.group(1))), text)
    text = _LINKS.sub(lambda m: m.group("code") or m.group("text") or m.group("url") or "", text)
    pieces: list[str] = []
    position = 0
    for span in re.finditer(_CODE_SPAN, text):
        pieces.append(_md_emphasis(text[position : span.start()]))
        pieces.append(span.group(0).strip("`").strip())
        position = span.end()
    pieces.append(_md_emphasis(text[position:]))
    return _ESCAPED.sub(lambda m: chr(ord(m.group(0)) - 0xF0000), "".join(pieces))


def _md_emphasis(text: str) -> str:
    for emphasis in _EMPHASIS:
        text = _strip_markers(text, emphasis)
    return html.unescape(text)


def _strip_markers(text: str, emphasis: _Emphasis) -> str:
    """Replace each delimited span by its content (see _Emphasis), left to right like re.sub."""
    closings: dict[str, list[int]] = {}  # marker -> every offset where a closing marker may start
    line_ends = [match.start() for match in re.finditer("\n", text)]
    pieces: list[str] = []
    position = 0  # text before this is in pieces
    search_from = 0
    while match := emphasis.opening.search(text, search_from):
        marker = match.group(1)
        if marker not in closings:
            closing = re.compile(emphasis.closing.format(re.escape(marker)))
            closings[marker] = [found.start() for found in closing.finditer(text)]
        candidates = closings[marker]
        index = bisect.bisect_left(candidates, match.end() + 1)  # the content is at least one character
        line = bisect.bisect_left(line_ends, match.end())
        line_end = line_ends[line] if line < len(line_ends) else len(text)
        if index == len(candidates) or candidates[index] > line_end:
            search_from = match.start() + 1
            continue
        end = candidates[index]
        pieces.extend((text[position : match.start()], text[match.end() : end]))
        position = search_from = end + len(marker)
    pieces.append(text[position:])
    return "".join(pieces)


# ---------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------

_LONG_LINE = 150  # a line this long is a whole paragraph, not hard-wrapped text
_TXT_BULLET = re.compile(r"^\s*[-*•·‣◦▪●–]\s+(\S.*)$")
_TXT_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+\S")


def _load_text(raw: bytes, fallback_title: str) -> _Parsed:
    groups = _text_groups(_decode_text(raw))
    title = fallback_title
    first = groups[0][0].strip()
    first_is_title = len(first) < 90 and not first.endswith(".") and not _TXT_BULLET.match(first)
    if first_is_title and len(groups[0]) == 1 and len(groups) > 1:
        title = _squash(first)
        groups = groups[1:]
    blocks: list[_Block] = []
    for index, group in enumerate(groups):
        following = groups[index + 1] if index + 1 < len(groups) else None
        if _is_text_heading(group) and following is not None and not _is_text_heading(following):
            blocks.append(_Block("heading", group[0].strip().rstrip(":"), 1))
        else:
            blocks.extend([*_text_paragraphs(group), _Block("break", "")])
    return _Parsed(title, blocks)


def _text_groups(text: str) -> list[list[str]]:
    """Blank-line separated groups of lines; a heading-like line glued to a long line is split off."""
    groups: list[list[str]] = []
    for chunk in re.split(r"\n[ \t]*\n", text):
        lines = [line.rstrip() for line in chunk.split("\n") if line.strip()]
        if len(lines) > 1 and _is_text_heading(lines[:1]) and len(lines[1].strip()) > _LONG_LINE:
            groups.extend([[lines[0].strip()], lines[1:]])
        elif lines:
            groups.append(lines)
    return groups


def _is_text_heading(group: list[str]) -> bool:
    """A lone short line without closing punctuation, e.g. 'Average Salary' or 'What Is It?'."""
    if len(group) != 1:
        return False
    line = group[0].strip()
    return (
        len(line) < 80
        and not line.endswith((".", ",", ";"))
        and any(char.isalpha() for char in line)
        and not _TXT_BULLET.match(line)
        and not _TXT_NUMBERED.match(line)
    )


def _text_paragraphs(lines: list[str]) -> list[_Block]:
    """Hard-wrapped lines join into one paragraph; long lines stand alone; bullets become '- ' lines."""
    blocks: list[_Block] = []
    prose: list[str] = []

    def end_prose() -> None:
        if prose:
            blocks.append(_Block("paragraph", " ".join(prose)))
            prose.clear()

    for line in lines:
        bullet = _TXT_BULLET.match(line)
        if bullet or _TXT_NUMBERED.match(line):
            end_prose()
            blocks.append(_Block("line", "- " + bullet.group(1) if bullet else line.strip()))
        elif blocks and blocks[-1].kind == "line" and not prose and line[:1].isspace():
            blocks[-1] = _Block("line", blocks[-1].text + " " + line.strip())
        else:
            prose.append(line.strip())
            if len(line.strip()) > _LONG_LINE:
                end_prose()
    end_prose()
    return blocks


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

# fmt: off
_HTML_DROP = ("script", "style", "nav", "header", "footer", "aside", "noscript", "form", "svg", "template",
              "iframe")
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset({
    "address", "article", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "hr", "html", "main", "ol", "p", "section", "summary", "table", "tbody", "tfoot",
    "thead", "ul",
})
# fmt: on
_HTML_SKIPPED_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)


def _load_html(raw: bytes, fallback_title: str) -> _Parsed:
    soup = BeautifulSoup(_decode_text(raw), "lxml")
    first_h1 = soup.find("h1")
    title = _squash(soup.title.get_text(" ")) if soup.title else ""
    title = title or (_squash(first_h1.get_text(" ")) if first_h1 else "") or fallback_title
    for tag in soup.find_all(["head", "title", *_HTML_DROP]):
        tag.decompose()
    blocks: list[_Block] = []
    inline: list[str] = []
    _html_walk(soup.body or soup, blocks, inline)
    _end_inline(blocks, inline)
    return _Parsed(title, blocks)


class _Step(Enum):
    """What _html_walk does after an element's children, queued behind them."""

    END_INLINE = "end the running paragraph"
    BREAK = "end a run of list or table lines"


def _html_walk(node: Tag, blocks: list[_Block], inline: list[str]) -> None:
    """Append node's content to blocks in document order; inline collects running paragraph text.

    Depth-first with an explicit stack, not recursion: a page nested thousands of elements deep
    (which lxml builds without complaint) must not hit Python's recursion limit.
    """
    pending: list[Iterator[PageElement | _Step]] = [iter(node.children)]
    moved: set[int] = set()  # ids of the lists read after their item's line instead of where they stand
    while pending:
        child = next(pending[-1], None)
        if child is None:
            pending.pop()
            continue
        if child is _Step.END_INLINE:
            _end_inline(blocks, inline)
            continue
        if child is _Step.BREAK:
            blocks.append(_Block("break", ""))
            continue
        if isinstance(child, _HTML_SKIPPED_STRINGS):
            continue
        if isinstance(child, NavigableString):
            inline.append(str(child))
            continue
        if not isinstance(child, Tag) or id(child) in moved:
            continue
        name = child.name.lower()
        if name in _HTML_HEADINGS:
            _end_inline(blocks, inline)
            blocks.append(_Block("heading", _text_without(child, moved), int(name[1])))
        elif name == "li":
            _end_inline(blocks, inline)
            nested = _own_lists(child)  # its sublists: read after its line, each as a run of lines
            moved.update(id(sub) for sub in nested)
            blocks.append(_Block("line", "- " + _text_without(child, moved)))
            pending.append(itertools.chain.from_iterable((*sub.children, _Step.END_INLINE) for sub in nested))
        elif name == "tr":
            _end_inline(blocks, inline)
            cells = child.find_all(["td", "th"], recursive=False)
            blocks.append(_Block("line", " | ".join(_squash(_text_without(cell, moved)) for cell in cells)))
        elif name == "pre":
            _end_inline(blocks, inline)
            blocks.append(_Block("code", _text_without(child, moved, "")))
        elif name == "br":
            inline.append(" ")
        elif name in _HTML_BLOCKS:
            _end_inline(blocks, inline)
            after = (
                (_Step.END_INLINE, _Step.BREAK)
                if name in ("ul", "ol", "dl", "table")
                else (_Step.END_INLINE,)
            )
            pending.append(itertools.chain(child.children, after))
        else:
            pending.append(iter(child.children))


def _own_lists(item: Tag) -> list[Tag]:
    """The ul/ol elements inside a list item whose nearest li is this item, in document order.

    What [sub for sub in item.find_all(["ul", "ol"]) if sub.find_parent("li") is item] gives, but
    without looking inside deeper items: on lists nested thousands deep that costs linear time, not
    quadratic (79 s for 92 KB of them).
    """
    found: list[Tag] = []
    pending: list[Iterator[PageElement]] = [iter(item.children)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
        elif isinstance(node, Tag) and node.name != "li":
            if node.name in ("ul", "ol"):
                found.append(node)
            pending.append(iter(node.children))
    return found


def _text_without(node: Tag, left_out: set[int], separator: str = " ") -> str:
    """node.get_text(separator) without the elements whose ids are in left_out, and without
    changing the tree (extracting a deeply nested list costs time in proportion to its depth)."""
    types = node.interesting_string_types or Tag.MAIN_CONTENT_STRING_TYPES  # what get_text reads
    parts: list[str] = []
    pending: list[Iterator[PageElement]] = [iter(node.children)]
    while pending:
        child = next(pending[-1], None)
        if child is None:
            pending.pop()
        elif isinstance(child, Tag):
            if id(child) not in left_out:
                pending.append(iter(child.children))
        elif isinstance(child, NavigableString) and type(child) in types:
            parts.append(child)
    return separator.join(parts)


def _end_inline(blocks: list[_Block], inline: list[str]) -> None:
    if inline:
        blocks.append(_Block("paragraph", " ".join(inline)))
        inline.clear()


# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------


def _load_pdf(raw: bytes, fallback_title: str) -> _Parsed:
    pypdf_logger = logging.getLogger("pypdf")
    previous_level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)  # its repair warnings would only add noise to the skip reason
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and _pdf_still_locked(reader):
            raise _Unusable("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = _squash(str(reader.metadata.title or "")) if reader.metadata else ""
    except _Unusable:
        raise
    except Exception as exc:  # pypdf raises many exception types for damaged files
        raise _Unusable(f"unreadable PDF: {_short_error(exc)}") from exc
    finally:
        pypdf_logger.setLevel(previous_level)
    blocks: list[_Block] = []
    for page in pages:
        for part in re.split(r"\n\s*\n", page.replace("\x00", "")):
            lines = [line for raw_line in part.split("\n") if (line := _squash(raw_line))]
            if lines:
                blocks.append(_Block("code", "\n".join(lines)))  # "code" keeps the PDF's own line breaks
    if not blocks:
        raise _Unusable("PDF has no extractable text (scanned?)")
    return _Parsed(title or fallback_title, blocks)


def _pdf_still_locked(reader: PdfReader) -> bool:
    """Try the empty user password that many 'protected' PDFs use."""
    try:
        return reader.decrypt("") == PasswordType.NOT_DECRYPTED
    except Exception:  # noqa: BLE001 - e.g. a missing crypto dependency for AES
        return True


# ---------------------------------------------------------------------------
# Word (.docx)
# ---------------------------------------------------------------------------


def _load_docx(raw: bytes, fallback_title: str) -> _Parsed:
    try:
        document = docx.Document(io.BytesIO(raw))
        core_title = _squash(document.core_properties.title or "")
        style_title, blocks = _docx_blocks(document)
    except Exception as exc:  # python-docx, zipfile and lxml raise many kinds
        raise _Unusable(f"unreadable Word document: {_short_error(exc)}") from exc
    first_h1 = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), "")
    return _Parsed(style_title or core_title or _squash(first_h1) or fallback_title, blocks)


def _docx_blocks(document: DocxDocument) -> tuple[str, list[_Block]]:
    """The text of a Word body in order, and the first 'Title'-style paragraph if any."""
    title = ""
    blocks: list[_Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = (" | ".join(_squash(cell.text) for cell in row.cells) for row in item.rows)
            blocks.extend([_Block("break", ""), *(_Block("line", row) for row in rows), _Block("break", "")])
            continue
        style = (item.style.name if item.style is not None else None) or ""
        level = _docx_heading_level(style)
        if not item.text.strip():
            continue
        if style == "Title":
            title = title or _squash(item.text)
        elif level:
            blocks.append(_Block("heading", item.text, level))
        elif style.startswith("List"):
            blocks.append(_Block("line", "- " + item.text))
        else:
            blocks.append(_Block("paragraph", item.text))
    return title, blocks


def _docx_heading_level(style: str) -> int:
    match = re.fullmatch(r"Heading\s*(\d?)", style)
    return int(match.group(1) or 1) if match else 0


_LOADERS: dict[str, Callable[[bytes, str], _Parsed]] = {
    ".md": _load_markdown,
    ".mdx": _load_markdown,
    ".markdown": _load_markdown,
    ".txt": _load_text,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}
