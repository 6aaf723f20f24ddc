"""From a question to ranked, de-duplicated passages with their best sentence highlighted.

Ranking: the question (after term normalisation) is embedded once (twice, in one batch, when the asker
names a role they are leaving: with it and without it, averaged); FAISS gives dense candidates and
BM25 keyword candidates; each candidate scores `cosine + KEYWORD_WEIGHT * bm25 / best bm25`, plus
SENTENCE_WEIGHT times its best sentence's cosine, plus ROLE_BOOST when its document is a topic the
question names or the page of a role it names (one role, or several it compares; not both sides of a move
between two of our roles), minus ROLE_BOOST for the page of a role the asker is leaving, plus, when it names
just one role, ASPECT_WEIGHT times the role's passages' best sentence
cosine to the question's `Aspect` (the role's direction projected out), plus, when it asks how many or how
long, QUANTITY_WEIGHT times its best cosine among its sentences that state a quantity ("3-5 projects",
"six months"). Weighted fusion beat reciprocal
rank fusion on every eval set (see bench/quality.py). For a question that names no role or topic, when the
version stores its passages' token vectors, the best RERANK_TOP candidates also get TOKEN_MATCH_WEIGHT
times their late-interaction score: the mean, over the question's word pieces (stop words left out), of
each one's best cosine to a word piece of the passage; the token vectors come out of the same model
passes as the question's and the passages' vectors. Among those, the first one's document keeps its
places, but which of its windows fills them is decided with SAME_DOCUMENT_TOKEN_WEIGHT more of the token
match: the fused score picks the document well, the words tell its windows apart. The top passages are
then de-duplicated and, for comparisons, drawn from each named role in turn. Each passage's highlight is
its prose sentence closest to the question (or to question and aspect together), among those naming what
the question names when some do ("London"); the closest sentence's cosine is the hit's score, comparable
across questions (with an exact term of the question, the closest sentence holding it). No sentence is
highlighted twice in one answer: a window whose highlight an earlier passage already shows (overlapping
windows share a sentence) gives its place to the next candidate,
SPARE_CANDIDATES of which get highlights for that. Sentence vectors are computed when the index is built, so
answering embeds only the question (and, once per version, the role titles the aspect needs).

Where candidates come from is a seam (`CandidateSource`): `FaissCandidates` ranks over an opened
SearchIndex as described above; `index.qdrant_store.QdrantCandidates` asks Qdrant for the union of its
dense and sparse candidates and fuses them the same way (the engine's sparse score standing in for BM25).
Role boost, the best-sentence and aspect terms, de-duplication, side-by-side and highlights are shared by both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from index.batching import QueryBatcher
from index.chunking import is_prose, passage_sentences, split_sentences
from index.embedding import Embedder, TokenVectors, Vectors, query_embedding
from index.keyword import tokenize
from index.roles import RoleDocument, RoleMatcher, without_tenure
from index.search import SearchIndex
from index.terms import default_fillers, default_normaliser, whole_words
from index.types import Hit, Passage

CANDIDATES = 40
KEYWORD_WEIGHT = 0.2
ROLE_BOOST = 0.1
# times a candidate's best sentence cosine: one sentence that answers beats a vague passage
SENTENCE_WEIGHT = 0.15
ASPECT_WEIGHT = 0.3  # one named role: its passages' best sentence cosine to the question without it (_aspect)
# the aspect in choosing the highlight: times Aspect.cosines, added to the question's cosine
HIGHLIGHT_ASPECT_WEIGHT = 1.0
PER_SECTION = 2
SPARE_CANDIDATES = 2  # highlighted beyond k, to replace a passage whose highlight an earlier one shows
RERANK_TOP = 10  # candidates reranked by token matching; 20 gained one blind hit@3 with the window order, 2x the products
TOKEN_MATCH_WEIGHT = 1.0  # times the late-interaction score (_token_match_scores); 2.0 refused one more
# more of it, ordering the first document's windows among themselves (3+ lost hit@3)
SAME_DOCUMENT_TOKEN_WEIGHT = 1.0
# a question asking how many or how long: times a candidate's best cosine among its sentences stating a quantity
QUANTITY_WEIGHT = 0.2
# ...and its highlight is the closest sentence stating one, if that is within this of the closest sentence's cosine
QUANTITY_HIGHLIGHT_MARGIN = 0.2
# passages whose sentences, stems, names and quantities are kept worked out (Retriever.prepare)
PASSAGE_CACHE = 4096
RRF_K = 60  # reciprocal rank fusion, kept to measure against the weighted sum (bench/quality.py)

Fusion = Literal["weighted", "rrf"]


@dataclass(slots=True)  # not frozen: that costs about 1 µs more per candidate, and ~70 are made per question
class Ranked:
    """A candidate passage with its dense cosine, its fused ranking score and its sentences' vectors."""

    passage_id: int
    cosine: float
    fused: float
    passage: Passage = field(compare=False)
    sentence_vectors: Vectors = field(compare=False, repr=False)  # one row per chunking.passage_sentences


