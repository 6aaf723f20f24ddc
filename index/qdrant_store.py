"""Qdrant vector store: a collection per index version, dense + sparse (IDF) vectors, RRF hybrid, one alias."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from index.embedding import Vectors
from index.keyword import tokenize
from index.types import Passage
from index.vector_store import StoredHit, keyword_query, keyword_text

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

DEFAULT_ALIAS = "rolecall"
DENSE = "dense"
SPARSE = "keywords"
KEEP_VERSIONS = 2  # the live collection and the one before it (for a rollback); older ones are dropped
PREFETCH = 40  # candidates each of dense and sparse search hand to the fusion, as index.retrieval.CANDIDATES
UPSERT_BATCH = 256


def open_client(path: str = "", url: str = "", api_key: str = "") -> QdrantClient:
    """A client for a Qdrant server (`url`), a local-mode folder (`path`), or memory when both are empty."""
    from qdrant_client import QdrantClient

    if url:
        return QdrantClient(url=url, api_key=api_key or None)
    return QdrantClient(path=path) if path else QdrantClient(location=":memory:")


def sparse_terms(text: str) -> tuple[list[int], list[float]]:
    """The keyword vector of a text: a stable 31-bit id per token (index.keyword.tokenize) and its count."""
    counts = Counter(zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF for token in tokenize(text))
    ids = sorted(counts)
    return ids, [float(counts[i]) for i in ids]


def _slug(model_id: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-") or "model"


class QdrantVectorStore:
    """Readers query an alias; `swap` points it at the collection `add` filled, in one alias update.

    Safe to run several instances over one client (or one server): they hold no index state of their
    own, so all of them answer from the new collection as soon as any one of them swaps.
    """

    def __init__(
        self,
        client: QdrantClient,
        model_id: str,
        dimension: int,
        alias: str = DEFAULT_ALIAS,
        owns_client: bool = True,
    ) -> None:
        self.client = client
        self.owns_client = owns_client  # False when other stores share the client: close() leaves it open
        self.model_id = model_id
        self.dimension = dimension
        self.alias = alias
        self._prefix = f"{alias}--{_slug(model_id)}--v"
        self._staging: str | None = None
        self._next_id = 0

    # -- versions -------------------------------------------------------------------------------------

    def live_collection(self) -> str | None:
        """The collection the alias points at, or None before the first swap."""
        for alias in self.client.get_aliases().aliases:
            if alias.alias_name == self.alias:
                return str(alias.collection_name)
        return None

    def versions(self) -> list[str]:
        """This store's collections (any state), oldest first."""
        names = [c.name for c in self.client.get_collections().collections if c.name.startswith(self._prefix)]
        return sorted(names, key=self._version_of)

    def _version_of(self, name: str) -> int:
        tail = name[len(self._prefix) :]
        return int(tail) if tail.isdigit() else -1

    def _begin(self) -> str:
        from qdrant_client import models

        existing = [self._version_of(n) for n in self.versions()]
        name = f"{self._prefix}{max(existing, default=0) + 1:06d}"
        self.client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(size=self.dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        self._staging, self._next_id = name, 0
        return name

    # -- the VectorStore contract ---------------------------------------------------------------------

    def add(self, passages: Sequence[Passage], vectors: Vectors) -> None:
        from qdrant_client import models

        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        collection = self._staging or self._begin()
        rows = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        for start in range(0, len(passages), UPSERT_BATCH):
            points = []
            for passage, vector in zip(
                passages[start : start + UPSERT_BATCH], rows[start : start + UPSERT_BATCH], strict=True
            ):
                ids, values = sparse_terms(keyword_text(passage))
                points.append(
                    models.PointStruct(
                        id=self._next_id,
                        vector={DENSE: vector.tolist(), SPARSE: models.SparseVector(indices=ids, values=values)},
                        payload={
                            "source": passage.source,
                            "title": passage.title,
                            "section": passage.section,
                            "text": passage.text,
                        },
                    )
                )
                self._next_id += 1
            self.client.upsert(collection, points=points, wait=True)

    def swap(self) -> None:
        from qdrant_client import models

        new = self._staging or self._begin()  # an empty version is still a version
        old = self.live_collection()
        changes: list[Any] = []
        if old is not None:
            changes.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias)))
        changes.append(
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=new, alias_name=self.alias))
        )
        self.client.update_collection_aliases(change_aliases_operations=changes)
        self._staging = None
        keep = {new, old} if KEEP_VERSIONS >= 2 else {new}
        for name in self.versions():
            if name not in keep:  # older versions and collections a killed reindex left half-built
                self.client.delete_collection(name)

    def abort(self) -> None:
        if self._staging is not None:
            self.client.delete_collection(self._staging)
            self._staging = None

    def search(self, query: str, query_vector: Vectors, limit: int) -> list[StoredHit]:
        from qdrant_client import models

        if limit <= 0 or self.live_collection() is None:
            return []
        dense = np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()
        prefetch = [models.Prefetch(query=dense, using=DENSE, limit=max(PREFETCH, limit))]
        ids, values = sparse_terms(keyword_query(query))
        if ids:
            prefetch.append(
                models.Prefetch(
                    query=models.SparseVector(indices=ids, values=[1.0] * len(values)),
                    using=SPARSE,
                    limit=max(PREFETCH, limit),
                )
            )
        response = self.client.query_points(
            self.alias,
            prefetch=prefetch,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
        )
        hits = []
        for point in response.points:
            payload = point.payload or {}
            passage = Passage(
                str(payload["source"]), str(payload["title"]), str(payload["section"]), str(payload["text"])
            )
            hits.append(StoredHit(passage, float(point.score)))
        return hits

    def count(self) -> int:
        if self.live_collection() is None:
            return 0
        return int(self.client.count(self.alias, exact=True).count)

    def close(self) -> None:
        if self.owns_client:
            self.client.close()
