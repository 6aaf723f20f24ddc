"""Passages' token vectors: stored by the build, kept by a reindex, checked on load, and the rerank they drive."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from index import builder, store
from index.builder import build_index
from index.chunking import embedding_text
from index.embedding import SentenceTransformerEmbedder, TokenVectors, resolve_model
from index.errors import IndexCorruptError
from index.retrieval import RERANK_TOP, Ranked, Retriever, _reranked_by_tokens, token_match_scores
from index.search import SearchIndex
from index.types import Passage
from tests.conftest import BUNDLED_KNOWLEDGE, FakeEmbedder, write_docs

DOCS = {
    "negotiation.md": (
        "# Offer negotiation\n\nAlways negotiate the first offer: recruiters expect it and keep room for it.\n\n"
        "## Signing bonus\n\nA signing bonus is paid once when you join; some companies claw it back if you leave"
        " within a year.\n\n## Perks\n\nBesides salary, ask about remote work, a learning budget, extra holidays"
        " and a home-office allowance.\n"
    ),
    "resume.md": (
        "# Resume\n\nKeep a resume to one page for under ten years of experience.\n\n## Awards\n\nList awards that"
        " show impact, such as hackathon wins or scholarships, with one line on why each matters.\n"
    ),
}


def _build(knowledge: Path, index_dir: Path, embedder: object) -> builder.BuildReport:
    spec = resolve_model(None)
    return build_index([knowledge], index_dir, spec, lambda: embedder)  # type: ignore[arg-type, return-value]


def _live_token_vectors(embedder: SentenceTransformerEmbedder, passages: list[Passage]) -> list[TokenVectors]:
    return embedder.embed_documents_with_tokens([embedding_text(p) for p in passages], len(passages))[1]


def test_every_passage_stores_the_token_vectors_the_model_gives_it(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    _build(write_docs(tmp_path / "k", DOCS), tmp_path / "idx", real_embedder)
    opened = SearchIndex.open(tmp_path / "idx")
    assert opened.tokens is not None and len(opened.tokens) == len(opened.passages)
    live = _live_token_vectors(real_embedder, opened.passages)
    for passage_id, expected in enumerate(live):
        stored = opened.tokens.passage(passage_id).astype(np.float32)
        assert stored.shape == expected.shape  # one row per word piece, [CLS] and [SEP] left out
        assert np.min(np.sum(stored * expected.astype(np.float32), axis=1)) > 0.999


def test_a_reindex_of_one_changed_document_keeps_every_passages_own_token_vectors(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    knowledge = write_docs(tmp_path / "k", DOCS)
    _build(knowledge, tmp_path / "idx", real_embedder)
    before = SearchIndex.open(tmp_path / "idx")
    assert before.tokens is not None
    kept = {p: before.tokens.passage(i) for i, p in enumerate(before.passages) if p.source == "resume.md"}
    (knowledge / "negotiation.md").write_text(
        DOCS["negotiation.md"] + "\n## Deadlines\n\nAsk for a week to decide.\n"
    )
    report = _build(knowledge, tmp_path / "idx", real_embedder)
    assert report.changed == ["negotiation.md"] and report.unchanged == ["resume.md"]
    after = SearchIndex.open(tmp_path / "idx")
    assert after.tokens is not None and len(after.tokens) == len(after.passages)
    live = _live_token_vectors(real_embedder, after.passages)
    for passage_id, passage in enumerate(after.passages):
        stored = after.tokens.passage(passage_id)
        if passage in kept:
            assert np.array_equal(stored, kept[passage])  # reused, not re-embedded
        assert np.min(np.sum(stored.astype(np.float32) * live[passage_id].astype(np.float32), axis=1)) > 0.999


def test_past_the_size_limit_no_token_vectors_are_written_and_questions_are_still_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_embedder: SentenceTransformerEmbedder
) -> None:
    monkeypatch.setattr(store, "TOKEN_VECTORS_MAX_PASSAGES", 2)
    _build(write_docs(tmp_path / "k", DOCS), tmp_path / "idx", real_embedder)
    live = store.current_version(tmp_path / "idx")
    assert live is not None and not (live / store.TOKENS_FILE).exists()
    opened = SearchIndex.open(tmp_path / "idx")
    assert opened.tokens is None
    hits = Retriever(opened, real_embedder).retrieve("what perks can I ask for besides salary?", 3)
    assert hits[0].passage.section == "Offer negotiation > Perks"


def test_an_embedder_without_token_outputs_builds_an_index_without_them(
    small_knowledge: Path, tmp_path: Path
) -> None:
    _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    assert SearchIndex.open(tmp_path / "idx").tokens is None


def test_damaged_token_vectors_are_reported_in_one_line(small_knowledge: Path, tmp_path: Path) -> None:
    _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    live = store.current_version(tmp_path / "idx")
    assert live is not None
    passages = store.read_manifest(live).passage_count
    np.save(live / store.TOKENS_FILE, np.ones((passages, 64), dtype=np.float32))
    np.save(live / store.TOKEN_OFFSETS_FILE, np.arange(passages, dtype=np.int64))  # one offset short
    with pytest.raises(IndexCorruptError, match="token vectors do not match") as caught:
        store.load(tmp_path / "idx")
    assert "\n" not in str(caught.value)


class _Version:
    """A candidate version whose passages' token vectors are given (the rerank reads nothing else)."""

    def __init__(self, tokens: dict[int, TokenVectors]) -> None:
        self.tokens = tokens

    def token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> npt.NDArray[np.float32] | None:
        return (
            token_match_scores(question_tokens, [self.tokens[i] for i in passage_ids])
            if self.tokens
            else None
        )


