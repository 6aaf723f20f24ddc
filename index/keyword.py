"""BM25 keyword search over passages, so exact terms ("$120,000", "Kubernetes", "TDD") are found."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

_TOKEN = re.compile(r"\$?\d+(?:[.,]\d+)*k?|[a-z][a-z0-9]*(?:\+\+|#)?")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "should",
        "much",
        "many",
        "any",
        "some",
    ]
)


# A word of a question that at most this many passages hold names what the question is about ("debounce"):
# a passage holding it is shown, and highlighted there, once the question is answered at all. Two, not one:
# neighbouring windows of a section share a sentence. In a small collection no word is rare: at most this
# share of the passages may hold it (so from 50 passages on, two may).
RARE_TERM_PASSAGES = 2
RARE_TERM_SHARE = 0.04


@lru_cache(maxsize=1)
def _stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed content words; numbers lose '$' and thousands commas ("$120,000" -> "120000")."""
    tokens: list[str] = []
    for raw in _TOKEN.findall(text.lower()):
        if raw[0].isdigit() or raw[0] == "$":
            number = raw.lstrip("$").replace(",", "")
            if number.endswith("k") and number[:-1].replace(".", "", 1).isdigit():
                number = str(int(float(number[:-1]) * 1000))
            tokens.append(number)
        elif raw not in _STOPWORDS:
            tokens.append(raw)
    words = [t for t in tokens if not t[0].isdigit()]
    stemmed = iter(_stemmer().stemWords(words))  # type: ignore[attr-defined]
    return [t if t[0].isdigit() else next(stemmed) for t in tokens]


class KeywordIndex:
    """Okapi BM25 over tokenised passages: bm25s builds and saves it; answering reads its arrays directly.

    bm25s ("lucene" scoring) stores each term's BM25 contribution per passage as a sparse column matrix
    (data, indices, indptr) beside its vocabulary. A question's scores are the sum of its terms'
    columns, which is all bm25s.get_scores does; reading the arrays with numpy keeps bm25s and scipy
    (0.3 s of imports) out of `rolecall ask` and every ask's start.
    """

    def __init__(
        self,
        vocabulary: dict[str, int],
        data: npt.NDArray[np.float32],
        indices: npt.NDArray[np.int64],
        indptr: npt.NDArray[np.int64],
        size: int,
        builder: object | None = None,
    ) -> None:
        self._vocabulary = vocabulary
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self._size = size
        self._builder = builder  # the bm25s index a build made, kept to save it in bm25s's own format

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        import bm25s

        retriever = bm25s.BM25()  # method "lucene": no per-term score for passages without the term
        corpus = [tokenize(text) or ["\u2205"] for text in texts]
        # Term ids in order of first use, not bm25s's set order: the same passages give the same files
        vocabulary: dict[str, int] = {}
        ids = [[vocabulary.setdefault(term, len(vocabulary)) for term in terms] for terms in corpus]
        retriever.index((ids, vocabulary), show_progress=False)
        scores = retriever.scores
        return cls(
            dict(retriever.vocab_dict),
            scores["data"],
            scores["indices"],
            scores["indptr"],
            len(texts),
            retriever,
        )

    def save(self, folder: Path) -> None:
        if self._builder is None:
            raise ValueError("only a keyword index built in this process can be saved")
        self._builder.save(str(folder))  # type: ignore[attr-defined]

    @classmethod
    def load(cls, folder: Path, size: int) -> KeywordIndex:
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        if params.get("method", "lucene") != "lucene" or int(params.get("num_docs", size)) != size:
            raise ValueError(f"unexpected BM25 parameters {params}")
        vocabulary = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        return cls(
            {str(term): int(i) for term, i in vocabulary.items()},
            np.load(folder / "data.csc.index.npy"),
            np.load(folder / "indices.csc.index.npy"),
            np.load(folder / "indptr.csc.index.npy"),
            size,
        )

    def rare(self, terms: Iterable[str]) -> frozenset[str]:
        """Those of `terms` (stems, as `tokenize` gives them) that few passages hold (at least one)."""
        most = self._rare_most()
        found = set()
        for term in terms:
            term_id = self._vocabulary.get(term)
            if term_id is not None and self._indptr[term_id + 1] - self._indptr[term_id] <= most:
                found.add(term)
        return frozenset(found)

    def _rare_most(self) -> int:
        """How many passages may hold a word for it to be rare here (0 in a small collection: none is)."""
        return min(RARE_TERM_PASSAGES, int(RARE_TERM_SHARE * self._size))

    def rare_vocabulary(self) -> list[str]:
        """Every term few passages hold, sorted (what a Qdrant collection records)."""
        counts = np.diff(self._indptr)  # bm25s's vocabulary also holds "" for an empty text, with no column
        return sorted(
            term
            for term, term_id in self._vocabulary.items()
            if term_id < len(counts) and 0 < counts[term_id] <= self._rare_most()
        )

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every passage for the query (zeros when no query term is indexed)."""
        scores = np.zeros(self._size, dtype=np.float32)
        for term in tokenize(query):  # a repeated term counts again, as in bm25s
            term_id = self._vocabulary.get(term)
            if term_id is None:
                continue
            start, end = self._indptr[term_id], self._indptr[term_id + 1]
            scores[self._indices[start:end]] += self._data[start:end]  # a column lists each passage once
        return scores

    @staticmethod
    def top(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
        """Ids of the `k` best scores, by score descending then id ascending.

        Exactly the first `k` of a full stable sort (`np.argsort(-scores, kind="stable")[:k]`), computed
        with argpartition: everything above the k-th best score, then the lowest ids of those equal to
        it, and only those `k` sorted. 1.4 ms instead of 6.5 ms at 100k passages (bench/speed.py --scale).
        """
        size = len(scores)
        if k <= 0 or size == 0:
            return np.zeros(0, dtype=np.int64)
        if k >= size:
            return np.argsort(-scores, kind="stable").astype(np.int64)
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th best score
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[: k - len(above)]  # flatnonzero gives ascending ids
        chosen = np.sort(np.concatenate([above, tied]))
        return chosen[np.argsort(-scores[chosen], kind="stable")].astype(np.int64)
