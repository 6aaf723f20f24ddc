"""The vector-store contract (stage passages, swap the new version in, search, count) and its FAISS form."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from index.embedding import Vectors
from index.keyword import KeywordIndex
from index.retrieval import KEYWORD_WEIGHT  # one weight for BM25 beside the cosine, wherever it is fused
from index.search import SearchIndex
from index.terms import default_normaliser
from index.types import Passage


def keyword_text(passage: Passage) -> str:
    """What keyword search matches for a passage: its heading trail and text, terms normalised (as the builder)."""
    return default_normaliser()(f"{passage.section} {passage.text}")


def keyword_query(question: str) -> str:
    """A question as keyword search matches it: job titles and jargon normalised (as index.retrieval)."""
    return default_normaliser()(question)


@dataclass(frozen=True)
class StoredHit:
    """One passage a store returned for a query, with the store's own ranking score."""

    passage: Passage
    score: float


class VectorStore(Protocol):
    """Where passages and their vectors live; readers always see one complete version.

    A new version is built with `add` (any number of batches) and published with `swap`, which moves
    every reader to it at once; until then `search` and `count` answer from the previous version, and
    `abort` (or a crash) throws the staged passages away without touching what readers see.
    """

    def add(self, passages: Sequence[Passage], vectors: Vectors) -> None:
        """Stage passages (one vector row each) into the version being built."""
        ...

    def swap(self) -> None:
        """Publish the staged version to every reader at once."""
        ...

    def abort(self) -> None:
        """Discard the staged version; readers keep the live one."""
        ...

    def search(self, query: str, query_vector: Vectors, limit: int) -> list[StoredHit]:
        """The best passages for a question (its text and its embedding), best first."""
        ...

    def count(self) -> int:
        """How many passages the live version holds."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


class _FaissVersion:
    """One immutable FAISS + BM25 version."""

    def __init__(
        self, passages: list[Passage], vectors: Vectors, keyword: KeywordIndex | None = None
    ) -> None:
        import faiss

        self.passages = passages
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.dense = faiss.IndexFlatIP(vectors.shape[1])
        if passages:
            self.dense.add(np.ascontiguousarray(vectors, dtype=np.float32))
        if keyword is None and passages:
            keyword = KeywordIndex.build([keyword_text(p) for p in passages])
        self.keyword = keyword  # None only for an empty version


class FaissVectorStore:
    """In-process FAISS (cosine) plus BM25, fused as `cosine + KEYWORD_WEIGHT * bm25 / best bm25`."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._live = _FaissVersion([], np.zeros((0, dimension), dtype=np.float32))
        self._staged_passages: list[Passage] = []
        self._staged_vectors: list[Vectors] = []
        self._write_lock = threading.Lock()

    @classmethod
    def from_search_index(cls, search_index: SearchIndex) -> FaissVectorStore:
        """Serve an already opened index version (the same vectors and keyword index it holds)."""
        store = cls(search_index.manifest.dimension)
        store._live = _FaissVersion(list(search_index.passages), search_index.vectors, search_index.keyword)
        return store

    @classmethod
    def open(cls, index_dir: Path) -> FaissVectorStore:
        """Serve the live version of the on-disk index in `index_dir` (as built by index.builder)."""
        return cls.from_search_index(SearchIndex.open(index_dir))

    def add(self, passages: Sequence[Passage], vectors: Vectors) -> None:
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        with self._write_lock:
            self._staged_passages.extend(passages)
            self._staged_vectors.append(np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension))

    def swap(self) -> None:
        with self._write_lock:
            vectors = (
                np.concatenate(self._staged_vectors)
                if self._staged_vectors
                else np.zeros((0, self.dimension), dtype=np.float32)
            )
            version = _FaissVersion(self._staged_passages, vectors)
            self._staged_passages, self._staged_vectors = [], []
            self._live = version  # one reference assignment: readers see the old or the new version

    def abort(self) -> None:
        with self._write_lock:
            self._staged_passages, self._staged_vectors = [], []

    def search(self, query: str, query_vector: Vectors, limit: int) -> list[StoredHit]:
        version = self._live
        size = len(version.passages)
        limit = min(limit, size)
        if limit == 0:
            return []
        vector = np.ascontiguousarray(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))
        _cosines, ids = version.dense.search(vector, limit)
        scores: dict[int, float] = {int(i): 0.0 for i in ids[0] if i >= 0}
        if version.keyword is None:
            return []
        keyword = version.keyword.scores(keyword_query(query))
        best = float(keyword.max()) if len(keyword) else 0.0
        if best > 0:
            for i in np.argsort(-keyword)[:limit]:
                if keyword[i] > 0:
                    scores.setdefault(int(i), 0.0)
        candidates = list(scores)
        exact = version.vectors[candidates] @ vector.reshape(-1)
        for i, cosine in zip(candidates, exact, strict=True):
            scores[i] = float(cosine) + (KEYWORD_WEIGHT * float(keyword[i]) / best if best > 0 else 0.0)
        ranked = sorted(candidates, key=lambda i: -scores[i])[:limit]
        return [StoredHit(version.passages[i], scores[i]) for i in ranked]

    def count(self) -> int:
        return len(self._live.passages)

    def close(self) -> None:
        self._live = _FaissVersion([], np.zeros((0, self.dimension), dtype=np.float32))


def publish(store: VectorStore, batches: Iterable[tuple[Sequence[Passage], Vectors]]) -> int:
    """Write a whole new version batch by batch and swap it in; on any error readers keep the old one."""
    added = 0
    try:
        for passages, vectors in batches:
            store.add(passages, vectors)
            added += len(passages)
    except BaseException:
        store.abort()
        raise
    store.swap()
    return added
