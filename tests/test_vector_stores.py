"""One battery over both vector stores (FAISS and Qdrant local mode) with the real packaged model."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bot.settings import SettingsError, load_settings
from index.builder import build_index
from index.embedding import SentenceTransformerEmbedder, Vectors, resolve_model
from index.qdrant_store import QdrantVectorStore, open_client
from index.search import SearchIndex
from index.types import Passage
from index.vector_store import FaissVectorStore, VectorStore, publish
from tests.conftest import SMALL_KNOWLEDGE, write_docs

QUESTIONS = {
    "How much does a senior back-end engineer earn?": "senior-back-end-engineer.md",
    "What tools does an SRE use to run containers?": "site-reliability-engineer.md",
    "How do I get promoted from senior to staff engineer?": "career-ladder.md",
    "Who runs the on-call rotation and leads incident reviews?": "site-reliability-engineer.md",
    "Does a back-end engineer use PostgreSQL and Django?": "senior-back-end-engineer.md",
}

DATA_SCIENTIST = {
    "data-scientist.md": """---
title: Data Scientist
level: mid
---
# Data Scientist

## Work
A data scientist builds statistical models and machine learning experiments, and explains the results to product teams.
""",
}


@dataclass(frozen=True)
class Corpus:
    """Passages and their vectors as index.builder produced them, plus the embedded questions."""

    passages: list[Passage]
    vectors: Vectors
    questions: dict[str, Vectors]
    model_id: str
    index_dir: Path

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def batches(self, size: int = 4) -> Iterator[tuple[list[Passage], Vectors]]:
        for start in range(0, len(self.passages), size):
            yield self.passages[start : start + size], self.vectors[start : start + size]


def _corpus(folder: Path, docs: dict[str, str], embedder: SentenceTransformerEmbedder) -> Corpus:
    knowledge = write_docs(folder / "knowledge", docs)
    build_index([knowledge], folder / "index", resolve_model(None), lambda: embedder)
    opened = SearchIndex.open(folder / "index")
    vectors = embedder.embed_queries(list(QUESTIONS))
    return Corpus(
        list(opened.passages),
        opened.vectors,
        dict(zip(QUESTIONS, vectors, strict=True)),
        embedder.model_id,
        folder / "index",
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> Corpus:
    return _corpus(tmp_path_factory.mktemp("small"), SMALL_KNOWLEDGE, real_embedder)


@pytest.fixture(scope="module")
def bigger_corpus(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Corpus:
    return _corpus(tmp_path_factory.mktemp("bigger"), {**SMALL_KNOWLEDGE, **DATA_SCIENTIST}, real_embedder)


StoreFactory = Callable[[Corpus], VectorStore]


def _faiss(corpus: Corpus) -> VectorStore:
    return FaissVectorStore(corpus.dimension)


def _qdrant(corpus: Corpus) -> VectorStore:
    return QdrantVectorStore(open_client(), corpus.model_id, corpus.dimension)


@pytest.fixture(params=[_faiss, _qdrant], ids=["faiss", "qdrant"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = request.param
    return factory


def _first_source(store: VectorStore, corpus: Corpus, question: str) -> str:
    hits = store.search(question, corpus.questions[question], 3)
    assert hits, f"no passage for {question!r}"
    return hits[0].passage.source


def test_same_questions_find_the_same_documents(make_store: StoreFactory, corpus: Corpus) -> None:
    store = make_store(corpus)
    assert publish(store, corpus.batches()) == len(corpus.passages)
    assert store.count() == len(corpus.passages)
    for question, source in QUESTIONS.items():
        assert _first_source(store, corpus, question) == source, question
    store.close()


def test_a_hit_carries_everything_needed_to_answer(make_store: StoreFactory, corpus: Corpus) -> None:
    store = make_store(corpus)
    publish(store, corpus.batches())
    question = "How much does a senior back-end engineer earn?"
    hit = store.search(question, corpus.questions[question], 1)[0]
    assert hit.passage in corpus.passages  # source, title, section and text all come back
    assert "$120,000" in hit.passage.text


def test_staged_passages_are_invisible_until_the_swap(make_store: StoreFactory, corpus: Corpus) -> None:
    store = make_store(corpus)
    question = next(iter(QUESTIONS))
    assert store.count() == 0
    assert store.search(question, corpus.questions[question], 3) == []
    for passages, vectors in corpus.batches():
        store.add(passages, vectors)
    assert store.count() == 0
    assert store.search(question, corpus.questions[question], 3) == []
    store.swap()
    assert store.count() == len(corpus.passages)


def test_a_reindex_that_fails_half_way_leaves_the_old_version_answering(
    make_store: StoreFactory, corpus: Corpus, bigger_corpus: Corpus
) -> None:
    store = make_store(corpus)
    publish(store, corpus.batches())

    def failing() -> Iterator[tuple[list[Passage], Vectors]]:
        batches = bigger_corpus.batches(size=2)
        yield next(batches)
        raise RuntimeError("embedding died")

    with pytest.raises(RuntimeError, match="embedding died"):
        publish(store, failing())
    assert store.count() == len(corpus.passages)
    for question, source in QUESTIONS.items():
        assert _first_source(store, corpus, question) == source
    publish(store, bigger_corpus.batches())  # the next reindex still works
    assert store.count() == len(bigger_corpus.passages)


@contextlib.contextmanager
def askers_meanwhile(first_source: Callable[[str], str], threads: int = 3) -> Iterator[list[str]]:
    """Threads asking every question in QUESTIONS again and again while the body runs; yields the wrong
    answers (a failure, no answer or another document first), checked once they have stopped."""
    started = threading.Barrier(threads + 1)
    done = threading.Event()
    wrong: list[str] = []
    answered = [0] * threads

    def ask(worker: int) -> None:
        started.wait()
        for _ in range(200):  # bounded, should the body hang
            for question, source in QUESTIONS.items():
                try:
                    got = first_source(question)
                except Exception as exc:  # noqa: BLE001 - every failure is reported by the caller's assertion
                    got = f"error {exc!r}"
                if got != source:
                    wrong.append(f"{question!r}: {got}")
                answered[worker] += 1
            if done.is_set():
                return

    workers = [threading.Thread(target=ask, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    started.wait()
    try:
        yield wrong
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert all(answered), "every asker got through its questions at least once"


def test_questions_during_swaps_always_get_an_answer(make_store: StoreFactory, corpus: Corpus) -> None:
    store = make_store(corpus)
    publish(store, corpus.batches())
    with askers_meanwhile(lambda question: _first_source(store, corpus, question)) as wrong:
        for _ in range(4):
            publish(store, corpus.batches())
    assert wrong == []
    assert store.count() == len(corpus.passages)


def test_faiss_store_over_the_built_index_answers_like_a_published_one(corpus: Corpus) -> None:
    opened = FaissVectorStore.open(corpus.index_dir)
    published = FaissVectorStore(corpus.dimension)
    publish(published, corpus.batches())
    assert opened.count() == published.count() == len(corpus.passages)
    for question, vector in corpus.questions.items():
        assert opened.search(question, vector, 3) == published.search(question, vector, 3)


def test_qdrant_keeps_the_live_and_previous_collections_only(corpus: Corpus, bigger_corpus: Corpus) -> None:
    store = QdrantVectorStore(open_client(), corpus.model_id, corpus.dimension)
    for _ in range(3):
        publish(store, corpus.batches())
    store.add(*next(bigger_corpus.batches()))  # a reindex killed before its swap: nothing calls abort()
    orphan = store.versions()[-1]
    assert store.live_collection() != orphan
    publish(QdrantVectorStore(store.client, corpus.model_id, corpus.dimension), bigger_corpus.batches())
    versions = store.versions()
    assert len(versions) == 2 and orphan not in versions
    assert store.live_collection() == versions[-1]
    assert "all-minilm-l6-v2" in versions[-1]  # named with the model and a version number


def test_qdrant_killed_reindex_leaves_the_alias_on_the_old_collection(tmp_path: Path, corpus: Corpus) -> None:
    folder = str(tmp_path / "qdrant")
    store = QdrantVectorStore(open_client(path=folder), corpus.model_id, corpus.dimension)
    publish(store, corpus.batches())
    live = store.live_collection()
    store.add(*next(corpus.batches(size=2)))  # half a reindex, then the process is gone
    store.client.close()

    reopened = QdrantVectorStore(open_client(path=folder), corpus.model_id, corpus.dimension)
    assert reopened.live_collection() == live
    assert reopened.count() == len(corpus.passages)
    question = "How do I get promoted from senior to staff engineer?"
    assert _first_source(reopened, corpus, question) == "career-ladder.md"
    reopened.close()


def test_two_stores_on_one_client_both_answer_from_the_new_collection(
    corpus: Corpus, bigger_corpus: Corpus, real_embedder: SentenceTransformerEmbedder
) -> None:
    client = open_client()
    writer = QdrantVectorStore(client, corpus.model_id, corpus.dimension, owns_client=False)
    reader = QdrantVectorStore(client, corpus.model_id, corpus.dimension, owns_client=False)
    publish(writer, corpus.batches())
    question = "What does a data scientist do with machine learning?"
    vector = real_embedder.embed_queries([question])[0]
    assert {h.passage.source for h in reader.search(question, vector, 3)} <= set(SMALL_KNOWLEDGE)

    publish(writer, bigger_corpus.batches())
    for store in (writer, reader):
        assert store.count() == len(bigger_corpus.passages)
        assert store.search(question, vector, 3)[0].passage.source == "data-scientist.md"
    writer.close()
    assert reader.count() == len(bigger_corpus.passages)  # the shared client stays open
    client.close()


def test_an_unknown_store_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLECALL_VECTOR_STORE", "milvus")
    with pytest.raises(SettingsError, match="ROLECALL_VECTOR_STORE"):
        load_settings()


def test_qdrant_keyword_scores_are_the_bm25_scores_of_the_keyword_index() -> None:
    """The engine's sparse score (BM25 term weights at publish, its IDF modifier) ranks like index.keyword."""
    from qdrant_client import models

    from index.keyword import KeywordIndex
    from index.qdrant_store import SPARSE, average_keyword_length, sparse_terms
    from index.vector_store import keyword_query, keyword_text

    texts = [
        "Kubernetes clusters and Kubernetes operators for the platform team.",
        "A staff engineer writes design documents and reviews design documents across teams, and mentors.",
        "Pay bands: a senior engineer earns $120,000 to $150,000 with equity.",
        "On-call, incident review, and Kubernetes upgrades are part of the site reliability role, every week,"
        " with runbooks, dashboards, alerts and long postmortems about what went wrong and why.",
        "Mentoring juniors, pairing, and code review.",
    ]
    passages = [Passage(f"doc{i}.md", f"Doc {i}", "Role", text) for i, text in enumerate(texts)]
    keyword = KeywordIndex.build([keyword_text(p) for p in passages])
    store = QdrantVectorStore(open_client(), "test-model", 4)
    store.keyword_average_length = average_keyword_length(passages)
    store.add(passages, np.tile(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32), (len(passages), 1)))
    store.swap()
    for question in [
        "kubernetes upgrades",
        "design documents",
        "$120,000 senior pay",
        "mentoring code review",
    ]:
        expected = keyword.scores(keyword_query(question))
        ids, _ = sparse_terms(keyword_query(question))
        points = store.client.query_points(
            store.alias,
            query=models.SparseVector(indices=ids, values=[1.0] * len(ids)),
            using=SPARSE,
            limit=10,
        ).points
        got = {int(p.id): float(p.score) for p in points}
        assert set(got) == {i for i, s in enumerate(expected) if s > 0}, question
        for pid, score in got.items():
            assert score == pytest.approx(float(expected[pid]), rel=1e-3), (question, pid)
    store.close()
