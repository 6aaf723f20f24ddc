"""From a question to ranked, de-duplicated passages with their best sentence highlighted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.chunking import split_sentences
from index.embedding import Embedder, Vectors
from index.search import SearchIndex
from index.terms import default_normaliser
from index.types import Hit, Passage

CANDIDATES = 40
RRF_K = 60


@dataclass(frozen=True)
class Ranked:
    """A candidate passage with its dense cosine (the comparable score) and its fused rank score."""

    passage_id: int
    cosine: float
    fused: float


class Retriever:
    """Hybrid retrieval over one SearchIndex with one query embedder."""

    def __init__(self, search_index: SearchIndex, embedder: Embedder) -> None:
        self.index = search_index
        self.embedder = embedder

    def retrieve(self, question: str, k: int) -> list[Hit]:
        """The top `k` passages for a question, best first, each with its highlighted sentence."""
        return self.retrieve_many([question], k)[0]

    def retrieve_many(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        """Answer several questions with one batched embedding call."""
        if not questions:
            return []
        normalise = default_normaliser()
        normalised = [normalise(q) for q in questions]
        query_vectors = self.embedder.embed_queries(normalised)
        results: list[list[Hit]] = []
        for question, vector in zip(normalised, query_vectors, strict=True):
            ranked = self._rank(question, vector)
            chosen = self._diverse_top(ranked, k)
            results.append(self._with_highlights(question, vector, chosen))
        return results

    def _rank(self, question: str, vector: Vectors) -> list[Ranked]:
        index = self.index
        if len(index) == 0:
            return []
        _, dense_ids = index.dense(vector.reshape(1, -1), CANDIDATES)
        keyword_scores = index.keyword.scores(question)
        keyword_ids = [int(i) for i in np.argsort(-keyword_scores)[:CANDIDATES] if keyword_scores[i] > 0]
        fused: dict[int, float] = {}
        for rank, pid in enumerate(int(i) for i in dense_ids[0] if i >= 0):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, pid in enumerate(keyword_ids):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
        ids = list(fused)
        cosines = index.cosine(vector, ids)
        ranked = [Ranked(pid, float(c), fused[pid]) for pid, c in zip(ids, cosines, strict=True)]
        ranked.sort(key=lambda r: (r.fused, r.cosine), reverse=True)
        return ranked

    def _diverse_top(self, ranked: list[Ranked], k: int) -> list[Ranked]:
        """Best first, skipping near-duplicates and a third passage from one section."""
        chosen: list[Ranked] = []
        deferred: list[Ranked] = []
        per_section: dict[tuple[str, str], int] = {}
        for candidate in ranked:
            if len(chosen) >= k:
                break
            passage = self.index.passages[candidate.passage_id]
            if any(_near_duplicate(passage, self.index.passages[c.passage_id]) for c in chosen):
                continue
            key = (passage.source, passage.section)
            if per_section.get(key, 0) >= 2:
                deferred.append(candidate)
                continue
            per_section[key] = per_section.get(key, 0) + 1
            chosen.append(candidate)
        chosen.extend(deferred[: k - len(chosen)])
        return chosen

    def _with_highlights(self, question: str, vector: Vectors, chosen: list[Ranked]) -> list[Hit]:
        if not chosen:
            return []
        passages = [self.index.passages[c.passage_id] for c in chosen]
        sentence_lists = [split_sentences(p.text) or [p.text] for p in passages]
        flat = [s for sentences in sentence_lists for s in sentences]
        sentence_vectors = self.embedder.embed_queries(flat)
        similarities = sentence_vectors @ vector.reshape(-1)
        hits: list[Hit] = []
        offset = 0
        for candidate, passage, sentences in zip(chosen, passages, sentence_lists, strict=True):
            scores = similarities[offset : offset + len(sentences)]
            offset += len(sentences)
            best = int(np.argmax(scores))
            hits.append(Hit(passage, candidate.cosine, sentences[best]))
        return hits


def _near_duplicate(a: Passage, b: Passage) -> bool:
    """Overlapping windows or repeated text: most words of the shorter passage appear in the other."""
    words_a, words_b = set(a.text.lower().split()), set(b.text.lower().split())
    if not words_a or not words_b:
        return a.text == b.text
    overlap = len(words_a & words_b) / min(len(words_a), len(words_b))
    return overlap >= 0.8
