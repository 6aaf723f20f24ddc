"""An opened index version: FAISS for meaning, BM25 for exact terms, and the passages they point to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index import store
from index.embedding import Vectors
from index.errors import IndexCorruptError
from index.keyword import KeywordIndex
from index.roles import RoleDocument, RoleMatcher, role_documents
from index.store import Manifest, PassageRows
from index.types import Passage

KEYWORD_FOLDER = "keyword"

# Dense search is exact (IndexFlatIP) below HNSW_MIN_PASSAGES passages and an HNSW graph at or above
# it; the choice is the builder's (dense_kind) and the manifest records it. Figures behind the numbers
# (bench/speed.py --scale, bench/HISTORY.md): exact search costs about 0.55 ms per query at 10k passages
# and 8-19 ms at 100k, linear in between, so past about 20k it outgrows the rest of an ask (about 1.3 ms
# of BM25, fusion and highlight) while the graph takes about 1 s to build at 20k (6-7 s at 100k) on
# every reindex that changes anything. efSearch 128 with efConstruction 40 gives recall@10 0.996 against
# exact search at 100k clustered passages (efSearch 64: 0.978, under the 0.98 asked for). Cosines used
# for fusion and the highlight are always exact (cosine(), sentence_rows()).
HNSW_MIN_PASSAGES = 20_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
# Sentence vectors up to this size are read into memory when a version opens (the handbook: 7 MB);
# larger files are read per passage with pread, so RSS does not grow towards the whole file.
SENTENCES_IN_MEMORY_BYTES = 64 * 2**20


def dense_kind(passage_count: int) -> str:
    """The dense index a version of this many passages gets (the manifest's `dense`)."""
    if passage_count >= HNSW_MIN_PASSAGES:
        return f"hnsw:M={HNSW_M}:efConstruction={HNSW_EF_CONSTRUCTION}"
    return store.FLAT


def build_hnsw(vectors: Vectors) -> Any:
    """An inner-product HNSW graph over unit passage vectors (FAISS, all cores)."""
    import faiss

    graph = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return graph


class SearchIndex:
    """Read-only search over one index version; safe to share between threads."""

    def __init__(
        self,
        manifest: Manifest,
        passages: list[Passage],
        vectors: Vectors,
        keyword: KeywordIndex,
        sentences: PassageRows,
        dense: Any = None,
        tokens: PassageRows | None = None,
    ) -> None:
        """`sentences`: the vectors of each passage's sentences (for the highlight).
        `dense`: the version's HNSW graph (store.read_dense); None searches exactly with IndexFlatIP.
        `tokens`: the passages' token vectors, when the version has them (for the rerank)."""
        import faiss

        self.manifest = manifest
        self.version_path: Path | None = None  # the version folder it was opened from (open())
        self.passages = passages
        self.vectors = vectors
        self.keyword = keyword
        self.sentences = sentences
        self.tokens = tokens
        if dense is None:
            self._dense = faiss.IndexFlatIP(manifest.dimension)
            if len(passages):
                self._dense.add(vectors)
            self.dense_index = store.FLAT
        else:
            dense.hnsw.efSearch = HNSW_EF_SEARCH  # set once: search() only reads it, threads share it
            self._dense = dense
            self.dense_index = manifest.dense
            # The graph stores the passage vectors: exact cosines read them there, not from the mapped
            # vectors.npy, whose touched pages would otherwise add up to a second copy in RSS.
            storage: Any = faiss.downcast_index(dense.storage)
            self.vectors = faiss.rev_swig_ptr(storage.get_xb(), dense.ntotal * dense.d).reshape(
                dense.ntotal, dense.d
            )
        self.documents = tuple(
            RoleDocument(d.source, d.title, d.aliases, d.metadata.get("level", ""))
            for d in manifest.documents
            if not d.skipped_reason
        )
        self.roles = RoleMatcher(role_documents(self.documents))

    @classmethod
    def open(cls, index_dir: Path) -> SearchIndex:
        """Open the live version of the index in `index_dir`."""
        stored = store.load(index_dir, SENTENCES_IN_MEMORY_BYTES)
        try:
            keyword = KeywordIndex.load(stored.path / KEYWORD_FOLDER, len(stored.passages))
        except Exception as exc:
            raise IndexCorruptError(f"the keyword index in {stored.path} is damaged ({exc})") from exc
        search_index = cls(
            stored.manifest,
            stored.passages,
            stored.vectors,
            keyword,
            stored.sentences,
            stored.dense,
            stored.tokens,
        )
        search_index.version_path = stored.path
        return search_index

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
        return self.sentences.passage(passage_id)

    def cosine(self, query_vector: Vectors, ids: list[int]) -> npt.NDArray[np.float32]:
        """Exact cosine between one query and chosen passages."""
        return np.asarray(self.vectors[ids] @ query_vector.reshape(-1), dtype=np.float32)
