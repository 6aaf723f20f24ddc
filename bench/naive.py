"""The naive baseline: raw paragraphs, the same model with default encode settings, exact FAISS search."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embedding import resolve_model
from index.types import Hit, Passage

TEXT_SUFFIXES = {".md", ".mdx", ".markdown", ".txt", ".html", ".htm"}


@dataclass
class NaivePipeline:
    """Paragraph split on blank lines, model.encode() with its defaults, IndexFlatIP, top-k."""

    passages: list[Passage]
    model: object
    index: object
    build_seconds: float

    @classmethod
    def build(cls, folders: Sequence[Path]) -> NaivePipeline:
        import faiss
        from sentence_transformers import SentenceTransformer

        started = time.perf_counter()
        passages: list[Passage] = []
        for root in folders:
            for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES):
                source = path.relative_to(root).as_posix()
                text = path.read_text(encoding="utf-8", errors="replace")
                for paragraph in (p.strip() for p in text.split("\n\n")):
                    if paragraph:
                        passages.append(Passage(source, source, "", paragraph))
        model = SentenceTransformer(resolve_model(None).location, device="cpu")
        vectors = model.encode([p.text for p in passages], normalize_embeddings=True)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.asarray(vectors, dtype=np.float32))
        return cls(passages, model, index, time.perf_counter() - started)

    def search(self, questions: Sequence[str], k: int = 3) -> list[list[Hit]]:
        vectors = self.model.encode(list(questions), normalize_embeddings=True)  # type: ignore[attr-defined]
        scores, ids = self.index.search(np.asarray(vectors, dtype=np.float32), k)  # type: ignore[attr-defined]
        return [
            [
                Hit(self.passages[i], float(s), self.passages[i].text)
                for s, i in zip(row_s, row_i, strict=True)
                if i >= 0
            ]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]
