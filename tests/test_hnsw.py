"""Dense search past the size threshold: the build writes an HNSW graph, search uses it, damage is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.evaluation import read_cases
from index import search, store
from index.builder import BuildReport, build_index
from index.embedding import Embedder, ModelSpec, SentenceTransformerEmbedder, resolve_model
from index.errors import IndexCorruptError
from index.retrieval import Retriever
from index.search import SearchIndex
from tests.conftest import BUNDLED_KNOWLEDGE, REPO, FakeEmbedder, make_service


def _build(knowledge: Path, index_dir: Path, embedder: Embedder) -> BuildReport:
    return build_index(
        [knowledge], index_dir, ModelSpec(embedder.model_id, resolve_model(None).location), lambda: embedder
    )


def _live(index_dir: Path) -> Path:
    live = store.current_version(index_dir)
    assert live is not None
    return live


def test_a_small_index_stays_exact_and_writes_no_graph(small_knowledge: Path, tmp_path: Path) -> None:
    _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    assert store.load_manifest(tmp_path / "idx").dense == "flat"  # type: ignore[union-attr]
    assert not (_live(tmp_path / "idx") / store.DENSE_FILE).exists()
    assert SearchIndex.open(tmp_path / "idx").dense_index == "flat"


def test_past_the_threshold_the_graph_answers_the_eval_questions_like_exact_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_embedder: SentenceTransformerEmbedder
) -> None:
    monkeypatch.setattr(search, "HNSW_MIN_PASSAGES", 50)  # the bundled knowledge has about 120 passages
    index_dir = tmp_path / "idx"
    _build(BUNDLED_KNOWLEDGE, index_dir, real_embedder)
    assert store.load_manifest(index_dir).dense == "hnsw:M=32:efConstruction=40"  # type: ignore[union-attr]
    assert (_live(index_dir) / store.DENSE_FILE).is_file()

    graph = SearchIndex.open(index_dir)  # reopened from disk, as the service does
    assert graph.dense_index.startswith("hnsw")
    stored = store.load(index_dir)
    exact = SearchIndex(
        stored.manifest,
        stored.passages,
        stored.vectors,
        graph.keyword,
        stored.sentences,
        tokens=stored.tokens,
    )
    assert exact.dense_index == "flat"
    # At this size efSearch (128) exceeds the passage count, so the graph search visits every passage and
    # must return exactly what exact search returns: every answered top-3 is asked to be identical.
    # (Recall at 100k passages, where it is not exact, is measured by bench/speed.py --scale.)
    cases = read_cases(REPO / "eval" / "knowledge.jsonl")
    with_graph, with_flat = Retriever(graph, real_embedder), Retriever(exact, real_embedder)
    questions = [c.question for c in cases]
    got, want = with_graph.retrieve_many(questions, 3), with_flat.retrieve_many(questions, 3)
    for question, hits, expected in zip(questions, got, want, strict=True):
        assert [(h.passage, h.highlight) for h in hits] == [(h.passage, h.highlight) for h in expected], (
            question
        )
        assert [h.score for h in hits] == pytest.approx([h.score for h in expected], abs=1e-6)


def test_an_unchanged_reindex_keeps_the_graph_and_a_threshold_change_rebuilds_it(
    small_knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "idx"
    monkeypatch.setattr(search, "HNSW_MIN_PASSAGES", 1)
    _build(small_knowledge, index_dir, FakeEmbedder())
    live = _live(index_dir)
    assert not _build(small_knowledge, index_dir, FakeEmbedder()).wrote_new_version
    assert _live(index_dir) == live
    monkeypatch.setattr(search, "HNSW_MIN_PASSAGES", 10_000)
    report = _build(small_knowledge, index_dir, FakeEmbedder())
    assert report.wrote_new_version
    assert SearchIndex.open(index_dir).dense_index == "flat"
    assert not (_live(index_dir) / store.DENSE_FILE).exists()


def test_a_manifest_from_before_the_field_reads_as_flat(small_knowledge: Path, tmp_path: Path) -> None:
    _build(small_knowledge, tmp_path / "idx", FakeEmbedder())
    manifest_file = _live(tmp_path / "idx") / store.MANIFEST_FILE
    data = json.loads(manifest_file.read_text())
    del data["dense"]
    manifest_file.write_text(json.dumps(data))
    assert SearchIndex.open(tmp_path / "idx").dense_index == "flat"


@pytest.mark.parametrize("damage", ["truncated", "missing", "other passages"])
def test_a_damaged_graph_is_a_corrupt_index_and_the_service_rebuilds_it(
    damage: str, small_knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "HNSW_MIN_PASSAGES", 1)
    index_dir = tmp_path / "idx"
    embedder = FakeEmbedder()
    _build(small_knowledge, index_dir, embedder)
    graph_file = _live(index_dir) / store.DENSE_FILE
    if damage == "truncated":  # what a killed copy or a full disk leaves
        graph_file.write_bytes(graph_file.read_bytes()[: graph_file.stat().st_size // 2])
    elif damage == "missing":
        graph_file.unlink()
    else:
        store.write_dense(search.build_hnsw(embedder.embed_documents(["one", "two"])), graph_file)
    with pytest.raises(IndexCorruptError, match="damaged"):
        SearchIndex.open(index_dir)

    service = make_service(small_knowledge, index_dir, embedder, min_score=0.0)
    notes: list[str] = []
    service.open(notes.append)
    assert any("damaged" in note for note in notes)
    assert SearchIndex.open(index_dir).dense_index.startswith("hnsw")
    assert service.ask("what does a senior back end engineer earn").answered
