"""The sentence model run by ONNX Runtime: exported once from the local weights, cached, no torch at query time."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import (
    Embedder,
    ModelSpec,
    QueryEmbedding,
    QueryPrecision,
    SentenceTransformerEmbedder,
    TokenEmbedder,
    TokenVectors,
    Vectors,
    available_cpus,
    load_sentence_transformer,
    resolve_query_precision,
    unit_token_rows,
)
from index.errors import ModelLoadError
from index.memory import return_free_memory

log = logging.getLogger(__name__)

# bump when the exported graph changes; a new cache file is then written (2: fused attention)
EXPORT_VERSION = 2
ONNX_FILE = "model.onnx"
OPSET = 17
BATCH_SIZE = 32
# padded tokens per batch: long passages go 8 at a time; 4096 took as long, with ~50 MB more peak
BATCH_TOKENS = 2048
EXPORT_TOLERANCE = 1e-4  # largest difference from the torch model accepted for the exported graph
QUERY_ONNX_FILE = "model-query-int8-b32.onnx"  # the query graph; rename when quantise_for_queries changes
QUANT_BLOCK = 32  # weights that share one scale, along each output's inputs
QUERY_MIN_COSINE = 0.999  # smallest cosine to the fp32 vectors accepted for the int8 query graph
PROBES = [
    "How much does a senior back-end engineer earn?",
    "Kubernetes, Terraform and Prometheus.",
    "what's the IC ladder above senior?",
    "A staff engineer owns technical problems that span several teams: shared architecture and migrations.",
]


def onnx_model_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the exported model of this spec is cached inside `cache_dir` (from the settings' data dir)."""
    key = hashlib.sha256(f"{spec.model_id}\0{spec.location}\0{EXPORT_VERSION}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.model_id).strip("-")[-60:] or "model"
    return cache_dir / f"{slug}-{key}" / ONNX_FILE


def _mean_pooling_model(local: Path) -> bool:
    """True when the sentence-transformers folder is Transformer -> mean Pooling (-> Normalize)."""
    modules = json.loads((local / "modules.json").read_text(encoding="utf-8"))
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Normalize",) for k in kinds[2:]):
        return False
    pooling = json.loads((local / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    return bool(pooling.get("pooling_mode_mean_tokens")) and not any(
        value
        for key, value in pooling.items()
        if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
    )


def export_onnx(spec: ModelSpec, target: Path) -> None:
    """Export the model's transformer to ONNX (TorchScript exporter), check it against torch, cache it."""
    local = spec.local_dir
    if local is None or not (local / "modules.json").is_file() or not _mean_pooling_model(local):
        raise ModelLoadError(
            f"model '{spec.model_id}' is not a local mean-pooling sentence-transformers folder"
        )
    import onnxruntime as ort
    import torch

    class LastHiddenState(torch.nn.Module):
        """The transformer with keyword inputs and one tensor out, as the exporter wants it."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tokenizer = _tokenizer(spec)
    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime's BERT optimizer fuses (SDPA does not).
    loaded = load_sentence_transformer(str(local), model_kwargs={"attn_implementation": "eager"})
    transformer: Any = loaded[0]  # the Transformer module
    model = LastHiddenState(transformer.auto_model.eval()).eval()
    ids, mask, types = _arrays(tokenizer.encode_batch(PROBES))
    inputs = tuple(torch.from_numpy(a) for a in (ids, mask, types))
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes fixed during the trace
            expected = model(*inputs).numpy()
            torch.onnx.export(
                model,
                inputs,
                str(scratch),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "token_type_ids": {0: "batch", 1: "sequence"},
                    "last_hidden_state": {0: "batch", 1: "sequence"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        _fuse_transformer_ops(scratch, transformer.auto_model.config)
        session = ort.InferenceSession(str(scratch), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        difference = float(np.max(np.abs(_pool(got, mask) - _pool(expected, mask))))
        if difference > EXPORT_TOLERANCE:
            raise ModelLoadError(f"the exported model differs from torch by {difference:.2e}")
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)


def _fuse_transformer_ops(path: Path, config: Any) -> None:
    """Rewrite the graph in place with ONNX Runtime's BERT fusions (Attention, SkipLayerNorm, BiasGelu).

    The fused graph gives the same vectors (checked by the caller against torch) with fewer, larger
    kernels: about 8% faster per query on 2 cores (bench/backends.py). A model the optimizer does not
    know keeps the plain graph.
    """
    try:
        from onnxruntime.transformers import optimizer

        heads, hidden = int(config.num_attention_heads), int(config.hidden_size)
        optimized = optimizer.optimize_model(
            str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
        )
        optimized.save_model_to_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the unfused graph is correct, only slower
        log.info("ONNX graph left unfused (%s)", exc)


def _block_int8(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (inputs, outputs) weight matrix as MatMulNBits wants it: uint8 codes (outputs, blocks, 32), fp32 scales.

    Symmetric: each block's largest weight maps to -128 (as ONNX Runtime's own quantiser does), the
    code is stored plus 128.
    """
    inputs, outputs = matrix.shape
    blocks = matrix.T.reshape(outputs, inputs // QUANT_BLOCK, QUANT_BLOCK)
    largest = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=2)[..., None], axis=2)[..., 0]
    scales = (largest / -128.0).astype(np.float32)
    steps = np.rint(blocks / np.where(scales == 0, 1.0, scales)[..., None])
    return (np.clip(steps, -128, 127) + 128).astype(np.uint8), scales


def quantise_for_queries(source: Path, target: Path, tokenizer: Any) -> None:
    """Write `source` with its MatMul weights in 8 bits, block-wise, as the graph that embeds questions.

    Each MatMul with a weight matrix becomes ONNX Runtime's MatMulNBits: one scale per 32 inputs of
    each output (`_block_int8`), run by the int8 kernels (accuracy level 4). The fused Attention
    node's Q/K/V weights stay fp32. On the handbook questions
    the vectors keep a cosine of 0.9997 or more to fp32 and the query takes about 0.8x the time
    (bench/README.md). Refused (ModelLoadError) when a probe's vector drifts below QUERY_MIN_COSINE.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    weights = {w.name: w for w in model.graph.initializer}
    quantised_names: set[str] = set()
    nodes = []
    for node in model.graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or len(weight.dims) != 2 or weight.dims[0] % QUANT_BLOCK:
            nodes.append(node)
            continue
        inputs, outputs = weight.dims
        if weight.name not in quantised_names:  # a weight shared by two MatMuls is quantised once
            quantised_names.add(weight.name)
            codes, scales = _block_int8(numpy_helper.to_array(weight).astype(np.float32))
            model.graph.initializer.extend(
                [
                    numpy_helper.from_array(codes, weight.name + "_Q8"),
                    numpy_helper.from_array(scales, weight.name + "_scales"),
                ]
            )
        nodes.append(
            helper.make_node(
                "MatMulNBits",
                [node.input[0], weight.name + "_Q8", weight.name + "_scales"],
                list(node.output),
                name=node.name + "_Q8",
                domain="com.microsoft",
                K=inputs,
                N=outputs,
                bits=8,
                block_size=QUANT_BLOCK,
                accuracy_level=4,
            )
        )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in model.graph.node for name in node.input}
    kept = [w for w in model.graph.initializer if w.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        onnx.save(model, str(scratch))
        ids, mask, types = _arrays(tokenizer.encode_batch(PROBES))
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        exact = _pool(_session(source, 1).run(None, feed)[0], mask)
        approximate = _pool(_session(scratch, 1).run(None, feed)[0], mask)
        cosine = float(np.min(np.sum(exact * approximate, axis=1)))
        if cosine < QUERY_MIN_COSINE:
            raise ModelLoadError(f"the int8 query graph drifts from fp32 (cosine {cosine:.5f})")
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)


def _tokenizer(spec: ModelSpec) -> Any:
    """The model's fast tokenizer, truncating at the model's window like sentence-transformers does."""
    from index.embedding import _load_tokenizer

    tokenizer = _load_tokenizer(spec)
    tokenizer.enable_truncation(max_length=spec.max_tokens())
    return tokenizer


def _arrays(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, attention_mask and token_type_ids padded to the longest encoding (pad id 0)."""
    width = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n] = encoding.ids
        mask[row, :n] = 1
        types[row, :n] = encoding.type_ids
    return ids, mask, types


def _pool(hidden: np.ndarray, mask: np.ndarray) -> Vectors:
    """Mean over real tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize)."""
    weights = mask.astype(np.float32)[:, None, :]  # (batch, 1, tokens): one product sums each row's tokens
    summed = np.matmul(weights, hidden)[:, 0, :]
    pooled = summed / np.maximum(weights.sum(axis=2), 1e-9)
    norms = np.sqrt((pooled * pooled).sum(axis=1, keepdims=True))
    return np.ascontiguousarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


class OnnxEmbedder:
    """ONNX Runtime + tokenizers; exports on first need, falls back to sentence-transformers on failure.

    Documents go through the fp32 graph, so stored vectors are the torch model's. Questions go through
    the fp32 graph too (the default), or through the block-wise int8 copy of it (`quantise_for_queries`)
    when `query_precision` is "int8" (or "auto" on a CPU with int8 dot products,
    `resolve_query_precision`). The question session is made on first use and kept; documents get a
    session of their own for each call, released after it, so a serving process does not keep a
    reindex's memory.
    """

    def __init__(
        self,
        spec: ModelSpec,
        cache_dir: Path,
        threads: int = 0,
        batch_size: int = BATCH_SIZE,
        query_precision: QueryPrecision = "fp32",
    ) -> None:
        # same document vectors as the torch model, so indexes are interchangeable
        self.model_id = spec.model_id
        self._spec = spec
        self._path = onnx_model_path(spec, cache_dir)
        int8 = resolve_query_precision(query_precision) == "int8"
        self._query_path = self._path.with_name(QUERY_ONNX_FILE) if int8 else self._path
        self._threads = threads or available_cpus()
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._query_session: Any = None
        self._tokenizer: Any = None
        self._fallback: Embedder | None = None

    @property
    def backend(self) -> str:
        """'onnx' or 'torch' (after a fallback); loads the query model."""
        self._query_model()
        return "torch" if self._fallback is not None else "onnx"

    @property
    def query_precision(self) -> str:
        """'int8' or 'fp32': the graph questions go through (after loading it); 'torch' after a fallback."""
        self._query_model()
        if self._fallback is not None:
            return "torch"
        return "fp32" if self._query_path == self._path else "int8"

    def _query_model(self) -> Any:
        """The session questions go through, made on first use and kept; None after a fallback to torch."""
        with self._lock:
            if self._query_session is None:
                self._query_session = self._new_session(query=True)
            return self._query_session

    def _new_session(self, query: bool) -> Any:
        """A session of the query graph or of the fp32 one, the graph exported or quantised first if missing.

        None after a fallback to torch (any export or runtime failure). A failed quantisation leaves
        questions on the fp32 graph. Call with the lock held.
        """
        if self._fallback is not None:
            return None
        try:
            if not self._path.is_file():
                export_onnx(self._spec, self._path)
            if self._tokenizer is None:
                self._tokenizer = _tokenizer(self._spec)
            path = self._query_path if query else self._path
            if path != self._path and not path.is_file():
                try:
                    quantise_for_queries(self._path, path, self._tokenizer)
                except Exception as exc:  # noqa: BLE001 - the fp32 graph answers the same, a little slower
                    log.warning("int8 query model unavailable (%s); questions use the fp32 model", exc)
                    self._query_path = path = self._path
            return _session(path, self._threads)
        except Exception as exc:  # noqa: BLE001 - any export or runtime failure means: use torch
            log.warning(
                "ONNX Runtime unavailable for %s (%s); using sentence-transformers", self.model_id, exc
            )
            self._fallback = SentenceTransformerEmbedder(self._spec, threads=self._threads)
            return None

    @property
    def dimension(self) -> int:
        session = self._query_model()
        if self._fallback is not None:
            return self._fallback.dimension
        return int(session.get_outputs()[0].shape[-1])

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Vectors:
        return self.embed_documents_with_tokens(texts, 0, show_progress)[0]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        session = self._query_model()
        if session is None:
            return self._fallback_embedder().embed_queries(texts)
        return self._encode(session, texts)[0]

    def embed_documents_with_tokens(
        self, texts: Sequence[str], tokens_of: int, show_progress: bool = False
    ) -> tuple[Vectors, list[TokenVectors]]:
        """Vectors of all texts, and the first `tokens_of` texts' token outputs from the same pass.

        Through a session of the fp32 graph made for this call and released after it: a build's long
        batches grow ONNX Runtime's memory arena by a few hundred MB, which a serving process would
        otherwise keep after its first reindex; the session costs about 0.2 s to make.
        """
        with self._lock:
            session = self._new_session(query=False)
        if session is None:
            fallback = self._fallback_embedder()
            assert isinstance(fallback, TokenEmbedder)
            return fallback.embed_documents_with_tokens(texts, tokens_of, show_progress)
        try:
            return self._encode(session, texts, tokens_of)
        finally:
            del session
            return_free_memory()

    def embed_queries_with_tokens(self, texts: Sequence[str]) -> QueryEmbedding:
        session = self._query_model()
        if session is None:
            fallback = self._fallback_embedder()
            assert isinstance(fallback, TokenEmbedder)
            return fallback.embed_queries_with_tokens(texts)
        vectors, tokens = self._encode(session, texts, len(texts), drop_stop_words=True)
        return QueryEmbedding(vectors, tokens)

    def _fallback_embedder(self) -> Embedder:
        assert self._fallback is not None
        return self._fallback

    def _encode(
        self, session: Any, texts: Sequence[str], tokens_of: int = 0, drop_stop_words: bool = False
    ) -> tuple[Vectors, list[TokenVectors]]:
        """Pooled vectors of all texts, and the token vectors of the first `tokens_of` (unit_token_rows)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        tokens: list[TokenVectors | None] = [None] * min(tokens_of, len(texts))
        encodings = (
            self._tokenizer.encode_batch(list(texts))
            if len(texts) > 1
            else [self._tokenizer.encode(texts[0])]
        )
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids), reverse=True)
        out: Vectors | None = None
        start = 0
        while start < len(order):
            # longest first, so the first text of a batch sets its padded width
            width = len(encodings[order[start]].ids)
            size = max(1, min(self._batch_size, BATCH_TOKENS // max(1, width)))
            rows = order[start : start + size]
            start += size
            ids, mask, types = _arrays([encodings[i] for i in rows])
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            pooled = _pool(hidden, mask)
            if out is None:
                out = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
            for k, i in enumerate(rows):
                if i < len(tokens):
                    pieces = encodings[i].tokens
                    tokens[i] = unit_token_rows(hidden[k, : len(pieces)], pieces, drop_stop_words)
        assert out is not None
        return out, [t for t in tokens if t is not None]


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