@dataclass(frozen=True)
class Aspect:
    """What a question naming one role asks about it: its vector with the role's title direction
    projected out, and that direction."""

    vector: Vectors
    role: Vectors

    def cosines(self, sentence_vectors: Vectors) -> npt.NDArray[np.float64]:
        """Each sentence's cosine to the aspect with the role's direction projected out of the sentence
        too, so sentences that name the role are not marked down for it."""
        along_role = sentence_vectors @ self.role
        rest = np.sqrt(np.maximum(1.0 - along_role * along_role, 1e-6))
        return (sentence_vectors @ self.vector) / rest


class CandidateVersion(Protocol):
    """One live version of the passages: its documents, and its candidates for a question."""

    documents: tuple[RoleDocument, ...]
    roles: RoleMatcher
    role_boost: float  # added for a page asked about, taken off for one left (Retriever._rank)

    def __len__(self) -> int: ...

    def candidates(self, question: str, vector: Vectors) -> list[Ranked]:
        """Candidates for a normalised question and its embedding, fused scores without the role boost."""
        ...

    def token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> npt.NDArray[np.float32] | None:
        """Per passage, in order: the mean over the question's word pieces of the best cosine to one of the
        passage's word pieces (late interaction, as in ColBERT); None when this version has no token vectors."""
        ...

    def rare_terms(self, terms: Iterable[str]) -> frozenset[str]:
        """Those of the keyword stems that few passages hold (index.keyword.RARE_TERM_PASSAGES at most)."""
        ...


class CandidateSource(Protocol):
    """Where the retriever gets the live version from (it may change between two questions)."""

    def version(self) -> CandidateVersion: ...


class FaissCandidates:
    """Candidates from an opened SearchIndex: FAISS and BM25, fused as weighted sum (or RRF, to measure)."""

    def __init__(self, search_index: SearchIndex, fusion: Fusion = "weighted") -> None:
        self.index = search_index
        self.fusion = fusion
        self.documents = search_index.documents
        self.roles = search_index.roles
        self.passages = search_index.passages
        self.role_boost = ROLE_BOOST if fusion == "weighted" else 1.0 / (RRF_K + 1)

    def version(self) -> FaissCandidates:
        return self  # one immutable version; the service installs a new Retriever for the next

    def __len__(self) -> int:
        return len(self.index)

    def rare_terms(self, terms: Iterable[str]) -> frozenset[str]:
        return self.index.keyword.rare(terms)

    def token_match(
        self, question_tokens: TokenVectors, passage_ids: Sequence[int]
    ) -> npt.NDArray[np.float32] | None:
        tokens = self.index.tokens
        if tokens is None:
            return None
        rows, counts = tokens.stacked(passage_ids)
        return stacked_token_match(question_tokens, rows, counts)

    def candidates(self, question: str, vector: Vectors) -> list[Ranked]:
        index = self.index
        if len(index) == 0:
            return []
        _, dense_ids = index.dense(vector.reshape(1, -1), CANDIDATES)
        keyword_scores = index.keyword.scores(question)
        best_keyword = float(keyword_scores.max()) if len(keyword_scores) else 0.0
        keyword_ids = (
            index.keyword.top(keyword_scores, CANDIDATES) if best_keyword > 0 else np.array([], dtype=int)
        )
        dense_found = dense_ids[0][dense_ids[0] >= 0]
        # dense first, then keyword-only
        ids = list(dict.fromkeys(dense_found.tolist() + keyword_ids.tolist()))
        cosines = index.cosine(vector, ids)
        if self.fusion == "rrf":
            dense_rank = {pid: rank for rank, pid in enumerate(dense_found.tolist())}
            keyword_rank = {pid: rank for rank, pid in enumerate(keyword_ids.tolist())}
            fused = [
                sum(1.0 / (RRF_K + 1 + r[pid]) for r in (dense_rank, keyword_rank) if pid in r) for pid in ids
            ]
        else:
            keyword_part = keyword_scores[ids] / best_keyword if best_keyword > 0 else np.zeros(len(ids))
            fused = (cosines + KEYWORD_WEIGHT * keyword_part).tolist()
        return [
            Ranked(pid, c, f, index.passages[pid], index.sentence_rows(pid))
            for pid, c, f in zip(ids, cosines.tolist(), fused, strict=True)
        ]


