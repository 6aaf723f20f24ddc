"""Qdrant vector store: a collection per index version, dense + sparse (IDF) vectors, one alias."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from index.embedding import TokenVectors, Vectors
from index.errors import IndexIncompatibleError, IndexMissingError
from index.keyword import tokenize
from index.retrieval import CANDIDATES, KEYWORD_WEIGHT, ROLE_BOOST, Ranked, token_match_scores
from index.roles import RoleDocument, RoleMatcher, role_documents
from index.search import SearchIndex
from index.store import IndexBusyError
from index.types import Passage
from index.vector_store import StoredHit, keyword_query, keyword_text

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

DEFAULT_ALIAS = "rolecall"
DENSE = "dense"
SPARSE = "keywords"
SENTENCES = "sentences"  # a multivector: one row per highlight sentence (chunking.passage_sentences)
# a multivector: the passage's word-piece vectors for the token rerank (when the index has them)
TOKENS = "tokens"
KEEP_VERSIONS = 2  # the live collection and the one before it (for a rollback); older ones are dropped
BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, so both stores score keywords alike
PREFETCH = 40  # candidates each of dense and sparse search hand to the fusion, as index.retrieval.CANDIDATES
UPSERT_BATCH = 256
ALIAS_CHECK_SECONDS = 2.0  # how often a reader asks which collection the alias points at


def open_client(path: str = "", url: str = "", api_key: str = "") -> QdrantClient:
    """A client for a Qdrant server (`url`), a local-mode folder (`path`), or memory when both are empty."""
    from qdrant_client import QdrantClient

    if url:
        return QdrantClient(url=url, api_key=api_key or None)
    return QdrantClient(path=path) if path else QdrantClient(location=":memory:")


def sparse_terms(text: str, average_length: float | None = None) -> tuple[list[int], list[float]]:
    """The keyword vector of a text: a stable 31-bit id per token (index.keyword.tokenize) and its weight.

    With the version's average passage length (in tokens) the weight is BM25's term part as Lucene
    (and bm25s) compute it, tf / (tf + k1·(1 − b + b·length/average)); the collection's IDF modifier
    multiplies in the rest, so the engine scores what index.keyword does. Without it (a question), counts.
    """
    tokens = tokenize(text)
    counts = Counter(zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF for token in tokens)
    ids = sorted(counts)
    if not average_length:
        return ids, [float(counts[i]) for i in ids]
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(tokens) / average_length)
    return ids, [counts[i] / (counts[i] + norm) for i in ids]


def average_keyword_length(passages: Sequence[Passage]) -> float:
    """Mean token count of the passages' keyword texts: BM25's length normalisation needs it."""
    return float(np.mean([len(tokenize(keyword_text(p))) for p in passages])) if passages else 0.0


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
        self.keyword_average_length: float | None = None  # set before `add` to weight terms as BM25 does
        self._next_id = 0
        self._metadata: dict[str, Any] = {}

    # -- versions -------------------------------------------------------------------------------------

    def live_collection(self) -> str | None:
        """The collection the alias points at, or None before the first swap."""
        return live_collection(self.client, self.alias)

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
            vectors_config={
                DENSE: models.VectorParams(size=self.dimension, distance=models.Distance.COSINE),
                SENTENCES: models.VectorParams(
                    size=self.dimension,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    hnsw_config=models.HnswConfigDiff(m=0),  # only returned with a hit, never searched
                ),
                TOKENS: models.VectorParams(
                    size=self.dimension,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    # read for the best few candidates, never searched
                    hnsw_config=models.HnswConfigDiff(m=0),
                ),
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"model_id": self.model_id, "complete": False},
        )
        self._staging, self._next_id = name, 0
        return name

    def describe(self, documents: Sequence[RoleDocument], **extra: Any) -> None:
        """Record the staged version's documents (what role matching needs) in its collection metadata."""
        self._metadata = {"documents": [_document_json(d) for d in documents], **extra}

    # -- the VectorStore contract ---------------------------------------------------------------------

    def add(
        self,
        passages: Sequence[Passage],
        vectors: Vectors,
        sentences: Sequence[Vectors] | None = None,
        tokens: Sequence[TokenVectors] | None = None,
    ) -> None:
        """Stage passages; `sentences` holds each passage's sentence vectors (default: the passage vector),
        `tokens` its word-piece vectors (default: none, and no token rerank)."""
        from qdrant_client import models

        if len(passages) != len(vectors) or any(
            extra is not None and len(extra) != len(passages) for extra in (sentences, tokens)
        ):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        collection = self._staging or self._begin()
        rows = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        for start in range(0, len(passages), UPSERT_BATCH):
            points = []
            for offset, (passage, vector) in enumerate(
                zip(passages[start : start + UPSERT_BATCH], rows[start : start + UPSERT_BATCH], strict=True)
            ):
                ids, values = sparse_terms(keyword_text(passage), self.keyword_average_length)
                own = sentences[start + offset] if sentences is not None else None
                multi = (
                    np.asarray(own, dtype=np.float32).reshape(-1, self.dimension) if own is not None else None
                )
                named: dict[str, Any] = {
                    DENSE: vector.tolist(),
                    SENTENCES: (
                        multi if multi is not None and len(multi) else vector.reshape(1, -1)
                    ).tolist(),
                    SPARSE: models.SparseVector(indices=ids, values=values),
                }
                if tokens is not None and len(tokens[start + offset]):
                    named[TOKENS] = np.asarray(tokens[start + offset], dtype=np.float32).tolist()
                points.append(
                    models.PointStruct(
                        id=self._next_id,
                        vector=named,
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
        self.client.update_collection(new, metadata={**self._metadata, "complete": True})
        self._metadata = {}
        old = self.live_collection()
        changes: list[Any] = []
        if old is not None:
            changes.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.alias))
            )
        changes.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=new, alias_name=self.alias)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=changes)
        self._staging = None
        keep = {new, old} if KEEP_VERSIONS >= 2 else {new}
        for name in self.versions():
            if name not in keep:  # older versions and collections a killed reindex left half-built
                self.client.delete_collection(name)

    def abort(self) -> None:
        self._metadata = {}
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


