"""Turn knowledge files (Markdown/MDX, text, HTML, PDF, Word) into plain-text Documents."""

from __future__ import annotations

import codecs
import hashlib
import html
import io
import logging
import os
import re
import stat
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import docx
import yaml
from bs4 import BeautifulSoup
from bs4.element import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
from docx.document import Document as DocxDocument
from docx.table import Table
from pypdf import PasswordType, PdfReader

from index.errors import KnowledgeFolderError
from index.types import Document, Section, SkippedFile

_SUFFIX_ORDER = (".md", ".mdx", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx")
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_SUFFIX_ORDER)
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def iter_candidate_files(root: Path) -> list[Path]:
    """Every regular, non-hidden file under root (recursively), sorted."""
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
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            candidate = Path(dirpath) / name
            if not name.startswith(".") and candidate.is_file():
                found.append(candidate)
    return sorted(found)


def load_file(path: Path, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Document | SkippedFile:
    """Load one file; a file that cannot be used comes back as a SkippedFile, never an exception.

    `path` must lie under `root` (a ValueError otherwise is a caller bug, not a bad file).
    """
    source = path.relative_to(root).as_posix()
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        return SkippedFile(source, _unsupported_reason(suffix))
    try:
        raw = _read_bytes(path, max_bytes)
        parsed = loader(raw, _prettify_stem(path.stem))
    except _Unusable as exc:
        return SkippedFile(source, exc.reason)
    sections = _build_sections(parsed.title, parsed.blocks)
    if not sections:
        return SkippedFile(source, "no text after removing markup")
    return Document(
        source=source,
        title=parsed.title,
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


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    too_big = "larger than the {limit} limit ({size})"
    try:
        size = path.stat().st_size
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


def _squash(text: str) -> str:
    """Collapse all whitespace (including non-breaking spaces) to single spaces."""
    return " ".join(text.replace("\u200b", "").split())


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
            code = "\n".join(line.rstrip() for line in block.text.replace("\xa0", " ").split("\n"))
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

_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|$)", re.DOTALL)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_CODE_SPAN = r"(?P<ticks>`+)[^\n]*?(?<!`)(?P=ticks)(?!`)"
_ATTRS = r"""(?:(?:(?!\n[ \t]*\n)[^<>{}"'])|"[^"]*"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\})*"""
_TAG = re.compile(rf"(?P<code>{_CODE_SPAN})|</?(?P<name>[A-Za-z][\w.:-]*)(?:\s{_ATTRS})?/?>")
_DROPPED_ELEMENT = re.compile(
    rf"(?P<code>{_CODE_SPAN})|<(?P<name>head|script|style|iframe|svg|noscript|template)\b{_ATTRS}>"
    r".*?</(?P=name)\s*>",
    re.DOTALL | re.IGNORECASE,
)
_INLINE_TAGS = frozenset(
    {"a", "abbr", "b", "code", "em", "i", "kbd", "mark", "s", "small", "span", "strong", "sub", "u"}
)
_SUP = re.compile(r"<sup>([^<]*)</sup>", re.IGNORECASE)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
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
_LINK_TARGET = r"(?:\((?:[^()]|\([^()]*\))*\)|\[[^\]]*\])"  # (url "title") or [ref]
_LINKS = re.compile(
    rf"(?P<code>{_CODE_SPAN})|(?P<image>!\[[^\]]*\]{_LINK_TARGET})"
    rf"|\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])+)\]{_LINK_TARGET}|<(?P<url>(?:https?|ftp|mailto):[^>\s]+)>"
)
_EMPHASIS = (
    re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"),
    re.compile(r"(?<![\w*\\])\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*(?![\w*])"),
    re.compile(r"(?<![\w\\])_(?=\S)(.+?)(?<=[^\s\\])_(?!\w)"),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"),
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ESCAPED = re.compile("[\U000f0000-\U000f007f]")  # private-use stand-ins for escaped punctuation


def _load_markdown(raw: bytes, fallback_title: str) -> _Parsed:
    front, body = _split_front_matter(_decode_text(raw))
    blocks: list[_Block] = []
    for is_code, chunk in _split_fences(body):
        blocks.extend([_Block("code", chunk)] if is_code else _markdown_blocks(_clean_mdx(chunk)))
    first_h1 = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), "")
    title = _squash(str(front.get("title") or "")) or _squash(first_h1) or fallback_title
    metadata = {
        key: text
        for key, value in front.items()
        if key not in ("title", "aliases") and (text := _scalar_text(value))
    }
    return _Parsed(title, blocks, _aliases(front.get("aliases")), metadata)


def _split_front_matter(text: str) -> tuple[dict[str, object], str]:
    """Separate a leading `---` YAML block; a malformed one is dropped without metadata."""
    match = _FRONT_MATTER.match(text)
    if not match or not re.match(r"\s*[\w-]+\s*:", match.group(1) or ""):
        return {}, text
    body = text[match.end() :]
    try:
        data = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        return {}, body
    if not isinstance(data, dict):
        return {}, body
    return {str(key): value for key, value in data.items()}, body


def _scalar_text(value: object) -> str:
    """Front-matter value as a plain string; lists are comma-joined, mappings are ignored."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(text for item in value if (text := _scalar_text(item)))
    if value is None or isinstance(value, dict):
        return ""
    return _squash(str(value))


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
    text = _MDX_COMMENT.sub("", text)
    text = _HTML_COMMENT.sub("", text)
    text = _DROPPED_ELEMENT.sub(lambda m: m.group("code") or "", text)
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
    for pattern in _EMPHASIS:
        text = pattern.sub(lambda m: m.group(m.lastindex or 0), text)
    return html.unescape(text)


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
    soup = BeautifulSoup(_decode_text(raw), "html.parser")
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


def _html_walk(node: Tag, blocks: list[_Block], inline: list[str]) -> None:
    """Append node's content to blocks in document order; inline collects running paragraph text."""

    def end_inline() -> None:
        _end_inline(blocks, inline)

    for child in node.children:
        if isinstance(child, _HTML_SKIPPED_STRINGS):
            continue
        if isinstance(child, NavigableString):
            inline.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _HTML_HEADINGS:
            end_inline()
            blocks.append(_Block("heading", child.get_text(" "), int(name[1])))
        elif name == "li":
            end_inline()
            nested = [sub for sub in child.find_all(["ul", "ol"]) if sub.find_parent("li") is child]
            for sub in nested:
                sub.extract()
            blocks.append(_Block("line", "- " + child.get_text(" ")))
            for sub in nested:
                _html_walk(sub, blocks, inline)
                end_inline()
        elif name == "tr":
            end_inline()
            cells = [_squash(cell.get_text(" ")) for cell in child.find_all(["td", "th"], recursive=False)]
            blocks.append(_Block("line", " | ".join(cells)))
        elif name == "pre":
            end_inline()
            blocks.append(_Block("code", child.get_text()))
        elif name == "br":
            inline.append(" ")
        elif name in _HTML_BLOCKS:
            end_inline()
            _html_walk(child, blocks, inline)
            end_inline()
            if name in ("ul", "ol", "dl", "table"):
                blocks.append(_Block("break", ""))
        else:
            _html_walk(child, blocks, inline)


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
