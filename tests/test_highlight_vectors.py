"""Highlights from sentence vectors stored at build time, and the rebuild of indexes of an older format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index import store
from index.builder import build_index
from index.chunking import passage_sentences
from index.embedding import ModelSpec, SentenceTransformerEmbedder, resolve_model
from index.terms import default_normaliser
from tests.conftest import FakeEmbedder, make_service

QUESTIONS = [
    "What does a senior back-end engineer earn?",
    "Which tools do SREs use to watch systems?",
    "How do I get promoted from senior to staff?",
    "Is pay higher in New York?",
    "Who runs the on-call rotation?",
    "What databases do back-end engineers use?",
    "What is a promotion packet?",
    "What is the capital of Portugal?",  # off-topic, but not about another walk of life (refused before any search)
]


def test_highlight_from_stored_vectors_equals_the_one_computed_live(
    small_knowledge: Path, tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    service = make_service(small_knowledge, tmp_path / "idx", real_embedder, min_score=-1.0)
    service.open()
    normalise = default_normaliser()
    checked = 0
    for question in QUESTIONS:
        answer = service.ask(question)
        vector = real_embedder.embed_queries([normalise(question)])[0]
        # a question naming one role picks its highlight with the role projected out too; its score is still
        # the closest sentence's cosine
        one_role = len(service.retriever.index.roles.roles_in(normalise(question))) == 1
        for hit in answer.hits:
            sentences = passage_sentences(hit.passage)
            similarities = real_embedder.embed_queries(sentences) @ vector  # what was done per query before
            best = int(np.argmax(similarities))
            assert hit.highlight in sentences if one_role else hit.highlight == sentences[best], question
            assert abs(hit.score - float(similarities[best])) < 1e-5, question
            checked += 1
    assert checked == 3 * len(QUESTIONS)


def test_an_index_of_the_previous_format_is_rebuilt(small_knowledge: Path, tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    spec = ModelSpec(embedder.model_id, resolve_model(None).location)
    build_index([small_knowledge], tmp_path / "idx", spec, lambda: embedder)
    version = store.current_version(tmp_path / "idx")
    assert version is not None
    manifest = json.loads((version / store.MANIFEST_FILE).read_text())
    manifest["format_version"] = 1  # what the previous Rolecall wrote: no sentence vectors
    (version / store.MANIFEST_FILE).write_text(json.dumps(manifest))
    (version / store.SENTENCES_FILE).unlink()
    (version / store.SENTENCE_OFFSETS_FILE).unlink()

    notes: list[str] = []
    service = make_service(small_knowledge, tmp_path / "idx", embedder, min_score=-1.0)
    service.open(notify=notes.append)
    assert notes and "format 1" in notes[0] and "rebuilt" in notes[0]
    assert store.load_manifest(tmp_path / "idx").format_version == store.FORMAT_VERSION  # type: ignore[union-attr]
    assert service.ask("Which tools do site reliability engineers use?").hits
