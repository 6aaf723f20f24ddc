"""Speed of Rolecall against the naive pipeline, and of dense and keyword search at synthetic scale."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUNDLED_KNOWLEDGE = REPO / "knowledge"
DEFAULT_QUESTIONS = REPO / "eval" / "knowledge.jsonl"
RESULT_MARK = "@@speed-result "
DIMENSION = 384
MB = 1024 * 1024

USAGE = """\
Rolecall against the naive pipeline, in one run, each heavy step in its own process:

    python -m bench.speed --knowledge knowledge --questions eval/knowledge.jsonl
    python -m bench.speed --knowledge ../shared/corpora/tech-interview-handbook --questions eval/handbook.jsonl
    python -m bench.speed --scale 10000 --scale 100000          # synthetic search at scale only

With --scale and no --knowledge only the scale table is printed; with both, both are.
"""

# Question variants: the eval questions are cycled through these to reach --min-questions.
VARIANTS = ("{q}", "{q} thanks", "quick question: {q}", "hey, {q}", "{q} (asking for a friend)")


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (0-100) of the values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * pct / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean in milliseconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "mean": statistics.fmean(ms) if ms else math.nan,
    }


def read_questions(path: Path, minimum: int) -> list[str]:
    """The `q` fields of an eval file, cycled through light rewordings until there are `minimum`."""
    base = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            question = json.loads(line).get("q")
            if isinstance(question, str) and question.strip():
                base.append(question.strip())
    if not base:
        raise SystemExit(f"bench.speed: no 'q' fields in {path}")
    wanted = max(minimum, len(base))
    questions: list[str] = []
    for round_no in range(math.ceil(wanted / len(base))):
        template = VARIANTS[round_no % len(VARIANTS)]
        suffix = f" #{round_no}" if round_no >= len(VARIANTS) else ""
        questions.extend(template.format(q=q) + suffix for q in base)
    return questions[:wanted]


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> float:
    """Resident set size of this process now (Linux /proc), NaN elsewhere."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return math.nan


def cpu_seconds() -> tuple[float, float]:
    """(machine-wide busy CPU seconds from /proc/stat, CPU seconds of this process and its reaped children)."""
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return math.nan, own
    busy = sum(values) - values[3] - values[4]  # everything but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), own


def emit(result: dict[str, Any]) -> None:
    """A worker's one result line on stdout, read back by the parent."""
    print(RESULT_MARK + json.dumps(result), flush=True)


@dataclass
class Run:
    """One subprocess: wall-clock seconds, its own peak RSS, exit status and output."""

    seconds: float
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any]:
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_MARK):
                value: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
                return value
        raise RuntimeError("the worker printed no result")

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise SystemExit(f"bench.speed: {what} failed with status {self.returncode}:\n{tail}")
        return self


class Runner:
    """Runs commands in a clean environment (no ROLECALL_* from the caller) and measures each one."""

    def __init__(self, scratch: Path, timeout: float, query_precision: str = "fp32") -> None:
        self.scratch = scratch
        self.timeout = timeout
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLECALL_", "SLACK_", "DISCORD_"))}
        env.update(
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            ROLECALL_DATA_DIR=str(scratch / "data"),
            ROLECALL_QUERY_PRECISION=query_precision,
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        )
        self.env = env
        self.cwd = scratch / "cwd"  # an empty working directory: no .env file is read
        self.cwd.mkdir(parents=True, exist_ok=True)

    def run(self, command: Sequence[str]) -> Run:
        """Wall-clock time from spawn to exit; peak RSS of that one process from wait4()."""
        out_path, err_path = self.scratch / "last.out", self.scratch / "last.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env, cwd=self.cwd
            )
            timer = threading.Timer(self.timeout, process.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                timer.cancel()
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        return Run(
            seconds,
            int(usage.ru_maxrss) * 1024,
            process.returncode,
            out_path.read_text(encoding="utf-8", errors="replace"),
            err_path.read_text(encoding="utf-8", errors="replace"),
        )

    def worker(self, name: str, payload: dict[str, Any]) -> Run:
        return self.run(
            [sys.executable, "-m", "bench.speed", "--worker", name, "--payload", json.dumps(payload)]
        )


def rolecall_command() -> list[str]:
    """The installed `rolecall` console script beside this interpreter, else `python -m bot.cli`."""
    script = Path(sys.executable).parent / "rolecall"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bot.cli"]


# ---------------------------------------------------------------------------------------------
# Workers (each runs in its own process: `python -m bench.speed --worker NAME --payload JSON`)
# ---------------------------------------------------------------------------------------------


def _import_heavy() -> None:
    """Import the libraries both pipelines need before any timer starts (imports are not build time)."""
    import bm25s  # noqa: F401
    import faiss  # noqa: F401
    import sentence_transformers  # noqa: F401


def _rolecall_embedder() -> Any:
    """The embedder Rolecall's service uses by default: ONNX Runtime, cached under the data dir."""
    from bot.settings import load_settings
    from index.embedding import create_embedder, resolve_model

    settings = load_settings()
    return create_embedder(
        resolve_model(None),
        settings.embedder,
        settings.model_cache_dir,
        settings.threads,
        settings.query_precision,
    )


def worker_warm(payload: dict[str, Any]) -> dict[str, Any]:
    """Load the model once so both pipelines see the same warm page cache; export it to ONNX and make the
    int8 query copy (timed)."""
    from sentence_transformers import SentenceTransformer

    from index.embedding import resolve_model

    SentenceTransformer(resolve_model(None).location, device="cpu").encode(["warm up"])
    started = time.perf_counter()
    embedder = _rolecall_embedder()
    backend = getattr(embedder, "backend", "torch")
    precision = getattr(embedder, "query_precision", "fp32")
    return {"export_seconds": time.perf_counter() - started, "backend": backend, "query_precision": precision}


def worker_build_rolecall(payload: dict[str, Any]) -> dict[str, Any]:
    """index.builder.build_index into an empty folder with a fresh embedder; model load included."""
    _import_heavy()
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401

    from index.builder import build_index
    from index.embedding import resolve_model

    spec = resolve_model(None)
    load_seconds: list[float] = []

    def fresh_embedder() -> Any:
        started = time.perf_counter()
        embedder = _rolecall_embedder()
        _ = embedder.dimension  # loads the model now, so its cost can be reported apart
        load_seconds.append(time.perf_counter() - started)
        return embedder

    started = time.perf_counter()
    report = build_index(
        [Path(p) for p in payload["knowledge"]], Path(payload["index"]), spec, fresh_embedder
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "model_load": sum(load_seconds),
        "passages": report.passages,
        "documents": len(report.added),
        "skipped": len(report.skipped),
        "peak_rss": peak_rss_bytes(),
    }


def worker_build_naive(payload: dict[str, Any]) -> dict[str, Any]:
    """bench.naive.NaivePipeline.build (model load included), then its index and passages saved to disk."""
    _import_heavy()
    import faiss

    from bench.naive import NaivePipeline

    started = time.perf_counter()
    pipeline = NaivePipeline.build([Path(p) for p in payload["knowledge"]])
    out = Path(payload["out"])
    out.mkdir(parents=True, exist_ok=True)
    dense: Any = pipeline.index
    faiss.write_index(dense, str(out / "naive.faiss"))
    with open(out / "passages.jsonl", "w", encoding="utf-8") as handle:
        for passage in pipeline.passages:
            handle.write(json.dumps(passage.__dict__, ensure_ascii=False) + "\n")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "passages": len(pipeline.passages), "peak_rss": peak_rss_bytes()}


