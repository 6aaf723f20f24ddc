"""Concurrent questions share embedding calls and still get their own vectors and answers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from index.batching import QueryBatcher
from index.embedding import Vectors
from tests.conftest import FakeEmbedder, make_service


class SlowEmbedder(FakeEmbedder):
    """Holds the first call until `release` is set, so the other callers queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.release = threading.Event()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.calls.append(len(texts))
        if len(self.calls) == 1:
            assert self.release.wait(10)
        return super().embed_queries(texts)


def test_questions_arriving_together_are_embedded_in_one_call() -> None:
    embedder = SlowEmbedder()
    batcher = QueryBatcher(embedder.embed_queries, max_batch=32)
    texts = [f"question number {i} about pay" for i in range(9)]
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(batcher.embed, [texts[0]])
        while not embedder.calls:  # the first caller is embedding; the others arrive meanwhile
            threading.Event().wait(0.01)
        rest = [pool.submit(batcher.embed, [t]) for t in texts[1:]]
        while len(batcher._queue) < 8:
            threading.Event().wait(0.01)
        embedder.release.set()
        results = [first.result(), *(f.result() for f in rest)]
    assert embedder.calls == [1, 8]
    for text, vectors in zip(texts, results, strict=True):
        assert np.array_equal(vectors, FakeEmbedder().embed_queries([text]))


def test_an_embedding_error_reaches_every_caller_of_the_batch() -> None:
    def broken(texts: Sequence[str]) -> Vectors:
        raise RuntimeError("model gone")

    with pytest.raises(RuntimeError, match="model gone"):
        QueryBatcher(broken).embed(["a question"])


def test_concurrent_asks_get_the_answers_of_sequential_asks(small_knowledge: Path, tmp_path: Path) -> None:
    service = make_service(small_knowledge, tmp_path / "idx", FakeEmbedder(), min_score=-1.0)
    service.open()
    questions = [
        "What does a senior back-end engineer earn?",
        "Which tools do SREs use?",
        "How do I become a staff engineer?",
        "Who runs on-call?",
    ] * 8
    expected = [service.ask(q) for q in questions]
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(service.ask, questions))
    assert got == expected
