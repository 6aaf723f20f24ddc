"""The team's own questions over the bundled knowledge, through the real model and index."""

from __future__ import annotations

import re

from bot.evaluation import evaluate, read_cases
from bot.service import RolecallService
from tests.conftest import BUNDLED_KNOWLEDGE, REPO

EVAL_FILE = REPO / "eval" / "knowledge.jsonl"
HELD_OUT_FILE = REPO / "eval" / "knowledge-holdout.jsonl"  # written from the pages alone (eval/README.md)
# the last lines of EVAL_FILE: the ninth session's two probes, asked as typed and paraphrased, then the tenth
# session's security engineer, QA engineer and data scientist pages (eval/README.md); their sections open with
# what they answer
LATER_QUESTIONS = 170 + 48


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
    # the bold sentence is an answering one (holds an expected phrase) about 3/4 of the time; on the
    # questions written with the pages the passage's first sentence would be about 1/3. The probe questions
    # and role pages at the end of the file ask sections written to open with their answer (0.78 of leads answer there).
    assert figures["highlight"] >= 0.75 and figures["highlight"] > figures["lead_sentence"], result.summary()
    written_with_the_pages = evaluate(cases[:-LATER_QUESTIONS], service.ask_many).figures()
    assert written_with_the_pages["highlight"] >= 1.8 * written_with_the_pages["lead_sentence"], (
        written_with_the_pages
    )


