"""Retrieval quality over a JSONL question file: hit@1, hit@3, MRR and abstention, per passage and per document,
and how often the highlight is an answering sentence."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.answer import Answer
from index.chunking import passage_sentences
from index.errors import RolecallError
from index.types import Hit


@dataclass(frozen=True)
class EvalCase:
    """One line of an eval file."""

    question: str
    expect: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    abstain: bool = False

    def matches(self, hit: Hit) -> bool:
        """A passage is right when it comes from a listed source and contains an expected string."""
        if self.sources and hit.passage.source not in self.sources:
            return False
        return not self.expect or self.holds_expected(f"{hit.passage.section}\n{hit.passage.text}")

    def holds_expected(self, text: str) -> bool:
        """Does the text hold an expected phrase (for a sentence: is it one of those that answer)?"""
        lowered = text.lower()
        return any(e.lower() in lowered for e in self.expect)

    def matches_document(self, hit: Hit) -> bool:
        """A looser reading: the passage comes from a listed source, whatever its section (with no
        sources listed, the same as `matches`)."""
        return hit.passage.source in self.sources if self.sources else self.matches(hit)


@dataclass
class EvalResult:
    """Figures over one eval file; `misses` lists the answerable questions not hit in the top 3, each
    with what was shown first instead (or that it was refused) and where the answer is.

    hit@1 / hit@3 count the right passage (listed source and an expected phrase); document hit@1 /
    hit@3 count any passage of a listed source, the figure for "did it open the right document".
    `highlight` judges the first right passage shown whose sentences hold an expected phrase: is its
    highlight one of those sentences? `lead_sentence` asks the same of the passage's first sentence, the
    highlight a pipeline without one would show.
    """

    answerable: int = 0
    hit1: int = 0
    hit3: int = 0
    reciprocal_rank: float = 0.0
    document_hit1: int = 0
    document_hit3: int = 0
    off_topic: int = 0
    off_topic_refused: int = 0
    false_refusals: int = 0
    # refused answerable questions whose nearest section (Answer.nearest) is the right one
    refused_nearest_right: int = 0
    off_topic_nearest: int = 0  # refused off-topic questions that name a nearest section all the same
    highlight_judged: int = 0
    highlight_right: int = 0
    lead_right: int = 0
    misses: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float | int]:
        n = max(self.answerable, 1)
        return {
            "answerable": self.answerable,
            "hit@1": round(self.hit1 / n, 3),
            "hit@3": round(self.hit3 / n, 3),
            "mrr": round(self.reciprocal_rank / n, 3),
            "document_hit@1": round(self.document_hit1 / n, 3),
            "document_hit@3": round(self.document_hit3 / n, 3),
            "off_topic": self.off_topic,
            "off_topic_refused": self.off_topic_refused,
            "false_refusals": self.false_refusals,
            "refused_nearest_right": self.refused_nearest_right,
            "off_topic_nearest": self.off_topic_nearest,
            "highlight": round(self.highlight_right / max(self.highlight_judged, 1), 3),
            "lead_sentence": round(self.lead_right / max(self.highlight_judged, 1), 3),
            "highlight_judged": self.highlight_judged,
        }

    def summary(self) -> str:
        f = self.figures()
        return (
            f"hit@1 {f['hit@1']:.3f}  hit@3 {f['hit@3']:.3f}  MRR {f['mrr']:.3f}"
            f"  (document hit@1 {f['document_hit@1']:.3f}  hit@3 {f['document_hit@3']:.3f})  over {self.answerable}"
            f" answerable; off-topic refused {self.off_topic_refused}/{self.off_topic};"
            f" answerable refused {self.false_refusals} (nearest section right for {self.refused_nearest_right});"
            f" off-topic naming a nearest section {self.off_topic_nearest}; highlight answers {f['highlight']:.3f}"
            f" (lead sentence {f['lead_sentence']:.3f}) over {self.highlight_judged}"
        )


def read_cases(path: Path) -> list[EvalCase]:
    """Parse an eval JSONL file; a bad line is a one-line error naming the line."""
    cases: list[EvalCase] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RolecallError(f"cannot read eval file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RolecallError(
            f"cannot read eval file {path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise TypeError("expected a JSON object")
            question = data.get("q")
            if not isinstance(question, str) or not question.strip():
                raise ValueError('"q" must be a non-empty string')
            cases.append(
                EvalCase(
                    question=question,
                    expect=_strings(data, "expect"),
                    sources=_strings(data, "sources"),
                    abstain=bool(data.get("abstain", False)),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise RolecallError(f"{path}:{number}: not an eval line ({exc})") from exc
    return cases


def _strings(data: dict[str, object], key: str) -> tuple[str, ...]:
    """A list of strings; a bare string would count as its letters ("SRE" -> "S", "R", "E")."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f'"{key}" must be a list of strings')
    return tuple(value)


def evaluate(cases: Sequence[EvalCase], ask_many: Callable[[list[str]], list[Answer]]) -> EvalResult:
    """Ask every question (in batches) and score the answers."""
    result = EvalResult()
    answers: list[Answer] = []
    questions = [c.question for c in cases]
    for start in range(0, len(questions), 32):
        answers.extend(ask_many(questions[start : start + 32]))
    for case, answer in zip(cases, answers, strict=True):
        if case.abstain:
            result.off_topic += 1
            result.off_topic_refused += not answer.answered
            result.off_topic_nearest += answer.nearest is not None
            continue
        result.answerable += 1
        if not answer.answered:
            result.false_refusals += 1
            result.refused_nearest_right += answer.nearest is not None and case.matches(answer.nearest)
        rank = next((i for i, hit in enumerate(answer.hits[:3], start=1) if case.matches(hit)), 0)
        result.hit1 += rank == 1
        result.hit3 += rank > 0
        result.reciprocal_rank += 1.0 / rank if rank else 0.0
        document_rank = next(
            (i for i, hit in enumerate(answer.hits[:3], start=1) if case.matches_document(hit)), 0
        )
        result.document_hit1 += document_rank == 1
        result.document_hit3 += document_rank > 0
        if not rank:
            result.misses.append(_miss(case, answer))
        _judge_highlight(result, case, answer.hits[:3])
    return result


def _miss(case: EvalCase, answer: Answer) -> str:
    """'question -> shown first: source > section (wanted: sources)', for reading misses."""
    shown = (
        f"{answer.hits[0].passage.source} > {answer.hits[0].passage.section}" if answer.hits else "refused"
    )
    return f"{case.question} -> shown first: {shown} (wanted: {', '.join(case.sources) or 'any source'})"


def _judge_highlight(result: EvalResult, case: EvalCase, hits: Sequence[Hit]) -> None:
    """Count the first right passage whose own sentences hold an expected phrase (not only its section)."""
    for hit in hits:
        sentences = passage_sentences(hit.passage)
        if case.matches(hit) and any(case.holds_expected(s) for s in sentences):
            result.highlight_judged += 1
            result.highlight_right += case.holds_expected(hit.highlight)
            result.lead_right += case.holds_expected(sentences[0])
            return