def _document_json(document: RoleDocument) -> dict[str, Any]:
    return {
        "source": document.source,
        "title": document.title,
        "aliases": list(document.aliases),
        "level": document.level,
    }


def _document(data: dict[str, Any]) -> RoleDocument:
    return RoleDocument(
        str(data["source"]), str(data["title"]), tuple(data.get("aliases", ())), str(data.get("level", ""))
    )


def publish_index(
    store: QdrantVectorStore, search_index: SearchIndex, confirm: Callable[[], None] = lambda: None
) -> int:
    """Copy an opened index version (passages, vectors, sentence vectors, documents) into a new collection
    and move the alias to it; `confirm` runs right before the move (it raises when the lease was lost).
    On any error the staged collection is dropped and the alias stays where it was."""
    passages = search_index.passages
    tokens = search_index.tokens
    store.keyword_average_length = average_keyword_length(passages)
    try:
        for start in range(0, len(passages), UPSERT_BATCH):
            end = min(start + UPSERT_BATCH, len(passages))
            sentences = [search_index.sentence_rows(i) for i in range(start, end)]
            store.add(
                passages[start:end],
                search_index.vectors[start:end],
                sentences,
                [tokens.passage(i) for i in range(start, end)] if tokens is not None else None,
            )
        store.describe(
            search_index.documents,
            built_at=search_index.manifest.built_at,
            fingerprint=search_index.manifest.fingerprint,
            rare_terms=search_index.keyword.rare_vocabulary(),
            token_vectors=tokens is not None,
        )
        confirm()
    except BaseException:
        store.abort()
        raise
    store.swap()
    return len(passages)