def _load_naive(folder: Path) -> Any:
    """The naive pipeline read back from disk: model loaded, FAISS index and passages read."""
    import faiss
    from sentence_transformers import SentenceTransformer

    from bench.naive import NaivePipeline
    from index.embedding import resolve_model
    from index.types import Passage

    model = SentenceTransformer(resolve_model(None).location, device="cpu")
    index = faiss.read_index(str(folder / "naive.faiss"))
    lines = (folder / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    passages = [Passage(**json.loads(line)) for line in lines if line]
    return NaivePipeline(passages, model, index, 0.0)


def worker_naive_ask(payload: dict[str, Any]) -> dict[str, Any]:
    """The naive cold start: import, load model and index from disk, answer one question."""
    pipeline = _load_naive(Path(payload["index"]))
    hits = pipeline.search([payload["question"]], 3)[0]
    for hit in hits:
        print(f"{hit.passage.source} ({hit.score:.2f}): {hit.passage.text[:80]!r}")
    return {"hits": len(hits)}


class TimingEmbedder:
    """Wraps the real embedder and records how long each embed_queries call takes (sequential runs)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id: str = inner.model_id
        self.calls: list[tuple[int, float]] = []
        self.recording = False

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Any:
        return self.inner.embed_documents(texts, show_progress)

    def embed_queries(self, texts: Sequence[str]) -> Any:
        started = time.perf_counter()
        vectors = self.inner.embed_queries(texts)
        if self.recording:
            self.calls.append((len(texts), time.perf_counter() - started))
        return vectors


def _concurrency(
    ask: Callable[[str], Any], questions: Sequence[str], levels: Sequence[int], count: int, seconds: float
) -> list[dict[str, Any]]:
    """Throughput and latency with N threads asking at once, each level bounded in count and time."""
    return [_one_level(ask, questions, level, max(count, 4 * level), seconds) for level in levels]


def _one_level(
    ask: Callable[[str], Any], questions: Sequence[str], level: int, budget: int, seconds: float
) -> dict[str, Any]:
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = 0
    deadline = time.perf_counter() + seconds

    def asker() -> None:
        nonlocal issued
        while True:
            with lock:
                if issued >= budget or time.perf_counter() > deadline:
                    return
                question = questions[issued % len(questions)]
                issued += 1
            started = time.perf_counter()
            try:
                ask(question)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=asker) for _ in range(level)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "level": level,
        "done": len(latencies),
        "errors": len(errors),
        "first_error": errors[0][:160] if errors else "",
        "wall": wall,
        "qps": len(latencies) / wall if wall > 0 else math.nan,
        "latency": latency_summary(latencies),
    }


def _sequential(ask: Callable[[str], Any], questions: Sequence[str], warmup: int = 10) -> list[float]:
    for question in questions[:warmup]:
        ask(question)
    latencies = []
    for question in questions:
        started = time.perf_counter()
        ask(question)
        latencies.append(time.perf_counter() - started)
    return latencies


def worker_serve_rolecall(payload: dict[str, Any]) -> dict[str, Any]:
    """Warm RolecallService.ask latency (embed + search + fuse + highlight), then concurrent askers."""
    from bot.service import RolecallService, ServiceConfig
    from bot.settings import Settings

    defaults = Settings.model_fields  # the floors and top k a deployment runs with
    config = ServiceConfig(
        knowledge_dirs=tuple(Path(p) for p in payload["knowledge"]),
        index_dir=Path(payload["index"]),
        model="",
        top_k=defaults["top_k"].default,
        min_score=defaults["min_score"].default,
        support_score=defaults["support_score"].default,
        max_file_bytes=20 * MB,
    )
    embedder = TimingEmbedder(_rolecall_embedder())
    service = RolecallService(config, embedder=embedder)
    service.prepare()  # opens the index and prepares its passages, as `rolecall serve` does
    questions: list[str] = payload["questions"]
    answered = sum(service.ask(q).answered for q in questions[:50])
    embedder.recording = True
    latencies = _sequential(service.ask, questions)
    embedder.recording = False
    calls = embedder.calls[-2 * len(questions) :]
    query_calls = [s for n, s in calls if n == 1]
    highlight_calls = [(n, s) for n, s in calls if n != 1]
    batcher = service._batcher
    levels = []
    for level in payload["levels"]:
        batches, texts = batcher.batches, batcher.texts
        result = _one_level(
            service.ask, questions, level, max(payload["level_count"], 4 * level), payload["level_seconds"]
        )
        result["batch"] = (batcher.texts - texts) / max(1, batcher.batches - batches)
        levels.append(result)
    # a chat reindex in the serving process that re-embeds every document: its memory should not stay
    rss_before_reindex, peak_before_reindex = current_rss_bytes(), peak_rss_bytes()
    for document in text_documents(config.knowledge_dirs):
        with open(document, "a", encoding="utf-8") as handle:
            handle.write("\nThis line was added by the speed benchmark's in-process reindex.\n")
    reindex = service.reindex()
    service.ask(questions[0])
    return {
        "rss_before_reindex": rss_before_reindex,
        "rss_after_reindex": current_rss_bytes(),
        "reindex_embedded": reindex.embedded_passages,
        "passages": len(service.retriever.index),
        "answered_of_50": answered,
        "latency": latency_summary(latencies),
        "query_embed_ms": statistics.median(query_calls) * 1000 if query_calls else math.nan,
        "highlight_embed_ms": statistics.median(s for _, s in highlight_calls) * 1000
        if highlight_calls
        else math.nan,
        "highlight_sentences": statistics.median(n for n, _ in highlight_calls)
        if highlight_calls
        else math.nan,
        "concurrency": levels,
        "peak_rss": peak_before_reindex,
        "peak_rss_reindex": peak_rss_bytes(),
    }


def worker_serve_naive(payload: dict[str, Any]) -> dict[str, Any]:
    """Warm naive latency (encode + IndexFlatIP search), then concurrent askers."""
    pipeline = _load_naive(Path(payload["index"]))

    def ask(question: str) -> Any:
        return pipeline.search([question], 3)

    questions: list[str] = payload["questions"]
    latencies = _sequential(ask, questions)
    levels = _concurrency(ask, questions, payload["levels"], payload["level_count"], payload["level_seconds"])
    return {
        "passages": len(pipeline.passages),
        "latency": latency_summary(latencies),
        "concurrency": levels,
        "peak_rss": peak_rss_bytes(),
    }


# --- synthetic scale -----------------------------------------------------------------------------


def synthetic_vectors(n: int, queries: int, seed: int) -> tuple[Any, Any]:
    """Clustered unit vectors like sentence embeddings (same-topic cosine ~0.5), and queries near them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    clusters = max(16, n // 100)
    centres = rng.standard_normal((clusters, DIMENSION), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.empty((n, DIMENSION), dtype=np.float32)
    for start in range(0, n, 20000):  # in blocks, to keep the temporary arrays small
        rows = min(20000, n - start)
        noise = rng.standard_normal((rows, DIMENSION), dtype=np.float32) * (0.9 / math.sqrt(DIMENSION))
        vectors[start : start + rows] = centres[rng.integers(0, clusters, rows)] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = rng.integers(0, n, queries)
    query_vectors = vectors[picks] + rng.standard_normal((queries, DIMENSION), dtype=np.float32) * (
        0.6 / math.sqrt(DIMENSION)
    )
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors), np.ascontiguousarray(query_vectors.astype(np.float32))


def synthetic_texts(n: int, queries: int, seed: int) -> tuple[list[str], list[str]]:
    """Short passages of Zipf-distributed pseudo-words (20-40 words) and 6-word queries."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    syllables = [c + v for c in "bdklmnprstvz" for v in "aeiou"]
    vocabulary: list[str] = []
    seen: set[str] = set()
    while len(vocabulary) < 20000:
        word = "".join(syllables[i] for i in rng.integers(0, len(syllables), int(rng.integers(2, 5))))
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.07
    weights /= weights.sum()
    lengths = rng.integers(20, 41, n)
    words = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights)
    texts: list[str] = []
    offset = 0
    for length in lengths:
        texts.append(" ".join(vocabulary[i] for i in words[offset : offset + length]))
        offset += int(length)
    query_texts = []
    for pick in rng.integers(0, n, queries):
        own = texts[int(pick)].split()
        chosen = [own[int(i)] for i in rng.integers(0, len(own), 4)]
        chosen += [vocabulary[int(i)] for i in rng.choice(len(vocabulary), size=2, p=weights)]
        query_texts.append(" ".join(chosen))
    return texts, query_texts


def _exact_top(vectors: Any, queries: Any, k: int) -> Any:
    """Exact top-k ids by brute force in numpy, a few queries at a time (ground truth for recall)."""
    import numpy as np

    rows = []
    for start in range(0, len(queries), 16):
        scores = queries[start : start + 16] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        rows.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(rows)


def _single_query_latencies(search: Callable[[int], Any], count: int) -> list[float]:
    for i in range(min(10, count)):
        search(i)
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        search(i)
        latencies.append(time.perf_counter() - started)
    return latencies


def worker_scale(payload: dict[str, Any]) -> dict[str, Any]:
    """One method at one size: build time, memory, single-query latency (and recall for HNSW)."""
    import numpy as np

    n, method, nq, seed = (
        int(payload["n"]),
        str(payload["method"]),
        int(payload["queries"]),
        int(payload["seed"]),
    )
    if method == "bm25":
        from index.keyword import KeywordIndex

        texts, query_texts = synthetic_texts(n, nq, seed)
        KeywordIndex.build(texts[:10]).scores(query_texts[0])  # imports bm25s and the stemmer first
        started = time.perf_counter()
        keyword = KeywordIndex.build(texts)
        build = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            keyword.save(Path(folder) / "keyword")
            size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())

        def rolecall_path(i: int) -> Any:  # what index.retrieval does: every score, then KeywordIndex.top
            return keyword.top(keyword.scores(query_texts[i]), 40)

        def sort_path(i: int) -> Any:  # before KeywordIndex.top: every score, then a full sort
            return np.argsort(-keyword.scores(query_texts[i]), kind="stable")[:40]

        return {
            "build": build,
            "size": size,
            "peak_rss": peak_rss_bytes(),
            "latency": latency_summary(_single_query_latencies(rolecall_path, nq)),
            "latency_sort": latency_summary(_single_query_latencies(sort_path, nq)),
        }

    import faiss

    vectors, queries = synthetic_vectors(n, nq, seed)
    truth: Any = _exact_top(vectors, queries, 10) if method == "hnsw" else None
    index: Any
    started = time.perf_counter()
    if method == "flat":
        index = faiss.IndexFlatIP(DIMENSION)
    else:
        index = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(payload["ef_construction"])
    index.add(vectors)
    build = time.perf_counter() - started

    def search(i: int) -> Any:
        return index.search(queries[i : i + 1], 10)

    result: dict[str, Any] = {"build": build, "threads": faiss.omp_get_max_threads()}
    if method == "flat":
        result["latency"] = latency_summary(_single_query_latencies(search, nq))
        result["peak_rss"] = peak_rss_bytes()
        result["size"] = int(faiss.serialize_index(index).nbytes)  # after the peak: it copies the index
        return result
    sweep = []
    for ef in payload["ef_search"]:
        index.hnsw.efSearch = int(ef)
        _, found = index.search(queries, 10)
        recall = float(np.mean([len(set(found[i]) & set(truth[i])) / 10.0 for i in range(nq)]))
        sweep.append(
            {"ef": ef, "recall": recall, "latency": latency_summary(_single_query_latencies(search, nq))}
        )
    result["sweep"] = sweep
    result["peak_rss"] = peak_rss_bytes()
    result["size"] = int(faiss.serialize_index(index).nbytes)
    return result


def _sentences_of(words: list[str]) -> str:
    """Pseudo-words as sentences of 8-12 words, so a passage has 2-5 sentences for the highlight."""
    sentences, start = [], 0
    while start < len(words):
        size = 8 + (len(words) + start) % 5
        chunk = words[start : start + size]
        sentences.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + ".")
        start += size
    return " ".join(sentences)


def worker_ask_build(payload: dict[str, Any]) -> dict[str, Any]:
    """A real index version of N synthetic passages, written the way index.builder writes one.

    Passages are the pseudo-word texts cut into sentences; passage vectors the clustered synthetic ones;
    each sentence's vector is its passage's plus noise. Keyword index, manifest (documents of 100
    passages) and, at or above index.search.HNSW_MIN_PASSAGES, the HNSW graph, via index.store.
    """
    import numpy as np

    from index import store
    from index.chunking import passage_sentences
    from index.keyword import KeywordIndex
    from index.search import KEYWORD_FOLDER, build_hnsw, dense_kind
    from index.store import DocumentRecord, Manifest
    from index.terms import default_normaliser
    from index.types import Passage

    n, nq, seed = int(payload["n"]), int(payload["queries"]), int(payload["seed"])
    vectors, query_vectors = synthetic_vectors(n, nq, seed)
    texts, query_texts = synthetic_texts(n, nq, seed)
    questions = Path(payload["index"]).with_suffix(".questions")
    questions.mkdir(parents=True, exist_ok=True)  # for the ask workers, so they do not generate the corpus
    np.save(questions / "vectors.npy", query_vectors)
    (questions / "texts.json").write_text(json.dumps(query_texts), encoding="utf-8")
    per_document = 100
    passages = [
        Passage(
            f"doc-{i // per_document:05d}.md",
            f"Document {i // per_document}",
            f"Document {i // per_document}",
            _sentences_of(text.split()),
        )
        for i, text in enumerate(texts)
    ]
    counts = np.array([len(passage_sentences(p)) for p in passages], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rng = np.random.default_rng(seed + 2)
    sentence_vectors = np.repeat(vectors, counts, axis=0)
    for start in range(0, len(sentence_vectors), 50000):
        block = sentence_vectors[start : start + 50000]
        block += rng.standard_normal(block.shape, dtype=np.float32) * (0.8 / math.sqrt(DIMENSION))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    documents = tuple(
        DocumentRecord(
            f"doc-{d:05d}.md",
            "synthetic",
            f"{d:064x}",
            f"Document {d}",
            (),
            {},
            d * per_document,
            min(per_document, n - d * per_document),
        )
        for d in range((n + per_document - 1) // per_document)
    )
    manifest = Manifest(
        store.FORMAT_VERSION, "synthetic", DIMENSION, "synthetic", "", documents, n, dense_kind(n)
    )
    normalise = default_normaliser()
    started = time.perf_counter()
    keyword = KeywordIndex.build([normalise(f"{p.section} {p.text}") for p in passages])
    keyword_seconds = time.perf_counter() - started
    writers: list[tuple[str, Any]] = [(KEYWORD_FOLDER, keyword.save)]
    graph_seconds = math.nan
    if manifest.dense != store.FLAT:
        started = time.perf_counter()
        graph = build_hnsw(vectors)
        graph_seconds = time.perf_counter() - started
        writers.append((store.DENSE_FILE, lambda path: store.write_dense(graph, path)))
    started = time.perf_counter()
    store.write_version(
        Path(payload["index"]), manifest, passages, vectors, sentence_vectors, offsets, writers
    )
    return {
        "dense": manifest.dense,
        "sentences": int(offsets[-1]),
        "keyword_seconds": keyword_seconds,
        "hnsw_seconds": graph_seconds,
        "write_seconds": time.perf_counter() - started,
        "peak_rss": peak_rss_bytes(),
    }


class SyntheticQueryEmbedder:
    """Runs the real ONNX query embedding for every question (its cost is part of the ask), then returns
    the question's synthetic vector, so dense search meets queries drawn like the synthetic passages."""

    def __init__(self, inner: Any, vectors: dict[str, Any]) -> None:
        self.inner = inner
        self.model_id: str = inner.model_id
        self.vectors = vectors

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed_documents(self, texts: Sequence[str], show_progress: bool = False) -> Any:
        raise NotImplementedError("the synthetic index is built without the model")

    def embed_queries(self, texts: Sequence[str]) -> Any:
        import numpy as np

        self.inner.embed_queries(texts)
        return np.stack([self.vectors[text] for text in texts])


def worker_ask_scale(payload: dict[str, Any]) -> dict[str, Any]:
    """The whole ask (normalise, real ONNX query embedding, dense + BM25, fuse, diversify, highlight)
    over the synthetic index, through the real Retriever; `dense` "flat" forces exact search."""
    import numpy as np

    from index import store
    from index.retrieval import Retriever
    from index.search import SearchIndex
    from index.terms import default_normaliser

    index_dir = Path(payload["index"])
    questions_dir = index_dir.with_suffix(".questions")
    query_vectors = np.load(questions_dir / "vectors.npy")
    query_texts = json.loads((questions_dir / "texts.json").read_text(encoding="utf-8"))
    normalise = default_normaliser()
    by_text = {normalise(t): v for t, v in zip(query_texts, query_vectors, strict=True)}
    questions = list(query_texts)
    embedder = SyntheticQueryEmbedder(_rolecall_embedder(), by_text)
    if payload["dense"] == "flat":  # exact search over the same version: its graph is not read
        store.read_dense = lambda version, manifest: None
    started = time.perf_counter()
    search_index = SearchIndex.open(index_dir)
    open_seconds = time.perf_counter() - started
    retriever = Retriever(search_index, embedder)
    latencies = _sequential(lambda q: retriever.retrieve(q, 3), questions)
    peak = peak_rss_bytes()
    top3 = [[[h.passage.text, h.highlight] for h in retriever.retrieve(q, 3)] for q in questions]
    dense_top = search_index.dense(np.stack([by_text[normalise(q)] for q in questions]), 10)[1]
    return {
        "dense": search_index.dense_index,
        "open_seconds": open_seconds,
        "latency": latency_summary(latencies),
        "peak_rss": peak,
        "top3": top3,
        "dense_top10": dense_top.tolist(),
    }


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "warm": worker_warm,
    "build-rolecall": worker_build_rolecall,
    "build-naive": worker_build_naive,
    "naive-ask": worker_naive_ask,
    "serve-rolecall": worker_serve_rolecall,
    "serve-naive": worker_serve_naive,
    "scale": worker_scale,
    "ask-build": worker_ask_build,
    "ask-scale": worker_ask_scale,
}


# ---------------------------------------------------------------------------------------------
# The parent: runs the workers and commands, prints the tables
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One figure for both pipelines; a ratio is printed where both exist."""

    name: str
    unit: str
    rolecall: float | None
    naive: float | None = None
    note: str = ""


def fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        if value < 1:
            return f"{value * 1000:.0f} µs"
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MB":
        return f"{value / MB:.1f} MB" if value < 10 * MB else f"{value / MB:.0f} MB"
    if unit == "/s":
        return f"{value:.1f}/s"
    return f"{value:.0f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_rows(rows: Sequence[Row]) -> None:
    table = []
    for row in rows:
        ratio = ""
        if row.rolecall is not None and row.naive is not None and row.naive:
            ratio = f"{row.rolecall / row.naive:.2f}x"
        table.append([row.name, fmt(row.rolecall, row.unit), fmt(row.naive, row.unit), ratio, row.note])
    print_table(
        ["figure", "rolecall", "naive", "rolecall/naive", "note"], table, [False, True, True, True, False]
    )


@dataclass
class Options:
    """Parsed command line."""

    knowledge: list[Path]
    questions: Path
    scales: list[int]
    min_questions: int
    repeat: int
    levels: list[int]
    level_count: int
    level_seconds: float
    scale_queries: int
    ef_search: list[int]
    ef_construction: int
    target_recall: float
    keep: bool
    query_precision: str = "fp32"
    whole_ask_only: bool = False
    pipelines: bool = field(default=True)


def corpus_copy(sources: Sequence[Path], target: Path) -> list[Path]:
    """A private copy of each knowledge folder, so one document can be changed for the reindex test."""
    copies = []
    for number, source in enumerate(sources):
        copy = target / f"corpus-{number}"
        shutil.copytree(source, copy, symlinks=False, ignore=shutil.ignore_patterns(".git"))
        copies.append(copy)
    return copies


def text_documents(folders: Sequence[Path]) -> list[Path]:
    """The Markdown/text files of these folders (a line can be appended to them), in path order."""
    return sorted(
        p
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in {".md", ".mdx", ".txt"}
    )


def pick_document(folders: Sequence[Path]) -> Path:
    """The document the 'one changed' reindex edits: the median-sized Markdown/text file."""
    candidates = sorted(text_documents(folders), key=lambda p: (p.stat().st_size, str(p)))
    if not candidates:
        raise SystemExit("bench.speed: no .md/.mdx/.txt document to change in the corpus")
    return candidates[len(candidates) // 2]


def median_run(runs: Sequence[Run]) -> tuple[float, int]:
    return statistics.median(r.seconds for r in runs), max(r.peak_rss for r in runs)


def run_pipelines(options: Options, runner: Runner) -> None:
    scratch = runner.scratch
    questions = read_questions(options.questions, options.min_questions)
    print(
        f"== Rolecall vs naive: {', '.join(map(str, options.knowledge))}; {len(questions)} questions from"
        f" {options.questions} ==",
        flush=True,
    )
    corpus = corpus_copy(options.knowledge, scratch)
    rolecall_index, naive_index = scratch / "rolecall-index", scratch / "naive-index"

    say("warming the page cache (one model load, not measured) and exporting the model to ONNX")
    warm = runner.worker("warm", {}).check("warm-up").result()
    say("full build: rolecall (build_index, fresh embedder)")
    rc_build_run = runner.worker(
        "build-rolecall", {"knowledge": [str(p) for p in corpus], "index": str(rolecall_index)}
    )
    rc_build = rc_build_run.check("rolecall build").result()
    say("full build: naive (NaivePipeline.build + save)")
    nv_build_run = runner.worker(
        "build-naive", {"knowledge": [str(p) for p in corpus], "out": str(naive_index)}
    )
    nv_build = nv_build_run.check("naive build").result()

    knowledge_args = [arg for p in corpus for arg in ("--knowledge", str(p))]
    say(f"cold start to first answer, {options.repeat} runs each")
    question = questions[0]
    rc_cold = [
        runner.run(
            [*rolecall_command(), "ask", question, "--index", str(rolecall_index), *knowledge_args]
        ).check("rolecall ask")
        for _ in range(options.repeat)
    ]
    nv_cold = [
        runner.worker("naive-ask", {"index": str(naive_index), "question": question}).check("naive ask")
        for _ in range(options.repeat)
    ]

    say(f"reindex with nothing changed, {options.repeat} runs")
    index_command = [*rolecall_command(), "index", "--index", str(rolecall_index), *knowledge_args]
    unchanged = [runner.run(index_command).check("rolecall index") for _ in range(options.repeat)]
    say(f"reindex with one document changed, {options.repeat} runs")
    edited = pick_document(corpus)
    changed: list[Run] = []
    embedded: list[int] = []
    for number in range(options.repeat):
        with open(edited, "a", encoding="utf-8") as handle:
            handle.write(f"\nThis line was added by the speed benchmark, edit {number + 1}.\n")
        run = runner.run(index_command).check("rolecall index (one changed)")
        changed.append(run)
        match = re.search(r"\((\d+) embedded\)", run.stdout)
        embedded.append(int(match.group(1)) if match else -1)

    serve_payload = {
        "questions": questions,
        "levels": options.levels,
        "level_count": options.level_count,
        "level_seconds": options.level_seconds,
    }
    say(f"warm latency over {len(questions)} questions and concurrency {options.levels}: rolecall")
    rc_serve = runner.worker(
        "serve-rolecall",
        {**serve_payload, "index": str(rolecall_index), "knowledge": [str(p) for p in corpus]},
    )
    rc = rc_serve.check("rolecall serve").result()
    say(f"warm latency over {len(questions)} questions and concurrency {options.levels}: naive")
    nv_serve = runner.worker("serve-naive", {**serve_payload, "index": str(naive_index)})
    nv = nv_serve.check("naive serve").result()

    rc_cold_s, rc_cold_rss = median_run(rc_cold)
    nv_cold_s, nv_cold_rss = median_run(nv_cold)
    unchanged_s, unchanged_rss = median_run(unchanged)
    changed_s, changed_rss = median_run(changed)
    rows = [
        Row(
            "full build (model load incl.)",
            "s",
            rc_build["seconds"],
            nv_build["seconds"],
            "in-process timer, imports excluded",
        ),
        Row("  of which model load", "s", rc_build["model_load"], None, f"{warm['backend']} backend"),
        Row(
            "one-time ONNX export" + (" + int8 copy" if warm["query_precision"] == "int8" else ""),
            "s",
            warm["export_seconds"],
            None,
            "not in any other figure",
        ),
        Row("  build process wall (imports too)", "s", rc_build_run.seconds, nv_build_run.seconds),
        Row("passages", "", rc_build["passages"], nv_build["passages"]),
        Row(
            "passages per second",
            "/s",
            rc_build["passages"] / rc_build["seconds"],
            nv_build["passages"] / nv_build["seconds"],
        ),
        Row("build peak RSS", "MB", rc_build_run.peak_rss, nv_build_run.peak_rss),
        Row(
            "warm query p50",
            "ms",
            rc["latency"]["p50"],
            nv["latency"]["p50"],
            f"{len(questions)} questions, sequential",
        ),
        Row("warm query p95", "ms", rc["latency"]["p95"], nv["latency"]["p95"]),
        Row("warm query p99", "ms", rc["latency"]["p99"], nv["latency"]["p99"]),
        Row("  query embedding (p50)", "ms", rc["query_embed_ms"], None, "1 question"),
        Row(
            "  highlight embedding (p50)",
            "ms",
            rc["highlight_embed_ms"],
            None,
            "none: sentence vectors stored at build time"
            if math.isnan(rc["highlight_sentences"])
            else f"median {rc['highlight_sentences']:.0f} sentences per ask",
        ),
        Row(
            "serving peak RSS",
            "MB",
            rc["peak_rss"],
            nv_serve.peak_rss,
            "latency + concurrency, before the reindex",
        ),
        Row(
            "serving RSS before an in-process reindex",
            "MB",
            rc["rss_before_reindex"],
            None,
            "same process, after the askers",
        ),
        Row(
            "  after it and one more ask",
            "MB",
            rc["rss_after_reindex"],
            None,
            f"every Markdown/text document changed: {rc['reindex_embedded']} passages re-embedded",
        ),
        Row("  peak RSS during it", "MB", rc["peak_rss_reindex"], None),
        Row(
            f"cold start to first answer (median of {options.repeat})",
            "s",
            rc_cold_s,
            nv_cold_s,
            "subprocess wall clock",
        ),
        Row("cold start peak RSS", "MB", rc_cold_rss, nv_cold_rss),
        Row(
            "reindex, nothing changed",
            "s",
            unchanged_s,
            nv_build_run.seconds,
            "rolecall index process; naive can only rebuild",
        ),
        Row("reindex, nothing changed, peak RSS", "MB", unchanged_rss, nv_build_run.peak_rss),
        Row(
            "reindex, one document changed",
            "s",
            changed_s,
            nv_build_run.seconds,
            f"{edited.name}: {statistics.median(embedded):.0f} passages re-embedded",
        ),
        Row("reindex, one changed, peak RSS", "MB", changed_rss, nv_build_run.peak_rss),
    ]
    for rc_level, nv_level in zip(rc["concurrency"], nv["concurrency"], strict=True):
        level = rc_level["level"]
        note = f"{rc_level['done']} / {nv_level['done']} asks; rolecall {rc_level.get('batch', 1):.1f} questions per embedding call"
        if rc_level["errors"] or nv_level["errors"]:
            note += f"; ERRORS {rc_level['errors']} / {nv_level['errors']}: {rc_level['first_error'] or nv_level['first_error']}"
        rows.append(Row(f"{level} concurrent: throughput", "/s", rc_level["qps"], nv_level["qps"], note))
        rows.append(
            Row(
                f"{level} concurrent: latency p50",
                "ms",
                rc_level["latency"]["p50"],
                nv_level["latency"]["p50"],
            )
        )
        rows.append(
            Row(
                f"{level} concurrent: latency p95",
                "ms",
                rc_level["latency"]["p95"],
                nv_level["latency"]["p95"],
            )
        )
    print()
    print_rows(rows)
    print(
        f"\nrolecall: {rc_build['documents']} documents ({rc_build['skipped']} skipped), {rc['answered_of_50']}/50 of"
        " the first questions answered above the floor. naive: paragraphs split on blank lines, model.encode()"
        " defaults, IndexFlatIP, read back from disk."
    )
    print(
        "Build time includes model load in both pipelines and excludes Python imports; cold start and reindex"
        f" are whole processes. Rolecall embeds with {warm['backend']} (ONNX Runtime: one intra-op thread per"
        f" CPU, {os.cpu_count()} CPUs; questions in {warm['query_precision']}, documents in fp32); naive with"
        " sentence-transformers on torch (default threads)."
    )


def run_scale(options: Options, runner: Runner) -> None:
    if options.whole_ask_only:
        run_whole_ask(options, runner)
        return
    print(
        f"\n== Search at scale: synthetic clustered unit vectors (dim {DIMENSION}) and pseudo-word texts;"
        f" {options.scale_queries} single-vector queries, top-10 ==",
        flush=True,
    )
    rows: list[list[str]] = []
    for n in options.scales:
        base = {"n": n, "queries": options.scale_queries, "seed": 0}
        say(f"scale {n}: IndexFlatIP")
        flat = runner.worker("scale", {**base, "method": "flat"}).check(f"scale {n} flat").result()
        say(f"scale {n}: IndexHNSWFlat M=32")
        hnsw = (
            runner.worker(
                "scale",
                {
                    **base,
                    "method": "hnsw",
                    "ef_search": options.ef_search,
                    "ef_construction": options.ef_construction,
                },
            )
            .check(f"scale {n} hnsw")
            .result()
        )
        say(f"scale {n}: BM25 (bm25s via index.keyword)")
        bm25 = runner.worker("scale", {**base, "method": "bm25"}).check(f"scale {n} bm25").result()

        def row(
            name: str, result: dict[str, Any], latency: dict[str, float], peak: int, recall: str, n: int = n
        ) -> list[str]:
            return [
                f"{n:,}",
                name,
                fmt(result["build"], "s"),
                fmt(latency["p50"], "ms"),
                fmt(latency["p99"], "ms"),
                recall,
                fmt(result["size"], "MB"),
                fmt(peak, "MB"),
            ]

        rows.append(row("FAISS IndexFlatIP (exact)", flat, flat["latency"], flat["peak_rss"], "1.000"))
        sweep = hnsw["sweep"]
        tuned = next((s for s in sweep if s["recall"] >= options.target_recall), sweep[-1])
        for point in sweep:
            mark = " <- tuned" if point is tuned else ""
            rows.append(
                row(
                    f"HNSWFlat M=32 efSearch={point['ef']}{mark}",
                    hnsw,
                    point["latency"],
                    hnsw["peak_rss"],
                    f"{point['recall']:.3f}",
                )
            )
        rows.append(
            row("BM25 scores + KeywordIndex.top (Rolecall)", bm25, bm25["latency"], bm25["peak_rss"], "-")
        )
        rows.append(row("BM25 scores + full stable sort", bm25, bm25["latency_sort"], bm25["peak_rss"], "-"))
    print()
    print_table(
        ["passages", "method", "build", "p50", "p99", "recall@10", "index size", "peak RSS"],
        rows,
        [True, False, True, True, True, True, True, True],
    )
    print(
        f"\nrecall@10 against exact inner-product search; 'tuned' = smallest efSearch with recall >= {options.target_recall}"
        f" (efConstruction {options.ef_construction}). index size = serialised index (FAISS) or saved folder"
        " (BM25); peak RSS = the whole worker process, data generation and ground truth included. FAISS threads: OpenMP default."
    )
    run_whole_ask(options, runner)


def run_whole_ask(options: Options, runner: Runner) -> None:
    """The whole ask at each --scale size: the index version as the builder writes it, graph and exact."""
    from index.search import HNSW_EF_SEARCH, HNSW_MIN_PASSAGES, dense_kind

    print(
        f"\n== Whole ask at scale: real index versions of synthetic passages (2-5 sentences each, sentence"
        f" vectors stored), the real Retriever, real ONNX query embedding; {options.scale_queries} questions,"
        " sequential, top 3 ==",
        flush=True,
    )
    if not options.pipelines:  # the pipelines' warm-up exports the ONNX model; otherwise do it here
        say("exporting the model to ONNX once (not measured)")
        runner.worker("warm", {}).check("warm-up")
    rows: list[list[str]] = []
    notes: list[str] = []
    for n in options.scales:
        base = {
            "n": n,
            "queries": options.scale_queries,
            "seed": 0,
            "index": str(runner.scratch / f"ask-{n}"),
        }
        say(f"whole ask {n}: writing the index version ({dense_kind(n)})")
        built = runner.worker("ask-build", base).check(f"ask build {n}").result()
        runs = {}
        for dense in ["hnsw", "flat"] if built["dense"] != "flat" else ["flat"]:
            say(f"whole ask {n}: {dense}")
            runs[dense] = (
                runner.worker("ask-scale", {**base, "dense": dense}).check(f"ask {n} {dense}").result()
            )
        flat = runs["flat"]
        for dense, run in runs.items():
            recall, same = "1.000", "-"
            if dense != "flat":
                found = [
                    len(set(a) & set(b)) / 10.0
                    for a, b in zip(run["dense_top10"], flat["dense_top10"], strict=True)
                ]
                recall = f"{sum(found) / len(found):.3f}"
                agree = sum(a == b for a, b in zip(run["top3"], flat["top3"], strict=True))
                first = sum(a[:1] == b[:1] for a, b in zip(run["top3"], flat["top3"], strict=True))
                same = f"{agree}/{len(flat['top3'])} ({first} same first)"
            name = f"HNSW efSearch={HNSW_EF_SEARCH}" if dense != "flat" else "IndexFlatIP (exact)"
            rows.append(
                [
                    f"{n:,}",
                    name,
                    fmt(run["latency"]["p50"], "ms"),
                    fmt(run["latency"]["p95"], "ms"),
                    fmt(run["latency"]["p99"], "ms"),
                    recall,
                    same,
                    fmt(run["open_seconds"], "s"),
                    fmt(run["peak_rss"], "MB"),
                ]
            )
        notes.append(
            f"{n:,} passages, {built['sentences']:,} sentences: BM25 build {built['keyword_seconds']:.1f} s, HNSW build"
            f" {built['hnsw_seconds']:.1f} s, version written in {built['write_seconds']:.1f} s"
            f" (builder peak RSS {built['peak_rss'] / MB:.0f} MB)"
        )
    print()
    print_table(
        [
            "passages",
            "dense search",
            "ask p50",
            "p95",
            "p99",
            "dense recall@10",
            "same top-3 as exact",
            "open",
            "peak RSS",
        ],
        rows,
        [True, False, True, True, True, True, True, True, True],
    )
    for note in notes:
        print(note)
    print(
        f"Graph used at or above {HNSW_MIN_PASSAGES:,} passages (index.search). Questions are synthetic"
        " pseudo-word queries: each is embedded by the real ONNX model (cost kept) but searched with its"
        " synthetic vector, so dense search meets queries drawn like the passages. recall@10 of the graph's"
        " dense top 10 against exact search; 'same top-3' compares the answered passages and highlights."
        " open = SearchIndex.open; peak RSS = the serving process (ONNX model loaded, vector files"
        " read as in production)."
    )


def say(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--knowledge", type=Path, action="append", metavar="DIR", help="corpus folder (repeatable)"
    )
    parser.add_argument("--questions", type=Path, metavar="FILE.jsonl", default=DEFAULT_QUESTIONS)
    parser.add_argument(
        "--scale", type=int, action="append", metavar="N", default=[], help="synthetic passages"
    )
    parser.add_argument("--min-questions", type=int, default=200, help="questions for the latency runs (200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each cold-start / reindex process (3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], metavar="N")
    parser.add_argument(
        "--level-questions", type=int, default=48, help="asks per concurrency level (48, >= 4 per asker)"
    )
    parser.add_argument(
        "--level-seconds", type=float, default=15.0, help="time cap per concurrency level (15)"
    )
    parser.add_argument("--scale-queries", type=int, default=500)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--query-precision",
        choices=["auto", "int8", "fp32"],
        default="fp32",
        help="ROLECALL_QUERY_PRECISION of Rolecall's processes (fp32, the default: the exact model; int8; auto:"
        " int8 on a CPU with VNNI or AMX, else fp32)",
    )
    parser.add_argument(
        "--whole-ask-only",
        action="store_true",
        help="with --scale: only the whole-ask table, not the search one",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit(WORKERS[args.worker](json.loads(args.payload or "{}")))
        raise SystemExit(0)
    pipelines = bool(args.knowledge) or not args.scale
    return Options(
        knowledge=[p.resolve() for p in (args.knowledge or [BUNDLED_KNOWLEDGE])],
        questions=args.questions.resolve(),
        scales=args.scale,
        min_questions=args.min_questions,
        repeat=max(1, args.repeat),
        levels=args.concurrency,
        level_count=args.level_questions,
        level_seconds=args.level_seconds,
        scale_queries=args.scale_queries,
        ef_search=sorted(args.ef_search),
        ef_construction=args.ef_construction,
        target_recall=args.target_recall,
        keep=args.keep,
        query_precision=args.query_precision,
        whole_ask_only=args.whole_ask_only,
        pipelines=pipelines,
    )


@dataclass
class Scratch:
    """A temporary folder for indexes, corpus copies and outputs, removed at the end unless kept."""

    keep: bool
    path: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rolecall-speed-")))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self.keep:
            print(f"\nscratch kept in {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    options = parse(argv)
    started = time.perf_counter()
    busy_before, own_before = cpu_seconds()
    with Scratch(options.keep) as scratch:
        runner = Runner(scratch, timeout=900.0, query_precision=options.query_precision)
        if options.pipelines:
            run_pipelines(options, runner)
        if options.scales:
            run_scale(options, runner)
    wall = time.perf_counter() - started
    busy_after, own_after = cpu_seconds()
    others = (busy_after - busy_before) - (own_after - own_before)
    share = others / (wall * (os.cpu_count() or 1))
    print(
        f"\nbench.speed finished in {wall:.0f}s; other processes used {max(others, 0.0):.0f} CPU-seconds"
        f" ({max(share, 0.0):.0%} of the machine) meanwhile"
        + (" - figures are inflated by that contention, run again on an idle machine" if share > 0.05 else "")
    )


if __name__ == "__main__":
    main()
