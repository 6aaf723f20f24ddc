"""The Rolecall service: answer from the live index (FAISS files or Qdrant) and rebuild it, one reindex at a time."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bot.answer import Answer, cut_note, cut_question, is_greeting, is_other_language, is_thanks
from bot.metrics import Metrics, ReindexResult
from bot.scope import default_scope
from bot.settings import Settings
from index.batching import QueryBatcher
from index.builder import BuildReport, build_index
from index.embedding import (
    Embedder,
    ModelSpec,
    QueryPrecision,
    create_embedder,
    query_embedding,
    resolve_model,
)
from index.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError, RolecallError
from index.memory import return_free_memory
from index.retrieval import Fusion, Retriever
from index.roles import RoleDocument, names_a_role, role_documents
from index.search import SearchIndex
from index.store import IndexBusyError, check_compatible, current_version
from index.terms import default_normaliser
from index.types import Hit

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from index.qdrant_store import QdrantCandidates

log = logging.getLogger(__name__)
Notify = Callable[[str], None]


class ReindexBusyError(RolecallError):
    """A reindex is already running."""


KnownTitles = tuple[tuple[str, ...], tuple[str, ...]]  # role titles, other documents' titles
# Longer questions are cut (with a note): the adapters cut at ROLECALL_MAX_QUESTION_CHARS (at most this),
# so this bounds what any other caller (eval files, scripts) costs the matchers.
MAX_QUESTION_CHARS = 10_000
# A highlight holding this many of the question's words, and at least this share of them, answers it even
# under the floor ("base is stuck at top of band, what else can i push on?" against a sentence that says
# so, cosine 0.40). No off-topic eval question shares more than two words with any highlight.
WORDS_HELD_TO_ANSWER = 3
SHARE_HELD_TO_ANSWER = 1 / 3


@dataclass(frozen=True)
class ServiceConfig:
    """What the service needs, taken from Settings so tests can build one without the environment."""

    knowledge_dirs: tuple[Path, ...]
    index_dir: Path
    model: str
    top_k: int
    min_score: float
    max_file_bytes: int
    # below the floor, a passage of the top k still shows after those that clear it
    support_score: float = 0.30
    # a refused question names the section of its first passage when that scores this much ("nearest")
    nearest_score: float = 0.34
    fusion: Fusion = "weighted"  # "rrf" only to measure reciprocal rank fusion against it (bench/quality.py)
    model_cache_dir: Path | None = None  # the ONNX export is cached here; None: use torch
    embedder: str = "onnx"  # "onnx" (ONNX Runtime, falls back to torch) or "torch"
    # ONNX: questions through the exact model, the int8 copy ("int8"), or by CPU
    query_precision: QueryPrecision = "fp32"
    threads: int = 0  # inference threads; 0: every CPU this process may use
    # qdrant: answer from the engine, publish reindexes there
    vector_store: Literal["faiss", "qdrant"] = "faiss"
    qdrant_url: str = ""  # a Qdrant server; else qdrant_path (local mode), else memory
    qdrant_path: Path | None = None
    qdrant_api_key: str = field(default="", repr=False)
    reindex_lease_seconds: float = 120.0  # Qdrant: how long a crashed reindex blocks the next one
    # how often a server looks which version is live: where the Qdrant alias points, or the index folder's
    # CURRENT (a version `rolecall index` or another process published)
    alias_check_seconds: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceConfig:
        return cls(
            knowledge_dirs=tuple(settings.knowledge_dirs),
            index_dir=settings.index_dir,
            model=settings.model,
            top_k=settings.top_k,
            min_score=settings.min_score,
            support_score=settings.support_score,
            nearest_score=settings.nearest_score,
            max_file_bytes=settings.max_file_bytes,
            model_cache_dir=settings.model_cache_dir,
            embedder=settings.embedder,
            query_precision=settings.query_precision,
            threads=settings.threads,
            vector_store=settings.vector_store,
            qdrant_url=settings.qdrant_url,
            qdrant_path=settings.qdrant_path,
            qdrant_api_key=settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else "",
            reindex_lease_seconds=settings.reindex_lease_seconds,
        )


class RolecallService:
    """ask() and reindex() over one index folder; the embedding model is loaded once and shared.

    With `vector_store="qdrant"` the questions are answered from the collection the Qdrant alias names
    (so every replica on one Qdrant answers from the same version), and a reindex builds the index
    folder as usual (it is the embedding cache) and then publishes it as a new collection, holding a
    lease in Qdrant so that one replica at a time does so.
    """

    def __init__(
        self,
        config: ServiceConfig,
        embedder: Embedder | None = None,
        metrics: Metrics | None = None,
        qdrant_client: QdrantClient | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        spec = resolve_model(config.model or None)
        self.embedder: Embedder = embedder or create_embedder(
            spec, config.embedder, config.model_cache_dir, config.threads, config.query_precision
        )
        # The manifest records the embedder that made the vectors; the tokenizer stays the model's.
        self.spec: ModelSpec = ModelSpec(self.embedder.model_id, spec.location)
        self._batcher = QueryBatcher(query_embedding(self.embedder))  # questions from concurrent askers
        self._retriever: Retriever | None = None
        self._prepares = False  # a server: each index installed is prepared (Retriever.prepare)
        self._swap_lock = threading.Lock()
        self._reindex_lock = threading.Lock()
        self._live_version: Path | None = None  # the version folder answering (FAISS)
        self._unfollowed: Path | None = None  # a published version follow_current could not open
        self._qdrant_client = qdrant_client  # shared by tests; else opened from the config on first use
        self._owns_qdrant_client = qdrant_client is None
        self._qdrant_source: QdrantCandidates | None = None
        self._known_titles: tuple[tuple[RoleDocument, ...], KnownTitles] | None = None  # per live version

    # -- Qdrant --------------------------------------------------------------------------------

    @property
    def uses_qdrant(self) -> bool:
        return self.config.vector_store == "qdrant"

    def _qdrant(self) -> QdrantClient:
        if self._qdrant_client is None:
            from index.qdrant_store import open_client

            path = self.config.qdrant_path
            if path is not None and not self.config.qdrant_url:
                path.mkdir(parents=True, exist_ok=True)
            self._qdrant_client = open_client(
                str(path) if path else "", self.config.qdrant_url, self.config.qdrant_api_key
            )
        return self._qdrant_client

    def live_collection(self) -> str | None:
        """The Qdrant collection the alias names now (None before the first publish)."""
        from index.qdrant_store import DEFAULT_ALIAS, live_collection

        return live_collection(self._qdrant(), DEFAULT_ALIAS)

    def _open_qdrant(self) -> None:
        """Install a retriever that follows the alias; IndexMissingError while it names no collection."""
        from index.qdrant_store import QdrantCandidates

        if self._qdrant_source is None:
            self._qdrant_source = QdrantCandidates(
                self._qdrant(), self.spec.model_id, check_seconds=self.config.alias_check_seconds
            )
        version = self._qdrant_source.version(refresh=True)
        with self._swap_lock:
            if self._retriever is None:
                self._retriever = Retriever(self._qdrant_source, self.embedder, self._batcher)
        self.metrics.passages.set(len(version))

    # -- reading -----------------------------------------------------------------------------

    def open(self, notify: Notify | None = None) -> None:
        """Load the live index; build it first when it is missing, damaged or from another model."""
        try:
            if self.uses_qdrant:
                self._open_qdrant()
            else:
                search_index = self._open_index()
                self._install(search_index)
                self._warn_if_built_elsewhere(search_index)
        except (IndexMissingError, IndexCorruptError, IndexIncompatibleError) as exc:
            if notify:
                first = isinstance(exc, IndexMissingError) and not self.uses_qdrant
                reason = f"no index in {self.config.index_dir} yet" if first else str(exc)
                notify(f"{reason}; building the index from {self._folders()}…")
            try:
                self.reindex(progress=notify)
            except ReindexBusyError as busy:
                if not self.uses_qdrant:
                    raise
                self._wait_for_other_replica(str(busy), notify)  # it publishes the alias we then follow
            if self._retriever is None:  # the reindex found nothing to write
                self._open_qdrant() if self.uses_qdrant else self._install(self._open_index())

    def _wait_for_other_replica(self, reason: str, notify: Notify | None) -> None:
        """Qdrant, first start: another replica holds the reindex lease; follow its alias once it exists.

        Should that replica crash, its lease expires and this one builds the index itself.
        """
        if notify:
            notify(f"{reason}; waiting for that replica's index")
        deadline = time.monotonic() + 10 * self.config.reindex_lease_seconds
        while time.monotonic() < deadline:
            time.sleep(min(2.0, self.config.reindex_lease_seconds / 4))
            try:
                self._open_qdrant()
                return
            except IndexMissingError:
                pass
            try:
                self.reindex(progress=notify)  # succeeds once a crashed holder's lease has expired
                return
            except ReindexBusyError:
                continue
        raise ReindexBusyError(
            f"{reason}; still no index after waiting {10 * self.config.reindex_lease_seconds} s"
        )

    def _open_index(self) -> SearchIndex:
        search_index = SearchIndex.open(self.config.index_dir)
        from index.builder import chunking_id

        check_compatible(search_index.manifest, self.spec.model_id, chunking_id(self.spec.max_tokens()))
        return search_index

    def follow_current(self) -> bool:
        """FAISS: answer from the version the index folder's CURRENT names, when another process (`rolecall
        index`, another server's reindex) published one since this one was opened. True when it switched.

        A version that cannot be opened (damaged, another model) is logged once and the live one answers on.
        """
        if self.uses_qdrant or self._retriever is None:
            return False
        live = self._live_version
        try:
            current = current_version(self.config.index_dir)
        except RolecallError:
            return False  # a CURRENT being replaced, or damaged: the next look, or a reindex, settles it
        if live is None or current is None or current == live or current == self._unfollowed:
            return False
        if not self._reindex_lock.acquire(blocking=False):
            return False  # this process is publishing a version itself, and installs it
        try:
            search_index = self._open_index()
            if search_index.version_path != current:
                return False  # replaced again meanwhile: the next look takes the newest
            self._install(search_index)
        except RolecallError as exc:
            self._unfollowed = current
            log.warning("not answering from the index version %s: %s", current.name, exc)
            return False
        finally:
            self._reindex_lock.release()
        log.info("index version %s published by another process: answering from it", current.name)
        return True

    def _install(self, search_index: SearchIndex) -> None:
        retriever = Retriever(search_index, self.embedder, self._batcher, self.config.fusion)
        if self._prepares:  # before the swap, so no question meets an unprepared passage
            retriever.prepare()
        with self._swap_lock:
            self._retriever = retriever
            self._live_version = search_index.version_path
        self.metrics.passages.set(len(search_index))

    def prepare(self) -> int:
        """For a server: work out what each passage's highlight needs now, and after every reindex, rather
        than when a question first meets the passage (Retriever.prepare); opens the index if needed.
        Returns how many passages were prepared."""
        self._prepares = True
        if self._retriever is None:
            self.open()  # installing the index prepares it
        retriever = self._retriever
        return retriever.prepare() if retriever is not None else 0  # done already: returns the count

    @property
    def is_loaded(self) -> bool:
        """True once an index is open and answering."""
        return self._retriever is not None

    @property
    def query_embedding(self) -> str:
        """How questions are embedded, for the start-up log: "onnx int8", "onnx fp32", "torch" (loads the model)."""
        backend = str(getattr(self.embedder, "backend", type(self.embedder).__name__))
        return f"{backend} {getattr(self.embedder, 'query_precision', '')}" if backend == "onnx" else backend

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
        """The roles the indexed role documents describe, for the adapters' `roles` command."""
        return self._known(self.retriever.index.documents)[0]

    @property
    def known_topics(self) -> tuple[str, ...]:
        """Titles of the indexed documents that do not describe a role."""
        return self._known(self.retriever.index.documents)[1]

    def ask(self, question: str, k: int | None = None) -> Answer:
        """Passages that answer the question, or an empty answer when nothing clears the floor."""
        return self.ask_many([question], k)[0]

    async def ask_async(self, question: str, k: int | None = None) -> Answer:
        """ask() off the event loop, for the chat adapters."""
        return await asyncio.to_thread(self.ask, question, k)

    def ask_many(self, questions: Sequence[str], k: int | None = None) -> list[Answer]:
        """Several questions with one batched embedding call."""
        limit = k or self.config.top_k
        if limit < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        readable = [readable_text(q) for q in questions]  # one unencodable character must not fail the batch
        cut = [cut_question(q, MAX_QUESTION_CHARS) for q in readable]
        asked = [text for text, _ in cut]
        retriever = self.retriever  # one consistent index for the whole batch, even during a swap
        answers = []
        version = retriever.index
        roles, topics = self._known(version.documents)
        normalise, scope = default_normaliser(), default_scope()
        # Not searched: a greeting or a thank-you (rendered as how to use the bot, or you're welcome), and a
        # question in another language (the model and the documents are English: asked again in English)
        unsearched = [is_greeting(q) or is_thanks(q) or is_other_language(q) for q in asked]
        searched = [q for q, skip in zip(asked, unsearched, strict=True) if not skip]
        found = iter(retriever.retrieve_many(searched, limit))
        for question, original, (_, was_cut), skip in zip(asked, readable, cut, unsearched, strict=True):
            notes = (cut_note(len(question), len(original), MAX_QUESTION_CHARS),) if was_cut else ()
            if skip:
                answers.append(Answer(question, (), roles, notes, topics))
                continue
            hits = next(found)
            normalised = normalise(question)
            # a role the asker is leaving, and the field words in its name, do not bring the question into
            # scope: "how do I move from software engineer to product manager?" asks about product managers
            if scope.mentions_another_occupation(normalised) and scope.is_about_another_occupation(
                version.roles.subject(normalised, from_counts=True), version.roles.named_in_full(normalised)
            ):
                answers.append(Answer(question, (), roles, notes, topics))
                continue
            shown = self._shown(hits)
            nearest = None if shown else self._nearest(hits)
            answers.append(Answer(question, shown, roles, notes, topics, nearest))
        return answers

    def _known(self, documents: tuple[RoleDocument, ...]) -> KnownTitles:
        """Titles of the role documents, and of the others, for the 'I don't know' message (kept per version)."""
        cached = self._known_titles
        if cached is not None and cached[0] is documents:
            return cached[1]
        # titles as role names ("About the … role" -> the role); a ladder with aliases is a topic here
        role_docs = [d for d in role_documents(documents) if names_a_role(d)]
        role_sources = {d.source for d in role_docs}
        roles = sorted({d.title for d in role_docs})
        topics = sorted({d.title for d in documents if d.source not in role_sources} - set(roles))
        known = (tuple(roles), tuple(topics))
        self._known_titles = (documents, known)
        return known

    def _shown(self, hits: Sequence[Hit]) -> tuple[Hit, ...]:
        """The floor decides whether to answer; passages that clear it come first, then supporting ones.

        A passage clears the floor with its score, an exact term, a highlight holding enough of the
        question's words (`_holds_the_question`), or a word of the question that few passages hold
        (`Hit.rare_term`) on the page of a role the question names. Once one does, a passage holding such a
        rare word counts as clearing it too: the word alone does not make a question answerable ("flights to
        Lisbon"), but it says which passage answers one that is ("will they make me write debounce?"). The
        rest of the top k follow in rank order if their score reaches `support_score` (a second section of
        the right document often answers with a weaker single sentence), unless a passage holding the
        question's exact term cleared the floor: then only the passages that cleared it are shown.
        """
        clears = [
            h.score >= self.config.min_score
            or h.exact
            or (h.rare_term and h.role_named)
            or _holds_the_question(h)
            for h in hits
        ]
        if not any(clears):
            return ()
        clears = [ok or h.rare_term for h, ok in zip(hits, clears, strict=True)]
        relevant = [h for h, ok in zip(hits, clears, strict=True) if ok]
        if any(h.exact for h in relevant):
            return tuple(relevant)  # a figure or acronym was asked for: passages without it do not support
        supporting = [
            h for h, ok in zip(hits, clears, strict=True) if not ok and h.score >= self.config.support_score
        ]
        return tuple(relevant + supporting)

    def _nearest(self, hits: Sequence[Hit]) -> Hit | None:
        """For a question no passage answers: its first passage, if that scores `nearest_score`, whose section
        the refusal names (at 0.34, the right section for 10 of the 27 answerable questions the eval sets'
        floor refuses, another for 6; bench/README.md)."""
        # called only when nothing cleared the floor, so a nearest_score at or above it names nothing
        return hits[0] if hits and hits[0].score >= self.config.nearest_score else None

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
                if self.uses_qdrant:
                    report = self._reindex_qdrant(progress, show_progress_bar)
                else:
                    report = self._build(progress, show_progress_bar)
                    if report.wrote_new_version:  # else the live index stays; a first ask opens it lazily
                        self._install(self._open_index())
            except IndexBusyError as exc:
                # another process is building this index folder, or another replica publishing
                result = "busy"
                raise ReindexBusyError(str(exc)) from exc
            result = "ok"
            return report
        finally:
            return_free_memory()  # the build's buffers, and the old index once swapped out
            self.metrics.count_reindex(result, time.monotonic() - started, time.time())
            self._reindex_lock.release()

    def _build(self, progress: Notify | None, show_progress_bar: bool) -> BuildReport:
        """Refresh the index folder (unchanged documents keep their vectors)."""
        return build_index(
            list(self.config.knowledge_dirs),
            self.config.index_dir,
            self.spec,
            lambda: self.embedder,
            self.config.max_file_bytes,
            progress,
            show_progress_bar,
        )

    def _reindex_qdrant(self, progress: Notify | None, show_progress_bar: bool) -> BuildReport:
        """Build the index folder, then publish it as a new collection and move the alias, under the lease.

        Published when the folder got a new version or the live collection holds other content (none yet,
        another model, other documents: compared by the manifest's fingerprint, not by build time).
        """
        from index.qdrant_store import QdrantLease, QdrantVectorStore, live_collection, publish_index

        client = self._qdrant()
        lease = QdrantLease(client, seconds=self.config.reindex_lease_seconds)
        with lease.held():
            report = self._build(progress, show_progress_bar)
            search_index = self._open_index()
            live = live_collection(client, lease.alias)
            metadata = (client.get_collection(live).config.metadata or {}) if live else {}
            published = (metadata.get("model_id"), metadata.get("fingerprint"))
            if report.wrote_new_version or published != (
                self.spec.model_id,
                search_index.manifest.fingerprint,
            ):
                if progress:
                    progress(f"publishing {len(search_index)} passages to Qdrant")
                store = QdrantVectorStore(
                    client, self.spec.model_id, search_index.manifest.dimension, owns_client=False
                )
                publish_index(store, search_index, lease.confirm)
                report.wrote_new_version = True
        self._open_qdrant()
        return report

    def close(self) -> None:
        """Release the Qdrant client this service opened (a local-mode folder admits one client at a time)."""
        if self._owns_qdrant_client and self._qdrant_client is not None:
            self._qdrant_client.close()

    def _warn_if_built_elsewhere(self, search_index: SearchIndex) -> None:
        """Warn when the index holds documents of folders this configuration does not read: it answers from
        them now, and the next reindex (from chat, or a file watcher) removes them."""
        configured = {str(folder.resolve()) for folder in self.config.knowledge_dirs}
        others = sorted(
            {r.root for r in search_index.manifest.documents if not r.skipped_reason} - configured
        )
        if others:
            message = (
                f"the index in {self.config.index_dir} holds documents from {', '.join(others)}, not among the"
                f" knowledge folders configured ({self._folders()}): the next reindex removes them"
            )
            log.warning("%s", message)

    def _folders(self) -> str:
        return ", ".join(str(p) for p in self.config.knowledge_dirs)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# invisible: a byte-order mark, zero-width spaces, and direction marks and overrides (U+202E turns the rest
# of an echoed line around)
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")


def _holds_the_question(hit: Hit) -> bool:
    """The highlight holds WORDS_HELD_TO_ANSWER of the question's keyword stems, and SHARE_HELD_TO_ANSWER of them."""
    return (
        hit.highlight_holds >= WORDS_HELD_TO_ANSWER
        and hit.highlight_holds >= SHARE_HELD_TO_ANSWER * hit.question_words
    )


def readable_text(text: str) -> str:
    """`text` as the tokenizer can take it: a lone surrogate (from a broken client) becomes "?", control
    characters other than tab and newline become spaces, and invisible format characters go."""
    return _INVISIBLE.sub("", _CONTROL.sub(" ", text.encode("utf-8", "replace").decode("utf-8")))