class Retriever:
    """Hybrid retrieval over one candidate source (an opened SearchIndex, or Qdrant) with one query embedder."""

    def __init__(
        self,
        source: SearchIndex | CandidateSource,
        embedder: Embedder,
        batcher: QueryBatcher | None = None,
        fusion: Fusion = "weighted",
    ) -> None:
        self.source: CandidateSource = (
            FaissCandidates(source, fusion) if isinstance(source, SearchIndex) else source
        )
        self.embedder = embedder
        self.batcher = batcher or QueryBatcher(query_embedding(embedder))
        self.fusion = fusion
        self._title_vectors: dict[str, Vectors] = {}  # role titles' vectors, for _aspect
        self._prepared: int | None = None  # passages prepared (prepare), once it has run
        _single_threaded_blas()

    @property
    def index(self) -> CandidateVersion:
        """The live version: its documents and, with len(), its passage count."""
        return self.source.version()

    def prepare(self) -> int:
        """Work out now what each passage's highlight needs (its sentences, their stems, names and quantities,
        cached per passage), so that the first questions to meet a passage do not; returns how many passages.

        A server calls it once it has opened an index: unprepared, the first pass over the handbook's 199
        questions took about 1 ms more per ask at p50 than the next (bench/README). Only versions that hold their
        passages (FAISS) can, and only as many as the caches keep.
        """
        if self._prepared is None:  # a FAISS version never changes under its retriever: once is enough
            passages: Sequence[Passage] = getattr(self.source.version(), "passages", ())
            for passage in passages[:PASSAGE_CACHE]:
                _sentence_stems(passage)
                _names_of(passage)
                _quantity_rows(passage)
            self._prepared = min(len(passages), PASSAGE_CACHE)
        return self._prepared

    def retrieve(self, question: str, k: int) -> list[Hit]:
        """The top `k` passages for a question, best first, each with its highlighted sentence."""
        return self.retrieve_many([question], k)[0]

    def retrieve_many(self, questions: Sequence[str], k: int) -> list[list[Hit]]:
        """Answer several questions with one embedding call (shared with other threads' questions)."""
        if not questions:
            return []
        normalise = default_normaliser()
        version = self.source.version()  # one version for the whole batch, even during a swap
        # What is searched for: the question in canonical terms. A role the asker is leaving ("As an SRE, how
        # can I move to management?") would pull the search to its own page, so the question is embedded
        # without it too and the two vectors are averaged: where the asker comes from still tells the
        # moves apart ("QA engineer here, want to become a developer" is the career-change page's move
        # from QA). Only such questions embed a second text, in the same batch.
        # how long the asker has held their job, said before a move, is where they come from too; chat
        # fillers ("lol", "tbh") are not searched for at all
        without_fillers = default_fillers()
        canonical = [without_tenure(without_fillers(normalise(q))) for q in questions]
        normalised = [version.roles.subject(q) for q in canonical]
        left = [version.roles.roles_left(q) for q in canonical]
        moved = [
            i
            for i, (whole, subject) in enumerate(zip(canonical, normalised, strict=True))
            if whole != subject
        ]
        embedded = self.batcher.embed_with_tokens(normalised + [canonical[i] for i in moved])
        query_vectors = _with_whole_questions(embedded.vectors, moved)
        question_tokens: Sequence[TokenVectors | None] = (
            embedded.tokens[: len(questions)] if embedded.tokens else [None] * len(questions)
        )
        roles = [version.roles.roles_in(question) for question in normalised]
        # One named role: every passage of its page names it, so what is asked about it tells them apart.
        aspects = [
            self._aspect(version, vector, named[0]) if len(named) == 1 else None
            for vector, named in zip(query_vectors, roles, strict=True)
        ]
        # "how many yoe…", "how long till…": passages and highlights stating a quantity are preferred
        asks_quantity = [bool(_QUANTITY_QUESTION.search(question)) for question in canonical]
        chosen = [
            self._choose(
                version, question, whole, vector, named, gone, aspect, quantity, tokens, k + SPARE_CANDIDATES
            )
            for question, whole, vector, named, gone, aspect, quantity, tokens in zip(
                normalised,
                canonical,
                query_vectors,
                roles,
                left,
                aspects,
                asks_quantity,
                question_tokens,
                strict=True,
            )
        ]
        rare = [version.rare_terms(_asked_stems(question)) for question in normalised]
        pages = [[source for source in named if source in version.roles.role_pages] for named in roles]
        # The question's own words, without the roles it names: every sentence of a role's page names the
        # role, so "backend dev" (normalised to "back-end software engineer") is no word a highlight can answer
        question_stems = [
            frozenset(tokenize(q)) - frozenset(tokenize(" ".join(version.roles.names_in(q))))
            for q in canonical
        ]
        asks_pay = [bool(_PAY_QUESTION.search(question)) for question in canonical]
        highlighted = self._with_highlights(
            questions, question_stems, query_vectors, aspects, rare, pages, asks_pay, asks_quantity, chosen
        )
        return [_distinct_highlights(hits, k) for hits in highlighted]

    def _choose(
        self,
        version: CandidateVersion,
        question: str,
        whole_question: str,
        vector: Vectors,
        roles: list[str],
        left: list[str],
        aspect: Aspect | None,
        asks_quantity: bool,
        question_tokens: TokenVectors | None,
        k: int,
    ) -> list[Ranked]:
        # "A vs B" between two roles shows both; a topic named beside a role ("back-end dev here, portfolio site
        # or GitHub?") is not one side of the comparison, and the best passage stays first
        pages = [source for source in roles if source in version.roles.role_pages]
        compared = len(pages) >= 2 and version.roles.compares(question)
        ranked = self._rank(
            version, whole_question, vector, roles, left, pages, compared, aspect, asks_quantity
        )
        if question_tokens is not None and not roles:  # a named role: its boost and the aspect rank better
            ranked = _reranked_by_tokens(version, ranked, question_tokens)
        if compared:
            return self._side_by_side(ranked, pages, k)
        return self._diverse_top(ranked, k)

    def _rank(
        self,
        version: CandidateVersion,
        question: str,
        vector: Vectors,
        roles: list[str],
        left: list[str],
        pages: list[str],
        compared: bool,
        aspect: Aspect | None,
        asks_quantity: bool,
    ) -> list[Ranked]:
        # Named roles' pages (`pages`, of `roles`) are preferred when the question names one role or compares
        # several. Naming two without comparing them ("how do I get from senior to staff?") asks about the move
        # between them, which the career ladder answers as well as either page. A topic named by its alias
        # ("interview loop") is always preferred, and does not make a role beside it a move.
        topics = set(roles) - set(pages)
        # A role the asker leaves is not what they ask about: its page is pushed down. Leaving one of our roles
        # for another ("been a mobile dev, want to switch to back-end") is a move between two roles too.
        moves_between = bool(pages) and any(source in version.roles.role_pages for source in left)
        preferred = topics | (set(pages) if (len(pages) < 2 or compared) and not moves_between else set())
        candidates = version.candidates(question, vector)
        bonus = np.array(
            [
                version.role_boost * ((c.passage.source in preferred) - (c.passage.source in left))
                for c in candidates
            ]
        )
        if self.fusion == "weighted" and candidates:
            if aspect is not None:  # the named role's passages also score by what is asked about the role
                best, best_aspect = _best_sentence_cosines(candidates, vector, aspect.vector)
                own = np.array([c.passage.source == roles[0] for c in candidates])
                bonus += SENTENCE_WEIGHT * best + own * ASPECT_WEIGHT * best_aspect
            else:
                bonus += SENTENCE_WEIGHT * _best_sentence_cosines(candidates, vector)[0]
            if asks_quantity:  # "how long till i can reapply?": "a 6-month cooldown"
                bonus += QUANTITY_WEIGHT * _best_quantity_cosines(candidates, vector)
        ranked = [
            Ranked(c.passage_id, c.cosine, c.fused + float(b), c.passage, c.sentence_vectors) if b else c
            for c, b in zip(candidates, bonus, strict=True)
        ]
        ranked.sort(key=lambda r: r.fused, reverse=True)
        return ranked

    def _aspect(self, version: CandidateVersion, vector: Vectors, source: str) -> Aspect | None:
        """What the question asks about the role: its vector with the direction of the role's title
        projected out, unit length (None when the role has no title, or the question is nothing else).

        "what skills does a data engineer need?" is mostly "data engineer" to the model, so every section
        of that role's page scores alike; what remains is closest to the section about skills. A title's
        vector is embedded once per retriever (no second embedding of the question).
        """
        title = next((d.title for d in version.documents if d.source == source), "")
        if not title:
            return None
        direction = self._title_vectors.get(title)
        if direction is None:
            direction = self._title_vectors[title] = self.batcher.embed([title])[0]
        flat = np.asarray(vector, dtype=np.float32).reshape(-1)
        rest = flat - float(flat @ direction) * direction
        norm = float(np.linalg.norm(rest))
        return Aspect((rest / norm).astype(np.float32), direction) if norm > 0 else None

    def _diverse_top(self, ranked: list[Ranked], k: int) -> list[Ranked]:
        """Best first, skipping near-duplicates; a third passage of one section only if nothing else is left."""
        chosen: list[Ranked] = []
        deferred: list[Ranked] = []
        per_section: dict[tuple[str, str], int] = {}
        for candidate in ranked:
            if len(chosen) >= k:
                break
            passage = candidate.passage
            if any(_near_duplicate(passage, c.passage) for c in chosen):
                continue
            key = (passage.source, passage.section)
            if per_section.get(key, 0) >= PER_SECTION:
                deferred.append(candidate)
                continue
            per_section[key] = per_section.get(key, 0) + 1
            chosen.append(candidate)
        chosen.extend(deferred[: k - len(chosen)])
        return chosen

    def _side_by_side(self, ranked: list[Ranked], roles: list[str], k: int) -> list[Ranked]:
        """For 'A vs B': the best passage of each named role in turn, then the rest by score."""
        firsts: list[Ranked] = []
        for source in roles:
            best = next((r for r in ranked if r.passage.source == source), None)
            if best is not None:
                firsts.append(best)
        rest = [r for r in ranked if r not in firsts]
        return self._diverse_top(firsts[:k] + rest, k)

    def _with_highlights(
        self,
        questions: Sequence[str],
        question_stems: Sequence[frozenset[str]],
        query_vectors: Vectors,
        aspects: Sequence[Aspect | None],
        rare: Sequence[frozenset[str]],
        role_pages: Sequence[list[str]],
        asks_pay: Sequence[bool],
        asks_quantity: Sequence[bool],
        chosen: list[list[Ranked]],
    ) -> list[list[Hit]]:
        """Pick each passage's sentence closest to its question, from the sentence vectors stored at build time.

        The hit's score is the closest sentence's cosine. When the question holds an exact term (a figure,
        an acronym) that some sentences of the passage contain, as typed or, for an acronym, spelled out as
        the terms table does, the highlight is the closest of those sentences; the hit is marked `exact`
        when the term is there as typed. Else, when some sentences hold a word of the question that few
        passages hold (`rare`: "debounce"), the highlight is the closest of those, and the hit is marked
        `rare_term`. Otherwise lines of code and space-aligned columns are passed over
        while the passage has a prose sentence; when the question names something some sentences name (a
        city, a company, a tool: `_naming_rows`), the highlight is one of those, as only the highlight
        reliably survives trimming ("how much do SREs make in London?" shows the UK pay sentence, not the
        US one closest to "how much do SREs make"); a question asking how much a role earns highlights a sentence
        stating an amount when the passage has one ("…earns an average salary of around $120,000", not "Actual pay
        depends heavily on the employer"), and one asking how many or how long a sentence stating a quantity
        when one is nearly as close as the closest ("A design doc that people actually read is usually two or
        three pages", not "…make them shorter"); and for a question naming one role the highlight is the
        sentence (not a list's lead-in) with the highest sum of its cosines to the question and to the
        question's aspect (`Aspect.cosines`): "which companies hire software engineers?" highlights
        "Employers range from big tech and startups to banks…", not the section's opening about the role.
        `questions` are as typed: normalising spells acronyms out, and the user asked for the acronym.
        """
        results: list[list[Hit]] = []
        for question, asked_stems, row, vector, aspect, rare_words, named, about_pay, about_quantity in zip(
            questions,
            question_stems,
            chosen,
            query_vectors,
            aspects,
            rare,
            role_pages,
            asks_pay,
            asks_quantity,
            strict=True,
        ):
            literals = literal_terms(question)
            asked = asked_words(question)
            hits: list[Hit] = []
            for candidate in row:
                passage = candidate.passage
                sentences, prose_rows = _sentences_of(passage)
                rows = candidate.sentence_vectors
                if len(rows) != len(sentences):  # only if sentence splitting changed without a format bump
                    rows = self.embedder.embed_queries(sentences)
                similarities = rows @ vector
                typed = [i for i, s in enumerate(sentences) if any(contains_literal(s, t) for t in literals)]
                spelled = [
                    i
                    for i, s in enumerate(sentences)
                    if i in typed or any(spells_out(s, t) for t in literals)
                ]
                stems = _sentence_stems(passage)
                holding = [i for i in prose_rows if stems[i] & rare_words] if rare_words else []
                required = spelled or holding  # the highlight holds the exact term, else the rare word
                pool = required or prose_rows
                shown = max(pool, key=lambda i: similarities[i])
                # The score is that sentence's cosine, unless a rare word chose it: then the passage's closest
                # prose sentence's, as the rare word's sentence may sit far from the question.
                scored = shown if spelled or not holding else max(prose_rows, key=lambda i: similarities[i])
                naming = [] if required else _naming_rows(asked, passage, pool)
                # "what does X earn?" shows a figure, not "pay varies"
                if about_pay and not required and not naming:
                    naming = [i for i in pool if _MONEY.search(sentences[i])]
                elif about_quantity and not required and not naming:
                    # "how long should a design doc be?" shows "…usually two or three pages", not "make them shorter"
                    near = float(similarities[shown]) - QUANTITY_HIGHLIGHT_MARGIN
                    naming = [i for i in pool if _QUANTITY.search(sentences[i]) and similarities[i] >= near]
                if aspect is not None and not required:
                    answering = similarities + HIGHLIGHT_ASPECT_WEIGHT * aspect.cosines(rows)
                    choices = [i for i in naming or pool if _says_something(sentences[i])] or naming or pool
                    shown = max(choices, key=lambda i: answering[i])
                elif naming:
                    shown = max(naming, key=lambda i: similarities[i])
                hits.append(
                    Hit(
                        passage,
                        float(similarities[scored]),
                        sentences[shown],
                        exact=bool(typed),
                        rare_term=bool(holding) and not typed,
                        role_named=passage.source in named,
                        question_words=len(asked_stems),
                        highlight_holds=len(asked_stems & stems[shown]),
                    )
                )
            results.append(hits)
        return results


