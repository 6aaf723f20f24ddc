"""Chunking: passages follow headings and sentences and never overflow the model's window."""

from __future__ import annotations

import itertools

import pytest

from index.chunking import chunk_document, embedding_text, is_prose, split_sentences
from index.embedding import TokenCounter, resolve_model
from index.types import Document, Section


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(resolve_model(None))


def _doc(*sections: Section) -> Document:
    return Document(source="role.md", title="Staff Engineer", sections=sections, content_hash="x")


def test_sentences_survive_abbreviations_and_list_items() -> None:
    text = "A Sr. engineer mentors others, e.g. in code reviews. Pay is about $150,000.\n- Kubernetes\n- Terraform"
    assert split_sentences(text) == [
        "A Sr. engineer mentors others, e.g. in code reviews.",
        "Pay is about $150,000.",
        "- Kubernetes",
        "- Terraform",
    ]


def test_a_paragraph_after_a_list_starts_its_own_line(counter: TokenCounter) -> None:
    # The passage text is what people read: a sentence glued onto the last bullet reads as part of it.
    text = (
        "Typical duties:\n- Running Kubernetes.\n- Capacity planning. It includes cost.\n\n"
        "On-call is part of the job. It pays\nextra.\n\nRotations last a week."
    )
    (passage,) = chunk_document(_doc(Section(("Duties",), text)), counter.count, max_tokens=256)
    assert passage.text.splitlines() == [
        "Typical duties:",
        "- Running Kubernetes.",
        "- Capacity planning. It includes cost.",
        "On-call is part of the job. It pays extra.",
        "Rotations last a week.",
    ]
    assert split_sentences(passage.text) == split_sentences(text)  # the highlight's sentences are unchanged


def test_passages_follow_headings_and_carry_the_trail(counter: TokenCounter) -> None:
    doc = _doc(
        Section(("Pay",), "Staff engineers earn more than senior engineers."),
        Section(("Pay", "Europe"), "In Berlin the figure is lower."),
    )
    passages = chunk_document(doc, counter.count, max_tokens=256)
    assert [p.section for p in passages] == ["Staff Engineer > Pay", "Staff Engineer > Pay > Europe"]
    assert embedding_text(passages[1]).startswith("Staff Engineer > Pay > Europe: In Berlin")


def test_long_single_paragraph_is_split_within_the_window_with_overlap(counter: TokenCounter) -> None:
    sentences = [
        f"Sentence {i} explains how a staff engineer guides the architecture of system number {i} across teams."
        for i in range(60)
    ]
    doc = _doc(Section((), " ".join(sentences)))
    passages = chunk_document(doc, counter.count, max_tokens=256)
    assert len(passages) > 3
    for passage in passages:
        assert counter.count(embedding_text(passage)) <= 256
    for first, second in itertools.pairwise(passages):
        assert split_sentences(first.text)[-1] == split_sentences(second.text)[0]
    covered = {s for p in passages for s in split_sentences(p.text)}
    assert covered == set(sentences)


def test_an_overlong_sentence_is_cut_rather_than_truncated_by_the_model(counter: TokenCounter) -> None:
    run_on = " ".join(f"word{i}" for i in range(900))
    passages = chunk_document(_doc(Section(("Notes",), run_on)), counter.count, max_tokens=256)
    assert all(counter.count(embedding_text(p)) <= 256 for p in passages)
    assert " ".join(p.text for p in passages).split()[-1] == "word899"


def test_a_huge_one_line_document_is_measured_once_per_distinct_word_and_run(counter: TokenCounter) -> None:
    # A 5 MB one-line text took minutes to chunk: every run was measured again at each word it took in.
    # Counting the tokenizer's calls (not timing them) shows the work is linear, and the runs still fit.
    words = [f"term{i % 500}" for i in range(60_000)]
    calls: list[int] = []

    def counted(text: str) -> int:
        calls.append(len(text))
        return counter.count(text)

    passages = chunk_document(_doc(Section(("Notes",), " ".join(words))), counted, max_tokens=256)
    assert all(counter.count(embedding_text(p)) <= 256 for p in passages)
    assert " ".join(p.text for p in passages).split()[-1] == "term499" and len(passages) > 300
    assert len(calls) < 500 * 2 + 4 * len(passages) + 10  # distinct words, then a few per run and window


def test_chinese_text_is_split_at_its_full_stops_and_never_overflows_the_window(
    counter: TokenCounter,
) -> None:
    # Without spaces or ". " a Chinese paragraph was one passage of 2,600 word pieces: the model read a tenth.
    sentence = "高级工程师负责系统设计并指导团队成员完成复杂的项目。"
    assert split_sentences(sentence * 2 + "薪资很高") == [sentence, sentence, "薪资很高"]
    unbroken = "工程师" * 900  # no full stop at all
    passages = chunk_document(
        _doc(Section(("Notes",), sentence * 100 + unbroken)), counter.count, max_tokens=256
    )
    assert all(counter.count(embedding_text(p)) <= 256 for p in passages)
    assert "".join(p.text for p in passages).count("工程师") >= 900


def test_a_word_the_model_cannot_read_is_left_out_of_the_passage(counter: TokenCounter) -> None:
    # A base64 blob or minified line is one [UNK] to the model, and pages of noise to the reader.
    blob = "QUJD" * 100_000
    (passage,) = chunk_document(
        _doc(Section(("Setup",), f"Install the key below. {blob} Then restart the service.")),
        counter.count,
        256,
    )
    assert passage.text == "Install the key below.\n… Then restart the service." or passage.text == (
        "Install the key below. … Then restart the service."
    )


@pytest.mark.parametrize(
    ("sentence", "prose"),
    [
        ("Senior engineers mentor others and lead design reviews.", True),
        ("L5 | $355,000 | Senior", True),  # a Markdown table row answers a pay question
        ("Use f(x) when the input is sorted, as in the example above.", True),
        ("purchase quantity        price per unit", False),  # columns aligned with spaces
        ("name\tvalue", False),
        ("const total = items.length;", False),
        ("def solve(nums):", False),
        ("return merge(left, right)", False),
        ("seen = set()", False),
        ("quantity\u00a0\u00a0\u00a0\u00a0price per unit", False),  # non-breaking spaces align columns too
    ],
)
def test_prose_is_told_from_code_lines_and_aligned_columns(sentence: str, prose: bool) -> None:
    assert is_prose(sentence) is prose
