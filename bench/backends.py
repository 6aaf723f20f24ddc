"""ONNX Runtime against torch on one corpus: vector differences and the top-3 lists of every eval question.

    python -m bench.backends eval/knowledge.jsonl
    python -m bench.backends eval/handbook.jsonl --knowledge ../shared/corpora/tech-interview-handbook
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from bot.service import RolecallService, ServiceConfig
from bot.settings import load_settings
from index.embedding import SentenceTransformerEmbedder, resolve_model
from index.onnx_embedder import OnnxEmbedder
from index.search import SearchIndex


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_file", type=Path)
    parser.add_argument("--knowledge", type=Path, action="append", help="corpus folder (default: bundled)")
    args = parser.parse_args()
    settings = load_settings()
    questions = [
        json.loads(line)["q"] for line in args.eval_file.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    spec = resolve_model(settings.model or None)
    torch_embedder = SentenceTransformerEmbedder(spec)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_embedder = OnnxEmbedder(spec, Path(scratch) / "models")
        assert onnx_embedder.backend == "onnx", "the ONNX export failed"
        config = ServiceConfig.from_settings(settings)
        config = ServiceConfig(
            **{
                **config.__dict__,
                "knowledge_dirs": tuple(args.knowledge or settings.knowledge_dirs),
                "index_dir": Path(scratch) / "index",
            }
        )
        built = RolecallService(config, torch_embedder)
        built.open()
        passages = [p.text for p in SearchIndex.open(config.index_dir).passages]
        texts = questions + passages
        difference = float(np.max(np.abs(torch_embedder.embed_documents(texts) - onnx_embedder.embed_documents(texts))))
        single = max(
            float(np.max(np.abs(torch_embedder.embed_queries([q]) - onnx_embedder.embed_queries([q]))))
            for q in questions
        )
        with_torch = built.ask_many(questions)
        with_onnx = RolecallService(config, onnx_embedder).ask_many(questions)
    same, score_gap = 0, 0.0
    for question, a, b in zip(questions, with_torch, with_onnx, strict=True):
        top_a = [(h.passage, h.highlight) for h in a.hits]
        top_b = [(h.passage, h.highlight) for h in b.hits]
        if top_a == top_b:
            same += 1
            score_gap = max([score_gap, *(abs(x.score - y.score) for x, y in zip(a.hits, b.hits, strict=True))])
        else:
            print(f"  differs: {question}")
    print(f"{len(texts)} texts, batched: max |torch - onnx| = {difference:.2e}; one question at a time: {single:.2e}")
    print(
        f"{same}/{len(questions)} questions have the same answered top-3 (passages and highlights);"
        f" largest score difference {score_gap:.2e}"
    )


if __name__ == "__main__":
    main()
