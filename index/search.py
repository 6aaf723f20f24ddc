"""An opened index version: FAISS for meaning, BM25 for exact terms, and the passages they point to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from index import store
from index.embedding import Vectors
from index.errors import IndexCorruptError
from index.keyword import KeywordIndex
from index.roles import RoleDocument, RoleMatcher
from index.store import Manifest
from index.types import Passage

KEYWORD_FOLDER = "keyword"


class SearchIndex:
    """Read-only search over one index version; safe to share between threads."""

    def __init__(
        self,
        manifest: Manifest,
        passages: list[Passage],
        vectors: Vectors,
        keyword: KeywordIndex,
        sentence_vectors: Vectors,
        sentence_offsets: npt.NDArray[np.int64],
    ) -> None:
        import faiss

        self.manifest = manifest
        self.passages = passages
        self.vectors = vectors
        self.keyword = keyword
        self.sentence_vectors = sentence_vectors
        self.sentence_offsets = sentence_offsets
        self._dense = faiss.IndexFlatIP(manifest.dimension)
        if len(passages):
            self._dense.add(vectors)
        self.documents = tuple(
            RoleDocument(d.source, d.title, d.aliases, d.metadata.get("level", ""))
            for d in manifest.documents
            if not d.skipped_reason
        )
        self.roles = RoleMatcher(d for d in self.documents if d.aliases or d.level)

    @classmethod
    def open(cls, index_dir: Path) -> SearchIndex:
        """Open the live version of the index in `index_dir`."""
        stored = store.load(index_dir)
        try:
            keyword = KeywordIndex.load(stored.path / KEYWORD_FOLDER, len(stored.passages))
        except Exception as exc:
            raise IndexCorruptError(f"the keyword index in {stored.path} is damaged ({exc})") from exc
        return cls(
            stored.manifest,
            stored.passages,
            stored.vectors,
            keyword,
            stored.sentence_vectors,
            stored.sentence_offsets,
        )

    def __len__(self) -> int:
        return len(self.passages)

    def dense(
        self, query_vectors: Vectors, limit: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Cosine scores and passage ids of the nearest passages, one row per query."""
        limit = min(limit, len(self.passages))
        if limit == 0:
            empty = np.zeros((len(query_vectors), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        scores, ids = self._dense.search(np.ascontiguousarray(query_vectors, dtype=np.float32), limit)
        return scores, ids

    def sentence_rows(self, passage_id: int) -> Vectors:
        """The stored vectors of one passage's sentences (see chunking.passage_sentences)."""
        start, end = self.sentence_offsets[passage_id], self.sentence_offsets[passage_id + 1]
        return np.asarray(self.sentence_vectors[start:end])

    def cosine(self, query_vector: Vectors, ids: list[int]) -> npt.NDArray[np.float32]:
        """Exact cosine between one query and chosen passages."""
        return np.asarray(self.vectors[ids] @ query_vector.reshape(-1), dtype=np.float32)
