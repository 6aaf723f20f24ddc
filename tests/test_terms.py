"""The jargon table (index/terms.json): variants become the canonical phrase, a verb stays a verb."""

from __future__ import annotations

import pytest

from index.retrieval import spells_out
from index.terms import FillerRemover, TermNormaliser, default_fillers, default_normaliser


@pytest.mark.parametrize(
    ("question", "normalised"),
    [
        ("what's the pay for a Sr SRE?", "what's the salary for a senior site reliability engineer?"),
        ("comp vs pay at FB", "salary vs salary at facebook"),
        ("do I have to pay for a career coach?", "do I have to pay for a career coach?"),
        ("a service where i only pay if my offer goes up", "a service where i only pay if my offer goes up"),
        ("Don't pay for LC premium", "Don't pay for leetcode premium"),
    ],
)
def test_the_noun_pay_becomes_salary_and_the_verb_stays(question: str, normalised: str) -> None:
    assert default_normaliser()(question) == normalised


@pytest.mark.parametrize(
    ("question", "normalised"),
    [
        (
            "which dbs and langs for sr backend?",
            "which databases and programming languages for senior back-end?",
        ),
        ("education reqs for a swe?", "education requirements for a software engineer?"),
        ("do they write docs too?", "do they write documentation too?"),
        ("what goes in my promo doc?", "what goes in my promotion packet?"),
        ("wanna start doing oss PRs", "wanna start doing open source pull requests"),
        ("my gh activity is empty", "my GitHub activity is empty"),
        ("comp sci degree or bootcamp?", "computer science degree or bootcamp?"),
        ("40 nits on every pr of mine", "40 nitpicks on every pull request of mine"),
        ("gave me 48 hrs to sign", "gave me 48 hours to sign"),
        ("what do DEs use to schedule pipelines", "what do data engineer use to schedule pipelines"),
        ("new ds here, what's the day to day?", "new data scientist here, what's the day to day?"),
        # after "what" or "which", DS is the interview's data structure
        ("k largest items, what ds should i use?", "k largest items, what ds should i use?"),
        ("i start 10 hobby apps a year", "i start 10 side projects a year"),
        ("what skills matter for a sec eng?", "what skills matter for a security engineer?"),
        ("all the mgrs comparing ppl for promos", "all the manager comparing people for promotion"),
        ("want to get into cybersec eventually", "want to get into cybersecurity eventually"),
        ("how hard is the jump into cloud sec?", "how hard is the jump into cloud security?"),
        ("looking for a 100% wfh gig", "looking for a 100% work from home gig"),
        ("cut off b4 the results", "cut off before the results"),
        ("any yt channels worth watching?", "any YouTube channels worth watching?"),
        ("onsite next wk, vanished for 2 wks", "onsite next week, vanished for 2 weeks"),
        (
            "how long til i hear back, is it bc of my level",
            "how long until i hear back, is it because of my level",
        ),
        ("whats avg pay for staff engs", "whats average salary for staff engineers"),
    ],
)
def test_chat_shorthand_for_what_a_job_asks_is_spelled_out(question: str, normalised: str) -> None:
    assert default_normaliser()(question) == normalised


def test_an_acronym_the_documents_write_is_kept_beside_its_expansion() -> None:
    assert default_normaliser()("can I go back to IC after management?") == (
        "can I go back to IC (individual contributor) after management?"
    )
    # the expansion alone still counts as the acronym when choosing a highlight
    assert spells_out("It is the highest individual contributor role.", "IC")
    assert not spells_out("It is the highest management role.", "IC")


@pytest.mark.parametrize(
    "text",
    [
        "Sr. SWE vs SR SWE vs sr-swe vs Sr.SWE",  # after a hyphen or a full stop inside a word: no variant starts
        "front-end-dev, frontend dev, FE/BE, full stack devs",
        "to pay, i pay, my pay, comp & pay",  # a guarded variant after its guard word stays as typed
        "k largest items, what ds should i use? new ds here",
        "résumé, RÉSUMÉ and resumes",
        "",
    ],
)
def test_the_normaliser_rewrites_exactly_what_its_pattern_matches_anywhere(text: str) -> None:
    # it tries the pattern only where a variant's first word starts: the same as scanning every character
    normaliser = default_normaliser()
    scanned = normaliser._pattern.sub(lambda m: normaliser._replacement(m, text), text)  # type: ignore[union-attr]
    assert normaliser(text) == scanned


def test_a_variant_starting_with_a_sign_is_still_found() -> None:
    # no first word to look for: such a table scans every character, as the pattern alone would
    normaliser = TermNormaliser({"dotnet": [".net"], "senior": ["sr"]})
    assert normaliser("an sr .NET dev") == "an senior dotnet dev"


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        (
            "lowkey think i'm underpaid lol, what do seniors make?",
            "think i'm underpaid what do seniors make?",
        ),
        ("ngl my resume is 3 pages, is that too long tbh?", "my resume is 3 pages, is that too long?"),
        # only whole words: "lollipop" and "imolation" are no fillers
        ("lollipop imolation", "lollipop imolation"),
        # emoji too: Unicode ones with their skin tones, Slack's shortcodes, Discord's custom ones
        (":thinking_face: should i negotiate my first offer :pray:", "should i negotiate my first offer"),
        ("just got hired 🎉 any newsletters? 👍🏽", "just got hired any newsletters?"),
        ("<:pepe:12345> what does an SRE earn", "what does an SRE earn"),
        # a time is no shortcode
        ("standup at 10:30: what do i say", "standup at 10:30: what do i say"),
        # a question that is nothing but fillers is left as asked
        ("lol", "lol"),
        ("🎉", "🎉"),
    ],
)
def test_chat_fillers_are_cut_from_what_is_searched(question: str, searched: str) -> None:
    assert default_fillers()(question) == searched


def test_no_fillers_listed_cuts_nothing() -> None:
    assert FillerRemover([])("lol ok") == "lol ok"
