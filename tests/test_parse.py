"""Parser tests: seed bytes → ``scan.decode`` → ``parse.parse`` → drafts and problems.

Covers the seed grammar of DESIGN.md ("The input: the seed directory") through a
corpus of cases in ``tests/data/seeds/``: ``<case>.txt`` holds the raw bytes of a seed
file and ``<case>.expected.json`` what a reader must get from it (every release draft,
field by field, and every problem and warning, by line, by a substring of its message
and by its ``severity`` when it is a ``"warning"``). There
is one case per grammar rule, per known quirk of the real dumps and per kind of bad
input. Also here: the facts of the real seed document checked by hand, and Hypothesis
properties (the parser never raises, never yields text XML cannot carry, never yields
an empty title, and locates every draft and problem inside the file).

To add a case, drop a ``<case>.txt`` and write its ``<case>.expected.json`` by hand
from DESIGN.md; don't generate it from the parser without checking it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feeds.model import Draft, Problem
from feeds.parse import parse
from feeds.scan import decode

from .conftest import DATA

CASES_DIR = DATA / "seeds"
EXPECTED_SUFFIX = ".expected.json"
CASES = sorted(p.name.removesuffix(EXPECTED_SUFFIX) for p in CASES_DIR.glob(f"*{EXPECTED_SUFFIX}"))
#: Fewer cases than this means the corpus went missing, not that it got leaner.
MIN_CASES = 30

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def run_case(name: str) -> tuple[list[Draft], list[Problem]]:
    """Decode and parse ``<name>.txt`` as the service would; problems of both steps, in order."""
    label = f"{name}.txt"
    text, decode_problems = decode((CASES_DIR / label).read_bytes(), label)
    drafts, parse_problems = parse(text, label)
    return drafts, decode_problems + parse_problems


def as_json(draft: Draft) -> dict[str, Any]:
    """A draft in the shape of ``releases`` in an expected file."""
    return {
        "agency": draft.agency,
        "agency_slug": draft.agency_slug,
        "channel": draft.channel,
        "title": draft.title,
        "date_line": draft.date_line.isoformat() if draft.date_line else None,
        "published": draft.published.isoformat() if draft.published else None,
        "paragraphs": list(draft.paragraphs),
        "line": draft.line,
    }


def is_xml_char(char: str) -> bool:
    """XML 1.0 ``Char``: tab, LF, CR, and U+0020..U+10FFFF but surrogates, U+FFFE, U+FFFF."""
    code = ord(char)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def xml_invalid(text: str) -> list[str]:
    return [char for char in text if not is_xml_char(char)]


# --- The corpus -------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES, ids=CASES)
def test_case(name: str) -> None:
    """Each seed case parses to exactly its expected releases and problems."""
    expected = json.loads((CASES_DIR / f"{name}{EXPECTED_SUFFIX}").read_text(encoding="utf-8"))
    drafts, problems = run_case(name)

    assert [as_json(draft) for draft in drafts] == expected["releases"]

    shown = "\n".join(str(problem) for problem in problems) or "(none)"
    assert len(problems) == len(expected["problems"]), f"problems were:\n{shown}"
    for problem, want in zip(problems, expected["problems"], strict=True):
        assert problem.path == f"{name}.txt", shown
        assert problem.line == want["line"], shown
        assert want["message_contains"] in problem.message, shown
        assert problem.severity == want.get("severity", "problem"), shown


def test_corpus_is_collected() -> None:
    """An emptied or misplaced corpus fails instead of passing with nothing to check."""
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} cases found in {CASES_DIR}"


def test_corpus_files_are_paired() -> None:
    """A ``.txt`` without its expected file (or the reverse) would silently go untested."""
    inputs = {p.name.removesuffix(".txt") for p in CASES_DIR.glob("*.txt")}
    assert inputs == set(CASES)


# --- The real document, checked by hand ---------------------------------------------------


def test_real_document_facts() -> None:
    """The real dump yields the ten releases a reader of the document counts by eye."""
    drafts, problems = run_case("real_document")
    assert problems == []
    assert Counter(d.agency for d in drafts) == {
        "Europol": 2,
        "Interpol": 5,
        "NATO": 2,
        "Eurojust": 1,
    }
    assert [d.agency_slug for d in drafts] == [
        "europol",
        "interpol",
        "interpol",
        "interpol",
        "interpol",
        "interpol",
        "europol",
        "nato",
        "eurojust",
        "nato",
    ]
    assert {d.channel for d in drafts if d.agency == "Interpol"} == {"news and events"}
    assert {d.channel for d in drafts if d.agency != "Interpol"} == {None}

    by_title = {d.title: d for d in drafts}
    assert len(by_title) == 10
    dated = {
        "Operation Narsil disrupts network of child abuse websites designed to generate "
        "profits from advertising": date(2023, 8, 3),
        "INTERPOL and UNICEF sign cooperation agreement to address child sexual "
        "exploitation and abuse": date(2023, 4, 13),
        "Australian support for enhanced INTERPOL database to combat online child abuse": date(
            2022, 11, 18
        ),
        "INTERPOL Secretary General: More specialist units needed to investigate online "
        "child abuse": date(2022, 10, 20),
    }
    for title, day in dated.items():
        assert by_title[title].date_line == day, title
        assert by_title[title].published == day, title
        assert day.strftime("%B") not in by_title[title].paragraphs[0], "date line left in body"

    latvia = by_title["Secretary General praises Latvia for its contributions to NATO"]
    assert latvia.date_line is None
    assert latvia.published == date(2024, 10, 16)
    assert latvia.summary.startswith("On Wednesday (16 October 2024), ")

    colombia = by_title["Colombia: Two arrested for live streaming child sexual abuse"]
    assert any(p.startswith("On 22 February, ") for p in colombia.paragraphs)
    assert colombia.published is None, "'On 22 February' has no year: not a date"

    undated = [d for d in drafts if d.title not in dated and d is not latvia]
    assert len(undated) == 5
    assert all(d.date_line is None and d.published is None for d in undated)

    gang = by_title["Gang behind ATM attacks taken down"]
    assert "collateral damageFor several years" in gang.summary
    assert gang.summary.endswith("when…")

    unicef = by_title[next(t for t in dated if t.startswith("INTERPOL and UNICEF"))]
    bullets = [p for p in unicef.paragraphs if p.startswith("  • ")]
    assert len(bullets) == 1 and bullets[0].count("\n  • ") == 2
    assert (
        "For more information about UNICEF and its work for children visit www.unicef.org\n"
        "Follow UNICEF on Twitter, Facebook, Instagram and YouTube"
    ) in unicef.paragraphs

    wine = by_title["Criminals selling counterfeit wine stopped in their tracks"]
    assert wine.paragraphs[-1] == (
        "  • France: Court of Dijon; Gendarmerie Nationale (SR Dijon)\n"
        "  • Italy: Public Prosecutors Office Turin; Public Prosecutors Office Milan"
    )

    podcast = drafts[-1]
    assert podcast.title.startswith("NATO Through Time podcast – NATO’s open door (2009)")
    assert podcast.title.endswith("Kolinda Grabar-Kitarović")
    assert podcast.paragraphs[1].count("\n") == 2, "three question lines, one paragraph"
    assert podcast.paragraphs[-1].endswith("on all major podcast platforms, including:")


# --- Properties ---------------------------------------------------------------------------

#: Pieces of seed files, well-formed and not, for texts that look like real dumps.
FRAGMENTS = (
    "Gang behind ATM attacks taken down",
    "Operation Narsil",
    "Source: Europol",
    "Source: Interpol (news and events)",
    "Source: NATO ()",
    "Source: ",
    "Source: ()",
    "Source: Интерпол",
    "Sources: Europol",
    "Source code",
    "3 August 2023",
    "31 February 2023",
    "August 2023",
    "3 August",
    "On Wednesday (16 October 2024), ",
    "  • ",
    "when…",
    "“quoted” ‘text’",
    "damageFor",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "\xa0",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1b",
    "\ufeff",
    "\ufffd",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "\U0001f600",
)

#: Line ends and paragraph breaks, proper and odd.
SEPARATORS = ("\n", "\n\n", "\r\n\r\n", "\n \n", "\n\xa0\n", "\n\n\n", "\r", "\r\n", "")

#: A line made of fragments and arbitrary text, e.g. "Source: Europol\x00…".
seed_line = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), min_size=1, max_size=6
).map("".join)
#: Lines glued by separators: often enough a title, a Source line and a body in a row.
seed_like_text = st.lists(
    st.tuples(st.one_of(st.sampled_from(FRAGMENTS), seed_line), st.sampled_from(SEPARATORS)),
    max_size=30,
).map(lambda parts: "".join(line + separator for line, separator in parts))


def check_invariants(text: str, drafts: list[Draft], problems: list[Problem]) -> None:
    """What must hold for any input: text fit for XML, non-empty titles, real locations."""
    line_count = text.count("\n") + 1  # lines end at "\n" or "\r\n"; both contain "\n"
    for draft in drafts:
        assert draft.title.strip(), draft
        assert draft.agency.strip(), draft
        for field in (draft.title, draft.agency, draft.channel or "", *draft.paragraphs):
            assert not xml_invalid(field), (field, draft)
        assert 1 <= draft.line <= line_count, draft
        assert SLUG.fullmatch(draft.agency_slug), draft
        if draft.date_line is not None:
            assert draft.published == draft.date_line, draft
        for paragraph in draft.paragraphs:
            assert all(line.strip() for line in paragraph.split("\n")), (paragraph, draft)
    lines = [draft.line for draft in drafts]
    assert lines == sorted(set(lines)), "drafts out of file order"
    for problem in problems:
        assert 0 <= problem.line <= line_count, problem
        assert problem.path == "seed.txt", problem
        assert problem.message, problem


@given(st.text())
def test_any_text_parses_to_clean_drafts(text: str) -> None:
    drafts, problems = parse(text, "seed.txt")
    check_invariants(text, drafts, problems)


@given(seed_like_text)
def test_seed_like_text_parses_to_clean_drafts(text: str) -> None:
    drafts, problems = parse(text, "seed.txt")
    check_invariants(text, drafts, problems)


@given(st.binary())
def test_any_bytes_decode_and_parse_to_clean_drafts(data: bytes) -> None:
    text, decode_problems = decode(data, "seed.txt")
    drafts, problems = parse(text, "seed.txt")
    check_invariants(text, drafts, decode_problems + problems)


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
            st.sampled_from(["Europol", "NATO", "Interpol (news and events)", "Интерпол"]),
            st.lists(st.sampled_from(FRAGMENTS[:2] + ("Body text.", "  • item")), max_size=3),
        ),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["\n", "\r\n"]),
)
def test_well_formed_seeds_lose_nothing(
    releases: list[tuple[str, str, list[str]]], newline: str
) -> None:
    """A file written to the grammar yields each release, in order, with no problems."""
    lines: list[str] = []
    for title, source, body in releases:
        lines += [title, "", f"Source: {source}", ""]
        for paragraph in body:
            lines += [paragraph, ""]
    text = newline.join(lines)
    drafts, problems = parse(text, "seed.txt")
    assert problems == []
    assert [(d.title, d.agency, list(d.paragraphs)) for d in drafts] == [
        (title, source.removesuffix(" (news and events)"), body) for title, source, body in releases
    ]