def test_bundled_knowledge_meets_the_issue_targets_on_questions_written_apart_from_the_ranking(
    bundled: RolecallService,
) -> None:
    result = evaluate(read_cases(HELD_OUT_FILE), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.90 and figures["hit@3"] >= 0.96, result.summary()
    assert result.off_topic_refused == result.off_topic and result.false_refusals <= 1, result.summary()
    assert figures["highlight"] > figures["lead_sentence"], result.summary()


def test_the_topic_pages_answer_questions_written_apart_from_the_ranking(bundled: RolecallService) -> None:
    # job offers and interviews; career change, resumes and working life (eval/README.md): a floor under
    # today's figures, below the issue's targets, which these sets do not meet (hit@1 0.85 and 0.78)
    for name in ("topics-holdout.jsonl", "pages-holdout.jsonl"):
        result = evaluate(read_cases(REPO / "eval" / name), bundled.ask_many)
        figures = result.figures()
        assert figures["hit@1"] >= 0.75 and figures["hit@3"] >= 0.94, f"{name}: {result.summary()}"
        assert result.off_topic_refused == result.off_topic and result.false_refusals <= 1, (
            f"{name}: {result.summary()}"
        )


def test_the_working_life_and_job_sections_answer_questions_written_blind(bundled: RolecallService) -> None:
    # eval/life-holdout.jsonl, written by someone who had not seen the questions the sections were written
    # against: a floor under its first run (0.792 / 0.917, 5 of 8 off-topic refused, 1 answerable refused)
    result = evaluate(read_cases(REPO / "eval" / "life-holdout.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.75 and figures["hit@3"] >= 0.9, result.summary()
    assert result.off_topic_refused >= 5 and result.false_refusals <= 1, result.summary()


ROLE_ASKS = (  # everyday phrasings, each with the section of a role page that answers it
    ("what does {role} do?", "Responsibilities"),
    ("what skills does {role} need?", "Skills"),
    ("which skills should {role} learn?", "Skills"),
    ("which tools does {role} use?", "Tools"),
    ("what degree do I need to be {role}?", "Education and experience"),
    ("do I need a degree to become {role}?", "Education and experience"),
    ("how much does {role} make?", "Pay"),
    ("which companies hire {role}?", "Where the jobs are"),
    ("how do I prepare for {role} interview?", "Interview focus"),
    ("how do I become {role}?", "How to become"),
    ("what's the path to becoming {role}?", "How to become"),
    ("roadmap for becoming {role}", "How to become"),
)


def test_the_ninth_sessions_sections_answer_questions_written_blind(bundled: RolecallService) -> None:
    # eval/sections-holdout.jsonl, written from the sections alone: a floor under its run after the two
    # abbreviations it showed ("oss", "gh") joined the terms table (0.867 / 0.900, 5 of 8 off-topic refused,
    # 2 answerable refused; its first run was 0.800 / 0.833 with 4 refused)
    result = evaluate(read_cases(REPO / "eval" / "sections-holdout.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.8 and figures["hit@3"] >= 0.85, result.summary()
    assert result.off_topic_refused >= 5 and result.false_refusals <= 2, result.summary()


def test_the_second_probes_sections_hold_their_first_blind_run(bundled: RolecallService) -> None:
    # eval/sections-holdout-2.jsonl, written blind and scored once (0.625 / 0.650, 5 of 10 off-topic refused,
    # 13 of 40 answerable refused, mostly under the floor): a floor against regressions, far from the targets
    result = evaluate(read_cases(REPO / "eval" / "sections-holdout-2.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.6 and figures["hit@3"] >= 0.625, result.summary()
    assert result.off_topic_refused >= 5 and result.false_refusals <= 13, result.summary()


def test_blind_casual_questions_on_every_page_stay_above_their_first_run(bundled: RolecallService) -> None:
    # eval/casual-holdout.jsonl, three chat-style questions a page written blind: first run 0.733 / 0.867, 18 of 20
    # off-topic refused, 4 of 60 answerable refused; 0.767 / 0.900 and 3 refused once "PR", "nits", "promos",
    # "hobby apps"… were read as the pages write them
    result = evaluate(read_cases(REPO / "eval" / "casual-holdout.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.75 and figures["hit@3"] >= 0.883, result.summary()
    assert result.off_topic_refused >= 18 and result.false_refusals <= 3, result.summary()


def test_the_new_role_pages_answer_questions_written_blind(bundled: RolecallService) -> None:
    # eval/roles-holdout.jsonl on the security and QA engineer pages: first run 0.583 / 0.792 with 2 refused,
    # 0.667 / 0.833 and 1 refused once "sec eng" and "been a …" were read
    result = evaluate(read_cases(REPO / "eval" / "roles-holdout.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.625 and figures["hit@3"] >= 0.833, result.summary()
    assert result.off_topic_refused >= 5 and result.false_refusals <= 1, result.summary()


def test_two_role_questions_and_the_data_scientist_page_hold_their_blind_run(
    bundled: RolecallService,
) -> None:
    # eval/roles-holdout-2.jsonl (comparisons and moves between two roles, and the data scientist page), written
    # blind: first run 0.550 / 0.825 with 2 of 40 refused; 0.575 / 0.875 and none refused once "ds" and a role
    # opening a question about a move were read
    result = evaluate(read_cases(REPO / "eval" / "roles-holdout-2.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.525 and figures["hit@3"] >= 0.85, result.summary()
    assert result.off_topic_refused >= 9 and result.false_refusals <= 1, result.summary()


def test_moves_from_one_role_to_another_open_the_move_not_the_role_left(bundled: RolecallService) -> None:
    # eval/moves.jsonl, written to tune the move questions (not blind): 0.458 / 0.792 with 2 refused when the
    # role left was cut from what was searched and the target's page preferred; 0.625 / 0.958 after
    result = evaluate(read_cases(REPO / "eval" / "moves.jsonl"), bundled.ask_many)
    figures = result.figures()
    assert figures["hit@1"] >= 0.583 and figures["hit@3"] >= 0.917, result.summary()
    assert result.false_refusals == 0, result.summary()


def test_everyday_questions_about_a_role_open_the_section_that_answers_them(bundled: RolecallService) -> None:
    """Each role page has the same sections; a question in everyday words about one role should show
    that role's section first. "How to become a ..." and "Skills a ... needs" are headed with the role's
    name, so how-to-become questions see the path ahead of the education section that answers "what degree
    do I need", and skills questions see the skills list although its technology names pull its vector
    away from the question."""
    roles = {}
    for page in sorted(BUNDLED_KNOWLEDGE.glob("*.md")):
        heading = re.search(r"^## How to become (an? .+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
        if heading:
            roles[page.name] = heading.group(1)  # "a data engineer"
    assert len(roles) >= 10
    first: dict[str, list[bool]] = {}
    in_top3: list[bool] = []
    wrong = []
    for source, role in roles.items():
        for ask, section in ROLE_ASKS:
            question = ask.format(role=role)
            hits = bundled.ask(question).hits
            right = [h.passage.source == source and _in_section(h.passage.section, section) for h in hits]
            first.setdefault(section, []).append(bool(right) and right[0])
            in_top3.append(any(right[:3]))
            if not (right and right[0]):
                wrong.append(
                    f"{question} -> {hits[0].passage.source} > {hits[0].passage.section}"
                    if hits
                    else question
                )
    report = "\n".join(wrong)
    everything = [ok for oks in first.values() for ok in oks]
    assert sum(in_top3) >= 0.97 * len(in_top3), report
    assert sum(everything) >= 0.9 * len(everything), report
    assert sum(first["How to become"]) >= 0.8 * len(first["How to become"]), report
    assert sum(first["Skills"]) >= 0.8 * len(first["Skills"]), report


def _in_section(trail: str, section: str) -> bool:
    """Is a passage under "Title > Section" (the page's opening counts as its responsibilities)?"""
    last = trail.split(" > ")[-1]
    return last.startswith(section) or (section == "Responsibilities" and " > " not in trail)


def test_a_place_or_tool_the_question_names_picks_the_highlight(bundled: RolecallService) -> None:
    """The pay sentence closest to "how much do SREs make" is the US one; asked about London, in any case,
    people should see the UK sentence that names it."""
    for question, named in (
        ("how much do SREs make in London?", "London"),
        ("how much does a data engineer earn in london", "London"),
        ("does a data engineer need to know spark?", "Spark"),
    ):
        first = bundled.ask(question).hits[0]
        assert named in first.highlight, (question, first.passage.section, first.highlight)
    plain = bundled.ask("how much do SREs make?").hits[0]
    london = bundled.ask("how much do SREs make in London?").hits[0]
    assert plain.passage.section.endswith("Pay") and "United States" in plain.highlight
    assert london.passage == plain.passage and "United Kingdom" in london.highlight