class QdrantVersion:
    """One collection the alias pointed at: its documents and role names, and its candidates for a question."""

    def __init__(
        self, source: QdrantCandidates, collection: str, metadata: dict[str, Any], count: int
    ) -> None:
        self.source = source
        self.collection = collection
        self.built_at = str(metadata.get("built_at", ""))
        self.documents = tuple(_document(d) for d in metadata.get("documents", ()))
        self.roles = RoleMatcher(role_documents(self.documents))
        self.role_boost = ROLE_BOOST
        self._count = count
        self._rare = frozenset(str(t) for t in metadata.get("rare_terms", ()))
        # False for collections published before
        self._has_tokens = bool(metadata.get("token_vectors", False))

    def __len__(self) -> int:
        return self._count

    def rare_terms(self, terms: Iterable[str]) -> frozenset[str]:
        """From the list the index folder's keyword index gave when this collection was published."""
        return self._rare.intersection(terms)

    def token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> npt.NDArray[np.float32] | None:
        """index.retrieval.token_match_scores over the passages' `tokens` multivectors; None when the collection
        has none (published past index.store.TOKEN_VECTORS_MAX_PASSAGES, or before they were published).

        A server scores them itself (MAX_SIM restricted to the ids: the sum over the question's word pieces of
        the best cosine, divided here by their number), so no vectors come back over the network. Local mode
        scores a filtered multivector query over every point (73 ms on the handbook's 894 passages), so
        there the ten points are fetched (21 ms) and scored here.
        """
        if not self._has_tokens or not passage_ids or not len(question_tokens):
            return None
        try:
            if self.source.is_local:
                scores = self._fetched_token_match(question_tokens, passage_ids)
            else:
                scores = self._engine_token_match(question_tokens, passage_ids)
        except Exception:
            if self.source.client.collection_exists(self.collection):
                raise
            return None  # dropped since its candidates came (two swaps): answer without the rerank
        if not all(i in scores for i in passage_ids):
            return None
        return np.array([scores[i] for i in passage_ids], dtype=np.float32)

    def _engine_token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> dict[int, float]:
        from qdrant_client import models

        response = self.source.client.query_points(
            self.collection,
            query=np.asarray(question_tokens, dtype=np.float32).tolist(),
            using=TOKENS,
            query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(passage_ids))]),
            limit=len(passage_ids),
            with_payload=False,
        )
        return {int(p.id): float(p.score) / len(question_tokens) for p in response.points}

    def _fetched_token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> dict[int, float]:
        points = self.source.client.retrieve(
            self.collection, ids=list(passage_ids), with_payload=False, with_vectors=[TOKENS]
        )
        rows = {
            int(p.id): np.asarray(p.vector[TOKENS], dtype=np.float32)
            for p in points
            if isinstance(p.vector, dict) and TOKENS in p.vector
        }
        found = [i for i in passage_ids if i in rows]
        scores = token_match_scores(question_tokens, [rows[i] for i in found])
        return dict(zip(found, scores.tolist(), strict=True))

    def candidates(self, question: str, vector: Vectors) -> list[Ranked]:
        """One Query API call: the union of the dense and the sparse (keyword) candidates, each with its
        keyword score (0 when only dense search found it), its dense and sentence vectors and its payload.

        The fusion is the FAISS form's: `cosine + KEYWORD_WEIGHT * keyword / best keyword`, the cosine exact
        from the returned vector; the engine's IDF-weighted sparse score stands in for BM25.
        """
        from qdrant_client import models

        dense = np.asarray(vector, dtype=np.float32).reshape(-1)
        prefetch = [models.Prefetch(query=dense.tolist(), using=DENSE, limit=CANDIDATES)]
        ids, _ = sparse_terms(question)
        if ids:
            sparse = models.SparseVector(indices=ids, values=[1.0] * len(ids))
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE, limit=CANDIDATES))
        keyword_score = "$score[1]" if ids else "$score[0]"  # rescoring by the sparse score keeps the union
        try:
            response = self.source.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=models.FormulaQuery(formula=keyword_score, defaults={keyword_score: 0.0}),
                limit=CANDIDATES * len(prefetch),
                with_payload=True,
                with_vectors=[DENSE, SENTENCES],
            )
        except Exception:
            fresh = self.source.version(refresh=True)  # dropped after two swaps this reader had not noticed
            if fresh.collection == self.collection:
                raise
            return fresh.candidates(question, vector)
        points = response.points
        best = max((float(p.score) for p in points), default=0.0) if ids else 0.0
        ranked = []
        for point in points:
            payload = point.payload or {}
            vectors = point.vector if isinstance(point.vector, dict) else {}
            passage = Passage(
                str(payload["source"]), str(payload["title"]), str(payload["section"]), str(payload["text"])
            )
            cosine = float(np.asarray(vectors[DENSE], dtype=np.float32) @ dense)
            keyword = float(point.score) / best if best > 0 else 0.0
            sentence_rows = np.asarray(vectors[SENTENCES], dtype=np.float32).reshape(-1, len(dense))
            ranked.append(
                Ranked(int(point.id), cosine, cosine + KEYWORD_WEIGHT * keyword, passage, sentence_rows)
            )
        return ranked


