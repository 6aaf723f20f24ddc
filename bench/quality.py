"""Answer quality of Rolecall against the naive pipeline on one corpus and one eval file, in one run.

python -m bench.quality --knowledge ../shared/corpora/seeds eval/seeds.jsonl
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.naive import NaivePipeline
from bot.answer import Answer
from bot.evaluation import EvalResult, evaluate, read_cases
from bot.service import RolecallService, ServiceConfig
from bot.settings import load_settings


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("eval_file", type=Path)
    parser.add_argument("--knowledge", type=Path, action="append", help="corpus folder (default: bundled)")
    parser.add_argument("--misses", action="store_true", help="list Rolecall's misses")
    args = parser.parse_args()
    settings = load_settings()
    cases = read_cases(args.eval_file)
    folders = tuple(args.knowledge or settings.knowledge_dirs)
    with tempfile.TemporaryDirectory() as scratch:
        config = ServiceConfig.from_settings(settings)
        config = ServiceConfig(**{**config.__dict__, "knowledge_dirs": folders, "index_dir": Path(scratch)})
        service = RolecallService(config)
        started = time.perf_counter()
        service.open()
        ours = evaluate(cases, service.ask_many)
        ours_seconds = time.perf_counter() - started
        # The same index and model, ranked by reciprocal rank fusion instead of the weighted sum.
        rrf_service = RolecallService(ServiceConfig(**{**config.__dict__, "fusion": "rrf"}), service.embedder)
        started = time.perf_counter()
        rrf_service.open()
        rrf = evaluate(cases, rrf_service.ask_many)
        rrf_seconds = time.perf_counter() - started
    naive = NaivePipeline.build(list(folders))
    theirs = evaluate(
        cases, lambda qs: [Answer(q, tuple(h)) for q, h in zip(qs, naive.search(qs), strict=True)]
    )
    print(f"eval file: {args.eval_file} over {', '.join(map(str, folders))}")
    _row("rolecall", ours, ours_seconds)
    _row("rrf", rrf, rrf_seconds)
    _row("naive", theirs, naive.build_seconds, highlights=False)
    print("rolecall: weighted sum of cosine and BM25 (the default); rrf: reciprocal rank fusion, same index")
    print("naive: paragraphs split on blank lines, same model, IndexFlatIP, no relevance floor")
    if args.misses:
        for miss in ours.misses:
            print(f"  miss: {miss}")


def _row(name: str, result: EvalResult, seconds: float, highlights: bool = True) -> None:
    """One pipeline's figures; the naive pipeline shows whole paragraphs, so it has no highlight to judge."""
    f = result.figures()
    print(
        f"{name:9s} hit@1 {f['hit@1']:.3f}  hit@3 {f['hit@3']:.3f}  MRR {f['mrr']:.3f}  "
        f"document hit@1 {f['document_hit@1']:.3f} hit@3 {f['document_hit@3']:.3f}  "
        f"off-topic refused {f['off_topic_refused']}/{f['off_topic']}  "
        f"answerable refused {f['false_refusals']}/{f['answerable']}  (build+eval {seconds:.1f}s)"
    )
    if highlights:
        print(
            f"{'':9s} refused: the nearest section named is right for {f['refused_nearest_right']} of"
            f" {f['false_refusals']} answerable; named for {f['off_topic_nearest']} of {f['off_topic_refused']} off-topic"
        )
        print(
            f"{'':9s} highlight answers {f['highlight']:.3f}, the passage's lead sentence {f['lead_sentence']:.3f}"
            f" (over {f['highlight_judged']} right passages whose sentences hold an expected phrase)"
        )


if __name__ == "__main__":
    main()
