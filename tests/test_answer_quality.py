"""Answer-quality behaviour on the bundled knowledge: aliases, jargon, comparisons, duplicates, refusals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.service import RolecallService
from index.chunking import split_sentences
from index.embedding import SentenceTransformerEmbedder
from index.retrieval import _QUANTITY, _QUANTITY_QUESTION, contains_literal, literal_terms
from tests.conftest import (
    BUNDLED_KNOWLEDGE,
    DEFAULT_MIN_SCORE,
    DEFAULT_NEAREST_SCORE,
    DEFAULT_SUPPORT_SCORE,
    FakeEmbedder,
    make_service,
    write_docs,
)


def test_an_alias_from_front_matter_finds_the_role(bundled: RolecallService) -> None:
    top = bundled.ask("What does an SRE earn?").hits[0]
    assert top.passage.source == "site-reliability-engineer.md"
    assert top.passage.section.endswith("> Pay")


def test_abbreviations_and_jargon_are_normalised(bundled: RolecallService) -> None:
    top = bundled.ask("sr backend dev comp").hits[0]
    assert (top.passage.source, top.passage.section) == (
        "senior-back-end-engineer.md",
        "Senior Back-End Software Engineer > Pay",
    )
    slang = bundled.ask("comp for a SWE").hits[0].passage
    plain = bundled.ask("salary of a software engineer").hits[0].passage
    assert slang == plain


def test_slang_for_failing_an_interview_opens_the_rejection_section(bundled: RolecallService) -> None:
    # Refused before "bombed" was read as "failed": the model puts "bombed" far from a rejection.
    answer = bundled.ask("i bombed my interview, now what?")
    assert answer.answered
    assert (
        answer.hits[0].passage.section == "Software Engineering Interviews > Rejection and cooldown periods"
    )


@pytest.mark.parametrize(
    ("question", "section"),
    [
        # refused before the two pages: a probe of career questions in everyday words found them unanswered
        (
            "I'm a high school teacher and want to switch into tech. Where do I start?",
            "Changing Careers into Software > Where to start when switching into tech",
        ),
        ("is 40 too old to learn to code and become a developer?", "Is it too late to switch into software?"),
        (
            "took a year off to look after my dad, how do i explain the gap in interviews?",
            "Gaps in employment",
        ),
        # "career switcher" names the page as "career changer" does (chosen from a pages-holdout miss)
        (
            "career switcher, sent like 80 applications for junior dev jobs and heard nothing back, what helps?",
            "Changing Careers into Software > Landing the first job",
        ),
        # a hobby from the walks-of-life list, brought back into scope by "app"
        (
            "I built a guitar tuner app as a side project, is it worth putting on my resume?",
            "Resumes and Portfolios > Side projects and hobby projects",
        ),
    ],
)
def test_career_changers_and_resume_questions_are_answered_from_their_pages(
    bundled: RolecallService, question: str, section: str
) -> None:
    answer = bundled.ask(question)
    assert answer.answered and answer.hits[0].passage.section.endswith(section)


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("how do I ask my manager for more work-from-home days?", "Remote and hybrid work"),
        (
            "I am burned out after a launch crunch, should I step down as tech lead?",
            "Burnout and stepping back",
        ),
        ("is it bad to take a long vacation right before performance review season?", "performance reviews"),
        # refused before the section on disagreeing with a manager (a blind probe), and "boss" means manager
        ("my manager and i keep clashing, what should i do", "Disagreeing with your manager"),
        ("my manager takes credit for my work", "Disagreeing with your manager"),
        ("how do I disagree with my boss without hurting my career?", "Disagreeing with your manager"),
        # refused before the section on a bad review (a probe of common career questions)
        ("how do i handle a bad performance review?", "A bad performance review"),
        ("just got put on a PIP, what do i do?", "A bad performance review"),
        ("i got laid off, what should i do first?", "Layoffs and losing your job"),
        ("how do i deal with imposter syndrome?", "Imposter syndrome"),
        ("can i move to another team after 6 months?", "Changing teams inside your company"),
        ("how do i get better at code reviews?", "Code reviews"),  # a bad review's last line came first
        ("what should i do in my first 90 days at a new job?", "Starting a new job: the first months"),
        ("how do i say no to my manager?", "Saying no to more work"),
        ("how many hours a week do software engineers work?", "Working hours"),
    ],
)
def test_questions_about_working_life_are_answered_from_its_page(
    bundled: RolecallService, question: str, section: str
) -> None:
    # refused before the page (a probe of career questions in everyday words)
    answer = bundled.ask(question)
    assert answer.answered
    assert answer.hits[0].passage.source == "working-life.md" and answer.hits[0].passage.section.endswith(
        section
    )


def test_is_grinding_leetcode_worth_it_is_answered_from_the_practice_section(
    bundled: RolecallService,
) -> None:
    # Refused (0.39) until the interviews page said so in as many words; a question from a blind set.
    answer = bundled.ask("is grinding leetcode actually worth it for faang interviews")
    assert answer.answered
    first = answer.hits[0]
    assert first.passage.section == "Software Engineering Interviews > Practice problems and mock interviews"
    assert "worth it up to a point" in first.highlight


def test_how_to_get_promoted_to_staff_highlights_what_the_committee_looks_for(
    bundled: RolecallService,
) -> None:
    # The highlight was "See the Career Ladder document for how promotion committees judge staff-level
    # evidence.", a pointer that answers nothing; the page now says what that evidence is.
    first = bundled.ask("how do I get promoted to staff?").hits[0]
    assert first.passage.section == "Staff Engineer > How to become a staff engineer"
    assert first.highlight.startswith("Promotion committees promote to staff on evidence")


def test_chat_abbreviations_are_spelled_out(bundled: RolecallService) -> None:
    # Refused while "soln" was a word the model did not know.
    answer = bundled.ask("my soln was slow in the interview, what now?")
    assert answer.answered
    assert (
        answer.hits[0].passage.section
        == "Software Engineering Interviews > Solving a coding interview problem"
    )
    typed = bundled.ask("how do u negotiate ur offer w/o a competing one?")
    spelled = bundled.ask("how do you negotiate your offer without a competing one?")
    assert [h.passage for h in typed.hits] == [h.passage for h in spelled.hits]


def test_an_acronym_the_documents_use_is_matched_as_they_write_it(bundled: RolecallService) -> None:
    # The pages say "IC track" and "IC role"; spelled out, the question missed them and was refused.
    answer = bundled.ask("can I go back to IC after trying management?")
    assert answer.answered
    assert any("switch back" in h.highlight or "return to an IC role" in h.highlight for h in answer.hits[:2])


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("how much does a senior software engineer make?", "Senior Software Engineer > Pay"),
        (
            "what does a senior software engineer do day to day?",
            "Senior Software Engineer > Responsibilities",
        ),
        ("what does a data engineer do day to day?", "Data Engineer > Responsibilities"),
        (
            "what skills should a senior back-end engineer have?",
            "Senior Back-End Software Engineer > Skills a senior back-end software engineer needs",
        ),
    ],
)
def test_a_question_naming_a_role_gets_the_section_it_asks_about(
    bundled: RolecallService, question: str, section: str
) -> None:
    # Every section of the role's page names the role; the rest of the question picks the section.
    assert bundled.ask(question).hits[0].passage.section == section


def test_a_move_between_two_roles_also_shows_the_ladders_step(bundled: RolecallService) -> None:
    # Naming senior and staff without comparing them asks how to move up: the staff page's path and the
    # career ladder's section on that step both answer, ahead of the staff page's other sections.
    sections = [h.passage.section for h in bundled.ask("how do I get from senior to staff?").hits]
    assert sections[0] == "Staff Engineer > How to become a staff engineer"
    assert "Software Engineering Career Ladder > From senior to staff" in sections[:2]


def test_switching_specialities_opens_the_ladders_section_on_it(bundled: RolecallService) -> None:
    # Front-end and back-end are both named, but neither page says how to move from one to the other.
    first = bundled.ask("how do I switch from front-end to back-end?").hits[0]
    assert first.passage.section == "Software Engineering Career Ladder > Switching specialities"
    assert "front-end to back-end" in first.highlight


@pytest.mark.parametrize(
    ("question", "section"),
    [
        (
            "I'm a backend dev, how do I get into ML?",
            "Machine Learning Engineer > How to become a machine learning engineer",
        ),
        (
            "as an SRE, how can I move to management?",
            "Engineering Manager > How to become an engineering manager",
        ),
        (
            "I'm a frontend dev and want to switch to data engineering, where do I start?",
            "Data Engineer > How to become a data engineer",
        ),
        # and where they come from still tells moves apart. These were refused: "mobile" and "front-end" were
        # cut from what was searched, and no back-end passage cleared the floor
        (
            "been a mobile dev, want to switch to back-end",
            "Software Engineering Career Ladder > Switching specialities",
        ),
        (
            "as a frontend engineer how hard is it to move to backend",
            "Software Engineering Career Ladder > Switching specialities",
        ),
        # this opened the back-end page's education: without "QA" nothing said where the asker comes from
        (
            "i work as a QA engineer and want to get into software development",
            "Changing Careers into Software > Moving into engineering from QA or support",
        ),
        # "going back to" is a move too: this opened the manager page's "How to become an engineering manager"
        (
            "i've been an EM for 2 years and want to go back to being an IC",
            "Software Engineering Career Ladder > IC track vs manager track",
        ),
    ],
)
def test_a_role_the_asker_is_leaving_does_not_pull_the_answer_to_its_page(
    bundled: RolecallService, question: str, section: str
) -> None:
    # The role they hold now was preferred, and searched for, as if it were what they asked about.
    assert bundled.ask(question).hits[0].passage.section == section


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("been a backend dev 4 yrs, how do i get into ML?", "machine-learning-engineer.md"),
        ("been an SRE for 3 years, how do i become an engineering manager?", "engineering-manager.md"),
    ],
)
def test_a_role_the_asker_has_been_is_one_they_are_leaving(
    bundled: RolecallService, question: str, source: str
) -> None:
    # "been a …" says what the asker is now, as "I'm a …" does: the back-end and SRE pages came first
    assert {hit.passage.source for hit in bundled.ask(question).hits} == {source}


@pytest.mark.parametrize(
    "question",
    ["i do manual QA, how do i become a dev?", "been doing QA at a bank, how do i get into programming"],
)
def test_someone_leaving_qa_is_not_told_how_to_get_into_qa(bundled: RolecallService, question: str) -> None:
    # "QA" alone did not name the QA page, so nothing said the asker was leaving it, and both questions
    # opened "QA Engineer > How to become a QA engineer"
    hits = bundled.ask(question).hits
    assert hits[0].passage.source != "qa-engineer.md"
    assert hits[0].passage.source in {"software-engineer.md", "career-change.md"}


def test_chat_fillers_do_not_pull_a_question_away_from_what_it_asks(bundled: RolecallService) -> None:
    # with "lowkey" and "lol" searched for, the back-end page's skills came first, not its pay
    top = bundled.ask("lowkey think i'm underpaid as a senior backend dev lol").hits[0]
    assert top.passage.section == "Senior Back-End Software Engineer > Pay"


@pytest.mark.parametrize(
    "decorated",
    [":thinking_face: should i negotiate my first offer :pray:", "should i negotiate my first offer 🤔🙏"],
)
def test_emoji_do_not_change_the_answer(bundled: RolecallService, decorated: str) -> None:
    # Slack sends emoji as ":shortcode:": searched for, they cost the first passage 0.17 of cosine (0.65 -> 0.48)
    # and changed the passages after it
    plain = bundled.ask("should i negotiate my first offer")
    shown = bundled.ask(decorated)
    assert [(h.passage.section, h.highlight, h.score) for h in shown.hits] == [
        (h.passage.section, h.highlight, h.score) for h in plain.hits
    ]


def test_how_long_the_asker_has_held_their_job_does_not_pull_a_move_to_the_experience_section(
    bundled: RolecallService,
) -> None:
    # with "3 years" searched for, the staff page's experience section ("eight to twelve or more years") came first
    top = bundled.ask("senior swe, 3 yrs at that level, how do i get to staff? feels like im stuck").hits[0]
    assert top.passage.section == "Staff Engineer > How to become a staff engineer"


def test_a_role_the_asker_holds_is_still_preferred_when_they_ask_about_it(bundled: RolecallService) -> None:
    top = bundled.ask("I'm a backend dev, which skills should I learn next?").hits[0]
    assert top.passage.source == "senior-back-end-engineer.md"


def test_how_one_role_is_different_from_another_shows_both(bundled: RolecallService) -> None:
    hits = bundled.ask("how is a principal engineer different from a staff engineer?").hits
    assert {h.passage.source for h in hits[:2]} == {"principal-engineer.md", "staff-engineer.md"}


@pytest.mark.parametrize(
    ("question", "section"),
    [
        ("how do I negotiate a job offer?", "Job Offers and Negotiation > How to negotiate a job offer"),
        (
            "my company made a counter offer, should I take it?",
            "Job Offers and Negotiation > Counter-offers from your current employer",
        ),
        (
            "how long should I study for coding interviews?",
            "Software Engineering Interviews > How long to prepare and a study plan",
        ),
        ("what does an engineering manager do in a one-on-one?", "Engineering Manager > One-on-ones"),
        ("how often should I have 1:1s with my manager?", "Engineering Manager > One-on-ones"),
        (
            "do I have to become a manager to keep growing?",
            "Software Engineering Career Ladder > IC track vs manager track",
        ),
    ],
)
def test_offers_interviews_one_on_ones_and_staying_an_ic_are_answered(
    bundled: RolecallService, question: str, section: str
) -> None:
    # Each was refused, or opened an unrelated page, before these sections were written.
    answer = bundled.ask(question)
    assert answer.answered
    assert answer.hits[0].passage.section == section


def test_a_topic_named_beside_a_role_keeps_the_role_preferred(bundled: RolecallService) -> None:
    # "interview loop" names the interviews page; with the back-end role it read as a move between two
    # pages, so neither was preferred and the staff page's interview section came first.
    first = bundled.ask("backend interview loop, what kind of design stuff comes up").hits[0]
    assert first.passage.section == "Senior Back-End Software Engineer > Interview focus"


def test_tech_lead_vs_engineering_manager_shows_the_ladders_comparison_and_the_manager_page(
    bundled: RolecallService,
) -> None:
    # "Tech lead" is a role held at senior or staff level, not a page of its own: the ladder answers it.
    hits = bundled.ask("what's the difference between a tech lead and an engineering manager?").hits
    assert hits[0].passage.section == "Software Engineering Career Ladder > Tech lead vs engineering manager"
    assert "engineering-manager.md" in {h.passage.source for h in hits[1:]}
    defined = bundled.ask("what does a tech lead do?").hits[0]
    assert defined.passage.section.endswith("Tech lead vs engineering manager")
    assert defined.highlight.startswith("A tech lead sets the technical direction")


def test_a_definition_question_highlights_the_defining_sentence_not_a_lists_lead_in(
    bundled: RolecallService,
) -> None:
    first = bundled.ask("what does a sponsor do?").hits[0]
    assert first.passage.section.endswith("Sponsorship")
    assert first.highlight.startswith("A sponsor puts your name forward")


@pytest.mark.parametrize(
    ("question", "section", "highlighted"),
    [
        ("what should I put in my promo doc?", "Promo packets and evidence", "written case for promoting"),
        ("how many reports does an EM usually have?", "Responsibilities", "five to ten engineers"),
        (
            "will I get downleveled if I move from backend to SRE?",
            "Switching specialities",
            "keeps your level",
        ),
    ],
)
def test_questions_from_the_held_out_set_open_the_section_that_answers(
    bundled: RolecallService, question: str, section: str, highlighted: str
) -> None:
    # Each of these missed on the held-out set's first run (eval/README.md): "promo doc" was not known
    # jargon, the team size was only in the page's opening, and no page said what a switch costs.
    first = bundled.ask(question).hits[0]
    assert first.passage.section.endswith(section) and highlighted in first.highlight, (
        first.passage.section,
        first.highlight,
    )


def test_a_broken_character_in_one_question_does_not_fail_the_others_asked_with_it(
    bundled: RolecallService,
) -> None:
    # Questions asked together share one embedding call; a lone surrogate used to make the tokenizer
    # raise for all of them.
    broken, plain = bundled.ask_many(["what does an SRE earn?\ud800", "what does a data engineer do?\x00"])
    assert broken.hits[0].passage.section == "Site Reliability / DevOps Engineer > Pay"
    assert plain.hits[0].passage.source == "data-engineer.md"


def test_a_comparison_returns_both_roles_side_by_side(bundled: RolecallService) -> None:
    hits = bundled.ask("senior vs staff engineer, what's the difference?").hits
    assert {h.passage.source for h in hits[:2]} == {"senior-software-engineer.md", "staff-engineer.md"}


@pytest.mark.parametrize(
    "question",
    [
        "What does a senior back-end engineer earn?",  # highlighted "Actual pay depends heavily on the employer…"
        "What does a staff engineer earn?",
        "what's the salary of a principal engineer?",
        "how much do engineering managers make?",
        "how much does an SRE make?",
    ],
)
def test_a_question_about_pay_highlights_a_figure(bundled: RolecallService, question: str) -> None:
    hit = bundled.ask(question).hits[0]
    assert hit.passage.section.endswith("> Pay") and "$" in hit.highlight


def test_a_question_asking_how_many_opens_the_passage_that_states_the_number(
    bundled: RolecallService,
) -> None:
    # the staff page's education section came first (it too speaks of years and levels) before quantities counted
    hit = bundled.ask("how many staff roles are there compared to senior? feels like theres none").hits[0]
    assert hit.passage.section == "Staff Engineer > Where the jobs are"
    assert "five to ten" in hit.passage.text


@pytest.mark.parametrize(
    ("question", "stated"),
    [
        # highlighted "…make them shorter and put the decision first" before
        ("how long should a design document be? nobody on my team reviews mine", "two or three pages"),
        # highlighted "Many employers accept equivalent practical experience instead of a degree…" before
        ("how many years of experience do you need to be considered senior?", "4 to 8 years"),
    ],
)
def test_a_question_asking_how_many_highlights_the_sentence_stating_it(
    bundled: RolecallService, question: str, stated: str
) -> None:
    assert stated in bundled.ask(question).hits[0].highlight


@pytest.mark.parametrize(
    ("text", "asks", "states"),
    [
        ("how many yoe do staff engs have?", True, False),
        ("how long till i can reapply?", True, False),
        ("how often are promo cycles", True, False),
        ("how many hours a week do SWEs work", True, False),
        ("how much does an SRE make?", False, False),  # a pay question: its figures are money
        ("how do i get better at system design?", False, False),
        ("Collect 3-5 projects that show impact.", False, True),
        ("Typically 10+ years of experience.", False, True),
        ("Plan ~100 hours of practice.", False, True),
        ("There is a six month cooldown.", False, True),
        ("Promotions follow a cycle, usually once or twice a year.", False, True),
        ("Once hired, keep learning.", False, False),
        ("1. Learn one language well.", False, False),  # a list's number is no quantity
        ("Senior engineers lead projects.", False, False),
    ],
)
def test_what_counts_as_asking_for_and_stating_a_quantity(text: str, asks: bool, states: bool) -> None:
    assert bool(_QUANTITY_QUESTION.search(text)) is asks
    assert bool(_QUANTITY.search(text)) is states


def test_a_question_naming_salary_without_asking_an_amount_keeps_its_answering_highlight(
    bundled: RolecallService,
) -> None:
    # a review found the pay rule read this as "how much": it highlighted "Sign-on bonus: often $10,000 …"
    hit = bundled.ask("what do I negotiate besides salary?").hits[0]
    assert hit.highlight.startswith("Negotiating a job offer is not limited to base salary")


def test_a_choice_beside_a_named_role_is_no_comparison_of_roles(bundled: RolecallService) -> None:
    # "or" weighs a portfolio site against GitHub; the front-end role and the resumes page it names are not
    # two sides to show in turn (the role's education section came first, the page that answers second)
    hits = bundled.ask("front-end dev here, should I build a portfolio site or just use GitHub?").hits
    assert hits[0].passage.source == "resumes.md" and "portfolio site" in hits[0].highlight


def test_a_bare_specialty_names_its_role(bundled: RolecallService) -> None:
    # "Front-End" / "Back-End" are aliases in the bundled front matter, so no "engineer" is needed.
    hits = bundled.ask("frontend vs backend, which pays more?").hits
    assert {h.passage.source for h in hits[:2]} == {
        "senior-front-end-engineer.md",
        "senior-back-end-engineer.md",
    }


def test_exact_terms_are_found(bundled: RolecallService) -> None:
    assert "Kubernetes" in bundled.ask("Kubernetes").hits[0].passage.text
    assert any("TDD" in h.passage.text for h in bundled.ask("TDD").hits)


def test_an_acronym_the_terms_table_spells_out_is_still_an_exact_term(bundled: RolecallService) -> None:
    # The searches see "test-driven development"; the answer leads with the passage that names TDD, and
    # shows no weaker supporting passage after it: any other passage clears the floor on its own.
    answer = bundled.ask("what is TDD")
    assert answer.answered
    assert answer.hits[0].passage.source == "senior-software-engineer.md" and answer.hits[0].exact
    assert "TDD" in answer.hits[0].highlight
    assert all(h.score >= DEFAULT_MIN_SCORE for h in answer.hits[1:])
    # Spelled out, the acronym still counts: the US pay sentence names "site reliability engineer",
    # the UK one "SRE"; the question's closest of the two is the highlight.
    pay = bundled.ask("how much does an SRE earn").hits[0]
    assert pay.passage.section.endswith("> Pay")
    assert "United States" in pay.highlight


def test_level_codes_are_exact_terms(bundled: RolecallService) -> None:
    # "L3 L4 L5" were too short for an acronym: the highlight was the line about Google's L9 and L10
    first = bundled.ask("engineering levels like L3 L4 L5, what do they mean").hits[0]
    assert first.passage.section.endswith("Levels at a glance") and first.exact
    assert any(level in first.highlight for level in ("L3", "L4", "L5"))


def test_how_to_deal_with_burnout_highlights_the_advice_not_the_symptoms(bundled: RolecallService) -> None:
    first = bundled.ask("how do i deal with burnout as a dev").hits[0]
    assert first.passage.section.endswith("Burnout and stepping back")
    assert first.highlight.startswith("To deal with burnout, raise it early with your manager")


def test_a_figure_in_the_question_is_highlighted_even_when_the_embedding_misses_it(
    bundled: RolecallService,
) -> None:
    answer = bundled.ask("$120,000")
    assert answer.answered
    assert all("$120,000" in h.highlight for h in answer.hits)
    assert "senior-back-end-engineer.md" in {h.passage.source for h in answer.hits}
    # A pound figure is not the dollar figure asked about.
    assert not any("£120,000" in h.highlight for h in bundled.ask("who makes $120,000?").hits)


@pytest.mark.parametrize(
    "question", ["is $120k low for a new grad at a series b in nyc", "is 120k good for a junior dev?"]
)
def test_a_figure_written_in_thousands_is_the_same_figure(bundled: RolecallService, question: str) -> None:
    # "$120k" used to be read as "$120", which no page writes: the UK sentence was highlighted instead.
    first = bundled.ask(question).hits[0]
    assert first.exact
    assert "$120,000" in first.highlight
    assert "£" not in first.highlight


def test_a_small_figure_with_k_and_no_dollar_sign_is_no_amount() -> None:
    # "a 10k run" must not make every sentence with "$10,000" an exact match (an exact match answers)
    assert literal_terms("how fast should i run a 10k?") == []
    assert literal_terms("is $10k enough to start?") == ["$10000"]
    assert contains_literal("A bonus of about $10,000 is common.", "$10000")
    assert contains_literal("Pay will be at least 300k.", "300000")


QUESTIONS = [
    "What does a data engineer do?",
    "how do I become a staff engineer",
    "skills for a machine learning engineer",
    "what tools does a front-end engineer use",
    "how are promotions decided",
]


def test_the_passage_whose_sentence_answers_beats_a_closer_passage_overall(bundled: RolecallService) -> None:
    # Without the best-sentence term the staff side shows its "Education and experience" passage first.
    first = bundled.ask("staff vs principal engineer - what's the actual difference?").hits[0]
    assert first.passage.source == "staff-engineer.md"
    assert "cross-team technical leadership" in first.passage.text


def test_a_weaker_passage_that_answers_still_shows_after_the_one_that_clears_the_floor(
    bundled: RolecallService, real_embedder: SentenceTransformerEmbedder
) -> None:
    question = "do I need a sponsor to get promoted?"
    hits = bundled.ask(question).hits
    assert hits[0].score >= DEFAULT_MIN_SCORE
    assert all(h.score >= DEFAULT_SUPPORT_SCORE for h in hits)
    weaker = [h for h in hits[1:] if h.score < DEFAULT_MIN_SCORE]
    assert weaker and any("sponsor" in h.highlight for h in weaker)
    # With supporting passages held to the floor too, those are not shown.
    strict = make_service(
        BUNDLED_KNOWLEDGE, bundled.config.index_dir, real_embedder, support_score=DEFAULT_MIN_SCORE
    )
    strict.open()
    assert [h.passage for h in strict.ask(question).hits] == [
        h.passage for h in hits if h.score >= DEFAULT_MIN_SCORE
    ]


def test_a_word_only_one_passage_holds_puts_that_passage_first_and_highlights_it(
    bundled: RolecallService,
) -> None:
    # The debounce sentence is a list item the model finds far from the question (cosine under the floor),
    # so the passage was shown after a generic interview one, highlighted on its opening.
    first = bundled.ask("front end interview - will they make me write debounce?").hits[0]
    assert first.passage.section == "Senior Front-End Engineer > Interview focus"
    assert "debounce" in first.highlight
    assert first.score < DEFAULT_MIN_SCORE and first.rare_term


def test_a_rare_word_on_the_page_of_the_role_asked_about_answers_even_under_the_floor(
    bundled: RolecallService, real_embedder: SentenceTransformerEmbedder
) -> None:
    # With a floor nothing reaches, the question is still about the front-end role and names what only
    # its interview section holds: it is answered from there, where it was refused.
    unreachable = make_service(BUNDLED_KNOWLEDGE, bundled.config.index_dir, real_embedder, min_score=0.99)
    unreachable.open()
    answer = unreachable.ask("front end interview - will they make me write debounce?")
    assert answer.answered
    assert [h.passage.section for h in answer.hits] == ["Senior Front-End Engineer > Interview focus"]
    # Without the rare word (and without three of its words in one sentence) it stays refused.
    assert not unreachable.ask("front end - any tips?").answered
    # A topic's alias is not a role: "stock options" names the job-offers page, whose one rare "lottery"
    # does not answer for it (and two words of three in one sentence are not enough either).
    assert not unreachable.ask("are stock options a lottery?").answered
    # Nor are the words of a role's name: every sentence of its page holds them. "backend engineer" became
    # "back-end software engineer", four of six words held by "Learn one back-end language…", which answered.
    assert not unreachable.ask("is it worth learning origami as a senior backend engineer?").answered


@pytest.mark.parametrize(
    ("question", "section", "words"),
    [
        (
            "base is stuck at top of band, what else can i push on",
            "What you can negotiate besides salary",
            ["band"],
        ),
        # (it said "rn" until the terms table spelled that "right now", which lifted it over the floor)
        ("got 2 offers haha, how do i play them off each other", "Competing offers and leverage", ["offer"]),
    ],
)
def test_a_highlight_holding_most_of_the_questions_words_answers_it_under_the_floor(
    bundled: RolecallService,
    real_embedder: SentenceTransformerEmbedder,
    question: str,
    section: str,
    words: list[str],
) -> None:
    # Casual phrasing puts the cosine under the floor (0.40, 0.41), though a sentence says just that. With a
    # floor nothing reaches, the words the highlight holds are what answers, whatever the cosine is.
    unreachable = make_service(BUNDLED_KNOWLEDGE, bundled.config.index_dir, real_embedder, min_score=0.99)
    unreachable.open()
    answer = unreachable.ask(question)
    assert answer.answered and answer.hits[0].passage.section.endswith(section)
    first = answer.hits[0]
    assert first.highlight_holds >= 3
    assert all(word in first.highlight for word in words)


@pytest.mark.parametrize(
    "question",
    [
        "how to interview a babysitter, what questions to ask?",  # three of its four words in one sentence
        "what skills does a senior chef need to run a kitchen team?",  # "senior" is the chef's level here
        "how much should i pay a senior plumber per hour?",
    ],
)
def test_other_occupations_stay_refused_when_their_words_match_or_a_level_is_named(
    bundled: RolecallService, question: str
) -> None:
    assert not bundled.ask(question).answered


@pytest.mark.parametrize(
    "question",
    # ("who won the champions league final last year?" held "last", rare until a new section said "lasting")
    ["any tips for cheap flights to lisbon in may?", "who won the world cup in qatar?"],
)
def test_a_rare_word_alone_does_not_make_an_off_topic_question_answered(
    bundled: RolecallService, question: str
) -> None:
    # One passage names Lisbon as a tech hub, few say "world": rare words, but not an answer.
    assert any(hit.rare_term for hit in bundled.retriever.retrieve(question, 3))
    assert not bundled.ask(question).answered


@pytest.mark.parametrize("question", QUESTIONS)
def test_no_near_duplicates_and_at_most_two_passages_per_section(
    bundled: RolecallService, question: str
) -> None:
    hits = bundled.ask(question).hits
    assert len(hits) >= 2
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            shared = set(split_sentences(a.passage.text)) & set(split_sentences(b.passage.text))
            assert len(shared) * 2 < len(split_sentences(b.passage.text)), (
                a.passage.section,
                b.passage.section,
            )
        assert a.highlight in split_sentences(a.passage.text)
    per_section = Counter((h.passage.source, h.passage.section) for h in hits)
    assert max(per_section.values()) <= 2
    assert len({h.highlight for h in hits}) == len(hits)  # no sentence highlighted twice


def test_a_sentence_two_windows_share_is_highlighted_once(bundled: RolecallService) -> None:
    # Both windows around it held "On-call is a normal part of the job." as their best sentence, and the
    # answer showed it twice in bold; the second window now gives its place to the next passage.
    highlights = [hit.highlight for hit in bundled.ask("how bad is on-call as an SRE realistically").hits]
    assert highlights.count("On-call is a normal part of the job.") == 1
    assert len(highlights) == 3 and len(set(highlights)) == 3


@pytest.mark.parametrize(
    "greeting",
    [
        "hi",
        "Hello!",
        "help",
        "what can you do?",
        "hey rolecall",
        "hi :wave:",
        "hey rolecall, what can you do?",
        "\ufeffhi",
    ],
)
def test_a_greeting_gets_how_to_ask_and_the_known_roles(bundled: RolecallService, greeting: str) -> None:
    answer = bundled.ask(greeting)
    assert not answer.answered
    text = answer.refusal_text()
    assert text.startswith("Hi! I answer career questions") and "Staff Engineer" in text
    assert "I don't know" not in text


@pytest.mark.parametrize(
    "question", ["how much does an intern make", "what do swe interns get paid at big tech"]
)
def test_intern_pay_is_answered_from_the_intern_pay_section(bundled: RolecallService, question: str) -> None:
    # the pages had no intern pay: "how much does an intern make" got returnships ("an intern's stipend")
    first = bundled.ask(question).hits[0]
    assert first.passage.section == "Software Engineer > Intern pay"
    assert "$25 to $45 an hour" in first.passage.text


@pytest.mark.parametrize(
    "question",
    [
        "got a lowball offer, how do i counter??",
        "how do i counter a lowball offer",
        "they offered 95k, should i counter?",
    ],
)
def test_countering_an_offer_is_negotiating_it_not_a_counter_offer_to_stay(
    bundled: RolecallService, question: str
) -> None:
    # "counter" opened the section on counter-offers from your current employer
    first = bundled.ask(question).hits[0].passage
    assert first.source == "job-offers.md" and "negotiate a job offer" in first.section
    stay = bundled.ask("my current company made a counter offer, should i take it").hits[0].passage
    assert stay.section.endswith("Counter-offers from your current employer")


@pytest.mark.parametrize(
    "thanks",
    [
        "thanks!",
        "thank you so much",
        "ok cool, thx",
        "thanks 🙏",
        "ty :pray:",
        "thanks, that helps!",
        "got it, thanks",
    ],
)
def test_a_thank_you_gets_you_are_welcome_not_i_dont_know(bundled: RolecallService, thanks: str) -> None:
    answer = bundled.ask(thanks)
    assert not answer.answered
    assert answer.refusal_text().startswith("You're welcome!")


@pytest.mark.parametrize(
    "question",
    [
        "¿cuánto gana un ingeniero de software senior?",
        "combien gagne un ingénieur logiciel senior ?",
        "wie viel verdient ein senior software engineer",
    ],
)
def test_a_question_in_another_language_is_asked_again_in_english(
    bundled: RolecallService, question: str
) -> None:
    # the Spanish and German ones were answered with role introductions that only shared the job title
    answer = bundled.ask(question)
    assert not answer.answered
    assert "only read questions in English" in answer.refusal_text()


@pytest.mark.parametrize("question", ["sr swe comp in LA?", "de facto stack for a startup backend in 2024?"])
def test_english_with_a_foreign_word_is_still_searched(bundled: RolecallService, question: str) -> None:
    answer = bundled.ask(question)
    assert "only read questions in English" not in answer.refusal_text()
    assert answer.answered


def test_invisible_characters_are_dropped_from_the_question(bundled: RolecallService) -> None:
    # a byte-order mark from a pasted file, a right-to-left override that would turn the echoed line around
    answer = bundled.ask("\ufeffwhat does an SRE \u202eearn\u202c?")
    assert answer.question == "what does an SRE earn?"
    assert answer.answered and answer.hits[0].passage.source == "site-reliability-engineer.md"


def test_a_question_after_a_greeting_is_answered(bundled: RolecallService) -> None:
    for question in ("hi, what does an SRE earn?", "thanks! and what does an SRE earn?"):
        answer = bundled.ask(question)
        assert answer.answered and answer.hits[0].passage.source == "site-reliability-engineer.md"
    assert bundled.ask("banana bread recipe").refusal_text().startswith("I don't know that one")


@pytest.mark.parametrize(
    "question",
    [
        "who won the world cup in 2018?",
        "banana bread recipe",
        "how do I fix a flat bike tyre?",
        "how tall is the eiffel tower?",
    ],
)
def test_off_topic_questions_get_no_passages_and_the_known_roles(
    bundled: RolecallService, question: str
) -> None:
    answer = bundled.ask(question)
    assert not answer.answered and not answer.hits
    assert "Staff Engineer" in answer.refusal_text()
    # nothing of ours comes close either: no nearest section is named
    assert answer.nearest is None and "nearest" not in answer.to_json()
    assert answer.refusal_text().startswith("I don't know that one")


def test_a_refused_question_close_to_a_section_names_it_as_the_nearest(bundled: RolecallService) -> None:
    # Casual words put the self-review section's sentences under the floor (0.38 here), but it ranks first:
    # the refusal names it, so the asker knows what to ask about, without passages shown as an answer.
    answer = bundled.ask("perf cycle self assessment due fri, how do i hype my stuff w/o sounding fake")
    assert not answer.answered and answer.nearest is not None
    assert answer.nearest.passage.section.endswith("Writing your self-review")
    assert DEFAULT_NEAREST_SCORE <= answer.nearest.score < DEFAULT_MIN_SCORE
    text = answer.refusal_text()
    assert text.startswith(
        "I'm not sure I know that one. The nearest I have is “Working Life in Software Teams"
    )
    assert "(working-life.md)" in text and "Staff Engineer" in text  # the known roles are still listed
    shape = answer.to_json()
    assert shape["answered"] is False and shape["passages"] == []
    assert shape["nearest"]["source"] == "working-life.md" and shape["nearest"]["score"] < DEFAULT_MIN_SCORE


def test_a_question_another_occupation_puts_out_of_scope_names_no_nearest_section(
    bundled: RolecallService,
) -> None:
    # the scope rule refuses before any passage is looked at: no section of ours is near a nurse's rota
    answer = bundled.ask("how do nurses swap night shifts with a coworker?")
    assert not answer.answered and answer.nearest is None


def test_the_nearest_section_can_be_switched_off(
    bundled: RolecallService, real_embedder: SentenceTransformerEmbedder
) -> None:
    strict = make_service(
        BUNDLED_KNOWLEDGE, bundled.config.index_dir, real_embedder, nearest_score=DEFAULT_MIN_SCORE
    )
    strict.open()
    answer = strict.ask("perf cycle self assessment due fri, how do i hype my stuff w/o sounding fake")
    assert not answer.answered and answer.nearest is None
    assert answer.refusal_text().startswith("I don't know that one")


def test_the_refusal_lists_the_career_ladder_as_a_topic_not_a_role(bundled: RolecallService) -> None:
    text = bundled.ask("banana bread recipe").refusal_text()
    roles_part, _, topics_part = text.partition("And topics such as")
    assert "Site Reliability / DevOps Engineer" in roles_part and "Career Ladder" not in roles_part
    assert "Software Engineering Career Ladder" in topics_part
    # a topic page stays a topic even when an alias ends in a role noun ("Self-Taught Developer")
    assert (
        "Changing Careers into Software" not in roles_part and "Changing Careers into Software" in topics_part
    )
    # all eight topic pages are named, none hidden behind "and N more"
    assert (
        "Freelancing and Early-Stage Startups" in topics_part
        and "Working Life in Software Teams" in topics_part
    )
    assert "more." not in topics_part


@pytest.mark.parametrize(
    "question",
    [
        "landlord gave me notice to move out, how many days do they legally need to give",
        "should i exercise my tesla call options before they expire friday",
        # a profession named by its work, not its worker (answered from the interviews page before)
        "nursing job interview next week, what do hospitals usually ask RNs",
        "what's the pay like in nursing?",
    ],
)
def test_questions_on_other_subjects_that_share_the_pages_words_are_refused(
    bundled: RolecallService, question: str
) -> None:
    # The job-offers page's notice period and stock options answered them (cosine 0.43-0.55).
    assert not bundled.ask(question).answered


@pytest.mark.parametrize(
    "question",
    [
        # other walks of life in career words (answered from the skills, promotion and negotiation passages before)
        "what skills does a good goalkeeper need?",
        "asked to lead my kid's soccer team as assistant coach, what skills do i need?",
        "what is the best way to negotiate a trade-in offer at a car dealership?",
        # and from words chosen in the eleventh session
        "my store manager keeps putting me on every weekend, how do i push back?",
        "patrol officer for 5 years, what skills get you promoted to sergeant?",
        "the wedding venue wants more money than quoted, how do i negotiate it down?",
    ],
)
def test_questions_from_other_walks_of_life_are_refused(bundled: RolecallService, question: str) -> None:
    answer = bundled.ask(question)
    assert not answer.answered and not answer.hits


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("I coach a soccer team on weekends, how do I get into devops?", "site-reliability-engineer.md"),
        ("I was a restaurant manager, how do I become a software engineer?", "software-engineer.md"),
        # a career changer who names the old job and the wish to switch, but not the new field
        ("I've been a pharmacist for 10 years, is it realistic to switch?", "career-change.md"),
        ("teacher here, thinking about a career change, where do I begin?", "career-change.md"),
        ("nurse here thinking of switching, where do I start?", "career-change.md"),
        # where they were, said with "to": not where they go (a review found these refused)
        ("I used to be a nurse, thinking of switching, where do I begin?", "career-change.md"),
        ("I trained to be a pharmacist and want to switch careers, is it realistic?", "career-change.md"),
        ("should I open-source the budgeting tool I built for my church?", "resumes.md"),
        # work idioms and industries people build software for are not on the list (a review refused these)
        ("How do I quarterback a cross-team project without being the official lead?", "staff-engineer.md"),
        ("our startup is heading toward bankruptcy, what happens to my stock options?", "job-offers.md"),
    ],
)
def test_people_from_other_walks_of_life_asking_about_our_roles_are_answered(
    bundled: RolecallService, question: str, source: str
) -> None:
    answer = bundled.ask(question)
    assert answer.answered and answer.hits[0].passage.source == source


@pytest.mark.parametrize(
    "question",
    [
        "as a dentist, how do I negotiate a job offer?",
        "nurse here, any tips for salary negotiation with the hospital?",
    ],
)
def test_a_topic_named_beside_another_occupation_does_not_bring_it_into_scope(
    bundled: RolecallService, question: str
) -> None:
    # "job offer" and "salary negotiation" are aliases of the job-offers page, which counted as naming one of our
    # roles; the questions were answered from it (0.45, 0.49).
    answer = bundled.ask(question)
    assert not answer.answered and not answer.hits


JOB_OFFERS, LADDER, ENGINEER, LIFE, CHANGE, RESUMES, INTERVIEWS = (
    "Job Offers and Negotiation",
    "Software Engineering Career Ladder",
    "Software Engineer",
    "Working Life in Software Teams",
    "Changing Careers into Software",
    "Resumes and Portfolios",
    "Software Engineering Interviews",
)


@pytest.mark.parametrize(
    ("question", "section", "highlighted"),
    [
        # A probe of common career questions: each was refused, or answered from an unrelated line (in brackets),
        # before the section written for it.
        # (the career-change page's "Where to start when switching")
        ("should i join a startup or big tech?", f"{JOB_OFFERS} > Startup or big tech?", "startup"),
        ("contract vs full time, which is better?", f"{JOB_OFFERS} > Contracting or a full-time job", ""),
        ("is it ok to job hop every year?", f"{JOB_OFFERS} > How often to change jobs", ""),
        # (the machine learning engineer's employers; how to become a software engineer; refused)
        (
            "is AI going to replace software engineers?",
            f"{ENGINEER} > AI tools and the future of the job",
            "AI",
        ),
        ("will chatgpt take my dev job", f"{ENGINEER} > AI tools and the future of the job", "ChatGPT"),
        (
            "is copilot going to make juniors obsolete?",
            f"{ENGINEER} > AI tools and the future of the job",
            "junior",
        ),
        # (the career ladder's sponsors for promotion, 0.35)
        (
            "do i need a visa sponsorship to work in the US?",
            f"{JOB_OFFERS} > Working abroad and work visas",
            "visa",
        ),
        # (the software engineer's sectors)
        ("how do i get a job abroad as a developer?", f"{ENGINEER} > Where the jobs are", "abroad"),
        # (the staff page's introduction: "the first step above senior on the IC track")
        (
            "how do i make the jump from IC to manager?",
            f"{LADDER} > IC track vs manager track",
            "IC to manager",
        ),
        # ("Learn one back-end language…", through the words of the role's own name)
        (
            "should i learn kubernetes as a backend dev?",
            "Senior Back-End Software Engineer > Tools",
            "Kubernetes",
        ),
        # (refused; the software engineer's pay)
        ("should i specialise or be a generalist?", f"{LADDER} > Specialist or generalist", "generalist"),
        (
            "is it bad to be a jack of all trades as a dev?",
            f"{LADDER} > Specialist or generalist",
            "jack of all",
        ),
        # A second probe, 90 questions written blind (ninth session): each below was refused, or answered from
        # the line in brackets. (refused)
        ("how do you stop checking slack at 11pm", f"{LIFE} > Switching off after hours", "Slack"),
        (
            "on call every 3rd week and the 3am pages are wrecking me. how do i push back",
            f"{LIFE} > On-call load",
            "",
        ),
        # (the senior engineer's "evidence of mentoring")
        ("how do u actually find a mentor", f"{LIFE} > Mentors and mentoring", "find a mentor"),
        # (changing teams inside your company)
        (
            "just got promoted to manage the team i was on, how do i handle my old teammates",
            "Engineering Manager > Managing your former peers",
            "",
        ),
        # (the software engineer's internships)
        ("are returnship programs legit", f"{CHANGE} > Returnships and returner programmes", "returnship"),
        # (the staff engineer's way up)
        (
            "im in tech support and want to get into engineering",
            f"{CHANGE} > Moving into engineering from QA or support",
            "",
        ),
        # (refused)
        (
            "dropped out of uni in 2nd year. do i put it on my resume",
            f"{RESUMES} > An unfinished degree on a resume",
            "",
        ),
        # (the full-stack engineer's tools)
        (
            "does anyone actually look at github contribution graphs",
            f"{RESUMES} > Portfolios, GitHub and cover letters",
            "contribution graph",
        ),
        # (refused)
        ("ISOs vs NSOs whats the difference", f"{JOB_OFFERS} > ISOs and NSOs: types of stock options", "ISO"),
        # (the back-end engineer's cities)
        (
            "how do ppl in europe find fully remote jobs at us companies",
            f"{JOB_OFFERS} > Remote jobs with a company in another country",
            "",
        ),
        # (refused)
        (
            "take home says 4 hours but realistically its 2 days. how much effort should i put in?",
            f"{INTERVIEWS} > Take-home assignments",
            "",
        ),
        # (a study plan)
        (
            "applied to 200 jobs and got 3 interviews. what am i doing wrong",
            f"{INTERVIEWS} > Applying for jobs and getting few interviews",
            "",
        ),
        # the tenth session's role pages: both jobs were refused as other occupations before them
        (
            "do i need cissp or oscp to get into appsec",
            "Security Engineer > Security certifications: OSCP, CISSP and Security+",
            "You usually do not need CISSP or OSCP",
        ),
        ("what does a QA engineer do?", "QA Engineer", "QA engineers plan and run tests"),
        ("is QA engineering a good career?", "QA Engineer > Is QA a good career?", ""),
        (
            "manual testing vs test automation, which one should i focus on?",
            "QA Engineer > Manual testing versus test automation",
            "",
        ),
        # a sysadmin is another occupation, but cloud security is the security page's field: in scope
        (
            "sysadmin for 6 years, how do i get into cloud security?",
            "Security Engineer > Moving into security from software or IT",
            "",
        ),
        # the role the asker leaves is left out of the search: the way into the new one, not the old one's page
        (
            "im a data engineer, how do i become a security engineer",
            "Security Engineer > How to become a security engineer",
            "",
        ),
    ],
)
def test_common_career_questions_are_answered_from_the_section_written_for_them(
    bundled: RolecallService, question: str, section: str, highlighted: str
) -> None:
    first = bundled.ask(question).hits[0]
    assert first.passage.section == section
    assert highlighted in first.highlight


def test_or_after_a_move_between_two_roles_is_no_comparison_of_them(bundled: RolecallService) -> None:
    # "or" joins two outcomes of one move, not the two roles: side by side, the front-end page's way up and
    # the back-end pay came first, and the ladder's section on switching specialities was not shown.
    first = bundled.ask(
        "switching from frontend to backend, will i have to take a pay cut or drop back to junior"
    )
    assert first.hits[0].passage.section == f"{LADDER} > Switching specialities"
    assert "pay cut" in first.hits[0].highlight
    assert {
        h.passage.source for h in bundled.ask("is frontend or backend better for a junior?").hits[:2]
    } == {
        "senior-front-end-engineer.md",
        "senior-back-end-engineer.md",
    }


def test_a_professional_the_asker_hires_does_not_make_the_question_about_that_job(
    bundled: RolecallService,
) -> None:
    # "lawyer" is another occupation (bot/scope.json), so this was refused before any passage was looked at
    answer = bundled.ask(
        "severance is 8 weeks if i sign a release. worth paying a lawyer to look at it or just sign"
    )
    assert answer.hits[0].passage.section == f"{JOB_OFFERS} > Severance agreements and releases"
    assert not bundled.ask("how much does a lawyer make?").answered
    assert not bundled.ask("how do i become a lawyer?").answered


def test_career_questions_with_those_words_are_still_answered(bundled: RolecallService) -> None:
    assert bundled.ask("should I exercise my startup stock options when I leave?").answered
    assert bundled.ask("what notice period should I give when I resign?").answered


@pytest.mark.parametrize(
    "question",
    [
        "what does a dentist earn?",
        "how much do electricians make?",
        "what's the average salary of a UX designer?",
        "how much does a product manager make",  # answered from the engineering manager's pay
        # a role the asker leaves, and the field word in its name, do not bring the question back
        "how do i move from software engineer to product manager",
        "I'm a back-end developer, how do I become a product manager?",
        # a career change into another occupation: "switching" brings in only changes into our field
        "I'm a teacher thinking of switching to nursing, how do I start?",
        "I want to switch and train as a midwife",
    ],
)
def test_questions_about_other_occupations_are_refused(bundled: RolecallService, question: str) -> None:
    # The pay passages of the engineering roles score above the floor for these; the occupation decides.
    answer = bundled.ask(question)
    assert not answer.answered and not answer.hits


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("I'm a nurse, how do I become a software engineer?", "software-engineer.md"),
        ("accountant to data engineer, is it doable?", "data-engineer.md"),
        # a field rather than a role title still says the question is about our roles
        ("teacher here, can I switch to data engineering?", "data-engineer.md"),
        ("chef wanting to move into devops, where do I start?", "site-reliability-engineer.md"),
        ("I work in nursing, how do I become a developer?", "software-engineer.md"),
        # "code" and "coder" name the field as well (refused before: med school and law school are other subjects)
        ("I left med school to learn to code, where do I start?", "software-engineer.md"),
        ("dropped out of law school, want to be a coder, how do I get hired?", "software-engineer.md"),
        # software-adjacent jobs without a page are answered once the question names one of our roles
        ("I'm a data analyst, how do I become a data engineer?", "data-engineer.md"),
        ("sysadmin here, how do I move into SRE?", "site-reliability-engineer.md"),
        # colleagues from those jobs, beside one of our roles
        ("how do engineering managers work with product managers?", "engineering-manager.md"),
    ],
)
def test_career_changers_from_other_occupations_are_answered(
    bundled: RolecallService, question: str, source: str
) -> None:
    answer = bundled.ask(question)
    assert answer.answered
    assert source in {hit.passage.source for hit in answer.hits}


INTERVIEW_DOCS = {
    "coding-practice.md": "# Coding practice\n\n## How many problems\n\nGrinding hundreds of LeetCode problems is not"
    " needed: about 160 well-chosen LeetCode questions cover the common patterns. Review the patterns, not"
    " the answers.\n\n## Mock interviews\n\nPractise with a friend who plays the interviewer and time yourself.\n",
    "resume.md": "# Resume\n\n## Length\n\nKeep your resume to one page unless you have more than ten years of"
    " experience. Recruiters skim a resume in seconds.\n\n## Projects\n\nList projects with their impact.\n",
    "facebook.md": "# Working at Facebook\n\n## Culture\n\nThe engineering culture at Facebook is open and fast:"
    " engineers own their code end to end, and bootcamp lets new hires pick a team.\n\n## Hours\n\n"
    "Work-life balance at Facebook is good on most teams: engineers work about 45 hours a week.\n",
    "behavioral.md": "# Behavioral interviews\n\n## Format\n\nAnswer behavioral questions with the STAR format:"
    " situation, task, action, result.\n",
}


@pytest.fixture(scope="module")
def interviews(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> RolecallService:
    folder = write_docs(tmp_path_factory.mktemp("interview-docs"), INTERVIEW_DOCS)
    service = make_service(folder, tmp_path_factory.mktemp("interviews") / "idx", real_embedder)
    service.open()
    return service


@pytest.mark.parametrize(
    ("slang", "plain", "source"),
    [
        (
            "how many LC problems should i grind?",
            "how many LeetCode problems should i grind?",
            "coding-practice.md",
        ),
        ("should my CV be one page?", "should my resume be one page?", "resume.md"),
        (
            "what's the engineering culture like at FB?",
            "what's the engineering culture like at Facebook?",
            "facebook.md",
        ),
        ("how do i answer BQs?", "how do i answer behavioral questions?", "behavioral.md"),
        ("how's the WLB at FB?", "how's the work-life balance at Facebook?", "facebook.md"),
    ],
)
def test_interview_jargon_finds_what_the_plain_words_find(
    interviews: RolecallService, slang: str, plain: str, source: str
) -> None:
    slang_answer, plain_answer = interviews.ask(slang), interviews.ask(plain)
    assert slang_answer.answered
    assert slang_answer.hits[0].passage.source == source
    assert [h.passage for h in slang_answer.hits] == [h.passage for h in plain_answer.hits]


def test_the_refusal_names_the_roles_and_only_a_few_other_documents(tmp_path: Path) -> None:
    topics = {
        f"topic-{i:02d}.md": f"# Interview topic {i:02d}\n\nNotes on interview topic {i:02d}.\n"
        for i in range(10)
    }
    role = {
        "about-sre.md": "# About the Site Reliability Engineer role\n\nAn SRE keeps production running.\n"
    }
    service = make_service(write_docs(tmp_path / "kb", {**topics, **role}), tmp_path / "idx", FakeEmbedder())
    service.reindex()
    text = service.ask("hi").refusal_text()
    # the role named, not the page title
    assert "I know about these roles: Site Reliability Engineer." in text
    assert "topics such as: Interview topic 00; " in text and "; and 2 more." in text
    assert "Interview topic 09" not in text and "About the" not in text


def test_a_question_naming_a_role_highlights_the_sentence_about_what_it_asks(
    bundled: RolecallService,
) -> None:
    # The section's first sentence names the role and is closest to the question overall; the one that
    # says which employers hire is closest once the role is projected out of the question.
    top = bundled.ask("which companies hire software engineers?").hits[0]
    assert top.passage.section == "Software Engineer > Where the jobs are"
    assert top.highlight.startswith("Employers range from big tech and startups")


NEGOTIATION_HELP = """# Getting help with a salary negotiation