class QdrantCandidates:
    """Follows the alias: re-reads which collection it names at most every `check_seconds`, and loads a
    collection's documents (its metadata) once per collection."""

    def __init__(
        self,
        client: QdrantClient,
        model_id: str,
        alias: str = DEFAULT_ALIAS,
        check_seconds: float = ALIAS_CHECK_SECONDS,
    ) -> None:
        self.client = client
        self.model_id = model_id
        self.alias = alias
        self.check_seconds = check_seconds
        self.is_local = _is_local(client)
        self._live: QdrantVersion | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def version(self, refresh: bool = False) -> QdrantVersion:
        """The live version; IndexMissingError before the first publish, IndexIncompatibleError for another model."""
        with self._lock:
            now = time.monotonic()
            live = self._live
            if live is not None and not refresh and now - self._checked < self.check_seconds:
                return live
            name = live_collection(self.client, self.alias)
            if name is None:
                raise IndexMissingError(
                    f"no index in Qdrant: the alias {self.alias!r} names no collection yet"
                )
            if live is None or live.collection != name:
                info = self.client.get_collection(name)
                metadata = dict(info.config.metadata or {})
                if metadata.get("model_id") != self.model_id:
                    raise IndexIncompatibleError(
                        f"the Qdrant index {name} was built with {metadata.get('model_id')!r}, not {self.model_id!r}"
                    )
                live = QdrantVersion(self, name, metadata, int(self.client.count(name, exact=True).count))
            self._live, self._checked = live, now
            return live


def _is_local(client: QdrantClient) -> bool:
    """Local mode (memory or a folder, pure Python in this process), not a server."""
    from qdrant_client.local.qdrant_local import QdrantLocal

    return isinstance(getattr(client, "_client", None), QdrantLocal)


def live_collection(client: QdrantClient, alias: str) -> str | None:
    """The collection an alias points at, or None."""
    for item in client.get_aliases().aliases:
        if item.alias_name == alias:
            return str(item.collection_name)
    return None


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the reindex lease and until when (Unix time)."""

    owner: str
    expires: float


class QdrantLease:
    """One reindex at a time across replicas: a fixed-name collection in the engine holds the owner and expiry.

    Creating a collection is atomic (a second create of the same name fails), so one contender wins.
    The holder renews the expiry while it works; a contender that finds the lease expired (its holder
    crashed) deletes it and creates its own; the holder confirms it still owns the lease right before
    the alias swap, so of two holders racing over an expired lease only one swaps.
    """

    def __init__(
        self, client: QdrantClient, alias: str = DEFAULT_ALIAS, seconds: float = 120.0, owner: str = ""
    ) -> None:
        self.client = client
        self.alias = alias
        self.name = f"{alias}--reindex-lease"
        self.seconds = seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def holder(self) -> LeaseHolder | None:
        """The current holder, or None when no lease exists."""
        try:
            metadata = self.client.get_collection(self.name).config.metadata or {}
        except Exception:
            if not self.client.collection_exists(self.name):
                return None
            raise
        return LeaseHolder(str(metadata.get("owner", "")), float(metadata.get("expires", 0.0)))

    def _create(self) -> None:
        self.client.create_collection(self.name, vectors_config={}, metadata=self._terms())

    def _terms(self) -> dict[str, Any]:
        return {"owner": self.owner, "expires": time.time() + self.seconds}

    def acquire(self) -> None:
        """Take the lease, or raise IndexBusyError while another holder's lease runs."""
        try:
            self._create()
        except Exception as exc:
            held = self.holder()
            if held is None:
                raise
            if held.expires > time.time():
                raise IndexBusyError(
                    f"a reindex is already running ({held.owner}, lease for {held.expires - time.time():.0f} s more);"
                    " wait for it to finish"
                ) from exc
            self.client.delete_collection(self.name)  # the holder crashed: take its lease over
            try:
                self._create()
            except Exception as again:
                raise IndexBusyError(
                    "a reindex is already running (it just took over an expired lease)"
                ) from again
        self.confirm()

    def confirm(self) -> None:
        """Raise IndexBusyError unless this owner still holds an unexpired lease."""
        held = self.holder()
        if held is None or held.owner != self.owner or held.expires <= time.time():
            raise IndexBusyError("the reindex lease was lost (it expired and another replica took it over)")

    def renew(self) -> None:
        """Push the expiry `seconds` ahead; IndexBusyError when the lease is no longer ours."""
        self.confirm()
        self.client.update_collection(self.name, metadata=self._terms())

    def release(self) -> None:
        """Drop the lease if it is still ours."""
        held = self.holder()
        if held is not None and held.owner == self.owner:
            self.client.delete_collection(self.name)

    @contextmanager
    def held(self) -> Iterator[QdrantLease]:
        """Hold the lease for the block, renewing it every third of its length."""
        self.acquire()
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(self.seconds / 3):
                try:
                    self.renew()
                except Exception:  # noqa: BLE001 - confirm() before the swap reports the lost lease
                    return

        renewer = threading.Thread(target=keep, name="reindex-lease", daemon=True)
        renewer.start()
        try:
            yield self
        finally:
            stop.set()
            renewer.join()
            self.release()
