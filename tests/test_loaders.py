"""Loaders: every format becomes title + heading-trailed plain text; every bad file becomes a reason."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
from pathlib import Path

import docx
import pytest
from pypdf import PdfWriter

from index.errors import KnowledgeFolderError
from index.loaders import DEFAULT_MAX_BYTES, SUPPORTED_SUFFIXES, iter_candidate_files, load_file
from index.search import SearchIndex
from index.types import Document, Section, SkippedFile
from tests.conftest import rolecall_bound_by_file_modes


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load(root: Path, name: str, content: str | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    result = load_file(write(root, name, content), root, max_bytes)
    assert isinstance(result, Document), result
    return result


def skip_reason(root: Path, name: str, content: str | bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    result = load_file(write(root, name, content), root, max_bytes)
    assert isinstance(result, SkippedFile), result
    assert result.source == name
    assert "\n" not in result.reason
    return result.reason


def section(doc: Document, *trail: str) -> str:
    matches = [s.text for s in doc.sections if s.heading_trail == trail]
    assert matches, f"no section {trail!r} in {[s.heading_trail for s in doc.sections]}"
    return "\n\n".join(matches)


def all_text(doc: Document) -> str:
    return "\n\n".join(s.text for s in doc.sections)


def minimal_pdf(text: str, title: str | None = None) -> bytes:
    """A valid one-page PDF with a Helvetica text line, xref offsets computed by hand."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    info = f"<< /Title ({title}) >>".encode() if title else b"<< >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def blank_pdf(password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    if password:
        writer.encrypt(password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- Markdown -------------------------------------------------------------------------------------

ROLE_MD = """\
---
title: Senior Back-End Engineer
aliases: [Senior Backend Engineer, Sr. Back-End Engineer]
level: senior
family: back-end
tags: [career, backend]
---

# Senior Back-End Engineer

Builds the **server side** of products, see [the guide](https://example.com/guide) and `api.py`.
![diagram](img/diagram.png)

## Pay

### United States

Around $120,000 a year.

## Skills

* Python
- Go
1. SQL

| Skill | Level |
|-------|:-----:|
| Python | Expert |
| Go | Good |

```python
def hello():
    return "hi"
```

## Empty

## After empty
Text after an empty heading.
"""


def test_markdown_front_matter_gives_title_aliases_and_string_metadata(tmp_path: Path) -> None:
    doc = load(tmp_path, "senior-back-end-engineer.md", ROLE_MD)
    assert doc.title == "Senior Back-End Engineer"
    assert doc.aliases == ("Senior Backend Engineer", "Sr. Back-End Engineer")
    assert doc.metadata == {"level": "senior", "family": "back-end", "tags": "career, backend"}
    assert doc.source == "senior-back-end-engineer.md"


def test_markdown_headings_build_the_trail_without_repeating_the_title(tmp_path: Path) -> None:
    doc = load(tmp_path, "role.md", ROLE_MD)
    trails = [s.heading_trail for s in doc.sections]
    assert trails == [(), ("Pay", "United States"), ("Skills",), ("After empty",)]
    assert section(doc, "Pay", "United States") == "Around $120,000 a year."
    assert not any("Empty" in trail for trail in trails)


def test_markdown_inline_markup_lists_tables_and_code_become_plain_text(tmp_path: Path) -> None:
    doc = load(tmp_path, "role.md", ROLE_MD)
    assert section(doc) == "Builds the server side of products, see the guide and api.py."
    skills = section(doc, "Skills")
    assert "- Python\n- Go\n- SQL" in skills
    assert "Skill | Level\nPython | Expert\nGo | Good" in skills
    assert "---" not in skills and "|-" not in skills
    assert 'def hello():\n    return "hi"' in skills
    assert "```" not in all_text(doc) and "diagram" not in all_text(doc)
    assert all("\n\n\n" not in s.text and s.text == s.text.strip() for s in doc.sections)


def test_markdown_title_falls_back_to_h1_then_to_the_prettified_stem(tmp_path: Path) -> None:
    with_h1 = load(tmp_path, "a.md", "# Staff Engineer\n\nLeads across teams.\n")
    assert with_h1.title == "Staff Engineer"
    assert with_h1.sections == (Section((), "Leads across teams."),)
    no_heading = load(tmp_path, "senior-back-end-engineer.md", "Just text.\n")
    assert no_heading.title == "Senior Back End Engineer"


def test_markdown_h1_different_from_the_title_stays_in_the_trail(tmp_path: Path) -> None:
    doc = load(tmp_path, "a.md", "---\ntitle: Role\n---\n# Overview\nText.\n## Detail\nMore.\n")
    assert [s.heading_trail for s in doc.sections] == [("Overview",), ("Overview", "Detail")]


def test_malformed_front_matter_is_ignored_not_fatal(tmp_path: Path) -> None:
    doc = load(tmp_path, "data-engineer.md", "---\ntitle: [unclosed\naliases: {\n---\nBody text here.\n")
    assert doc.title == "Data Engineer"
    assert doc.metadata == {} and doc.aliases == ()
    assert all_text(doc) == "Body text here."


def test_aliases_may_be_a_comma_separated_string(tmp_path: Path) -> None:
    doc = load(
        tmp_path, "a.md", "---\ntitle: SRE\naliases: Site Reliability Engineer, SRE Lead\n---\nText.\n"
    )
    assert doc.aliases == ("Site Reliability Engineer", "SRE Lead")


MDX = """\
---
title: Interview Tips
---

import Tabs from '@theme/Tabs';
import TabItem from '@theme/TabItem';
export const meta = {
  draft: true,
};

<head>
  <meta property="og:image" content="https://example.com/x.png" />
  <title>Ignored head title</title>
</head>

<!-- an HTML comment that must vanish -->
{/* an MDX comment that must vanish */}

<Tabs>
<TabItem value="a">Prepare stories about conflict.</TabItem>
<TabItem value="b">
Practice out loud.
</TabItem>
</Tabs>

:::tip Expert tip

Ask clarifying questions.

:::

<div className="center"><img alt="a chart" src={ChartURL} /><figcaption>Salary chart</figcaption></div>

<InDocAd />

Complexity is O(n<sup>2</sup>), not `<Tabs>` magic.

```js
import x from 'y';
```
"""


def test_mdx_imports_components_and_comments_are_dropped_but_text_is_kept(tmp_path: Path) -> None:
    doc = load(tmp_path, "tips.mdx", MDX)
    text = all_text(doc)
    for kept in (
        "Prepare stories about conflict.",
        "Practice out loud.",
        "Ask clarifying questions.",
        "Salary chart",
        "Complexity is O(n^2), not <Tabs> magic.",
        "import x from 'y';",  # inside a code fence: code, kept
    ):
        assert kept in text
    for gone in (
        "import Tabs",
        "export",
        "draft",
        "<head",
        "og:image",
        "Ignored head title",
        "comment",
        "{/*",
        "<TabItem",
        "</Tabs>",
        ":::",
        "Expert tip",
        "<img",
        "ChartURL",
        "<div",
        "InDocAd",
    ):
        assert gone not in text
    assert doc.title == "Interview Tips"


def test_mdx_with_only_imports_and_components_is_skipped(tmp_path: Path) -> None:
    reason = skip_reason(
        tmp_path, "only.mdx", "import A from './a';\n\n<A />\n<Tabs>\n</Tabs>\n{/* nothing */}\n"
    )
    assert reason == "no text after removing markup"


def test_utf8_bom_is_fine(tmp_path: Path) -> None:
    doc = load(tmp_path, "bom.md", "\ufeff---\ntitle: With BOM\n---\nHello.\n".encode())
    assert doc.title == "With BOM"
    assert all_text(doc) == "Hello."


# --- Plain text -----------------------------------------------------------------------------------

ROLE_TXT = """\
Senior back-end software engineer jobs & Careers



What is a Senior Back-End Software Engineer Job?

A Senior Back-End Software Engineer develops and maintains the server side. They build APIs.

Top 5 Skills for Position

  \u2022 Expertise in Python
  \u2022 Experience with databases

Average Salary

The average salary is around $120,000 per year.
"""


def test_text_short_standalone_lines_become_headings(tmp_path: Path) -> None:
    doc = load(tmp_path, "role.txt", ROLE_TXT)
    assert doc.title == "Senior back-end software engineer jobs & Careers"
    assert [s.heading_trail for s in doc.sections] == [
        ("What is a Senior Back-End Software Engineer Job?",),
        ("Top 5 Skills for Position",),
        ("Average Salary",),
    ]
    assert section(doc, "Top 5 Skills for Position") == "- Expertise in Python\n- Experience with databases"
    assert section(doc, "Average Salary") == "The average salary is around $120,000 per year."


def test_text_single_long_paragraph_is_one_section_with_all_its_text(tmp_path: Path) -> None:
    paragraph = " ".join(f"Senior engineers own sentence number {i} of this long text." for i in range(60))
    doc = load(tmp_path, "senior-engineer-jobs.txt", paragraph)
    assert doc.title == "Senior Engineer Jobs"
    assert doc.sections == (Section((), paragraph),)


def test_text_hard_wrapped_lines_join_into_paragraphs(tmp_path: Path) -> None:
    doc = load(
        tmp_path, "notes.txt", "Mentoring is part of the job\nfor every senior engineer.\n\nSecond one.\n"
    )
    assert all_text(doc) == "Mentoring is part of the job for every senior engineer.\n\nSecond one."


# --- HTML -----------------------------------------------------------------------------------------

HTML_PAGE = """\
<!DOCTYPE html>
<html><head><title>Staff Engineer</title><style>body { color: red; }</style>
<script>var tracking = "SECRET_SCRIPT";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/jobs">NAV_LINK</a></nav>
<header>SITE_HEADER</header>
<h1>Staff Engineer</h1>
<p>Staff engineers set <b>technical</b> direction.</p>
<!-- HTML_COMMENT -->
<h2>Pay</h2>
<h3>Europe</h3>
<p>Varies by country.</p>
<h2>Skills</h2>
<ul><li>Architecture</li><li>Mentoring</li></ul>
<table><tr><th>Level</th><th>Scope</th></tr><tr><td>Staff</td><td>Org</td></tr></table>
<pre>line one
  line two</pre>
<footer>FOOTER_TEXT</footer>
</body></html>
"""


def test_html_drops_chrome_and_builds_the_trail(tmp_path: Path) -> None:
    doc = load(tmp_path, "staff.html", HTML_PAGE)
    assert doc.title == "Staff Engineer"
    assert section(doc) == "Staff engineers set technical direction."
    assert section(doc, "Pay", "Europe") == "Varies by country."
    skills = section(doc, "Skills")
    assert "- Architecture\n- Mentoring" in skills
    assert "Level | Scope\nStaff | Org" in skills
    assert "line one\n  line two" in skills
    text = all_text(doc)
    for gone in ("SECRET_SCRIPT", "color", "NAV_LINK", "SITE_HEADER", "FOOTER_TEXT", "HTML_COMMENT", "<"):
        assert gone not in text


def test_html_without_title_uses_the_stem(tmp_path: Path) -> None:
    doc = load(tmp_path, "product-manager.htm", "<p>Owns the roadmap.</p>")
    assert doc.title == "Product Manager"
    assert all_text(doc) == "Owns the roadmap."


# --- PDF ------------------------------------------------------------------------------------------


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    doc = load(tmp_path, "mentoring.pdf", minimal_pdf("Senior engineers mentor others."))
    assert doc.title == "Mentoring"
    assert "Senior engineers mentor others." in all_text(doc)


def test_pdf_title_comes_from_metadata(tmp_path: Path) -> None:
    doc = load(tmp_path, "x.pdf", minimal_pdf("Body text.", title="Engineering Ladder"))
    assert doc.title == "Engineering Ladder"


# --- Word -----------------------------------------------------------------------------------------


def test_docx_headings_paragraphs_lists_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Engineering Manager", style="Title")
    document.add_heading("Responsibilities", level=1)
    document.add_paragraph("Managers grow their team.")
    document.add_paragraph("Run one-on-ones", style="List Bullet")
    document.add_heading("Hiring", level=2)
    document.add_paragraph("Managers own the hiring loop.")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("Level", "Reports"), ("M1", "5-8")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)

    doc = load(tmp_path, "manager.docx", buffer.getvalue())
    assert doc.title == "Engineering Manager"
    assert section(doc, "Responsibilities") == "Managers grow their team.\n\n- Run one-on-ones"
    assert (
        section(doc, "Responsibilities", "Hiring")
        == "Managers own the hiring loop.\n\nLevel | Reports\nM1 | 5-8"
    )


def test_docx_title_falls_back_to_first_heading_1_not_repeated_in_trail(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Data Scientist", level=1)
    document.add_paragraph("Builds models.")
    buffer = io.BytesIO()
    document.save(buffer)
    doc = load(tmp_path, "ds.docx", buffer.getvalue())
    assert doc.title == "Data Scientist"
    assert doc.sections == (Section((), "Builds models."),)


# --- Bad files ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("binary.md", b"# Title\x00\x01\x02 binary", "binary content (NUL bytes) in a text file"),
        ("empty.md", b"", "empty file"),
        ("blank.txt", b"  \n\t\n   \n", "empty file (only whitespace)"),
        (
            "latin1.txt",
            "Caf\u00e9 r\u00e9sum\u00e9".encode("latin-1"),
            "not UTF-8 text (invalid byte at offset 3)",
        ),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf \x8f\x9c garbage", "unreadable PDF: "),
        ("blank.pdf", blank_pdf(), "PDF has no extractable text (scanned?)"),
        ("locked.pdf", blank_pdf(password="secret"), "encrypted PDF"),
        ("broken.docx", b"PK\x03\x04 not a real zip at all", "unreadable Word document: "),
        ("data.xyz", b"whatever", "unsupported file type '.xyz'"),
        (
            "LICENSE",
            b"MIT License",
            "no file suffix; supported: .md, .mdx, .markdown, .txt, .html, .htm, .pdf, .docx",
        ),
        ("markup.html", b"<html><script>x()</script><nav>menu</nav></html>", "no text after removing markup"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    reason = skip_reason(tmp_path, name, content)
    if expected.endswith(": "):  # the parser's own short message follows
        assert reason.startswith(expected) and len(reason) > len(expected)
    else:
        assert reason == expected


def test_oversize_file_is_skipped_before_being_read(tmp_path: Path) -> None:
    reason = skip_reason(tmp_path, "big.md", "word " * 500, max_bytes=1024)
    assert reason == "larger than the 1 KB limit (2.4 KB)"


def test_default_limit_is_described_in_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(DEFAULT_MAX_BYTES + 5 * 1024 * 1024 + 300 * 1024)  # sparse: no real disk use
    result = load_file(path, tmp_path)
    assert result == SkippedFile("huge.txt", "larger than the 20 MB limit (25.3 MB)")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.md", "# Secret\n\nText.\n")
    path.chmod(0)
    try:
        assert load_file(path, tmp_path) == SkippedFile("secret.md", "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_error_while_reading_is_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "locked.md", "Text.\n")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert load_file(path, tmp_path) == SkippedFile("locked.md", "permission denied")


# --- Hostile files: one file skipped or capped, never a failed or stalled reindex ------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "deep.html",
            "<p>Intro.</p>" + "<div>" * 3000 + "Deep text." + "</div>" * 3000,
            "Intro.\n\nDeep text.",
        ),
        (
            "lists.html",
            "<ul><li>item " * 3000 + "</li></ul>" * 3000 + "<p>Last.</p>",
            "- item\n" * 2999 + "- item",
        ),
        (
            # stray "</ " with no ">": Python's html.parser rescans them, quadratic (18 s for 600 KB)
            "stray-end-tags.html",
            "<p>Intro.</p>" + "</ " * 200_000 + "<p>After.</p>",
            "Intro.\n\nAfter.",
        ),
    ],
)
def test_hostile_html_loads_in_full(tmp_path: Path, name: str, content: str, expected: str) -> None:
    doc = load(tmp_path, name, content)  # was a RecursionError that stopped the whole reindex
    assert all_text(doc).startswith(expected)


@pytest.mark.parametrize(
    "front",
    [
        "tags: " + "[" * 5000,  # nested too deep for the YAML parser (a RecursionError)
        "date: 2024-13-45",  # no such month (a ValueError)
        "date: !!timestamp soon",  # (an AttributeError inside the YAML parser)
    ],
)
def test_front_matter_that_yaml_cannot_read_is_dropped_and_the_body_kept(tmp_path: Path, front: str) -> None:
    doc = load(tmp_path, "data-engineer.md", f"---\ntitle: Ignored\n{front}\n---\nBody text here.\n")
    assert doc.title == "Data Engineer"
    assert doc.metadata == {} and all_text(doc) == "Body text here."


def test_an_unexpected_parser_error_skips_only_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def overflow(*_args: object, **_kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("index.loaders.BeautifulSoup", overflow)
    assert skip_reason(tmp_path, "page.html", "<p>Text.</p>") == "cannot parse: RecursionError"
    assert isinstance(load_file(write(tmp_path, "notes.md", "Text.\n"), tmp_path), Document)

    def interrupt(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("index.loaders.BeautifulSoup", interrupt)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C still stops the reindex
        load_file(tmp_path / "page.html", tmp_path)


def alias_bomb(levels: int) -> str:
    """YAML whose last key names 9**levels items through aliases: `b: &b [*a, *a, ...]` and so on."""
    lines = ["a: &a [" + ",".join(["lol"] * 9) + "]"]
    for previous, name in itertools.pairwise("abcdefghijklmnop"[:levels]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "---\n" + "\n".join(lines) + "\n---\nBody text.\n"


def test_a_yaml_alias_bomb_in_front_matter_is_capped(tmp_path: Path) -> None:
    text = alias_bomb(levels=8)
    assert len(text) < 400  # a few hundred bytes naming 43 million items (215 MB of text flattened)
    doc = load(tmp_path, "bomb.md", text)
    assert all_text(doc) == "Body text."
    assert doc.metadata["a"] == ", ".join(["lol"] * 9)
    assert list(doc.metadata) == list("abcdefgh")
    assert all(900 < len(value) <= 1000 for key, value in doc.metadata.items() if key >= "c")


def test_a_docx_that_unpacks_beyond_the_size_limit_is_skipped(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("x" * 2_000_000)
    buffer = io.BytesIO()
    document.save(buffer)
    assert len(buffer.getvalue()) < 100 * 1024  # small on disk: the limit alone let it through
    reason = skip_reason(tmp_path, "bomb.docx", buffer.getvalue(), max_bytes=1024 * 1024)
    assert re.fullmatch(r"unpacks to 2\.\d MB, over the 1 MB limit", reason), reason


@pytest.mark.parametrize(
    "unclosed",
    ["<script>x\n", "<!-- x\n", "{/* x\n", "**a ", "_a ", "`", "``a`", "!["],
    ids=[
        "script",
        "html-comment",
        "mdx-comment",
        "bold",
        "underscore",
        "backticks",
        "code-span-ticks",
        "image",
    ],
)
def test_many_unclosed_tags_comments_or_emphasis_markers_are_a_normal_file(
    tmp_path: Path, unclosed: str
) -> None:
    # 400 KB of them: each one used to make a regex rescan the rest of the text (minutes in all).
    body = unclosed * (400_000 // len(unclosed))
    doc = load(tmp_path, "notes.md", f"# Notes\n\nFirst paragraph.\n\n{body}\n\nLast paragraph.\n")
    text = all_text(doc)
    assert text.startswith("First paragraph.") and text.endswith("Last paragraph.")


def test_a_line_with_backtick_runs_of_every_length_is_a_normal_file(tmp_path: Path) -> None:
    # `x``x```x… up to 400 KB: each unclosed run used to scan to the end of the line (n^1.5, 14 s)
    runs = "".join("`" * length + "x" for length in range(1, 900))
    doc = load(tmp_path, "notes.md", f"# Notes\n\nFirst `code` here. {runs} Last words.\n")
    assert all_text(doc).startswith("First code here.") and all_text(doc).endswith("Last words.")


# --- Identity: source and hash --------------------------------------------------------------------


def test_source_uses_forward_slashes_and_hash_is_sha256_of_bytes(tmp_path: Path) -> None:
    raw = b"# Role\n\nText.\n"
    doc = load(tmp_path, "roles/engineering/backend.md", raw)
    assert doc.source == "roles/engineering/backend.md"
    assert doc.content_hash == hashlib.sha256(raw).hexdigest()


def test_content_hash_changes_when_bytes_change(tmp_path: Path) -> None:
    first = load(tmp_path, "a.md", "Text one.\n").content_hash
    second = load(tmp_path, "a.md", "Text one!\n").content_hash
    assert first != second


def test_every_supported_suffix_has_a_loader(tmp_path: Path) -> None:
    assert {".md", ".mdx", ".markdown", ".txt", ".html", ".htm", ".pdf", ".docx"} == SUPPORTED_SUFFIXES
    for suffix in (".md", ".mdx", ".markdown", ".txt", ".html", ".htm"):
        assert isinstance(load_file(write(tmp_path, f"x{suffix}", "Plain words."), tmp_path), Document)


# --- Folder scanning ------------------------------------------------------------------------------


def test_iter_candidate_files_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for name in ("b.md", "a/z.txt", "a/b/c.pdf", ".hidden.md", ".git/config", "a/.cache/x.md", "LICENSE"):
        write(tmp_path, name, "x")
    files = iter_candidate_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["LICENSE", "a/b/c.pdf", "a/z.txt", "b.md"]


def test_iter_candidate_files_rejects_a_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(KnowledgeFolderError, match="not found") as error:
        iter_candidate_files(missing)
    assert str(missing) in str(error.value) and "\n" not in str(error.value)


def test_iter_candidate_files_rejects_a_file_given_as_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "file.md", "x")
    with pytest.raises(KnowledgeFolderError, match="not a directory"):
        iter_candidate_files(path)


def test_broken_and_looping_links_are_listed_and_skipped_with_a_reason(tmp_path: Path) -> None:
    write(tmp_path, "role.md", "Text.\n")
    (tmp_path / "alias.md").symlink_to("role.md")  # a working link is a document, as before
    (tmp_path / "moved.md").symlink_to("gone/moved.md")
    (tmp_path / "loop.md").symlink_to("loop.md")
    (tmp_path / "ping.md").symlink_to("pong.md")
    (tmp_path / "pong.md").symlink_to("ping.md")
    files = iter_candidate_files(tmp_path)
    results = {path.relative_to(tmp_path).as_posix(): load_file(path, tmp_path) for path in files}
    assert sorted(results) == ["alias.md", "loop.md", "moved.md", "ping.md", "pong.md", "role.md"]
    assert isinstance(results["role.md"], Document) and isinstance(results["alias.md"], Document)
    assert results["moved.md"] == SkippedFile(
        "moved.md", "broken link (its target gone/moved.md does not exist)"
    )
    for name in ("loop.md", "ping.md", "pong.md"):
        assert results[name] == SkippedFile(name, "link loop (the link leads back to itself)")


def test_a_link_to_a_folder_is_named_with_a_reason_not_dropped_without_a_word(tmp_path: Path) -> None:
    # os.walk does not follow it, so its documents vanished from the index and from the report
    knowledge, elsewhere = tmp_path / "knowledge", tmp_path / "elsewhere"
    write(knowledge, "role.md", "Text.\n")
    write(elsewhere, "tram-engineer.md", "# Tram Engineer\n\nText.\n")
    (knowledge / "outside").symlink_to("../elsewhere", target_is_directory=True)
    (knowledge / "up").symlink_to(knowledge, target_is_directory=True)  # would loop if followed
    files = iter_candidate_files(knowledge)
    results = {path.relative_to(knowledge).as_posix(): load_file(path, knowledge) for path in files}
    assert sorted(results) == ["outside", "role.md", "up"]
    assert results["outside"] == SkippedFile(
        "outside", "link to a folder (../elsewhere), not followed: add that folder as a knowledge folder"
    )
    assert isinstance(results["up"], SkippedFile) and results["up"].reason.startswith("link to a folder")


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_folders_that_cannot_be_read_are_skipped_with_a_reason_and_the_rest_indexed(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    write(knowledge, "role.md", "# Staff Engineer\n\nStaff engineers set technical direction.\n")
    write(knowledge, "locked/secret.md", "# Secret\n\nText.\n")
    write(knowledge, "no-search/notes.md", "# Notes\n\nText.\n")
    unreadable = write(knowledge, "unreadable.md", "# Unreadable\n\nText.\n")
    (knowledge / "locked").chmod(0)
    (knowledge / "no-search").chmod(0o644)  # its names can be listed, its files not looked at
    unreadable.chmod(0)  # test_unreadable_file_is_skipped, which root skips, through the whole command
    try:
        done = rolecall_bound_by_file_modes(
            ["index", "--knowledge", str(knowledge), "--index", str(tmp_path / "idx")]
        )
    finally:
        (knowledge / "locked").chmod(0o755)
        (knowledge / "no-search").chmod(0o755)
        unreadable.chmod(0o644)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "added 1, changed 0, removed 0, unchanged 0, skipped 3;" in done.stdout
    assert "skipped: unreadable.md: permission denied" in done.stdout
    assert "skipped: locked: cannot list folder: permission denied" in done.stdout
    assert "skipped: no-search/notes.md: permission denied" in done.stdout


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_folder_that_cannot_be_listed_any_more_keeps_the_documents_indexed_from_it(tmp_path: Path) -> None:
    # They were removed from the index: a permission slip on a subfolder lost its documents.
    knowledge = tmp_path / "knowledge"
    write(knowledge, "role.md", "# Staff Engineer\n\nStaff engineers set technical direction.\n")
    write(knowledge, "teams/platform.md", "# Platform team\n\nThe platform team runs the build farm.\n")
    write(knowledge, "teams/data.md", "# Data team\n\nThe data team owns the warehouse.\n")
    argv = ["index", "--knowledge", str(knowledge), "--index", str(tmp_path / "idx")]
    assert "added 3," in rolecall_bound_by_file_modes(argv).stdout
    (knowledge / "teams").chmod(0)
    try:
        done = rolecall_bound_by_file_modes(argv)
    finally:
        (knowledge / "teams").chmod(0o755)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "added 0, changed 0, removed 0, unchanged 1, skipped 1;" in done.stdout
    assert (
        "skipped: teams: cannot list folder: permission denied; 2 documents indexed from it before kept"
        in done.stdout
    )
    sources = {p.source for p in SearchIndex.open(tmp_path / "idx").passages}
    assert {"teams/platform.md", "teams/data.md"} <= sources
    # readable again: nothing to re-embed, nothing lost
    assert (
        "added 0, changed 0, removed 0, unchanged 3, skipped 0;" in rolecall_bound_by_file_modes(argv).stdout
    )