# a question about pay, in the terms table's spelling ("earn", "comp" and "pay" are "salary" there)
# "how much does an SRE make?", "what does a back-end engineer earn?", "what's the average salary of …"; not
# "how much time does it take to make senior?" or "what do I negotiate besides salary?"
_PAY_QUESTION = re.compile(
    r"\bhow much (?:money )?(?:do|does|did|can|could|will|would|should) (?:\S+ ){1,5}?(?:make|makes|salary|get paid)\b"
    r"|\bwhat (?:do|does|did|can|could|will|would) (?:\S+ ){0,4}?\S*(?:er|ers|ist|ists|or|ors)"
    r" (?:salary|make|get paid)\b"
    r"|\bwhat(?:'s|s| is| are) (?:the |a )?(?:\S+ ){0,2}?(?:salary|salaries|pay) (?:of|for|range)\b",
    re.IGNORECASE,
)
# a question asking for a quantity: "how many yoe…", "how long till…", "how often…", "how many hours of LC…"; not
# "how much does an SRE make?" (a pay question) or "how do I get better at this?"
_QUANTITY_QUESTION = re.compile(
    r"\bhow (?:many|long|much time|often)\b|\bhow \w+ (?:years|yrs|hours|hrs|weeks|months)\b", re.IGNORECASE
)
# a sentence that states one: a figure with a word or sign after it ("3-5 projects", "10+ years", "~100 hours",
# "40%"), or a number in words ("six months"); not a list's "1." or a figure alone
_QUANTITY = re.compile(
    r"(?<![\w.])(?:~|about |around )?\d+(?:[,.]\d+)*(?:\s*(?:-|–|to)\s*\d+)?\+?\s*(?:%|[a-z]{2,})"
    r"|\b(?:two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|fifty|hundred|dozen)\b"
    r"|\b(?:once|twice|times) (?:a|an|per|every) (?:day|week|month|quarter|year|half)\b",
    re.IGNORECASE,
)
# a sentence that states an amount of money: "$120,000", "£60,000", "€70k" (not "10,000 users", "a 401k")
_MONEY = re.compile(r"[$£€]\s?\d")
# a figure, an acronym, or a level code ("L5", "E6": a capital and one or two digits)
_LITERAL = re.compile(
    r"\$?\d[\d,]*(?:\.\d+)?(?:%|k(?!\w))?|(?<![\w-])(?:[A-Z][A-Z0-9+#]{2,7}|[A-Z]\d{1,2})(?![\w-])"
)
_PLAIN_YEAR = re.compile(r"(19|20)\d\d")
_THOUSANDS = re.compile(r"(?<![\w.])(\$)?(\d+(?:\.\d+)?)k(?!\w)")  # "$120k", "300k"


