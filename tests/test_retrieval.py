"""Retrieval through the real packaged model and real FAISS on a small knowledge folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.service import RolecallService
from index.chunking import split_sentences
from index.embedding import SentenceTransformerEmbedder
from tests.conftest import make_service, write_docs


@pytest.fixture
def service(
    small_knowledge: Path, tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> RolecallService:
    built = make_service(small_knowledge, tmp_path / "idx", real_embedder)
    built.open()
    return built


def test_pay_question_returns_the_pay_passage_first_with_its_source(service: RolecallService) -> None:
    answer = service.ask("What does a senior back-end engineer earn?")
    assert answer.answered
    top = answer.hits[0]
    assert top.passage.source == "senior-back-end-engineer.md"
    assert top.passage.section == "Senior Back-End Software Engineer > Pay"
    assert "$120,000" in top.highlight


def test_highlight_is_a_sentence_of_its_passage(service: RolecallService) -> None:
    answer = service.ask("Which tools do SREs use to watch systems?")
    assert answer.answered
    for hit in answer.hits:
        assert hit.highlight in split_sentences(hit.passage.text)
    assert "Prometheus" in answer.hits[0].highlight


def test_exact_term_is_found(service: RolecallService) -> None:
    answer = service.ask("Terraform")
    assert answer.answered
    assert "Terraform" in answer.hits[0].passage.text


def test_off_topic_question_is_refused_with_the_roles_listed(service: RolecallService) -> None:
    answer = service.ask("How do I bake banana bread?")
    assert not answer.answered
    assert "Site Reliability / DevOps Engineer" in answer.refusal_text()


def test_json_shape_is_the_documented_one(service: RolecallService) -> None:
    data = service.ask("how do I get promoted from senior to staff?").to_json()
    assert set(data) == {"question", "answered", "passages"}
    assert data["answered"] is True
    first = data["passages"][0]
    assert set(first) == {"source", "title", "section", "text", "highlight", "score"}
    assert first["source"] == "career-ladder.md"
    assert isinstance(first["score"], float)


def test_scores_are_comparable_cosines(service: RolecallService) -> None:
    on_topic = service.ask("senior backend salary in the US").hits[0].score
    related = service.ask("What does a site reliability engineer do on call?").hits[0].score
    assert 0.3 < on_topic <= 1.0 and 0.3 < related <= 1.0


PRICE_TABLE_DOC = {
    "pricing.md": "# Bulk pricing question\n\nThe interviewer showed a price table:\n\n```\n"
    "purchase quantity                 price per unit\n1-5                               5 dollars\n"
    "6-10                              4 dollars\n```\n\nClarify the rules before you write any code.\n"
}


def test_a_prose_sentence_is_highlighted_over_space_aligned_columns(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    service = make_service(write_docs(tmp_path / "k", PRICE_TABLE_DOC), tmp_path / "idx", real_embedder)
    service.open()
    answer = service.ask("what is the price per unit when I buy in bulk?")
    assert answer.answered
    assert answer.hits[0].highlight == "The interviewer showed a price table:"