def _ranked(count: int) -> list[Ranked]:
    return [
        Ranked(
            i, 0.5, 1.0 - i * 0.01, Passage("d.md", "D", "D", f"passage {i}"), np.zeros((1, 4), np.float32)
        )
        for i in range(count)
    ]


def _unit(rows: list[list[float]]) -> TokenVectors:
    array = np.asarray(rows, dtype=np.float32)
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


def test_the_passage_matching_every_word_of_the_question_moves_up_within_the_top_candidates() -> None:
    question = _unit([[1, 0, 0, 0], [0, 1, 0, 0]])  # two word pieces
    one_word = _unit([[1, 0, 0, 0], [0, 0, 1, 0]])  # matches the first only
    both_words = _unit([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    ranked = _ranked(RERANK_TOP + 5)
    tokens = {i: one_word for i in range(len(ranked))}
    tokens[4] = both_words
    tokens[RERANK_TOP + 2] = both_words  # outside the reranked few: stays where it was
    order = [r.passage_id for r in _reranked_by_tokens(_Version(tokens), ranked, question)]  # type: ignore[arg-type]
    assert order[0] == 4
    assert sorted(order[:RERANK_TOP]) == list(range(RERANK_TOP))
    assert order[RERANK_TOP:] == list(range(RERANK_TOP, RERANK_TOP + 5))


def test_without_token_vectors_the_ranking_is_left_alone() -> None:
    ranked = _ranked(5)
    question = _unit([[1, 0, 0, 0]])
    assert _reranked_by_tokens(_Version({}), ranked, question) == ranked  # type: ignore[arg-type]


def test_the_bundled_knowledge_is_small_enough_to_carry_token_vectors(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    _build(BUNDLED_KNOWLEDGE, tmp_path / "idx", real_embedder)
    opened = SearchIndex.open(tmp_path / "idx")
    assert (
        opened.tokens is not None
        and len(opened.tokens) == len(opened.passages) <= store.TOKEN_VECTORS_MAX_PASSAGES
    )


def test_token_match_is_each_question_pieces_best_cosine_averaged_per_passage() -> None:
    """The one stacked product gives what the definition gives, passage by passage."""
    rng = np.random.default_rng(7)

    def unit(n: int) -> npt.NDArray[np.float32]:
        rows = rng.standard_normal((n, 16)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    question = unit(5)
    passages = [unit(n) for n in (1, 9, 3, 40)]
    expected = [float((question @ rows.T).max(axis=1).mean()) for rows in passages]
    assert np.allclose(token_match_scores(question, passages), expected, atol=1e-6)
    assert token_match_scores(question, []).shape == (0,)
    # a passage that repeats the question's pieces scores 1, the most there is
    assert token_match_scores(question, [np.concatenate([unit(4), question])])[0] == pytest.approx(
        1.0, abs=1e-6
    )
