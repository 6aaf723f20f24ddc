"""FAISS against Qdrant (memory and local folder): publish time, search latency and source hit@1."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from index.builder import build_index
from index.embedding import SentenceTransformerEmbedder, Vectors, resolve_model
from index.qdrant_store import QdrantVectorStore, open_client
from index.search import SearchIndex
from index.types import Passage
from index.vector_store import FaissVectorStore, VectorStore, publish

StoreMaker = Callable[[Path, str, int], VectorStore]

STORES: dict[str, StoreMaker] = {
    "faiss": lambda _folder, _model, dimension: FaissVectorStore(dimension),
    "qdrant :memory:": lambda _folder, model, dimension: QdrantVectorStore(open_client(), model, dimension),
    "qdrant local folder": lambda folder, model, dimension: QdrantVectorStore(
        open_client(path=str(folder / "qdrant")), model, dimension
    ),
}


def _batches(passages: list[Passage], vectors: Vectors, size: int = 256) -> Iterator[tuple[list[Passage], Vectors]]:
    for start in range(0, len(passages), size):
        yield passages[start : start + size], vectors[start : start + size]


def _measure(
    name: str,
    folder: Path,
    model_id: str,
    passages: list[Passage],
    vectors: Vectors,
    questions: list[tuple[str, Vectors, list[str]]],
) -> str:
    store = STORES[name](folder, model_id, int(vectors.shape[1]))
    started = time.perf_counter()
    publish(store, _batches(passages, vectors))
    build = time.perf_counter() - started
    latencies, hits, judged = [], 0, 0
    for question, vector, sources in questions:
        started = time.perf_counter()
        found = store.search(question, vector, 5)
        latencies.append((time.perf_counter() - started) * 1000)
        if sources:
            judged += 1
            hits += bool(found) and found[0].passage.source in sources
    store.close()
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    hit = f"{hits / judged:.2f}" if judged else "-"
    return (
        f"| {name} | {len(passages)} | {build:.2f} | {statistics.median(latencies):.2f} | {quantiles[18]:.2f} | {hit} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--knowledge", type=Path, default=Path("knowledge"))
    parser.add_argument("--questions", type=Path, default=Path("eval/knowledge.jsonl"))
    parser.add_argument("--synthetic", type=int, action="append", default=[], help="also N random passages")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder(resolve_model(None))
    header = "| store | passages | publish s | search p50 ms | search p95 ms | source hit@1 |\n| --- | --- | --- | --- | --- | --- |"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        build_index([args.knowledge], root / "index", resolve_model(None), lambda: embedder)
        opened = SearchIndex.open(root / "index")
        rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line]
        vectors = embedder.embed_queries([row["q"] for row in rows])
        questions = [
            (row["q"], vector, [] if row.get("abstain") else list(row.get("sources", [])))
            for row, vector in zip(rows, vectors, strict=True)
        ]
        print(f"{args.knowledge}: {len(opened.passages)} passages, {len(questions)} questions\n\n{header}")
        for index, name in enumerate(STORES):
            folder = root / f"run{index}"
            folder.mkdir()
            print(_measure(name, folder, embedder.model_id, list(opened.passages), opened.vectors, questions))
        words = " ".join(p.text for p in opened.passages).split()
        rng = np.random.default_rng(0)
        for size in args.synthetic:
            synthetic = rng.standard_normal((size, int(opened.vectors.shape[1]))).astype(np.float32)
            synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
            fake = [
                Passage(f"synthetic-{i}.md", "Synthetic", "Synthetic", " ".join(rng.choice(words, 60)))
                for i in range(size)
            ]
            print(f"\nsynthetic: {size} random passages (60 words from the knowledge, random unit vectors)\n\n{header}")
            for index, name in enumerate(STORES):
                folder = root / f"synthetic{size}-{index}"
                folder.mkdir()
                print(_measure(name, folder, embedder.model_id, fake, synthetic, [(q, v, []) for q, v, _ in questions]))


if __name__ == "__main__":
    main()
