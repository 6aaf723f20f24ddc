"""The team's own questions over the bundled knowledge, through the real model and index."""

from __future__ import annotations

from pathlib import Path

from bot.evaluation import evaluate, read_cases
from index.embedding import SentenceTransformerEmbedder
from tests.conftest import BUNDLED_KNOWLEDGE, REPO, make_service

EVAL_FILE = REPO / "eval" / "knowledge.jsonl"


def test_bundled_knowledge_answers_the_teams_questions(tmp_path: Path, real_embedder: SentenceTransformerEmbedder) -> None:
    cases = read_cases(EVAL_FILE)
    assert sum(not c.abstain for c in cases) >= 30 and sum(c.abstain for c in cases) >= 15
    service = make_service(BUNDLED_KNOWLEDGE, tmp_path / "idx", real_embedder)
    service.open()
    result = evaluate(cases, service.ask_many)
    figures = result.figures()
    assert figures["hit@3"] >= 0.96, result.summary()
    assert figures["hit@1"] >= 0.90, result.summary()
    assert result.off_topic_refused == result.off_topic, result.summary()
    assert result.false_refusals <= 1, result.summary()
    # the bold sentence is an answering one (holds an expected phrase) about 2/3 of the time; the
    # passage's first sentence would be about 1/3
    assert figures["highlight"] >= 0.6 and figures["highlight"] >= 1.8 * figures["lead_sentence"], result.summary()
