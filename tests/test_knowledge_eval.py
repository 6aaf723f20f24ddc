"""The team's own questions over the bundled knowledge, through the real model and index."""

from __future__ import annotations

import re

import pytest

from bot.evaluation import evaluate, read_cases
from bot.service import RolecallService
from index.embedding import SentenceTransformerEmbedder
from tests.conftest import BUNDLED_KNOWLEDGE, REPO, make_service

EVAL_FILE = REPO / "eval" / "knowledge.jsonl"


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> RolecallService:
    service = make_service(BUNDLED_KNOWLEDGE, tmp_path_factory.mktemp("bundled") / "idx", real_embedder)
    service.open()
    return service


def test_bundled_knowledge_answers_the_teams_questions(bundled: RolecallService) -> None:
    cases = read_cases(EVAL_FILE)
    assert sum(not c.abstain for c in cases) >= 30 and sum(c.abstain for c in cases) >= 15
    service = bundled
    result = evaluate(cases, service.ask_many)
    figures = result.figures()
    assert figures["hit@3"] >= 0.96, result.summary()
    assert figures["hit@1"] >= 0.90, result.summary()
    assert result.off_topic_refused == result.off_topic, result.summary()
    assert result.false_refusals <= 1, result.summary()
    # the bold sentence is an answering one (holds an expected phrase) about 2/3 of the time; the
    # passage's first sentence would be about 1/3
    assert figures["highlight"] >= 0.6 and figures["highlight"] >= 1.8 * figures["lead_sentence"], result.summary()


def test_how_do_i_become_questions_are_answered_from_the_roles_path_section(bundled: RolecallService) -> None:
    """Every role page has a "How to become a ..." section; asked how to become one, in several phrasings,
    people should see it, ahead of the education section that answers "what degree do I need"."""
    paths = {}
    for page in sorted(BUNDLED_KNOWLEDGE.glob("*.md")):
        heading = re.search(r"^## (How to become (an? .+))$", page.read_text(encoding="utf-8"), re.MULTILINE)
        if heading:
            paths[page.name] = (heading.group(1), heading.group(2))  # ("How to become a data engineer", "a data engineer")
    assert len(paths) >= 10
    asks = ("how do I become {role}?", "what's the path to becoming {role}?", "roadmap for becoming {role}")
    first = in_top3 = 0
    shown_first = []
    for source, (section, role) in paths.items():
        for ask in asks:
            answer = bundled.ask(ask.format(role=role))
            right = [h.passage.source == source and h.passage.section.endswith(section) for h in answer.hits]
            first += bool(right) and right[0]
            in_top3 += any(right[:3])
            shown_first.append(f"{ask.format(role=role)} -> {answer.hits[0].passage.section if answer.hits else 'refused'}")
    report = "\n".join(shown_first)
    assert in_top3 >= 0.9 * len(shown_first), report
    assert first >= 0.8 * len(shown_first), report