def literal_terms(question: str) -> list[str]:
    """Exact terms a user expects to see matched literally: figures ("$120,000" and "$120k" as "$120000"),
    acronyms ("AWS") and level codes ("L5").

    Plain years and numbers under three digits are left out: they are too common to mean a passage.
    """
    terms: list[str] = []
    for match in _LITERAL.finditer(question):
        raw = match.group(0)
        if raw[0].isdigit() or raw[0] == "$":
            digits = re.sub(r"[$%k]", "", _THOUSANDS.sub(_in_full, raw.replace(",", ""))).split(".")[0]
            if len(digits) < 3 or (_PLAIN_YEAR.fullmatch(raw) is not None):
                continue
            terms.append("$" + digits if raw.startswith("$") else digits)
        else:
            terms.append(raw)
    return terms


def _in_full(figure: re.Match[str]) -> str:
    """A figure written in thousands, in full: "$120k" -> "$120000", "$1.5k" -> "$1500", "300k" -> "300000".
    Without a dollar sign, a figure under three digits ("a 10k run") is left as written."""
    dollar, number = figure.group(1) or "", figure.group(2)
    if not dollar and len(number.split(".")[0]) < 3:
        return figure.group(0)
    return dollar + str(round(float(number) * 1000))


def contains_literal(sentence: str, term: str) -> bool:
    """Does the sentence hold the term: a figure with its separators ignored ("$120k" as "$120,000"), or
    the acronym as a word?"""
    if term.lstrip("$").isdigit():
        figures = _THOUSANDS.sub(_in_full, sentence.replace(",", ""))
        return re.search(rf"(?<![\d.]){re.escape(term)}(?!\d)", figures) is not None
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", sentence) is not None


