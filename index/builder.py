"""Build or refresh an index from knowledge folders, re-embedding only documents whose bytes changed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from index import store
from index.chunking import chunk_document, embedding_text, passage_sentences
from index.embedding import Embedder, ModelSpec, TokenCounter, TokenEmbedder, TokenVectors
from index.errors import IndexCorruptError, IndexIncompatibleError, KnowledgeFolderError, NoDocumentsError
from index.keyword import KeywordIndex
from index.search import KEYWORD_FOLDER, build_hnsw, dense_kind
from index.store import DocumentRecord, Manifest
from index.terms import TERMS_FILE, default_normaliser
from index.types import Document, Passage, SkippedFile

CHUNKING_VERSION = "sentences-v2"  # v2: highlight sentences embedded at build time
TARGET_TOKENS = 220
OVERLAP_SENTENCES = 1


def chunking_id(max_tokens: int) -> str:
    """Identifies chunking and term settings in the manifest; a change forces a full rebuild."""
    terms = hashlib.sha256(TERMS_FILE.read_bytes()).hexdigest()[:12]
    return f"{CHUNKING_VERSION}:target={TARGET_TOKENS}:overlap={OVERLAP_SENTENCES}:window={max_tokens}:terms={terms}"


@dataclass
class BuildReport:
    """What a build did, for the summary printed to admins."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    passages: int = 0
    embedded_passages: int = 0
    model_loaded: bool = False
    wrote_new_version: bool = False
    rebuild_reason: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: the counts an admin wants first."""
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)},"
            f" unchanged {len(self.unchanged)}, skipped {len(self.skipped)};"
            f" {self.passages} passages ({self.embedded_passages} embedded) in {self.seconds:.1f}s"
        )


ProgressCallback = Callable[[str], None]


def build_index(
    knowledge_dirs: Sequence[Path],
    index_dir: Path,
    spec: ModelSpec,
    embedder_factory: Callable[[], Embedder],
    max_bytes: int | None = None,
    progress: ProgressCallback | None = None,
    show_progress_bar: bool = False,
) -> BuildReport:
    """Scan, load, chunk and embed what changed, then atomically publish a new index version."""
    from index.loaders import DEFAULT_MAX_BYTES, iter_candidate_files, load_file  # bs4, pypdf, docx: 0.15 s

    max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    started = time.perf_counter()
    report = BuildReport()
    say = progress or (lambda _message: None)
    counter: TokenCounter | None = None
    max_tokens = spec.max_tokens()
    chunking = chunking_id(max_tokens)
    with store.build_lock(index_dir):
        previous = _previous_index(index_dir, spec.model_id, chunking, report)
        old_records = {(r.root, r.source): r for r in previous.manifest.documents} if previous else {}
        kept_records: list[DocumentRecord] = []
        fresh: list[tuple[DocumentRecord, list[Passage]]] = []
        seen_sources: dict[str, str] = {}
        for root in knowledge_dirs:
            root_key = str(root.resolve())
            files = iter_candidate_files(root)
            say(f"scanning {root}: {len(files)} files")
            for path in files:
                source = path.relative_to(root).as_posix()
                if source in seen_sources:
                    report.skipped.append(
                        SkippedFile(source, f"same path already loaded from {seen_sources[source]}")
                    )
                    continue
                seen_sources[source] = str(root)
                old = old_records.get((root_key, source))
                digest = _file_hash(path, max_bytes)
                if old is not None and digest is not None and old.content_hash == digest:
                    kept_records.append(old)
                    if old.skipped_reason:
                        report.skipped.append(SkippedFile(source, old.skipped_reason))
                    else:
                        report.unchanged.append(source)
                    continue
                loaded = load_file(path, root, max_bytes)
                if isinstance(loaded, SkippedFile):
                    report.skipped.append(loaded)
                    kept_records.append(
                        DocumentRecord(source, root_key, digest or "", skipped_reason=loaded.reason)
                    )
                    continue
                (report.changed if old is not None and not old.skipped_reason else report.added).append(
                    source
                )
                counter = counter or TokenCounter(spec)
                passages = chunk_document(loaded, counter.count, max_tokens, TARGET_TOKENS, OVERLAP_SENTENCES)
                record = _record(loaded, root_key, len(passages))
                fresh.append((record, passages))
                kept_records.append(record)
            if not root.is_dir():
                # Its files would count as unreadable and drop out of the index: fail instead.
                raise KnowledgeFolderError(f"Knowledge folder disappeared during the reindex: {root}")
        current_keys = {(r.root, r.source) for r in kept_records}
        report.removed = sorted(
            s
            for (root, s), r in old_records.items()
            if (root, s) not in current_keys and not r.skipped_reason
        )

        if not any(not r.skipped_reason for r in kept_records):
            folders = ", ".join(str(d) for d in knowledge_dirs)
            raise NoDocumentsError(
                f"no readable documents in {folders} ({len(report.skipped)} files skipped)"
            )
        nothing_changed = previous is not None and not (report.added or report.changed or report.removed)
        if (
            nothing_changed
            and previous is not None
            and _same_skips(previous.manifest, kept_records)
            and previous.manifest.dense == dense_kind(previous.manifest.passage_count)
        ):
            report.passages = previous.manifest.passage_count
            report.seconds = time.perf_counter() - started
            return report

        new_passages = [p for _, ps in fresh for p in ps]
        new_vectors: np.ndarray | None = None
        new_sentences: tuple[np.ndarray, np.ndarray] | None = None
        new_tokens: list[TokenVectors] | None = None
        fresh_ids = {id(record) for record, _ in fresh}
        kept = [r for r in kept_records if not r.skipped_reason and id(r) not in fresh_ids]
        # Token vectors only for a small index, and only if the kept documents' are there to reuse
        with_tokens = sum(r.passage_count for r in kept) + len(new_passages) <= store.TOKEN_VECTORS_MAX_PASSAGES and (
            not kept or (previous is not None and previous.tokens is not None)
        )
        if new_passages:
            embedder = embedder_factory()
            report.model_loaded = True
            with_tokens = with_tokens and isinstance(embedder, TokenEmbedder)
            new_vectors, new_sentences, new_tokens = _embed_passages(
                embedder, new_passages, say, show_progress_bar, with_tokens
            )
            report.embedded_passages = len(new_passages)
        dimension = (
            int(new_vectors.shape[1])
            if new_vectors is not None
            else previous.manifest.dimension
            if previous
            else 0
        )
        records, passages, vectors, sentence_vectors, offsets = _assemble(
            kept_records, fresh, new_vectors, new_sentences, previous, dimension
        )
        manifest = Manifest(
            format_version=store.FORMAT_VERSION,
            model_id=spec.model_id,
            dimension=dimension,
            chunking=chunking,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            documents=tuple(records),
            passage_count=len(passages),
            dense=dense_kind(len(passages)),
        )
        say(f"indexing {len(passages)} passages")
        normalise = default_normaliser()
        keyword = KeywordIndex.build([normalise(f"{p.section} {p.text}") for p in passages])
        writers: list[tuple[str, Callable[[Path], None]]] = [(KEYWORD_FOLDER, keyword.save)]
        if with_tokens:
            tokens = _assemble_tokens(kept_records, fresh, new_tokens or [], previous)
            writers.extend(store.token_writers(tokens, dimension))
        if manifest.dense != store.FLAT:
            say(f"building the HNSW graph of {len(passages)} passages")
            graph = build_hnsw(vectors)
            writers.append((store.DENSE_FILE, lambda path: store.write_dense(graph, path)))
        store.write_version(index_dir, manifest, passages, vectors, sentence_vectors, offsets, writers)
        report.passages = len(passages)
        report.wrote_new_version = True
        report.seconds = time.perf_counter() - started
        return report


def _previous_index(
    index_dir: Path, model_id: str, chunking: str, report: BuildReport
) -> store.StoredIndex | None:
    """The live index if it can be reused; otherwise None and the reason in the report."""
    try:
        previous = store.load(index_dir)
        store.check_compatible(previous.manifest, model_id, chunking)
        _check_keyword_index(previous)
        return previous
    except (IndexIncompatibleError, IndexCorruptError) as exc:
        report.rebuild_reason = str(exc)
        return None
    except store.IndexMissingError:
        return None


def _check_keyword_index(previous: store.StoredIndex) -> None:
    """A version whose keyword index is damaged is not "up to date": without this check a build
    that finds no changed documents would keep it, and the index could never be opened again."""
    try:
        KeywordIndex.load(previous.path / KEYWORD_FOLDER, len(previous.passages))
    except Exception as exc:
        raise IndexCorruptError(f"the keyword index in {previous.path} is damaged ({exc})") from exc


def _file_hash(path: Path, max_bytes: int) -> str | None:
    """sha256 of the file's bytes, or None when it is too large or unreadable (the loader says why)."""
    try:
        if path.stat().st_size > max_bytes:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _record(document: Document, root_key: str, passage_count: int) -> DocumentRecord:
    return DocumentRecord(
        source=document.source,
        root=root_key,
        content_hash=document.content_hash,
        title=document.title,
        aliases=document.aliases,
        metadata=dict(document.metadata),
        passage_count=passage_count,
    )


