"""Role-aware answers over documents without front matter: the role is read from the document's title."""

from __future__ import annotations

import pytest

from bot.service import RolecallService
from index.embedding import SentenceTransformerEmbedder
from index.roles import RoleDocument, RoleMatcher, names_a_role, role_documents, role_title, without_tenure
from index.terms import default_normaliser
from tests.conftest import make_service, write_docs

# Plain-text role pages as they are copied from job sites: the role is named in the title line only.
PAGES = {
    "page-a.txt": "About the Engineer Staff role\n\n"
    "What the job involves: an engineer at this level sets technical direction for several teams, "
    "reviews their designs and mentors other engineers every week.\n\n"
    "Salary: the pay for this engineering job starts at $210,000 a year, and equity is a large part of it.\n",
    "page-b.txt": "Senior Engineer jobs & Careers\n\n"
    "What the job involves: an engineer at this level builds features end to end, "
    "reviews code for one team and takes a weekly on-call shift.\n\n"
    "Salary: the pay for this engineering job starts at $160,000 a year, with a yearly bonus.\n",
    "levels.txt": "Engineering levels\n\n"
    "A staff engineer does cross-team technical work; a senior engineer does the hard work of one team. "
    "Both levels are paid more than a mid-level engineer.\n",
    "page-c.txt": "Behavioral interviews for Software Engineers: How to prepare\n\n"
    "Prepare five stories about your work and tell them with the STAR format: situation, task, action, "
    "result. Interviewers listen for ownership and for what you did yourself.\n",
}


@pytest.fixture(scope="module")
def pages(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> RolecallService:
    return _opened(tmp_path_factory, PAGES, "role-pages", real_embedder)


def _opened(
    tmp_path_factory: pytest.TempPathFactory,
    docs: dict[str, str],
    name: str,
    embedder: SentenceTransformerEmbedder,
) -> RolecallService:
    folder = write_docs(tmp_path_factory.mktemp(name), docs)
    service = make_service(folder, tmp_path_factory.mktemp(f"{name}-index") / "idx", embedder)
    service.open()
    return service


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("what does a staff engineer do?", "page-a.txt"),
        ("what does a senior engineer do?", "page-b.txt"),
        ("how much does a staff engineer make?", "page-a.txt"),
        ("how much does a senior engineer make?", "page-b.txt"),
    ],
)
def test_a_role_named_only_in_a_title_is_preferred(
    pages: RolecallService, question: str, source: str
) -> None:
    answer = pages.ask(question)
    assert answer.answered
    assert answer.hits[0].passage.source == source


def test_a_comparison_returns_both_title_roles(pages: RolecallService) -> None:
    answer = pages.ask("senior vs staff engineer: how is the pay different?")
    assert {hit.passage.source for hit in answer.hits[:2]} == {"page-a.txt", "page-b.txt"}


@pytest.mark.parametrize(
    ("title", "role"),
    [
        ("About the Software Engineer Senior role", ("Senior Software Engineer", "senior")),
        ("Senior back-end software engineer jobs & Careers", ("Senior back-end software engineer", "senior")),
        ("Engineering Manager: role overview", ("Engineering Manager", "")),
        ("Behavioral interviews for Software Engineers: How to prepare", ("", "")),
        ("Software Engineer interviews: Crafting the perfect self introduction", ("", "")),
        ("Resume tips", ("", "")),
    ],
)
def test_only_titles_that_name_a_role_make_one(title: str, role: tuple[str, str]) -> None:
    assert role_title(title) == role


@pytest.mark.parametrize(
    ("title", "aliases", "is_role"),
    [
        ("Software Engineering Career Ladder", ("Engineering Levels", "Career Ladder", "IC Track"), False),
        ("Site Reliability / DevOps Engineer", (), True),
        ("Engineering Manager (EM)", (), True),
        ("SRE", ("Site Reliability Engineer",), True),
        ("Negotiation", ("Salary negotiation",), False),
    ],
)
def test_a_document_with_front_matter_is_listed_as_a_role_only_when_a_name_of_it_names_one(
    title: str, aliases: tuple[str, ...], is_role: bool
) -> None:
    assert names_a_role(RoleDocument("doc.md", title, aliases)) is is_role


# Three role pages as the seed job descriptions name them: one role with a qualifier ("back-end"),
# two without. People shorten the first ("sr backend", "backend devs") and pluralise all of them.
JOB_PAGES = {
    "back.txt": "Senior back-end software engineer jobs & Careers\n\n"
    "Salary: a senior back-end software engineer earns about $150,000 a year, and is on call one week in six.\n",
    "swe.txt": "About the Software Engineer Senior role\n\n"
    "Salary: a senior software engineer earns about $170,000 a year, and leads design reviews.\n",
    "senior.txt": "Senior Engineer Jobs\n\n"
    "Salary: a senior engineer earns about $160,000 a year, and mentors new hires.\n",
}
JOB_TITLES = {source: text.split("\n")[0] for source, text in JOB_PAGES.items()}