def spells_out(sentence: str, term: str) -> bool:
    """Does the sentence hold the acronym's expansion in the terms table ("TDD": "test-driven development")?"""
    spelled = _spelled_out(term)
    return spelled is not None and spelled.search(sentence) is not None


@lru_cache(maxsize=1024)
def _spelled_out(acronym: str) -> re.Pattern[str] | None:
    """The acronym's expansion in the terms table as a whole-word pattern, or None when it has none.
    A canonical phrase that keeps the acronym ("IC (individual contributor)") expands to its bracketed part."""
    expansion = default_normaliser()(acronym)
    kept = _KEPT_ACRONYM.fullmatch(expansion)
    if kept is not None and kept.group(1).lower() == acronym.lower():
        expansion = kept.group(2)
    return whole_words([expansion], plural=True) if expansion != acronym else None


_KEPT_ACRONYM = re.compile(r"(\S+) \((.+)\)")


_CAPITALISED = re.compile(r"(?<=[\w,;:)] )[A-Z][a-z]{2,}(?![\w-])")  # a word capitalised inside a sentence
_LOWER_CASE_WORD = re.compile(r"(?<![\w-])[a-z][a-z0-9]{2,}(?![\w-])")


def asked_words(question: str) -> dict[str, frozenset[str]]:
    """The question's words of three letters or more, each with its keyword stems (none for a stopword)."""
    return {w: _stems(w) for w in _LOWER_CASE_WORD.findall(question.lower())}


