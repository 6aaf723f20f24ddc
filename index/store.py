"""The index on disk: versioned folders, a manifest, and an atomic switch between versions.

Layout of an index folder:

    CURRENT            name of the live version folder (replaced atomically)
    v-<time>-<id>/     manifest.json, passages.jsonl, vectors.npy, sentences.npy, sentence_offsets.npy,
                       keyword/, dense.faiss when the manifest's `dense` is not "flat", and
                       tokens.npy, token_offsets.npy when the index is small enough to rerank by them
    .build-<id>/       a build in progress; left behind only by a killed build, removed by the next
    .lock              held by the one process that is building

A reader reads CURRENT, then that folder. A writer builds a complete version folder under a
temporary name, fsyncs it, renames it, and then replaces CURRENT: a reader sees the old version or
the new one, never a half-written one, and SIGKILL at any point leaves the previous version loadable.

sentences.npy holds one vector per sentence of every passage (passage order, the sentences of
`split_sentences(passage.text)`), and sentence_offsets.npy the P+1 row offsets of each passage's
sentences in it: the highlight is chosen from these, so a query embeds only the question. Both vector
files are memory-mapped read-only when loaded: a query reads the rows of its candidates only.

tokens.npy holds, in float32, the model's output vector for every word piece of every passage (as
embedded, [CLS] and [SEP] left out), and token_offsets.npy the P+1 row offsets of each passage's rows:
the few best candidates of a question are reranked by how well each of its word pieces finds a match
among them (index.retrieval). They are written only up to TOKEN_VECTORS_MAX_PASSAGES passages.

The manifest's `dense` names the dense index a version holds: "flat" (exact search, built in memory
from vectors.npy when the index is opened, no file) or "hnsw:M=..:efConstruction=.." (an approximate
FAISS graph in dense.faiss, written with the rest of the version; see index.search). Manifests without
the field are "flat", so small indexes written before it stay readable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from index.embedding import TokenVectors, Vectors
from index.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError, RolecallError
from index.types import Passage

FORMAT_VERSION = 3  # 2: sentence vectors for the highlight; 3: passages' token vectors for reranking
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
PASSAGES_FILE = "passages.jsonl"
VECTORS_FILE = "vectors.npy"
SENTENCES_FILE = "sentences.npy"
SENTENCE_OFFSETS_FILE = "sentence_offsets.npy"
TOKENS_FILE = "tokens.npy"
TOKEN_OFFSETS_FILE = "token_offsets.npy"
# Token vectors take about 200 KB per passage (the handbook's 894 passages: 174 MB); past this many
# passages a version has none and the top candidates are not reranked by them.
TOKEN_VECTORS_MAX_PASSAGES = 2_000
DENSE_FILE = "dense.faiss"
FLAT = "flat"
KEEP_VERSIONS = 2  # after a build: the new live version and the one live before it (see _prune_versions)


@dataclass(frozen=True)
class DocumentRecord:
    """What the manifest remembers of one document, to skip it next time if its bytes are unchanged."""

    source: str
    root: str
    content_hash: str
    title: str = ""
    aliases: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    first_passage: int = 0
    passage_count: int = 0
    skipped_reason: str = ""  # non-empty when the file was skipped


@dataclass(frozen=True)
class Manifest:
    """Everything needed to decide whether an index on disk can answer for this configuration."""

    format_version: int
    model_id: str
    dimension: int
    chunking: str
    built_at: str
    documents: tuple[DocumentRecord, ...]
    passage_count: int
    dense: str = FLAT  # which dense index the version holds (see the module docstring)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fingerprint(self) -> str:
        """What this version holds (model, chunking, format, each document's bytes), not when it was built."""
        documents = sorted(f"{d.source}:{d.content_hash}" for d in self.documents if not d.skipped_reason)
        content = [self.model_id, self.chunking, str(self.format_version), *documents]
        return hashlib.sha256("\n".join(content).encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        documents = tuple(
            DocumentRecord(**{**d, "aliases": tuple(d.get("aliases", ()))}) for d in data["documents"]
        )
        return cls(
            format_version=int(data["format_version"]),
            model_id=str(data["model_id"]),
            dimension=int(data["dimension"]),
            chunking=str(data["chunking"]),
            built_at=str(data["built_at"]),
            documents=documents,
            passage_count=int(data["passage_count"]),
            dense=str(data.get("dense", FLAT)),
        )


@dataclass
class StoredIndex:
    """One version of the index, read back from disk."""

    path: Path
    manifest: Manifest
    passages: list[Passage]
    vectors: Vectors
    sentences: PassageRows  # from sentences.npy: the vectors of each passage's sentences
    dense: Any = None  # the FAISS graph read from dense.faiss, or None for "flat"
    tokens: PassageRows | None = None  # from tokens.npy, when the version has them


class PassageRows:
    """Vectors stored per passage (its sentences, or its word pieces): float32 rows in passage order and
    the P+1 offsets of each passage's rows.

    Rows are memory-mapped when loaded. Up to `in_memory_bytes` they are read into memory at once (then a
    slice costs nothing); past that a passage's rows are read with pread, because mapped pages a query
    touches (and the kernel's fault-around) would stay in RSS and grow it towards the whole file (526 MB
    of sentence vectors at 100k passages, 174 MB of token vectors for the handbook).
    """

    def __init__(self, rows: Vectors, offsets: npt.NDArray[np.int64], in_memory_bytes: int = 0) -> None:
        self.offsets = offsets
        self._file: BinaryIO | None = None
        if isinstance(rows, np.memmap) and rows.nbytes <= in_memory_bytes:
            rows = np.array(rows)
        elif isinstance(rows, np.memmap) and rows.filename:
            self._file = open(rows.filename, "rb", buffering=0)  # noqa: SIM115 - lives with the version
            self._base = int(rows.offset)
        self.rows = rows

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def read_per_passage(self) -> bool:
        """True when a passage's rows are read from the file on each call (a large file)."""
        return self._file is not None

    def passage(self, passage_id: int) -> Vectors:
        """One passage's rows."""
        start, end = int(self.offsets[passage_id]), int(self.offsets[passage_id + 1])
        if self._file is None:
            return np.asarray(self.rows[start:end])
        width = self.rows.shape[1] * 4  # float32, checked by load
        data = os.pread(self._file.fileno(), (end - start) * width, self._base + start * width)
        return np.frombuffer(data, dtype=np.float32).reshape(end - start, -1)

    def stacked(self, passage_ids: Sequence[int]) -> tuple[Vectors, list[int]]:
        """Several passages' rows, one after another in one array, and how many rows each has: read straight
        into that array (one preadv per passage) when the file is not in memory."""
        spans = [(int(self.offsets[i]), int(self.offsets[i + 1])) for i in passage_ids]
        counts = [end - start for start, end in spans]
        if self._file is None or not hasattr(os, "preadv"):
            return np.concatenate([self.passage(i) for i in passage_ids] or [self.rows[:0]]), counts
        stacked = np.empty((sum(counts), self.rows.shape[1]), dtype=np.float32)
        into = stacked.reshape(-1).view(np.uint8).data
        width, at = self.rows.shape[1] * 4, 0
        for start, end in spans:
            size = (end - start) * width
            if os.preadv(self._file.fileno(), [into[at : at + size]], self._base + start * width) != size:
                raise IndexCorruptError(f"{self._file.name} is shorter than its offsets say")
            at += size
        return stacked, counts

    def span(self, start: int, end: int) -> tuple[Vectors, npt.NDArray[np.int64]]:
        """The rows of passages start..end and their offsets, rebased to start at 0 (for a reindex)."""
        first, last = int(self.offsets[start]), int(self.offsets[end])
        return np.asarray(self.rows[first:last], dtype=np.float32), self.offsets[start : end + 1] - first

    def block(self, start: int, end: int) -> list[Vectors]:
        """The rows of passages start..end, one array each."""
        rows, cuts = self.span(start, end)
        return [rows[a:b] for a, b in pairwise(cuts.tolist())]


def token_writers(tokens: Sequence[TokenVectors], dimension: int) -> list[tuple[str, Any]]:
    """write_version's extra writers for the passages' token vectors (one array per passage)."""
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    rows = np.concatenate(tokens).astype(np.float32) if tokens else np.zeros((0, dimension), dtype=np.float32)
    return [
        (TOKENS_FILE, lambda path: np.save(path, np.ascontiguousarray(rows))),
        (TOKEN_OFFSETS_FILE, lambda path: np.save(path, offsets)),
    ]


class IndexBusyError(RolecallError):
    """Another process is building this index right now."""


class IndexWriteError(RolecallError):
    """A new version could not be written (disk full, permissions); the live version is untouched."""


def check_index_folder(index_dir: Path) -> None:
    """A one-line error, before anything is read or built, when a file stands where the index folder or one
    of its parents should be."""
    in_the_way = next((p for p in (index_dir, *index_dir.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:
        raise RolecallError(
            f"cannot use the index folder {index_dir}: {in_the_way} is a file, not a folder"
            " (point --index or ROLECALL_INDEX_DIR at a folder)"
        )


def current_version(index_dir: Path) -> Path | None:
    """The live version folder, or None when no index has been built."""
    check_index_folder(index_dir)
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexCorruptError(f"cannot read {index_dir / CURRENT_FILE}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise IndexCorruptError(f"{index_dir / CURRENT_FILE} does not name a version folder") from exc
    if not name or "/" in name or name.startswith("."):
        raise IndexCorruptError(f"{index_dir / CURRENT_FILE} does not name a version folder")
    return index_dir / name


def read_manifest(version_dir: Path) -> Manifest:
    """The manifest of one version folder; a damaged one is an IndexCorruptError."""
    try:
        data = json.loads((version_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        return Manifest.from_json(data)
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"index version {version_dir.name} has no manifest") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"the index manifest in {version_dir} is damaged ({exc})") from exc


def load_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or None when there is no index yet."""
    version = current_version(index_dir)
    return read_manifest(version) if version else None


def _check_format(manifest: Manifest) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise IndexIncompatibleError(
            f"the index uses format {manifest.format_version}, this Rolecall reads format"
            f" {FORMAT_VERSION}; it must be rebuilt"
        )


def check_compatible(manifest: Manifest, model_id: str, chunking: str) -> None:
    """Refuse an index built by another format, model or chunking: its vectors would give wrong hits."""
    _check_format(manifest)
    if manifest.model_id != model_id:
        raise IndexIncompatibleError(
            f"the index was built with model '{manifest.model_id}', the configured model is"
            f" '{model_id}'; it must be rebuilt"
        )
    if manifest.chunking != chunking:
        raise IndexIncompatibleError("the index was built with other chunking settings; it must be rebuilt")


def load(index_dir: Path, sentences_in_memory_bytes: int = 0) -> StoredIndex:
    """Read the live version: manifest, passages and vectors, checked against each other.

    Sentence vectors up to `sentences_in_memory_bytes` are read into memory (PassageRows)."""
    version = current_version(index_dir)
    if version is None:
        raise IndexMissingError(f"no index in {index_dir}: run `rolecall index` first")
    manifest = read_manifest(version)
    _check_format(manifest)
    try:
        passages = [
            Passage(**json.loads(line))
            for line in (version / PASSAGES_FILE).read_text(encoding="utf-8").splitlines()
            if line
        ]
        vectors = _load_rows(version / VECTORS_FILE)  # mapped: an HNSW graph holds its own copy
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise IndexCorruptError(f"the index in {version} is damaged ({exc})") from exc
    if (
        len(passages) != manifest.passage_count
        or vectors.ndim != 2
        or vectors.shape != (manifest.passage_count, manifest.dimension)
    ):
        raise IndexCorruptError(f"the index in {version} is damaged (passage and vector counts differ)")
    _check_unit_rows(vectors, version, "passage")
    sentences = _load_passage_rows(
        version, manifest, (SENTENCES_FILE, SENTENCE_OFFSETS_FILE, "sentence"), sentences_in_memory_bytes
    )
    tokens = None
    if (version / TOKENS_FILE).exists():
        tokens = _load_passage_rows(version, manifest, (TOKENS_FILE, TOKEN_OFFSETS_FILE, "token"), 0)
    return StoredIndex(
        version,
        manifest,
        passages,
        np.ascontiguousarray(vectors, dtype=np.float32),
        sentences,
        read_dense(version, manifest),
        tokens,
    )


def _load_passage_rows(
    version: Path, manifest: Manifest, files: tuple[str, str, str], in_memory_bytes: int
) -> PassageRows:
    """A rows file and its offsets file, checked against the manifest's passages; `files` is (rows file,
    offsets file, what the rows are)."""
    rows_file, offsets_file, what = files
    try:
        rows = _load_rows(version / rows_file)
        offsets = np.load(version / offsets_file, allow_pickle=False)
    except (OSError, ValueError, TypeError, EOFError) as exc:
        raise IndexCorruptError(f"the index in {version} is damaged ({exc})") from exc
    if (
        offsets.shape != (manifest.passage_count + 1,)
        or rows.dtype != np.float32
        or rows.ndim != 2
        or rows.shape[1:] != (manifest.dimension,)
        or int(offsets[0]) != 0
        or int(offsets[-1]) != rows.shape[0]
        or bool(np.any(np.diff(offsets) < 1))
    ):
        raise IndexCorruptError(f"the index in {version} is damaged ({what} vectors do not match)")
    _check_unit_rows(rows, version, what)
    return PassageRows(rows, offsets.astype(np.int64), in_memory_bytes)


# Rows checked in full up to this size; past it, this many rows spread over the file, so that opening a
# large index does not read every page of it (they are mapped, read when a question touches them).
UNIT_CHECK_FULL_BYTES = 64 * 1024 * 1024
UNIT_CHECK_SAMPLE_ROWS = 4096


def _check_unit_rows(rows: Vectors, version: Path, what: str) -> None:
    """Every vector the builder writes has length 1: bytes overwritten in place (a disk or copy error that
    keeps the file's size and header) give NaN or other lengths, which would score every question NaN."""
    if rows.shape[0] == 0:
        return
    if rows.nbytes <= UNIT_CHECK_FULL_BYTES:
        checked = np.asarray(rows, dtype=np.float32)
    else:
        checked = np.asarray(rows[np.linspace(0, rows.shape[0] - 1, UNIT_CHECK_SAMPLE_ROWS).astype(np.int64)])
    lengths = np.einsum("ij,ij->i", checked, checked, dtype=np.float64)
    if not bool(np.all(np.abs(lengths - 1.0) < 1e-3)):  # NaN fails this too
        raise IndexCorruptError(f"the index in {version} is damaged ({what} vectors are not unit length)")


def write_dense(dense: Any, path: Path) -> None:
    """Serialise a FAISS dense index (an extra writer of write_version, so it is published atomically)."""
    import faiss

    faiss.write_index(dense, str(path))


def read_dense(version: Path, manifest: Manifest) -> Any:
    """The dense index file of a version, checked against its manifest; None when the version is "flat"."""
    if manifest.dense == FLAT:
        return None
    if not manifest.dense.startswith("hnsw"):
        raise IndexIncompatibleError(
            f"the index holds a dense index of kind '{manifest.dense}' this Rolecall cannot read;"
            " it must be rebuilt"
        )
    import faiss

    path = version / DENSE_FILE
    if not path.is_file():
        raise IndexCorruptError(f"the index in {version} is damaged (its {DENSE_FILE} is missing)")
    try:
        dense = faiss.read_index(str(path))
    except Exception as exc:  # faiss raises RuntimeError with its C++ message for a damaged file
        lines = str(exc).strip().splitlines()
        raise IndexCorruptError(
            f"the dense index in {version} is damaged ({lines[0] if lines else type(exc).__name__})"
        ) from exc
    if (
        not isinstance(dense, faiss.IndexHNSWFlat)
        or dense.ntotal != manifest.passage_count
        or dense.d != manifest.dimension
    ):
        raise IndexCorruptError(
            f"the dense index in {version} is damaged (it does not match the manifest's passages)"
        )
    return dense


def _load_rows(path: Path) -> Vectors:
    """A vector file memory-mapped read-only (pages are read when a query touches them)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:  # an empty array cannot be mapped
        return np.load(path, allow_pickle=False)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index's build lock; a second builder gets IndexBusyError at once.

    A folder that cannot be created or written (permissions, a file in the way) is an IndexWriteError. A
    folder this call created is removed again when no version was published in it (a first build that
    failed leaves nothing behind)."""
    created = not index_dir.exists()
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / ".lock", "a+b")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise IndexWriteError(
            f"cannot write the index folder {index_dir}: {_reason(index_dir, exc, lower=True)}"
        ) from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexBusyError(
                f"another reindex of {index_dir} is running; try again when it ends"
            ) from exc
        except OSError as exc:
            raise IndexWriteError(
                f"cannot lock the index folder {index_dir}: {_reason(index_dir, exc, lower=True)}"
            ) from exc
        try:
            yield
        finally:
            if created and not (index_dir / CURRENT_FILE).exists():
                # its lock file and leftovers are all this build's
                shutil.rmtree(index_dir, ignore_errors=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_version(
    index_dir: Path,
    manifest: Manifest,
    passages: Sequence[Passage],
    vectors: Vectors,
    sentence_vectors: Vectors,
    sentence_offsets: npt.NDArray[np.int64],
    extra_writers: Sequence[tuple[str, Any]] = (),
) -> Path:
    """Write a complete new version and make it live atomically. Call under build_lock."""
    previous = _live_version(index_dir)  # kept by the prune below: readers may still be opening it
    stays_live = "; the previous one stays live" if previous else ""
    build_dir = index_dir / f".build-{uuid.uuid4().hex[:12]}"
    try:
        _remove_abandoned_builds(index_dir)
        build_dir.mkdir(parents=True)
        with open(build_dir / PASSAGES_FILE, "w", encoding="utf-8") as out:
            for passage in passages:
                out.write(json.dumps(asdict(passage), ensure_ascii=False) + "\n")
        np.save(build_dir / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))
        np.save(build_dir / SENTENCES_FILE, np.ascontiguousarray(sentence_vectors, dtype=np.float32))
        np.save(build_dir / SENTENCE_OFFSETS_FILE, np.asarray(sentence_offsets, dtype=np.int64))
        for name, writer in extra_writers:
            writer(build_dir / name)
        (build_dir / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=1), encoding="utf-8")
        _fsync_tree(build_dir)
        version_dir = index_dir / f"v-{time.strftime('%Y%m%dT%H%M%S')}-{build_dir.name[-12:]}"
        os.rename(build_dir, version_dir)
    except BaseException as exc:
        shutil.rmtree(build_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            raise IndexWriteError(
                f"cannot write the new index version in {index_dir} ({_reason(index_dir, exc)}){stays_live}"
            ) from exc
        raise
    pointer = index_dir / f".{CURRENT_FILE}.{uuid.uuid4().hex[:8]}"
    try:
        pointer.write_text(version_dir.name, encoding="utf-8")
        _fsync_file(pointer)
        os.replace(pointer, index_dir / CURRENT_FILE)
    except OSError as exc:
        pointer.unlink(missing_ok=True)
        raise IndexWriteError(
            f"cannot switch {index_dir / CURRENT_FILE} to the new version"
            f" ({_reason(index_dir, exc)}){stays_live}"
        ) from exc
    _fsync_file(index_dir)
    _prune_versions(index_dir, keep={version_dir, previous} if previous else {version_dir})
    return version_dir


def _live_version(index_dir: Path) -> Path | None:
    """The version CURRENT names before a switch, or None (no index yet, or a damaged CURRENT)."""
    try:
        return current_version(index_dir)
    except IndexCorruptError:
        return None


def _reason(folder: Path, exc: OSError, lower: bool = False) -> str:
    """Why writing in `folder` failed, for a one-line message: the system's words ("Permission denied",
    first letter lowered with `lower`), or which path is a file where a folder is needed."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if in_the_way is not None:
            return f"{in_the_way} is a file, not a folder"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:] if lower else reason


def _remove_abandoned_builds(index_dir: Path) -> None:
    for leftover in index_dir.glob(".build-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in index_dir.glob(f".{CURRENT_FILE}.*"):
        leftover.unlink(missing_ok=True)


def _prune_versions(index_dir: Path, keep: Collection[Path]) -> None:
    """Remove every version folder but `keep`: the new live version and the one CURRENT named before the
    switch (a reader may still be opening it). Folders a killed build renamed into place but never made
    live go too, whatever their age (call under build_lock)."""
    for old in index_dir.glob("v-*"):
        if old.is_dir() and old not in keep:
            shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    _fsync_file(folder)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