@pytest.mark.parametrize(
    ("question", "sources"),
    [
        ("sr backend vs sr swe: who earns more?", ["back.txt", "swe.txt"]),
        ("what do backend devs do?", ["back.txt"]),
        ("are senior back-end engineers on call?", ["back.txt"]),
        ("what do senior software engineers earn?", ["swe.txt"]),
        ("what do senior engineers earn?", ["senior.txt"]),
        ("what does a software engineer do?", []),  # unqualified: no page claims every question
    ],
)
def test_a_title_role_is_found_by_the_shorter_names_people_use(question: str, sources: list[str]) -> None:
    documents = [RoleDocument(source, title, ()) for source, title in JOB_TITLES.items()]
    matcher = RoleMatcher(role_documents(documents))
    assert matcher.roles_in(default_normaliser()(question)) == sources


def test_a_short_name_two_roles_share_names_neither() -> None:
    documents = [
        RoleDocument("a.txt", "Senior back-end software engineer jobs", ()),
        RoleDocument("b.txt", "Staff back-end engineer role", ()),
    ]
    by_source = {d.source: [a.lower() for a in d.aliases] for d in role_documents(documents)}
    assert "senior back-end" in by_source["a.txt"] and "staff back-end" in by_source["b.txt"]
    assert "back-end engineer" not in by_source["a.txt"] + by_source["b.txt"]


def test_a_comparison_of_shortened_title_roles_shows_both(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> None:
    answer = _opened(tmp_path_factory, JOB_PAGES, "job-pages", real_embedder).ask(
        "sr backend vs sr swe: who earns more?"
    )
    assert answer.answered
    assert {hit.passage.source for hit in answer.hits[:2]} == {"back.txt", "swe.txt"}


@pytest.mark.parametrize(
    ("question", "asked_about", "searched"),
    [
        ("I'm an SRE, how do I move into management?", [], "I'm an how do I move into management?"),
        ("as an SRE, how do I become an EM?", ["em.md"], "as an how do I become an engineering manager?"),
        # no move asked: the role they hold is what they ask about
        (
            "I'm an SRE, what should I learn next?",
            ["sre.md"],
            "I'm an site reliability engineer, what should I learn next?",
        ),
        # a move named without saying which role is theirs: both roles, nothing dropped
        ("SRE to EM, how?", ["sre.md", "em.md"], "site reliability engineer to engineering manager, how?"),
    ],
)
def test_a_role_the_asker_is_leaving_is_not_what_they_ask_about(
    question: str, asked_about: list[str], searched: str
) -> None:
    documents = [
        RoleDocument("sre.md", "Site Reliability Engineer", ("SRE",)),
        RoleDocument("em.md", "Engineering Manager", ("EM",)),
    ]
    matcher = RoleMatcher(documents)
    normalised = default_normaliser()(question)
    assert matcher.roles_in(normalised) == asked_about
    assert matcher.subject(normalised) == searched


@pytest.mark.parametrize(
    ("question", "left"),
    [
        ("SRE here, want to become an EM", ["sre.md"]),
        ("sre for 6 yrs, how do i move into management?", ["sre.md"]),
        ("sre 4 yoe aiming for em, what changes?", ["sre.md"]),
        # a role that opens a question about a move is the asker's
        ("SRE wanting to move into management, where do I start?", ["sre.md"]),
        # no move: the role they hold is what they ask about
        ("SRE here, what should I learn next?", []),
        # a role both left and asked about is not left ("as an EM, how do I become a better EM?")
        ("I'm an SRE, how do I become a senior SRE?", []),
        # "been doing X" says it too, and going back somewhere is a move
        ("been doing sre at a startup and want to move to management", ["sre.md"]),
        ("been an EM for 2 years and want to go back to being an IC", ["em.md"]),
        ("been an EM for 2 years and want to go to being an IC", ["em.md"]),
        # "in X" says it as well, and so does wanting to be something else
        ("in sre at a bank and wanna be an EM", ["sre.md"]),
        ("SRE here, thinking of switching over to management", ["sre.md"]),
    ],
)
def test_the_role_an_asker_leaves_is_said_after_it_too(question: str, left: list[str]) -> None:
    # "X here" and "X for 6 years" say what the asker is now, as "I'm an X" does
    matcher = RoleMatcher(
        [
            RoleDocument("sre.md", "Site Reliability Engineer", ("SRE",)),
            RoleDocument("em.md", "Engineering Manager", ("EM",)),
        ]
    )
    assert matcher.roles_left(default_normaliser()(question)) == left


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        (
            "backend dev 5yoe want to get into ML eng",
            "back-end software engineer want to get into machine learning engineer",
        ),
        (
            "senior swe, 3 yrs at that level, how do i get to staff?",
            "senior software engineer, how do i get to staff?",
        ),
        (
            "helpdesk guy here (2 yoe) wanna get into dev work",
            "helpdesk guy here wanna get into software engineer work",
        ),
        (
            "been doing manual QA for 3 yrs, how do i become a dev?",
            "been doing manual QA, how do i become a software engineer?",
        ),
        # said after the move, or with no move, the years are what is asked about
        ("how do i become senior in 3 years?", "how do i become senior in 3 years?"),
        ("is 5 yoe enough for a senior title?", "is 5 years of experience enough for a senior title?"),
    ],
)
def test_how_long_the_asker_has_held_their_job_is_not_searched_for_when_they_ask_how_to_move(
    question: str, searched: str
) -> None:
    # "5 yoe" before "want to get into ML" pulled the search to the pages' experience sections
    assert without_tenure(default_normaliser()(question)) == searched