@lru_cache(maxsize=16384)
def _stems(word: str) -> frozenset[str]:
    return frozenset(tokenize(word))


def _naming_rows(asked: dict[str, frozenset[str]], passage: Passage, pool: Sequence[int]) -> list[int]:
    """The rows of `pool` whose sentence names something the question names, in any case ("London",
    "Spark"). Words of the passage's headings do not count: every sentence of a role page is about it."""
    heading, names = _names_of(passage)
    named = {w for w, stems in asked.items() if stems - heading}
    return [i for i in pool if names[i] & named] if named else []


@lru_cache(maxsize=PASSAGE_CACHE)
def _names_of(passage: Passage) -> tuple[frozenset[str], tuple[frozenset[str], ...]]:
    """The keyword stems of a passage's headings, and each sentence's names: words the passage capitalises
    inside its sentences and never writes in lower case ("Counter" beside "a counter" is no name).
    Fragments and list lead-ins get none."""
    sentences, _ = _sentences_of(passage)
    common = set(_LOWER_CASE_WORD.findall(passage.text))
    names = tuple(
        frozenset({w.lower() for w in _CAPITALISED.findall(s)} - common)
        if _says_something(s)
        else frozenset()
        for s in sentences
    )
    return frozenset(tokenize(passage.section)), names


def _asked_stems(normalised_question: str) -> list[str]:
    """The question's keyword stems that may name what it is about: words of four letters or more."""
    return [t for t in tokenize(normalised_question) if len(t) >= 4 and not t[0].isdigit()]


@lru_cache(maxsize=PASSAGE_CACHE)
def _sentence_stems(passage: Passage) -> tuple[frozenset[str], ...]:
    """Each sentence's keyword stems, its terms normalised as the keyword index has them."""
    normalise = default_normaliser()
    return tuple(frozenset(tokenize(normalise(s))) for s in _sentences_of(passage)[0])


def _says_something(sentence: str) -> bool:
    """False for a list's lead-in ("Key skills:") or a fragment of under five words: not an answer to show."""
    return not sentence.rstrip().endswith(":") and len(sentence.split()) >= 5


