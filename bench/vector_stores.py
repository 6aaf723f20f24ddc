"""FAISS against Qdrant local mode: the stores alone, and whole answers through RolecallService."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from bot.answer import Answer
from bot.evaluation import EvalCase, evaluate, read_cases
from bot.service import RolecallService, ServiceConfig
from index.builder import build_index
from index.embedding import SentenceTransformerEmbedder, Vectors, resolve_model
from index.keyword import KeywordIndex
from index.qdrant_store import QdrantVectorStore, open_client, publish_index
from index.retrieval import Retriever
from index.search import SearchIndex
from index.store import FORMAT_VERSION, Manifest, PassageRows
from index.terms import default_normaliser
from index.types import Passage
from index.vector_store import FaissVectorStore, VectorStore, keyword_text, publish

StoreMaker = Callable[[Path, str, int], VectorStore]

STORES: dict[str, StoreMaker] = {
    "faiss": lambda _folder, _model, dimension: FaissVectorStore(dimension),
    "qdrant :memory:": lambda _folder, model, dimension: QdrantVectorStore(open_client(), model, dimension),
    "qdrant local folder": lambda folder, model, dimension: QdrantVectorStore(
        open_client(path=str(folder / "qdrant")), model, dimension
    ),
}


def _batches(
    passages: list[Passage], vectors: Vectors, size: int = 256
) -> Iterator[tuple[list[Passage], Vectors]]:
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
    return f"| {name} | {len(passages)} | {build:.2f} | {statistics.median(latencies):.2f} | {quantiles[18]:.2f} | {hit} |"


SERVICE_HEADER = (
    "| corpus | store | passages | build s | publish s | ask p50 ms | ask p95 ms | store p50 ms | hit@1 | hit@3"
    " | off-topic refused | peak RSS MB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _config(knowledge: Path, index_dir: Path, store: str) -> ServiceConfig:
    return ServiceConfig(
        knowledge_dirs=(knowledge,),
        index_dir=index_dir,
        model="",
        top_k=3,
        min_score=0.42,
        max_file_bytes=20 * 1024 * 1024,
        vector_store="qdrant" if store == "qdrant" else "faiss",
    )


def _service_row(
    corpus: str,
    store: str,
    service: RolecallService,
    cases: Sequence[EvalCase],
    build: float | None,
    publish_seconds: float | None,
    embedder: SentenceTransformerEmbedder,
) -> str:
    """Whole asks (embed + candidates + ranking + highlight) through the service, and the candidate search alone."""
    latencies: list[float] = []

    def timed(questions: Sequence[str]) -> list[Answer]:
        answers = []
        for question in questions:
            started = time.perf_counter()
            answers.append(service.ask(question))
            latencies.append((time.perf_counter() - started) * 1000)
        return answers

    result = evaluate(cases, timed)
    normalise = default_normaliser()
    normalised = [normalise(c.question) for c in cases]
    vectors = embedder.embed_queries(normalised)
    version = service.retriever.source.version()
    searches = []
    for question, vector in zip(normalised, vectors, strict=True):
        started = time.perf_counter()
        version.candidates(question, vector)
        searches.append((time.perf_counter() - started) * 1000)
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) > 1 else latencies[0]
    figures = result.figures()
    # random vectors: no right answer
    judged = bool(figures["answerable"]) and not corpus.startswith("synthetic")
    return (
        f"| {corpus} | {store} | {service.passage_count} | {'-' if build is None else f'{build:.1f}'}"
        f" | {'-' if publish_seconds is None else f'{publish_seconds:.1f}'}"
        f" | {statistics.median(latencies):.1f} | {p95:.1f} | {statistics.median(searches):.1f}"
        f" | {figures['hit@1'] if judged else '-'} | {figures['hit@3'] if judged else '-'}"
        f" | {f'{result.off_topic_refused}/{result.off_topic}' if judged else '-'} | {_peak_rss_mb():.0f} |"
    )


def service_rows(
    corpus: str, knowledge: Path, cases: Sequence[EvalCase], root: Path, embedder: SentenceTransformerEmbedder
) -> list[str]:
    """Build the index folder once (FAISS answers from it), then publish it to Qdrant local mode."""
    rows = []
    faiss_service = RolecallService(_config(knowledge, root / "index", "faiss"), embedder)
    started = time.perf_counter()
    faiss_service.reindex()
    build = time.perf_counter() - started
    faiss_service.open()
    rows.append(_service_row(corpus, "faiss", faiss_service, cases, build, None, embedder))
    for label, client_path in (("qdrant :memory:", ""), ("qdrant local folder", str(root / "qdrant"))):
        client = open_client(path=client_path)
        qdrant_service = RolecallService(
            _config(knowledge, root / "index", "qdrant"), embedder, qdrant_client=client
        )
        started = time.perf_counter()
        qdrant_service.reindex()  # the folder is up to date: this is the publish into a new collection
        published = time.perf_counter() - started
        rows.append(_service_row(corpus, label, qdrant_service, cases, None, published, embedder))
        client.close()
    return rows


def synthetic_index(size: int, words: list[str], dimension: int, model_id: str) -> SearchIndex:
    """`size` passages of 60 words drawn from the knowledge, random unit vectors, one sentence each."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((size, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    passages = [
        Passage(f"synthetic-{i}.md", "Synthetic", "Synthetic", " ".join(rng.choice(words, 60)))
        for i in range(size)
    ]
    keyword = KeywordIndex.build([keyword_text(p) for p in passages])
    manifest = Manifest(FORMAT_VERSION, model_id, dimension, "synthetic", "synthetic", (), size)
    offsets = np.arange(size + 1, dtype=np.int64)  # the passage text is one "sentence" (no full stop)
    return SearchIndex(manifest, passages, vectors, keyword, PassageRows(vectors, offsets))


