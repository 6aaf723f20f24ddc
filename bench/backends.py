"""ONNX Runtime (fp32, and int8 for questions) against torch on one corpus: vectors, top-3 lists, query time.

python -m bench.backends eval/knowledge.jsonl
python -m bench.backends eval/handbook.jsonl --knowledge ../shared/corpora/tech-interview-handbook
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bot.answer import Answer
from bot.service import RolecallService, ServiceConfig
from bot.settings import load_settings
from index.embedding import QueryPrecision, SentenceTransformerEmbedder, resolve_model
from index.onnx_embedder import OnnxEmbedder
from index.search import SearchIndex

PRECISIONS: tuple[QueryPrecision, ...] = ("fp32", "int8")


def _query_p50_ms(
    embedders: dict[QueryPrecision, OnnxEmbedder], questions: list[str], rounds: int = 3
) -> dict[str, float]:
    """Median time of one question's embedding per embedder; each round runs every question through each in turn.

    Whole passes, not question by question: an idle session's threads spin for a while after each run,
    and would take the cores from the other session.
    """
    times: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(rounds):
        for name, embedder in embedders.items():
            for question in questions:
                start = time.perf_counter()
                embedder.embed_queries([question])
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("eval_file", type=Path)
    parser.add_argument("--knowledge", type=Path, action="append", help="corpus folder (default: bundled)")
    # the child's mode
    parser.add_argument("--time-queries", type=Path, metavar="MODELS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = load_settings()
    questions = [
        json.loads(line)["q"]
        for line in args.eval_file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    spec = resolve_model(settings.model or None)
    if args.time_queries:
        embedders = {p: OnnxEmbedder(spec, args.time_queries, query_precision=p) for p in PRECISIONS}
        print(json.dumps(_query_p50_ms(embedders, questions)))
        return
    torch_embedder = SentenceTransformerEmbedder(spec)
    with tempfile.TemporaryDirectory() as scratch:
        onnx = {
            precision: OnnxEmbedder(spec, Path(scratch) / "models", query_precision=precision)
            for precision in PRECISIONS
        }
        for precision, embedder in onnx.items():
            assert embedder.query_precision == precision, f"the ONNX {precision} model could not be made"
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
        difference = float(
            np.max(np.abs(torch_embedder.embed_documents(texts) - onnx["fp32"].embed_documents(texts)))
        )
        print(
            f"{len(texts)} texts, batched: max |torch - onnx| = {difference:.2e} (documents are always fp32)"
        )
        with_torch = built.ask_many(questions)
        exact = torch_embedder.embed_queries(questions)
        for precision, embedder in onnx.items():
            single = np.vstack([embedder.embed_queries([q]) for q in questions])
            gap = float(np.max(np.abs(exact - single)))
            cosine = float(np.min(np.sum(exact * single, axis=1)))
            print(
                f"onnx {precision} questions, one at a time: max |torch - onnx| = {gap:.2e}, min cosine {cosine:.5f}"
            )
            _compare(questions, with_torch, RolecallService(config, embedder).ask_many(questions))
        # timed in a child process: with torch loaded, ONNX Runtime runs about twice as slow here
        child = [
            sys.executable,
            "-m",
            "bench.backends",
            str(args.eval_file),
            "--time-queries",
            str(Path(scratch) / "models"),
        ]
        p50 = json.loads(
            subprocess.run(child, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )
    print(
        "one question's ONNX embedding (3 passes each, in turn, in a process without torch), p50: "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in p50.items())
        + f"; int8 / fp32 = {p50['int8'] / p50['fp32']:.2f}x"
    )


def _compare(questions: list[str], with_torch: list[Answer], with_onnx: list[Answer]) -> None:
    same, score_gap = 0, 0.0
    for question, a, b in zip(questions, with_torch, with_onnx, strict=True):
        top_a = [(h.passage, h.highlight) for h in a.hits]
        top_b = [(h.passage, h.highlight) for h in b.hits]
        if top_a == top_b:
            same += 1
            score_gap = max(
                [score_gap, *(abs(x.score - y.score) for x, y in zip(a.hits, b.hits, strict=True))]
            )
        else:
            print(f"  differs: {question}")
    print(
        f"  {same}/{len(questions)} questions have the same answered top-3 as torch (passages and highlights);"
        f" largest score difference {score_gap:.2e}"
    )


if __name__ == "__main__":
    main()