@lru_cache(maxsize=1)
def _single_threaded_blas() -> None:
    """numpy's BLAS on one thread for the whole process, set once when the first retriever is made.

    The token rerank's products are big enough for OpenBLAS to wake its threads, which then competed with
    ONNX Runtime's for the 2 cores and made asks about 15 ms slower at p50 (bench/README). Limiting it
    around each product instead would change a process-wide setting while other askers' threads may be
    inside a BLAS call.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def _reranked_by_tokens(
    version: CandidateVersion, ranked: list[Ranked], question_tokens: TokenVectors
) -> list[Ranked]:
    """The best RERANK_TOP candidates re-sorted with TOKEN_MATCH_WEIGHT times their token match added
    (they stay ahead of the rest), then the first one's document's windows among them re-sorted in their
    own places with SAME_DOCUMENT_TOKEN_WEIGHT more of it; unchanged when the version has no token vectors."""
    top = ranked[:RERANK_TOP]
    scores = version.token_match(question_tokens, [r.passage_id for r in top]) if top else None
    if scores is None:
        return ranked
    match = {r.passage_id: float(s) for r, s in zip(top, scores, strict=True)}
    rescored = [replace(r, fused=r.fused + TOKEN_MATCH_WEIGHT * match[r.passage_id]) for r in top]
    rescored.sort(key=lambda r: r.fused, reverse=True)
    first_document = rescored[0].passage.source
    places = [i for i, r in enumerate(rescored) if r.passage.source == first_document]
    windows = sorted(
        (rescored[i] for i in places),
        key=lambda r: r.fused + SAME_DOCUMENT_TOKEN_WEIGHT * match[r.passage_id],
        reverse=True,
    )
    for place, window in zip(places, windows, strict=True):
        rescored[place] = window
    return rescored + ranked[RERANK_TOP:]


def token_match_scores(
    question_tokens: TokenVectors, passages: Sequence[TokenVectors]
) -> npt.NDArray[np.float32]:
    """Per passage: the mean over the question's word pieces of the best cosine to one of its word
    pieces (late interaction, as in ColBERT, on this model's own outputs).

    One product for all passages, on one BLAS thread (_single_threaded_blas).
    """
    if not passages:
        return np.zeros(0, dtype=np.float32)
    counts = [len(rows) for rows in passages]
    return stacked_token_match(question_tokens, np.concatenate(passages), counts)


def stacked_token_match(
    question_tokens: TokenVectors, rows: TokenVectors, counts: Sequence[int]
) -> npt.NDArray[np.float32]:
    """token_match_scores over passages whose word pieces are stacked in `rows`, `counts` of them each."""
    scores = np.zeros(len(counts), dtype=np.float32)
    filled = [i for i, n in enumerate(counts) if n]
    if not filled or not len(question_tokens):
        return scores
    starts = np.concatenate([[0], np.cumsum([counts[i] for i in filled])[:-1]])
    best = np.maximum.reduceat(rows @ question_tokens.T, starts, axis=0)  # passage x question word piece
    scores[filled] = best.mean(axis=1)
    return scores


def _best_sentence_cosines(candidates: Sequence[Ranked], *vectors: Vectors) -> npt.NDArray[np.float64]:
    """Each candidate's highest sentence cosine to each vector (0 for one without stored sentences): one row
    per vector, from one product."""
    counts = np.array([len(c.sentence_vectors) for c in candidates])
    best = np.zeros((len(vectors), len(candidates)))
    with_rows = np.flatnonzero(counts)
    if len(with_rows):
        stacked = np.concatenate([candidates[int(i)].sentence_vectors for i in with_rows])
        starts = np.concatenate([[0], np.cumsum(counts[with_rows])[:-1]])
        queries = np.stack([v.reshape(-1) for v in vectors], axis=1)
        best[:, with_rows] = np.maximum.reduceat(stacked @ queries, starts, axis=0).T
    return best


def _best_quantity_cosines(candidates: Sequence[Ranked], vector: Vectors) -> npt.NDArray[np.float64]:
    """Each candidate's highest cosine to the question among its sentences that state a quantity (0 for none)."""
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    best = np.zeros(len(candidates))
    for i, candidate in enumerate(candidates):
        rows = _quantity_rows(candidate.passage)
        if rows and len(candidate.sentence_vectors) == len(_sentences_of(candidate.passage)[0]):
            best[i] = float((candidate.sentence_vectors[list(rows)] @ flat).max())
    return best


@lru_cache(maxsize=PASSAGE_CACHE)
def _quantity_rows(passage: Passage) -> tuple[int, ...]:
    """The rows of a passage's sentences that state a quantity (`_QUANTITY`); cached like _sentences_of."""
    return tuple(i for i, sentence in enumerate(_sentences_of(passage)[0]) if _QUANTITY.search(sentence))


@lru_cache(maxsize=PASSAGE_CACHE)
def _sentences_of(passage: Passage) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A passage's highlight sentences and the rows among them that are prose (all rows when none is);
    cached, as the same passages come back for many questions."""
    sentences = tuple(passage_sentences(passage))
    prose = tuple(i for i, s in enumerate(sentences) if is_prose(s)) or tuple(range(len(sentences)))
    return sentences, prose


@lru_cache(maxsize=4096)
def _sentence_and_word_sets(text: str) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(split_sentences(text)), frozenset(text.lower().split())


def _distinct_highlights(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The first `k` hits whose highlight no earlier hit shows ("On-call is a normal part of the job." once,
    not from both windows that share it)."""
    shown: set[str] = set()
    kept: list[Hit] = []
    for hit in hits:
        if hit.highlight not in shown:
            shown.add(hit.highlight)
            kept.append(hit)
        if len(kept) == k:
            break
    return kept


def _near_duplicate(a: Passage, b: Passage) -> bool:
    """Windows of one section sharing half their sentences, or repeated text (most words shared)."""
    sentences_a, words_a = _sentence_and_word_sets(a.text)
    sentences_b, words_b = _sentence_and_word_sets(b.text)
    same_section = a.source == b.source and a.section == b.section
    if same_section and len(sentences_a & sentences_b) * 2 >= min(len(sentences_a), len(sentences_b)):
        return True
    if not words_a or not words_b:
        return a.text == b.text
    return len(words_a & words_b) / min(len(words_a), len(words_b)) >= 0.8


def _with_whole_questions(vectors: Vectors, moved: Sequence[int]) -> Vectors:
    """The first len(vectors) - len(moved) rows, one per question; each question at `moved` averaged (unit
    length) with its whole text's vector, the extra rows after them in the same order."""
    count = len(vectors) - len(moved)
    if not moved:
        return vectors
    blended = np.array(vectors[:count], dtype=np.float32, copy=True)
    for row, i in enumerate(moved):
        mean = blended[i] + vectors[count + row]
        blended[i] = mean / np.linalg.norm(mean)
    return blended
