"""The ONNX Runtime embedder against the torch model: same vectors, same answers, torch as the fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from index import onnx_embedder as onnx_module
from index.embedding import SentenceTransformerEmbedder, resolve_model
from index.onnx_embedder import OnnxEmbedder
from tests.conftest import BUNDLED_KNOWLEDGE, REPO, make_service


@pytest.fixture(scope="module")
def onnx(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    embedder = OnnxEmbedder(resolve_model(None), tmp_path_factory.mktemp("models"))
    assert embedder.backend == "onnx"
    return embedder


def _questions(limit: int) -> list[str]:
    lines = (REPO / "eval" / "knowledge.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["q"] for line in lines if line.strip()][:limit]


def test_onnx_vectors_match_torch(onnx: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder) -> None:
    texts = _questions(40) + [p.read_text(encoding="utf-8")[:1500] for p in sorted(BUNDLED_KNOWLEDGE.glob("*.md"))]
    assert np.max(np.abs(onnx.embed_documents(texts) - real_embedder.embed_documents(texts))) < 1e-4
    for text in texts[:5]:
        assert np.max(np.abs(onnx.embed_queries([text]) - real_embedder.embed_queries([text]))) < 1e-4
    assert onnx.dimension == real_embedder.dimension


def test_onnx_gives_the_same_top_3(
    onnx: OnnxEmbedder, real_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    questions = _questions(30)
    built = make_service(BUNDLED_KNOWLEDGE, tmp_path / "idx", onnx, min_score=-1.0)
    built.open()
    with_torch = make_service(BUNDLED_KNOWLEDGE, tmp_path / "idx", real_embedder, min_score=-1.0)
    for a, b in zip(built.ask_many(questions), with_torch.ask_many(questions), strict=True):
        assert [(h.passage, h.highlight) for h in a.hits] == [(h.passage, h.highlight) for h in b.hits]
        assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-4)


def test_a_failed_export_falls_back_to_torch_with_one_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_module, "export_onnx", broken)
    embedder = OnnxEmbedder(resolve_model(None), tmp_path / "models")
    with caplog.at_level(logging.WARNING):
        assert embedder.backend == "torch"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "exporter exploded" in warnings[0].getMessage()
    assert embedder.embed_queries(["hello"]).shape == (1, 384)