def _same_skips(manifest: Manifest, records: list[DocumentRecord]) -> bool:
    before = {(r.root, r.source, r.skipped_reason) for r in manifest.documents}
    return before == {(r.root, r.source, r.skipped_reason) for r in records}


def _embed_passages(
    embedder: Embedder,
    passages: Sequence[Passage],
    say: ProgressCallback,
    show_progress_bar: bool,
    with_tokens: bool = False,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], list[TokenVectors] | None]:
    """Passage vectors, the vectors of their sentences (for the highlight) with per-passage offsets,
    and with `with_tokens` the passages' token vectors (for reranking) from the same pass.

    Passages and distinct sentences go to the model in one call, so its length-sorted batches mix
    them; a sentence repeated by overlapping windows is embedded once.
    """
    sentence_lists = [passage_sentences(p) for p in passages]
    distinct = list(dict.fromkeys(s for sentences in sentence_lists for s in sentences))
    say(f"embedding {len(passages)} passages and {len(distinct)} sentences")
    texts = [embedding_text(p) for p in passages] + distinct
    tokens: list[TokenVectors] | None = None
    if with_tokens and isinstance(embedder, TokenEmbedder):
        vectors, tokens = embedder.embed_documents_with_tokens(texts, len(passages), show_progress_bar)
    else:
        vectors = embedder.embed_documents(texts, show_progress_bar)
    passage_vectors, distinct_vectors = vectors[: len(passages)], vectors[len(passages) :]
    row_of = {sentence: row for row, sentence in enumerate(distinct)}
    rows = [row_of[s] for sentences in sentence_lists for s in sentences]
    offsets = np.concatenate([[0], np.cumsum([len(sentences) for sentences in sentence_lists])])
    sentence_vectors = distinct_vectors[np.asarray(rows, dtype=np.int64)].reshape(-1, vectors.shape[1])
    return passage_vectors, (sentence_vectors, offsets.astype(np.int64)), tokens


