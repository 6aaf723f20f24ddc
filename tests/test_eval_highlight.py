"""`rolecall eval` judges the highlight: is the sentence shown in bold one of those that answer?"""

from __future__ import annotations

from bot.answer import Answer
from bot.evaluation import EvalCase, evaluate
from index.types import Hit, Passage

PAY = Passage(
    "back-end.md",
    "Senior Back-End Engineer",
    "Senior Back-End Engineer > Pay",
    "Pay depends on the city. In the United States the base salary is around $120,000 a year. Equity comes on top.",
)
CASE = EvalCase("sr backend pay?", expect=("$120,000",), sources=("back-end.md",))


def _figures(highlight: str, hits_before: tuple[Hit, ...] = ()) -> dict[str, float | int]:
    answer = Answer(CASE.question, (*hits_before, Hit(PAY, 0.7, highlight)))
    return evaluate([CASE], lambda questions: [answer for _ in questions]).figures()


def test_a_highlight_on_the_answering_sentence_counts_and_the_lead_sentence_is_the_baseline() -> None:
    figures = _figures("In the United States the base salary is around $120,000 a year.")
    assert (figures["highlight"], figures["lead_sentence"], figures["highlight_judged"]) == (1.0, 0.0, 1)


def test_a_highlight_on_another_sentence_of_the_right_passage_does_not() -> None:
    figures = _figures("Equity comes on top.")
    assert (figures["highlight"], figures["highlight_judged"]) == (0.0, 1)


def test_only_the_first_right_passage_is_judged_and_wrong_ones_are_not() -> None:
    other = Hit(
        Passage("other.md", "Other", "Other", "Nothing about $120,000 here."),
        0.9,
        "Nothing about $120,000 here.",
    )
    figures = _figures("Equity comes on top.", hits_before=(other,))
    assert figures["hit@1"] == 0.0 and figures["hit@3"] == 1.0
    assert (figures["highlight"], figures["highlight_judged"]) == (0.0, 1)
