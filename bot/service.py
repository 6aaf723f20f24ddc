"""The Rolecall service: answer questions from the live index and rebuild it, one reindex at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.answer import Answer
from bot.metrics import Metrics, ReindexResult
from bot.settings import Settings, SettingsError
from index.batching import QueryBatcher
from index.builder import BuildReport, build_index
from index.embedding import Embedder, ModelSpec, create_embedder, resolve_model
from index.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError, RolecallError
from index.retrieval import Fusion, Retriever
from index.search import SearchIndex
from index.store import IndexBusyError, check_compatible

Notify = Callable[[str], None]


class ReindexBusyError(RolecallError):
    """A reindex is already running."""


@dataclass(frozen=True)
class ServiceConfig:
    """What the service needs, taken from Settings so tests can build one without the environment."""

    knowledge_dirs: tuple[Path, ...]
    index_dir: Path
    model: str
    top_k: int
    min_score: float
    max_file_bytes: int
    fusion: Fusion = "weighted"  # "rrf" only to measure reciprocal rank fusion against it (bench/quality.py)
    model_cache_dir: Path | None = None  # the ONNX export is cached here; None: use torch
    embedder: str = "onnx"  # "onnx" (ONNX Runtime, falls back to torch) or "torch"
    threads: int = 0  # inference threads; 0: every CPU this process may use

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceConfig:
        if settings.vector_store != "faiss":
            raise SettingsError(
                f"ROLECALL_VECTOR_STORE={settings.vector_store}: the service answers from FAISS only so far;"
                " the Qdrant store is index.qdrant_store (see docs/scaling.md)"
            )
        return cls(
            knowledge_dirs=tuple(settings.knowledge_dirs),
            index_dir=settings.index_dir,
            model=settings.model,
            top_k=settings.top_k,
            min_score=settings.min_score,
            max_file_bytes=settings.max_file_bytes,
            model_cache_dir=settings.model_cache_dir,
            embedder=settings.embedder,
            threads=settings.threads,
        )


class RolecallService:
    """ask() and reindex() over one index folder; the embedding model is loaded once and shared."""

    def __init__(
        self, config: ServiceConfig, embedder: Embedder | None = None, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        spec = resolve_model(config.model or None)
        self.embedder: Embedder = embedder or create_embedder(
            spec, config.embedder, config.model_cache_dir, config.threads
        )
        # The manifest records the embedder that made the vectors; the tokenizer stays the model's.
        self.spec: ModelSpec = ModelSpec(self.embedder.model_id, spec.location)
        self._batcher = QueryBatcher(self.embedder.embed_queries)  # questions from concurrent askers
        self._retriever: Retriever | None = None
        self._swap_lock = threading.Lock()
        self._reindex_lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------------

    def open(self, notify: Notify | None = None) -> None:
        """Load the live index; build it first when it is missing, damaged or from another model."""
        try:
            self._install(self._open_index())
        except (IndexMissingError, IndexCorruptError, IndexIncompatibleError) as exc:
            if notify:
                notify(f"{exc}; building the index from {self._folders()}…")
            self.reindex(progress=notify)
            if self._retriever is None:  # the reindex found nothing to write
                self._install(self._open_index())

    def _open_index(self) -> SearchIndex:
        search_index = SearchIndex.open(self.config.index_dir)
        from index.builder import chunking_id

        check_compatible(search_index.manifest, self.spec.model_id, chunking_id(self.spec.max_tokens()))
        return search_index

    def _install(self, search_index: SearchIndex) -> None:
        with self._swap_lock:
            self._retriever = Retriever(search_index, self.embedder, self._batcher, self.config.fusion)
        self.metrics.passages.set(len(search_index))

    @property
    def is_loaded(self) -> bool:
        """True once an index is open and answering."""
        return self._retriever is not None

    @property
    def passage_count(self) -> int:
        """Passages in the live index, 0 before one is open."""
        retriever = self._retriever
        return len(retriever.index) if retriever is not None else 0

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self.open()
        assert self._retriever is not None
        return self._retriever

    @property
    def known_roles(self) -> tuple[str, ...]:
        """Titles of the indexed documents, for the 'I don't know' message."""
        return tuple(sorted({d.title for d in self.retriever.index.documents}))

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Passages that answer the question, or an empty answer when nothing clears the floor."""
        return self.ask_many([question], k)[0]

    async def ask_async(self, question: str, k: int | None = None) -> Answer:
        """ask() off the event loop, for the chat adapters."""
        return await asyncio.to_thread(self.ask, question, k)

    def ask_many(self, questions: Sequence[str], k: int | None = None) -> list[Answer]:
        """Several questions with one batched embedding call."""
        retriever = self.retriever  # one consistent index for the whole batch, even during a swap
        limit = k or self.config.top_k
        answers = []
        roles = tuple(sorted({d.title for d in retriever.index.documents}))
        for question, hits in zip(questions, retriever.retrieve_many(list(questions), limit), strict=True):
            relevant = tuple(h for h in hits if h.score >= self.config.min_score or h.exact)
            answers.append(Answer(question, relevant, roles))
        return answers

    # -- writing -----------------------------------------------------------------------------

    def reindex(self, progress: Notify | None = None, show_progress_bar: bool = False) -> BuildReport:
        """Refresh the index from the knowledge folders and swap it in; one reindex at a time."""
        if not self._reindex_lock.acquire(blocking=False):
            self.metrics.count_reindex("busy", None, time.time())
            raise ReindexBusyError("a reindex is already running; wait for it to finish")
        started = time.monotonic()
        result: ReindexResult = "failed"
        try:
            try:
                report = build_index(
                    list(self.config.knowledge_dirs),
                    self.config.index_dir,
                    self.spec,
                    lambda: self.embedder,
                    self.config.max_file_bytes,
                    progress,
                    show_progress_bar,
                )
            except IndexBusyError as exc:
                result = "busy"  # another process is building this index folder
                raise ReindexBusyError(str(exc)) from exc
            if report.wrote_new_version:  # else the live index stays; a first ask opens it lazily
                self._install(self._open_index())
            result = "ok"
            return report
        finally:
            self.metrics.count_reindex(result, time.monotonic() - started, time.time())
            self._reindex_lock.release()

    def _folders(self) -> str:
        return ", ".join(str(p) for p in self.config.knowledge_dirs)
