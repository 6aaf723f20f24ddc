"""Build or refresh an index from knowledge folders, re-embedding only documents whose bytes changed."""

from __future__ import annotations

import hashlib
import stat
import time
from collections.abc import Callable, Iterable, Sequence
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

# v2: highlight sentences embedded at build time; v3: passages keep their line starts;
# v4: Chinese and Japanese full stops end sentences, runs without spaces are cut to fit, unreadable runs left out
CHUNKING_VERSION = "sentences-v4"
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
    wrote_new_version: bool = False
    rebuild_reason: str = ""
    notes: list[str] = field(default_factory=list)  # what an admin should know beyond the counts
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: the counts an admin wants first."""
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)},"
            f" unchanged {len(self.unchanged)}, skipped {len(self.skipped)};"
            f" {_count(self.passages, 'passage')} ({self.embedded_passages} embedded) in {self.seconds:.1f}s"
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
    """Scan, load, chunk and embed what changed, then atomically publish a new index version (none when nothing did)."""
    from index.loaders import DEFAULT_MAX_BYTES, iter_candidate_files, load_file  # bs4, pypdf, docx: 0.15 s

    max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    started = time.perf_counter()
    report = BuildReport()
    say = progress or (lambda _message: None)
    counter: TokenCounter | None = None
    max_tokens = spec.max_tokens()
    chunking = chunking_id(max_tokens)
    store.check_index_folder(index_dir)
    _check_index_outside_knowledge(index_dir, knowledge_dirs)
    with store.build_lock(index_dir):
        previous = _previous_index(index_dir, spec.model_id, chunking, report)
        old_records = {(r.root, r.source): r for r in previous.manifest.documents} if previous else {}
        kept_records: list[DocumentRecord] = []
        fresh: list[tuple[DocumentRecord, list[Passage]]] = []
        seen_sources: dict[str, str] = {}
        for root in knowledge_dirs:
            root_key = str(root.resolve())
            files = iter_candidate_files(root)
            say(f"scanning {root}: {_count(len(files), 'file')}")
            for path in files:
                source = path.relative_to(root).as_posix()
                if source in seen_sources:
                    report.skipped.append(
                        SkippedFile(source, f"same path already loaded from {seen_sources[source]}")
                    )
                    continue
                seen_sources[source] = str(root)
                old = old_records.get((root_key, source))
                indexed = old if old is not None and not old.skipped_reason else None  # in the live index
                digest = _file_hash(path, max_bytes)
                if indexed is not None and digest is not None and indexed.content_hash == digest:
                    kept_records.append(indexed)
                    report.unchanged.append(source)
                    continue
                # A skipped file is read again every time: what made it unreadable may have been fixed.
                loaded = load_file(path, root, max_bytes)
                if isinstance(loaded, SkippedFile):
                    # unreadable now (half-saved, a permission): keep what was indexed
                    if indexed is not None:
                        kept_records.append(indexed)
                        report.skipped.append(
                            SkippedFile(source, f"{loaded.reason}; the version indexed before is kept")
                        )
                        continue
                    kept_records.append(
                        DocumentRecord(source, root_key, digest or "", skipped_reason=loaded.reason)
                    )
                    # A folder that cannot be listed now: what was indexed from it stays, as for a file.
                    inside = (
                        _indexed_inside(old_records.values(), root_key, source) if _is_folder(path) else []
                    )
                    kept_records.extend(inside)
                    seen_sources.update((r.source, str(root)) for r in inside)
                    report.skipped.append(
                        SkippedFile(
                            source,
                            f"{loaded.reason}; {_count(len(inside), 'document')} indexed from it before kept",
                        )
                        if inside
                        else loaded
                    )
                    continue
                (report.changed if indexed is not None else report.added).append(source)
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
        report.notes.extend(_folders_left_out(old_records.values(), knowledge_dirs))

        if not any(not r.skipped_reason for r in kept_records):
            folders = ", ".join(str(d) for d in knowledge_dirs)
            raise NoDocumentsError(
                f"no readable documents in {folders} ({_count(len(report.skipped), 'file')} skipped)"
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
        new: _Source | None = None
        fresh_ids = {id(record) for record, _ in fresh}
        kept = [r for r in kept_records if not r.skipped_reason and id(r) not in fresh_ids]
        # Token vectors only for a small index, and only if the kept documents' are there to reuse
        passage_total = sum(r.passage_count for r in kept) + len(new_passages)
        with_tokens = passage_total <= store.TOKEN_VECTORS_MAX_PASSAGES and (
            not kept or (previous is not None and previous.tokens is not None)
        )
        if passage_total > store.TOKEN_VECTORS_MAX_PASSAGES:
            report.notes.append(
                f"{passage_total} passages, more than {store.TOKEN_VECTORS_MAX_PASSAGES}: answers are ranked"
                " without the word-by-word rerank, whose vectors are kept for smaller indexes only"
            )
        if new_passages:
            embedder = embedder_factory()
            with_tokens = with_tokens and isinstance(embedder, TokenEmbedder)
            new = _embed_passages(embedder, new_passages, say, show_progress_bar, with_tokens)
            report.embedded_passages = len(new_passages)
        dimension = (
            int(new.vectors.shape[1]) if new is not None else previous.manifest.dimension if previous else 0
        )
        records, passages, vectors, sentence_vectors, offsets, tokens = _assemble(
            kept_records, fresh, new or _Source.empty(dimension), previous, dimension, with_tokens
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
        if tokens is not None:
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


def _indexed_inside(records: Iterable[DocumentRecord], root_key: str, folder: str) -> list[DocumentRecord]:
    """The documents of the live index that were read from inside `folder` of the knowledge root."""
    prefix = folder.rstrip("/") + "/"
    return [r for r in records if r.root == root_key and r.source.startswith(prefix) and not r.skipped_reason]


def _is_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:  # a file in a folder that cannot be searched, a broken link
        return False


def _folders_left_out(records: Iterable[DocumentRecord], knowledge_dirs: Sequence[Path]) -> list[str]:
    """A note for each folder the index held documents from that this run does not read: they are
    removed, which is right after a folder was dropped from the settings and a surprise after a typo."""
    roots = {str(root.resolve()) for root in knowledge_dirs}
    counts: dict[str, int] = {}
    for record in records:
        if record.root not in roots and not record.skipped_reason:
            counts[record.root] = counts.get(record.root, 0) + 1
    return [
        f"{_count(count, 'document')} indexed from {root} removed: it is not among this run's knowledge folders"
        for root, count in sorted(counts.items())
    ]


def _check_index_outside_knowledge(index_dir: Path, knowledge_dirs: Sequence[Path]) -> None:
    """An index folder in a knowledge folder would have its own files read as documents (each reindex listed
    them as skipped); a hidden one (".rolecall/index") is never read, so it may be there."""
    index = index_dir.resolve()
    for root in knowledge_dirs:
        folder = root.resolve()
        if index == folder or (
            index.is_relative_to(folder)
            and not any(part.startswith(".") for part in index.relative_to(folder).parts)
        ):
            raise KnowledgeFolderError(
                f"the index folder {index_dir} is inside the knowledge folder {root}: its files would be"
                " read as documents; choose another --index (or ROLECALL_INDEX_DIR)"
            )


def _count(n: int, noun: str) -> str:
    """The number and the noun, plural unless one: "1 file", "2 files"."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _same_skips(manifest: Manifest, records: list[DocumentRecord]) -> bool:
    before = {(r.root, r.source, r.skipped_reason) for r in manifest.documents}
    return before == {(r.root, r.source, r.skipped_reason) for r in records}