def synthetic_rows(
    size: int, words: list[str], cases: Sequence[EvalCase], root: Path, embedder: SentenceTransformerEmbedder
) -> list[str]:
    """FAISS and Qdrant :memory: over `size` synthetic passages; few questions (local mode is brute force)."""
    rows = []
    started = time.perf_counter()
    search_index = synthetic_index(size, words, embedder.dimension, embedder.model_id)
    build = time.perf_counter() - started
    faiss_service = RolecallService(_config(root, root / "unused", "faiss"), embedder)
    faiss_service._retriever = Retriever(search_index, embedder)
    rows.append(_service_row(f"synthetic {size}", "faiss", faiss_service, cases, build, None, embedder))
    client = open_client()
    store = QdrantVectorStore(client, embedder.model_id, embedder.dimension, owns_client=False)
    started = time.perf_counter()
    publish_index(store, search_index)
    published = time.perf_counter() - started
    qdrant_service = RolecallService(_config(root, root / "unused", "qdrant"), embedder, qdrant_client=client)
    qdrant_service.open()
    rows.append(
        _service_row(f"synthetic {size}", "qdrant :memory:", qdrant_service, cases, None, published, embedder)
    )
    client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--knowledge", type=Path, default=Path("knowledge"))
    parser.add_argument("--questions", type=Path, default=Path("eval/knowledge.jsonl"))
    parser.add_argument("--synthetic", type=int, action="append", default=[], help="also N random passages")
    parser.add_argument(
        "--corpus", type=Path, help="also answer through the service over this knowledge folder"
    )
    parser.add_argument("--corpus-questions", type=Path, default=Path("eval/handbook.jsonl"))
    parser.add_argument(
        "--service-synthetic", type=int, action="append", default=[], help="whole asks over N random passages"
    )
    parser.add_argument(
        "--synthetic-questions", type=int, default=5, help="questions asked at synthetic scale"
    )
    parser.add_argument("--skip-store-tables", action="store_true", help="only the service-level tables")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder(resolve_model(None))
    print(
        "Whole asks through RolecallService (embed + candidates + ranking + highlight), Qdrant in local mode"
    )
    print("(pure-Python brute force, not the server); the machine may be shared: figures are noisy.\n")
    print(SERVICE_HEADER)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        bundled = read_cases(args.questions)
        for row in service_rows(str(args.knowledge), args.knowledge, bundled, root / "bundled", embedder):
            print(row, flush=True)
        if args.corpus is not None and args.corpus.is_dir():
            cases = read_cases(args.corpus_questions)
            for row in service_rows(args.corpus.name, args.corpus, cases, root / "corpus", embedder):
                print(row, flush=True)
        elif args.corpus is not None:
            print(f"(no corpus at {args.corpus}: skipped)")
        passages = SearchIndex.open(root / "bundled" / "index").passages
        words = [w.strip(".!?;:") for w in " ".join(p.text for p in passages).split() if w.strip(".!?;:")]
        few = [c for c in bundled if not c.abstain][: args.synthetic_questions]
        for size in args.service_synthetic:
            for row in synthetic_rows(size, words, few, root, embedder):
                print(row, flush=True)
    if not args.skip_store_tables:
        print()
        store_tables(args.knowledge, args.questions, args.synthetic, embedder)


def store_tables(
    knowledge: Path, questions_file: Path, synthetic_sizes: list[int], embedder: SentenceTransformerEmbedder
) -> None:
    """The stores alone (no role boost, no de-duplication): publish, search latency, source hit@1."""
    header = "| store | passages | publish s | search p50 ms | search p95 ms | source hit@1 |\n| --- | --- | --- | --- | --- | --- |"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        build_index([knowledge], root / "index", resolve_model(None), lambda: embedder)
        opened = SearchIndex.open(root / "index")
        rows = [json.loads(line) for line in questions_file.read_text(encoding="utf-8").splitlines() if line]
        vectors = embedder.embed_queries([row["q"] for row in rows])
        questions = [
            (row["q"], vector, [] if row.get("abstain") else list(row.get("sources", [])))
            for row, vector in zip(rows, vectors, strict=True)
        ]
        print(
            f"Stores alone. {knowledge}: {len(opened.passages)} passages, {len(questions)} questions\n\n{header}"
        )
        for index, name in enumerate(STORES):
            folder = root / f"run{index}"
            folder.mkdir()
            print(_measure(name, folder, embedder.model_id, list(opened.passages), opened.vectors, questions))
        words = " ".join(p.text for p in opened.passages).split()
        rng = np.random.default_rng(0)
        for size in synthetic_sizes:
            synthetic = rng.standard_normal((size, int(opened.vectors.shape[1]))).astype(np.float32)
            synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
            fake = [
                Passage(f"synthetic-{i}.md", "Synthetic", "Synthetic", " ".join(rng.choice(words, 60)))
                for i in range(size)
            ]
            print(
                f"\nsynthetic: {size} random passages (60 words from the knowledge, random unit vectors)\n\n{header}"
            )
            for index, name in enumerate(STORES):
                folder = root / f"synthetic{size}-{index}"
                folder.mkdir()
                print(
                    _measure(
                        name,
                        folder,
                        embedder.model_id,
                        fake,
                        synthetic,
                        [(q, v, []) for q, v, _ in questions],
                    )
                )


if __name__ == "__main__":
    main()