## Why negotiate

Most first offers leave room to move. Recruiters expect a counter, and a polite one rarely costs you the offer.

## Negotiation services

If you have never negotiated an offer, or feel out of your depth, several firms will coach you through it. For most
candidates the fee is small next to the raise it wins, and a coach has seen far more offers than you have.

### Offer coaching firms

A coaching firm assigns you a negotiator who stays with you from the first recruiter call to the signed contract.
Many work on success terms: you owe them nothing unless the company raises its offer, and then they take a share of
the increase.

What a coaching firm typically does:

- Argue for a higher package even when you hold no competing offer
- Tell you what similar engineers were paid at the same company and level
- Write scripts for each recruiter call and rehearse them with you
- Answer in a chat while you are on the call with the recruiter

### Salary data sites

Sites that collect pay reports, best known as salary databases, also sell negotiation help for a fixed price paid up
front, whatever the outcome. The price buys a review of your offer and a plan for the counter.

## What to say first

Thank the recruiter, say you are excited, and ask for a few days to review the full package in writing before you
answer.
"""


def test_the_window_holding_what_was_asked_comes_first_within_the_document(
    tmp_path: Path, real_embedder: SentenceTransformerEmbedder
) -> None:
    # The section's introduction came first (its vector is closest to "negotiation service"); the words of the
    # question decide among the windows of the document the fused score chose. The other pages stay in the
    # running: the resume page and the Facebook page speak of offers and pay too.
    folder = write_docs(tmp_path / "kb", {"negotiation-help.md": NEGOTIATION_HELP, **INTERVIEW_DOCS})
    service = make_service(folder, tmp_path / "idx", real_embedder)
    service.reindex()
    answer = service.ask("is there a negotiation service where i only pay if my offer goes up?")
    assert answer.answered
    first = answer.hits[0]
    assert first.passage.section.endswith("Negotiation services > Offer coaching firms")
    assert "unless the company raises its offer" in first.passage.text
    assert {hit.passage.source for hit in answer.hits} == {"negotiation-help.md"}