def _embed_passages(
    embedder: Embedder,
    passages: Sequence[Passage],
    say: ProgressCallback,
    show_progress_bar: bool,
    with_tokens: bool = False,
) -> _Source:
    """The passages with their vectors, the vectors of their sentences (for the highlight) and, with
    `with_tokens`, their token vectors (for reranking) from the same pass.

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
    sentences = store.PassageRows(sentence_vectors, offsets.astype(np.int64))
    token_block = None if tokens is None else (lambda start, end: tokens[start:end])
    return _Source(passages, passage_vectors, sentences, token_block)


@dataclass(frozen=True)
class _Source:
    """Passages and their vectors that a new version copies documents from: this build's or the
    previous version's. A document's rows are passages start..end of its source."""

    passages: Sequence[Passage]
    vectors: np.ndarray
    sentences: store.PassageRows
    token_block: Callable[[int, int], list[TokenVectors]] | None  # None: no token vectors

    @classmethod
    def of_version(cls, version: store.StoredIndex) -> _Source:
        tokens = version.tokens
        return cls(version.passages, version.vectors, version.sentences, tokens.block if tokens else None)

    @classmethod
    def empty(cls, dimension: int) -> _Source:
        rows = np.zeros((0, dimension), dtype=np.float32)
        return cls([], rows, store.PassageRows(rows, np.zeros(1, dtype=np.int64)), lambda _start, _end: [])


def _assemble(
    records: list[DocumentRecord],
    fresh: list[tuple[DocumentRecord, list[Passage]]],
    new: _Source,
    previous: store.StoredIndex | None,
    dimension: int,
    with_tokens: bool,
) -> tuple[
    list[DocumentRecord], list[Passage], np.ndarray, np.ndarray, np.ndarray, list[TokenVectors] | None
]:
    """Lay documents out in scan order: new and changed ones from `new` (in `fresh` order), unchanged
    ones from the previous version, where a kept record still holds its place.

    Returns records, passages, passage vectors, sentence vectors, the P+1 sentence offsets and, with
    `with_tokens`, one token-vector array per passage.
    """
    new_span: dict[int, tuple[int, int]] = {}
    offset = 0
    for record, passages in fresh:
        new_span[id(record)] = (offset, offset + len(passages))
        offset += len(passages)
    old = _Source.of_version(previous) if previous is not None else None
    out_records: list[DocumentRecord] = []
    out_passages: list[Passage] = []
    blocks: list[np.ndarray] = []
    sentence_blocks: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    tokens: list[TokenVectors] | None = [] if with_tokens else None
    for record in records:
        if record.skipped_reason:
            out_records.append(record)
            continue
        if id(record) in new_span:
            source, (start, end) = new, new_span[id(record)]
        else:
            assert old is not None
            source, start, end = old, record.first_passage, record.first_passage + record.passage_count
        out_records.append(replace(record, first_passage=len(out_passages), passage_count=end - start))
        out_passages.extend(source.passages[start:end])
        blocks.append(np.asarray(source.vectors[start:end], dtype=np.float32).reshape(-1, dimension))
        sentence_rows, sentence_offsets = source.sentences.span(start, end)
        sentence_blocks.append(np.asarray(sentence_rows, dtype=np.float32).reshape(-1, dimension))
        counts.append(np.diff(sentence_offsets))
        if tokens is not None:
            assert source.token_block is not None
            tokens.extend(source.token_block(start, end))
    empty = np.zeros((0, dimension), dtype=np.float32)
    vectors = np.concatenate(blocks) if blocks else empty
    sentence_vectors = np.concatenate(sentence_blocks) if sentence_blocks else empty
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]) if counts else np.zeros(1)
    return out_records, out_passages, vectors, sentence_vectors, offsets.astype(np.int64), tokens
