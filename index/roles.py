"""Which roles a question names, from the documents' titles and front-matter aliases."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from index.terms import default_normaliser, whole_words

LEVEL_WORDS = ("junior", "senior", "staff", "principal", "distinguished")
# A title names a role only when it ends in one of these nouns ("Senior Back-End Engineer", not "Resume tips").
ROLE_NOUNS = ("engineer", "developer", "manager", "scientist", "architect", "designer", "analyst", "director")
# A role name has none of these; a title that does is about something else ("Interviews for Engineers").
_FUNCTION_WORDS = frozenset("a an as at by for from in into of on or the to with my our your".split())  # noqa: SIM905
# Words around a role name in titles written for web pages: "About the ... role", "... jobs & Careers".
_TITLE_PREFIX = re.compile(r"^(?:about\s+(?:the\s+)?|explore\s+|what\s+is\s+an?\s+|the\s+)+", re.I)
_TITLE_SUFFIX = re.compile(
    r"(?:\s+(?:role|roles|position|jobs?|careers?|&|and|-|:|overview|description))+\s*[?.!]*$", re.I
)
_COMPARISON = re.compile(
    r"\b(vs\.?|versus|compared?|comparison|differences?|differ|differs|different|between|or|better)\b", re.I
)
# Where the asker says what they are now ("I'm a back-end developer, ...", "as an SRE", "coming from QA",
# "been doing front-end for 4 years", "in QA") ...
_CURRENT_ROLE = re.compile(
    r"\b(?:i'?m|i am|as|from|currently|been|doing|i do|in)\s+(?:an?\s+|the\s+)?$", re.I
)
_ONWARD = re.compile(r"s?\s+(?:in)?to\b", re.I)  # right after a role name: "from SWE to PM"
# Right after a role name: "QA engineer here, want to become a dev", "sysadmin for 6 years, ...", "sr swe 6 yoe"
_HELD_NOW = re.compile(
    r"s?\s+(?:here\b|(?:for\s+)?(?:~|about\s+)?\d+(?:\.\d+)?\+?\s*(?:years|months)\b)", re.I
)
_OPENING = re.compile(r"[\W_]*$")  # all that comes before a role that opens the question: "DS wanting to …"
_CURRENT_ROLE_REACH = 40  # characters before a role name searched for it: "currently   the " fits
# ... and that they want to move somewhere else ("how do I get into machine learning?", "go back to IC",
# "wanna be a dev", "move over").
_MOVE = re.compile(
    r"\b(?:(?:get(?:ting)?|mov(?:e|ing)|switch(?:ing)?|transition(?:ing)?|break(?:ing)?|pivot(?:ing)?|"
    r"chang(?:e|ing)|go(?:ing)?(?:\s+back)?|jump(?:ing)?)\s+(?:in)?to|becom(?:e|ing)|aim(?:ing)?\s+for|"
    r"(?:wanna|want\s+to)\s+be|(?:mov(?:e|ing)|switch(?:ing)?)\s+over)\b",
    re.I,
)

# How long the asker has been where they are: "5 yoe", "for 3 years", "(2 years of experience)", "3 yrs at that level"
_TENURE = re.compile(
    r"(?:\b(?:for|after|with|w/)\s+)?\(?(?:~|about\s+)?\b\d+(?:\.\d+)?\+?\s*(?:years|yrs|yoe|months)"
    r"(?:\s+of\s+experience)?\b\)?(?:\s+(?:at\s+that\s+level|in\s+(?:it|that\s+role)))?",
    re.I,
)


def without_tenure(normalised_question: str) -> str:
    """The question without how long the asker has held their job, when they say it before asking how to move:
    "backend dev, 5 years of experience, want to get into ML" asks how to get into ML; the years would pull the
    search to the experience sections. A tenure said after the move ("how do I become senior in 3 years?")
    stays."""
    last_move = max((m.start() for m in _MOVE.finditer(normalised_question)), default=-1)
    if last_move < 0:
        return normalised_question
    cut = _TENURE.sub(lambda m: "" if m.end() <= last_move else m.group(0), normalised_question)
    if cut == normalised_question:
        return cut
    cut = re.sub(r"\s+([,.?!])", r"\1", re.sub(r"\s{2,}", " ", cut))
    return re.sub(r",\s*,", ",", cut).strip(" ,")


@dataclass(frozen=True)
class RoleDocument:
    """A document that describes a role: its source, title and aliases (from front matter)."""

    source: str
    title: str
    aliases: tuple[str, ...]
    level: str = ""


def role_title(title: str) -> tuple[str, str]:
    """The role a title names and its level: "About the Software Engineer Senior role" -> ("Senior Software
    Engineer", "senior"); ("", "") when the title is about something else ("Behavioral interviews for
    Software Engineers", "Software Engineer interviews: how to prepare")."""
    spaced = re.sub(r"\s*[:|\u2013\u2014]\s*", " - ", title.strip())
    words = _TITLE_SUFFIX.sub("", _TITLE_PREFIX.sub("", spaced)).split()
    levels = [w for w in words if w.lower().removesuffix("-level") in LEVEL_WORDS]
    role_words = [w for w in words if w not in levels]
    names_a_role = (
        0 < len(role_words) <= 4
        and role_words[-1].lower() in ROLE_NOUNS
        and not any(w.lower() in _FUNCTION_WORDS for w in role_words)
    )
    if not names_a_role:
        return "", ""
    level = levels[0].lower().removesuffix("-level") if levels else ""
    return " ".join([level.capitalize()] * bool(level) + role_words), level


def names_a_role(doc: RoleDocument) -> bool:
    """Does the title or an alias end in a role noun ("Site Reliability / DevOps Engineer", "SRE" with the
    alias "Site Reliability Engineer"), rather than all name a topic ("Software Engineering Career Ladder")?
    A page whose front matter says `level: topic` names none, whatever its aliases end in ("Self-Taught
    Developer" on the career-change page)."""
    if doc.level.lower() == "topic":
        return False
    for name in (doc.title, *doc.aliases):
        words = re.findall(r"[A-Za-z]+", re.sub(r"\([^)]*\)", "", name))  # "Engineering Manager (EM)"
        if words and words[-1].lower().removesuffix("s") in ROLE_NOUNS:
            return True
    return False


def role_documents(documents: Iterable[RoleDocument]) -> list[RoleDocument]:
    """The documents that describe a role: those whose front matter gives aliases or a level, and those
    without front matter whose title names a role (the role name read from the title, with the shorter
    names people use for it as aliases, see `short_names`)."""
    found: list[RoleDocument] = []
    for doc in documents:
        if doc.aliases or doc.level:
            found.append(doc)
        elif (derived := role_title(doc.title))[0]:
            found.append(RoleDocument(doc.source, derived[0], (), derived[1]))
    # A short name is kept only when it is no other role's name and no other role shortens to it.
    short = {d.source: short_names(d.title) for d in found if not d.aliases}
    taken = {n.lower() for d in found for n in (d.title, *d.aliases)}
    counts = Counter(n.lower() for names in short.values() for n in names)
    return [
        replace(
            d, aliases=tuple(n for n in short[d.source] if n.lower() not in taken and counts[n.lower()] == 1)
        )
        if d.source in short
        else d
        for d in found
    ]


def short_names(role: str) -> list[str]:
    """What people call a role whose name has a qualifier: "Senior back-end software engineer" ->
    "back-end software engineer", "back-end engineer", "senior back-end engineer", "senior back-end".
    A name without a qualifier ("Senior Software Engineer", "Staff Engineer") has none: "software
    engineer" or "engineer" alone would claim every question."""
    words = role.split()
    level = [words[0]] if words and words[0].lower() in LEVEL_WORDS else []
    middle, noun = words[len(level) : -1], words[-1:]
    qualifiers = [w for w in middle if w.lower() != "software"]
    if not qualifiers:
        return []
    variants = [middle + noun, qualifiers + noun]
    if level:
        variants += [level + qualifiers + noun, level + qualifiers]
    return list(dict.fromkeys(" ".join(v) for v in variants if v != words))


class RoleMatcher:
    """Finds role names in a normalised question; the longest name wins where names overlap."""

    def __init__(self, documents: Iterable[RoleDocument]) -> None:
        documents = list(documents)
        normalise = default_normaliser()
        names: dict[str, str] = {}
        level_titles: dict[str, list[tuple[int, str]]] = {}
        for doc in documents:
            for name in (doc.title, *doc.aliases):
                key = normalise(name).lower().strip()
                if key:
                    names.setdefault(key, doc.source)
            first_word = doc.title.split()[0].lower() if doc.title else ""
            if first_word in LEVEL_WORDS:
                level_titles.setdefault(first_word, []).append((len(doc.title), doc.source))
        # A bare level word ("staff", "senior") names the most general role whose title starts with it.
        for word, candidates in level_titles.items():
            names.setdefault(word, min(candidates)[1])
        self._names = names
        self._pattern = whole_words(names, plural=True)
        # Sources whose document is a role's page, not a topic's ("Career Ladder", "Interviews")
        self.role_pages = frozenset(doc.source for doc in documents if names_a_role(doc))

    def roles_in(self, normalised_question: str) -> list[str]:
        """Sources of the role documents the question asks about ("engineers" names "engineer"), in the
        order it names them. A role the asker says they hold now, when they ask how to move elsewhere
        ("I'm a back-end developer, how do I get into machine learning?"), is where they come from, not
        what they ask about, and is left out."""
        found: list[str] = []
        for _, source, leaving in self._mentions(normalised_question):
            if source not in found and not leaving:
                found.append(source)
        return found

    def roles_left(self, normalised_question: str) -> list[str]:
        """Sources of the roles the asker says they are leaving and does not also ask about: "I'm a QA
        engineer and want to get into development" leaves the QA page."""
        mentions = [(source, leaving) for _, source, leaving in self._mentions(normalised_question)]
        asked = {source for source, leaving in mentions if not leaving}
        return list(dict.fromkeys(source for source, leaving in mentions if leaving and source not in asked))

    def names_in(self, normalised_question: str) -> list[str]:
        """The role names the question uses, as written ("back-end software engineer"), leaving ones too."""
        return [match.group(0) for match, _, _ in self._mentions(normalised_question)]

    def named_in_full(self, normalised_question: str) -> bool:
        """Does the question name a role by more than a bare level word? "senior" alone names the senior
        engineer's page, but in "what should a senior chef know?" it is the chef's level, not our role.
        A topic's name is not a role: "job offer" in "as a dentist, how do I negotiate a job offer?" names
        the job-offers page, but the question is still the dentist's. Nor is a role the asker is leaving:
        "I'm a software engineer, how do I become a product manager?" asks about product managers."""
        return any(
            source in self.role_pages and match.group(0).lower().removesuffix("s") not in LEVEL_WORDS
            for match, source, leaving in self._mentions(normalised_question, from_counts=True)
            if not leaving
        )

    def compares(self, normalised_question: str) -> bool:
        """Does the question weigh one role against another ("senior vs staff", "EM or IC?")? A bare "or"
        compares only between the first and the last role named: in "switching from front-end to back-end,
        will I take a pay cut or drop back to junior?" it joins two outcomes of one move."""
        mentions = [match.span() for match, _, _ in self._mentions(normalised_question)]
        for word in _COMPARISON.finditer(normalised_question):
            if word.group(0).lower() != "or":
                return True
            if len(mentions) >= 2 and mentions[0][1] <= word.start() < mentions[-1][0]:
                return True
        return False

    def subject(self, normalised_question: str, from_counts: bool = False) -> str:
        """The question without the roles it says the asker is leaving: what to search for. "As an SRE,
        how can I move to management?" searches "As an how can I move to management?", which the
        manager pages answer, where the whole question is closest to the SRE page. With `from_counts`,
        "from X to Y" and "coming from X" leave X as well: what the scope check looks at (searching
        without X would lose the ladder's step between two of our roles: "from front-end to back-end")."""
        kept, end = [], 0
        for match, _, leaving in self._mentions(normalised_question, from_counts):
            if leaving:
                kept.append(normalised_question[end : match.start()].rstrip())
                end = match.end()
        return " ".join([*kept, normalised_question[end:].lstrip(" ,;")]) if kept else normalised_question

    def _mentions(
        self, normalised_question: str, from_counts: bool = False
    ) -> Iterator[tuple[re.Match[str], str, bool]]:
        """Each role name in the question, the source it names and whether the asker is leaving it."""
        if self._pattern is None:
            return
        # Linear in the question's length: where the last move is said is found once, and "I'm a" is looked
        # for only in the few characters before each name.
        last_move = max((m.start() for m in _MOVE.finditer(normalised_question)), default=-1)
        for match in self._pattern.finditer(normalised_question):
            name = match.group(0).lower()
            source = self._names.get(name) or self._names[name[:-1]]
            moves_on = last_move >= match.end()
            current = (  # looked for only where it can matter, as ranking asks this for every role named
                (
                    _CURRENT_ROLE.search(
                        normalised_question, max(0, match.start() - _CURRENT_ROLE_REACH), match.start()
                    )
                    or _HELD_NOW.match(normalised_question, match.end())
                    or _OPENING.match(normalised_question, 0, match.start())
                )
                if moves_on or from_counts
                else None
            )
            # "from X" with a move anywhere ("how do I transition from dev to security?", "become a data
            # scientist coming from back-end") or "from X to Y" is where the asker comes from, too
            from_x = (
                from_counts
                and current is not None
                and current.group(0).lower().startswith("from")
                and (last_move >= 0 or bool(_ONWARD.match(normalised_question, match.end())))
            )
            yield match, source, current is not None and (moves_on or from_x)