def _assemble_tokens(
    records: list[DocumentRecord],
    fresh: list[tuple[DocumentRecord, list[Passage]]],
    new_tokens: list[TokenVectors],
    previous: store.StoredIndex | None,
) -> list[TokenVectors]:
    """The token vectors of the assembled passages: new documents' from this build, the others' from
    the previous version (the same order as _assemble's records)."""
    fresh_tokens: dict[int, list[TokenVectors]] = {}
    offset = 0
    for record, passages in fresh:
        fresh_tokens[id(record)] = new_tokens[offset : offset + len(passages)]
        offset += len(passages)
    tokens: list[TokenVectors] = []
    for record in records:
        if record.skipped_reason:
            continue
        if id(record) in fresh_tokens:
            tokens.extend(fresh_tokens[id(record)])
        else:
            assert previous is not None and previous.tokens is not None
            start = record.first_passage  # a kept record still holds its place in the previous version
            tokens.extend(previous.tokens.block(start, start + record.passage_count))
    return tokens


def _assemble(
    records: list[DocumentRecord],
    fresh: list[tuple[DocumentRecord, list[Passage]]],
    new_vectors: np.ndarray | None,
    new_sentences: tuple[np.ndarray, np.ndarray] | None,
    previous: store.StoredIndex | None,
    dimension: int,
) -> tuple[list[DocumentRecord], list[Passage], np.ndarray, np.ndarray, np.ndarray]:
    """Lay documents out in scan order, reusing old passages and vectors for unchanged ones.

    Returns records, passages, passage vectors, sentence vectors and the P+1 sentence offsets.
    """
    empty = np.zeros((0, dimension), dtype=np.float32)
    fresh_rows: dict[int, tuple[list[Passage], np.ndarray, np.ndarray, np.ndarray]] = {}
    offset = 0
    for record, passages in fresh:
        end = offset + len(passages)
        if new_vectors is not None and new_sentences is not None:
            sentence_vectors, sentence_offsets = new_sentences
            first, last = int(sentence_offsets[offset]), int(sentence_offsets[end])
            fresh_rows[id(record)] = (
                passages,
                new_vectors[offset:end],
                sentence_vectors[first:last],
                sentence_offsets[offset : end + 1] - first,
            )
        else:
            fresh_rows[id(record)] = (passages, empty, empty, np.zeros(1, dtype=np.int64))
        offset = end
    out_records: list[DocumentRecord] = []
    out_passages: list[Passage] = []
    blocks: list[np.ndarray] = []
    sentence_blocks: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    for record in records:
        if record.skipped_reason:
            out_records.append(record)
            continue
        if id(record) in fresh_rows:
            passages, rows, sentence_rows, sentence_offsets = fresh_rows[id(record)]
        else:
            assert previous is not None
            start, end = record.first_passage, record.first_passage + record.passage_count
            passages, rows = previous.passages[start:end], previous.vectors[start:end]
            sentence_rows, sentence_offsets = previous.sentences.span(start, end)
        out_records.append(replace(record, first_passage=len(out_passages), passage_count=len(passages)))
        out_passages.extend(passages)
        blocks.append(np.asarray(rows, dtype=np.float32).reshape(-1, dimension))
        sentence_blocks.append(np.asarray(sentence_rows, dtype=np.float32).reshape(-1, dimension))
        counts.append(np.diff(sentence_offsets))
    vectors = np.concatenate(blocks) if blocks else empty
    sentence_vectors = np.concatenate(sentence_blocks) if sentence_blocks else empty
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1)
    return out_records, out_passages, vectors, sentence_vectors, offsets.astype(np.int64)
