"""An independent, deliberately slow oracle for the seed parser in :mod:`feeds.parse`.

``feeds.parse.parse`` is the hot loop of every sync and is written for speed: one
``str.split`` of the whole text, Source paragraphs picked out in C, line numbers
computed from paragraph indices, runs of blank lines collapsed with a map back to
the original lines. Tricks like these are where off-by-one line numbers and lost
paragraphs hide, and the corpus in ``tests/data/seeds/`` can only check the inputs
someone thought of.

So this module holds a second parser, :func:`reference_parse`, written from the
grammar in DESIGN.md ("The input: the seed directory") in the plainest way there
is: walk the characters into lines, walk the lines into paragraphs, walk the
paragraphs into releases. It shares no code with ``feeds.parse``; from there it
only takes what DESIGN.md leaves to the implementation: the wording of problem
and warning messages, the thresholds of the near-miss warnings, the cap on problems
per file, and which characters are removed because XML cannot carry them. Agency
slugs come from :func:`feeds.ids.agency_slug`, the identity module, which is not
under test here.

The oracle is itself checked against the hand-written corpus; then Hypothesis
asserts that the production parser returns exactly the oracle's drafts (every
field) and problems (path, line, message) for seed-like text, release-shaped text,
text over the grammar's own alphabet, and arbitrary text.

When a test here fails, decide from DESIGN.md which of the two parsers is wrong.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from feeds import ids
from feeds.model import Draft, Problem
from feeds.parse import parse
from feeds.scan import decode

from .conftest import DATA
from .test_identity import MONTHS as MONTH_NAMES
from .test_parse import FRAGMENTS, SEPARATORS, as_json, is_xml_char, seed_like_text

PATH = "seed.txt"
T = TypeVar("T")

# --- The reference parser -----------------------------------------------------------------

#: Problem messages, word for word as the production parser reports them.
CLEANED = "removed control or non-character code points"
EMPTY_FILE = "file is empty"
NO_SOURCE = "no 'Source: ' line; nothing published"
NO_AGENCY = "Source line names no agency"
NO_TITLE = "Source line has no title before it"
FOLLOWS_SOURCE = "Source line follows another Source line; no title"
TEXT_BEFORE = "text before the first release is not published"

#: Near-miss warnings (``severity="warning"``): thresholds and wording as the production
#: parser has them; DESIGN.md leaves both to the implementation.
NEAR_SOURCE_LENGTH = 100
NEAR_SOURCE_WORDS = 4
BODY_LIKE_TITLE = 200
LONG_TITLE = 300
CLOSERS = "\"'”’)"
OPENERS = "\"'“‘("
NEAR_SOURCE = (
    "{text!r} looks like a Source line but is not one (a Source line is a paragraph "
    "starting with exactly 'Source: '); it is read as text"
)
NOT_A_DATE = (
    "{text!r} looks like a date line but {reason}; "
    "it is published as body text and gives the release no date"
)
BODY_LIKE = (
    "Source line follows a paragraph that reads like body text ({why}), "
    "which becomes the release's title; is this Source line misplaced?"
)
OVERLONG = (
    "title is {length} characters long (more than 300); "
    "is a body paragraph or a missing blank line part of it?"
)

#: Most problems kept per file (``feeds.parse.MAX_PROBLEMS_PER_FILE``); the last kept one
#: then says how many more there were.
PROBLEM_CAP = 50

SOURCE_PREFIX = "Source: "
ASCII_DIGITS = "0123456789"


def is_date_space(char: str) -> bool:
    """What may separate a date's parts: a tab or a Unicode space separator (Zs)."""
    return char == "\t" or unicodedata.category(char) == "Zs"


def skip_spaces(text: str, start: int) -> int:
    """Where the run of date spaces at ``start`` ends (``start`` itself if there is none)."""
    while start < len(text) and is_date_space(text[start]):
        start += 1
    return start


@dataclass
class Paragraph:
    """Consecutive non-blank lines, each without its trailing whitespace."""

    line: int
    """1-based number of the paragraph's first line."""
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def split_into_lines(text: str) -> list[str]:
    """The lines of ``text``, character by character: a line ends at ``\\n`` or ``\\r\\n``.

    A lone ``\\r`` (and every other Unicode separator) stays inside its line. A text of
    n newlines has n + 1 lines, the last one possibly empty.
    """
    lines: list[str] = []
    current: list[str] = []
    for char in text:
        if char == "\n":
            if current and current[-1] == "\r":
                current.pop()
            lines.append("".join(current))
            current = []
        else:
            current.append(char)
    lines.append("".join(current))
    return lines


def reference_paragraphs(text: str, path: str) -> tuple[list[Paragraph], list[Problem]]:
    """Paragraphs of ``text``, and one problem per line that lost characters XML cannot carry."""
    problems: list[Problem] = []
    paragraphs: list[Paragraph] = []
    current: Paragraph | None = None
    for number, raw in enumerate(split_into_lines(text), start=1):
        line = "".join(char for char in raw if is_xml_char(char))
        if line != raw:
            problems.append(Problem(path, number, CLEANED))
        if not line.strip():  # blank: empty or only whitespace (NBSP, tab, CR, ...)
            current = None
            continue
        if current is None:
            current = Paragraph(number)
            paragraphs.append(current)
        current.lines.append(line.rstrip())
    return paragraphs, problems


def names_no_agency(paragraph: Paragraph) -> bool:
    """A one-line paragraph ``Source:`` with nothing (or only whitespace) after it."""
    return (
        len(paragraph.lines) == 1
        and paragraph.lines[0].startswith("Source:")
        and not paragraph.lines[0][len("Source:") :].strip()
    )


def reference_source(paragraph: Paragraph) -> tuple[str, str | None] | None:
    """``(agency, channel)`` if the paragraph is a Source line, else None.

    A Source line is a one-line paragraph starting with exactly ``Source: ``; the agency
    is the rest, trimmed, without a trailing parenthesised part (the channel), unless
    nothing would be left of the name.
    """
    if len(paragraph.lines) != 1 or not paragraph.lines[0].startswith(SOURCE_PREFIX):
        return None
    value = paragraph.lines[0][len(SOURCE_PREFIX) :].strip()
    if not value:
        return None
    if value.endswith(")"):
        # Walk back from the closing parenthesis to its opening one; a nested or
        # unbalanced ")" on the way means there is no simple trailing part.
        position = len(value) - 2
        while position >= 0 and value[position] not in "()":
            position -= 1
        if position >= 0 and value[position] == "(":
            name = value[:position].strip()
            if name:
                channel = value[position + 1 : -1].strip()
                return name, channel or None
    return value, None


def calendar_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def read_date(text: str, start: int) -> tuple[date | None, int] | None:
    """Read ``<day> <Month> <yyyy>`` at ``start``: the date (None if not in the calendar)
    and where it ends, or None if the text there does not have that shape.

    The day is a run of one or two ASCII digits; the year a run of exactly four; between
    the parts, runs of tabs and Unicode space separators.
    """
    end = start
    while end < len(text) and text[end] in ASCII_DIGITS:
        end += 1
    day = text[start:end]
    if not 1 <= len(day) <= 2:
        return None
    month_start = skip_spaces(text, end)
    if month_start == end:
        return None
    for month, name in enumerate(MONTH_NAMES, start=1):
        if not text.startswith(name, month_start):
            continue
        year_start = skip_spaces(text, month_start + len(name))
        if year_start == month_start + len(name):
            continue
        year_end = year_start
        while year_end < len(text) and text[year_end] in ASCII_DIGITS:
            year_end += 1
        if year_end - year_start != 4:
            return None
        return calendar_date(int(text[year_start:year_end]), month, int(day)), year_end
    return None


def reference_date_line(paragraph: str) -> date | None:
    """The date if the paragraph is one line holding only a valid date."""
    if "\n" in paragraph:
        return None
    value = paragraph.strip()
    found = read_date(value, 0)
    if found is None or found[1] != len(value):
        return None
    return found[0]


def reference_find_date(text: str) -> date | None:
    """The first valid ``<day> <Month> <yyyy>`` whose day is not glued to another digit."""
    for position, char in enumerate(text):
        if char not in ASCII_DIGITS:
            continue
        if position > 0 and text[position - 1] in ASCII_DIGITS:
            continue
        found = read_date(text, position)
        if found is not None and found[0] is not None:
            return found[0]
    return None


def warning(path: str, line: int, message: str) -> Problem:
    return Problem(path, line, message, "warning")


def near_source(paragraph: Paragraph) -> bool:
    """A one-line, short paragraph that is not a Source line but was probably meant as one.

    It starts (after whitespace) with "source" in any case, then either a colon with
    something after it, or whitespace and a name: one to four words, the first
    capitalised, no sentence punctuation, perhaps a parenthesised channel at the end.
    """
    if len(paragraph.lines) != 1 or reference_source(paragraph) or names_no_agency(paragraph):
        return False
    text = paragraph.lines[0].strip()
    if len(text) > NEAR_SOURCE_LENGTH or text[:6].lower() != "source":
        return False
    after = text[6:7]
    if after != ":" and not after.isspace():
        return False  # "Sources", "Sourced", or "source" alone
    rest = text[6:].lstrip()
    if rest.startswith(":"):
        return rest[1:].strip() != ""
    if rest.endswith(")") and "(" in rest:
        rest = rest[: rest.rindex("(")].rstrip()
    return (
        1 <= len(rest.split()) <= NEAR_SOURCE_WORDS
        and rest[0].isupper()
        and not any(char in ".,;:!?" for char in rest)
    )


def date_shaped(text: str) -> str | None:
    """The month word if ``text`` is ``<1-2 digits> <letters> <4 digits>`` (any date spaces)."""
    value = text.strip()
    end = 0
    while end < len(value) and value[end] in ASCII_DIGITS:
        end += 1
    if not 1 <= end <= 2:
        return None
    word_start = skip_spaces(value, end)
    word_end = word_start
    while word_end < len(value) and value[word_end].isascii() and value[word_end].isalpha():
        word_end += 1
    year_start = skip_spaces(value, word_end)
    if word_start == end or word_end == word_start or year_start == word_end:
        return None
    year = value[year_start:]
    if len(year) != 4 or any(char not in ASCII_DIGITS for char in year):
        return None
    return value[word_start:word_end]


def has_sentence_break(text: str) -> bool:
    """``.``, ``!`` or ``?``, closing quotes, whitespace, opening quotes, then A-Z or 0-9."""
    for position, char in enumerate(text):
        if char not in ".!?":
            continue
        at = position + 1
        while at < len(text) and text[at] in CLOSERS:
            at += 1
        spaces = at
        while at < len(text) and text[at].isspace():
            at += 1
        if at == spaces:
            continue
        while at < len(text) and text[at] in OPENERS:
            at += 1
        if at < len(text) and text[at] in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
            return True
    return False


def title_warnings(title: str, title_line: int, source_line: int, path: str) -> list[Problem]:
    """A title that reads like body text (warned at its Source line), or one over 300."""
    ends_like_sentence = title.rstrip(CLOSERS).endswith((".", "!", "?"))
    if ends_like_sentence and len(title) > BODY_LIKE_TITLE:
        why = f"{len(title)} characters ending like a sentence"
        return [warning(path, source_line, BODY_LIKE.format(why=why))]
    if ends_like_sentence and has_sentence_break(title):
        return [warning(path, source_line, BODY_LIKE.format(why="several sentences"))]
    if len(title) > LONG_TITLE:
        return [warning(path, title_line, OVERLONG.format(length=len(title)))]
    return []


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def reference_capped(problems: list[Problem], path: str) -> list[Problem]:
    """Problems and warnings by line, a line's problems first (ties in the order found), at
    most :data:`PROBLEM_CAP` of them; the last then counts the rest of each severity."""
    ordered = sorted(problems, key=lambda problem: (problem.line, problem.severity != "problem"))
    if len(ordered) <= PROBLEM_CAP:
        return ordered
    kept = ordered[: PROBLEM_CAP - 1]
    rest = ordered[len(kept) :]
    errors = len([problem for problem in rest if problem.severity == "problem"])
    warnings = len(rest) - errors
    if errors and warnings:
        message = f"... and {plural(errors, 'more problem')} and {plural(warnings, 'more warning')}"
    elif errors:
        message = f"... and {plural(errors, 'more problem')}"
    else:
        message = f"... and {plural(warnings, 'more warning')}"
    last = Problem(path, rest[0].line, message, "problem" if errors else "warning")
    return [*kept, last]


def reference_parse(text: str, path: str) -> tuple[list[Draft], list[Problem]]:
    """Parse a seed file the slow, obvious way; same contract as ``feeds.parse.parse``."""
    paragraphs, problems = reference_paragraphs(text, path)
    if not paragraphs:
        problems.append(Problem(path, 0, EMPTY_FILE))
        return [], reference_capped(problems, path)

    sources = [reference_source(paragraph) for paragraph in paragraphs]
    for paragraph in paragraphs:
        if names_no_agency(paragraph):
            problems.append(Problem(path, paragraph.line, NO_AGENCY))
    for index, paragraph in enumerate(paragraphs):
        # A near-miss right before a Source line is that release's title.
        title = index + 1 < len(paragraphs) and sources[index + 1] is not None
        if not title and near_source(paragraph):
            text = paragraph.lines[0].strip()
            problems.append(warning(path, paragraph.line, NEAR_SOURCE.format(text=text)))
    if all(source is None for source in sources):
        problems.append(Problem(path, paragraphs[0].line, NO_SOURCE))
        return [], reference_capped(problems, path)

    # Each release: (title index, Source index, agency, channel). A Source line with no
    # paragraph before it, or right after another Source line, starts nothing.
    releases: list[tuple[int, int, str, str | None]] = []
    refused: set[int] = set()
    for index, source in enumerate(sources):
        if source is None:
            continue
        if index == 0:
            problems.append(Problem(path, paragraphs[index].line, NO_TITLE))
            refused.add(index)
        elif sources[index - 1] is not None:
            problems.append(Problem(path, paragraphs[index].line, FOLLOWS_SOURCE))
            refused.add(index)
        else:
            if not releases and index - 1 > 0:
                problems.append(Problem(path, paragraphs[0].line, TEXT_BEFORE))
            releases.append((index - 1, index, source[0], source[1]))

    drafts: list[Draft] = []
    for number, (title, source_index, agency, channel) in enumerate(releases):
        end = releases[number + 1][0] if number + 1 < len(releases) else len(paragraphs)
        kept = [k for k in range(source_index + 1, end) if k not in refused]
        body = [paragraphs[k].text for k in kept]
        date_line = reference_date_line(body[0]) if body else None
        if date_line is not None:
            body.pop(0)
        elif body and "\n" not in body[0] and (word := date_shaped(body[0])) is not None:
            reason = (
                "is not a calendar date"
                if word in MONTH_NAMES
                else f"{word!r} is not an English month name (January to December)"
            )
            text = body[0].strip()
            problems.append(
                warning(path, paragraphs[kept[0]].line, NOT_A_DATE.format(text=text, reason=reason))
            )
        title_text = " ".join(line.strip() for line in paragraphs[title].lines)
        problems += title_warnings(
            title_text, paragraphs[title].line, paragraphs[source_index].line, path
        )
        if date_line is not None:
            published: date | None = date_line
        elif body:
            published = reference_find_date(body[0])
        else:
            published = None
        drafts.append(
            Draft(
                agency=agency,
                agency_slug=ids.agency_slug(agency),
                channel=channel,
                title=title_text,
                date_line=date_line,
                published=published,
                paragraphs=tuple(body),
                line=paragraphs[title].line,
            )
        )
    return drafts, reference_capped(problems, path)


def assert_same_as_reference(text: str) -> None:
    """Production and reference agree on every draft field and every problem."""
    drafts, problems = parse(text, PATH)
    want_drafts, want_problems = reference_parse(text, PATH)
    assert drafts == want_drafts, f"drafts differ for {text!r}"
    assert problems == want_problems, f"problems differ for {text!r}"


# --- The oracle checked against the hand-written corpus ----------------------------------

CASES_DIR = DATA / "seeds"
EXPECTED_SUFFIX = ".expected.json"
CASES = sorted(p.name.removesuffix(EXPECTED_SUFFIX) for p in CASES_DIR.glob(f"*{EXPECTED_SUFFIX}"))


@pytest.mark.parametrize("name", CASES, ids=CASES)
def test_reference_matches_corpus(name: str) -> None:
    """The oracle reads DESIGN.md as the corpus's authors did, case by case."""
    expected = json.loads((CASES_DIR / f"{name}{EXPECTED_SUFFIX}").read_text(encoding="utf-8"))
    label = f"{name}.txt"
    text, decode_problems = decode((CASES_DIR / label).read_bytes(), label)
    drafts, parse_problems = reference_parse(text, label)
    problems = decode_problems + parse_problems
    got = [as_json(d) for d in drafts]
    assert got == expected["releases"]
    assert [(p.line, p.path) for p in problems] == [
        (want["line"], label) for want in expected["problems"]
    ]
    for problem, want in zip(problems, expected["problems"], strict=True):
        assert want["message_contains"] in problem.message, problem


# --- Explicit examples: reference against production --------------------------------------

EXAMPLES = {
    # Blank lines: runs of them, whitespace-only ones, CRLF.
    "three_newlines": "Title\n\n\nSource: Europol\n\n\n\nBody.\n\n\n",
    "many_blank_lines_before": "\n\n\n\nTitle\n\nSource: NATO\n\nBody.",
    "spaces_and_tabs_line": "Title\n \t \nSource: Europol\n\t\nBody.\n   \nMore.",
    "nbsp_line": "Title\n\xa0\nSource: Europol\n\xa0\xa0 \xa0\nBody.",
    "crlf": "Title\r\n\r\nSource: Europol\r\n\r\nBody one\r\nline two\r\n\r\nBody.\r\n",
    "crlf_whitespace_lines": "Title\r\n \r\nSource: NATO\r\n\xa0\r\n\t\r\nBody.\r\n",
    "other_unicode_spaces": "Title\n\u3000\nSource: NATO\n\u2028\nBody\u2028same line\n\x85\nEnd.",
    "trailing_spaces_kept_off": "Title  \n\nSource: NATO  \n\nLine one   \n  indented \n",
    "lone_cr": "Title\r\rSource: Europol\n\nBody\r\n\r\rmore\r",
    # Source lines.
    "channel": "Title\n\nSource: Interpol (news and events)\n\nBody.",
    "channel_empty": "Title\n\nSource: NATO ()\n\nBody.",
    "channel_only": "Title\n\nSource: (news)\n\nBody.",
    "channel_nested": "Title\n\nSource: A (b (c))\n\nBody.",
    "channel_glued": "Title\n\nSource: Interpol(news)\n\nBody.",
    "agency_spaces": "Title\n\nSource:   Eurojust  \n\nBody.",
    "agency_cyrillic": "Title\n\nSource: Интерпол\n\nBody.",
    "no_agency": "Title\n\nSource: Europol\n\nBody.\n\nOrphan\n\nSource: \n\nMore.",
    "no_agency_bare": "Title\n\nSource: Europol\n\nSource:\n\nMore.",
    "no_agency_nbsp": "Title\n\nSource: Europol\n\nSource:\xa0\n\nMore.",
    "no_agency_only": "Source: ",
    "no_agency_as_title": "Source:\n\nSource: NATO\n\nBody.",
    "two_sources": "Title\n\nSource: Europol\n\nSource: NATO\n\nBody.",
    "three_sources": "Title\n\nSource: Europol\n\nSource: NATO\n\nSource: Interpol\n\nBody.",
    "source_first": "Source: Europol\n\nOrphan body.\n\nReal title\n\nSource: NATO\n\nBody.",
    "source_first_only": "Source: Europol\n\nOrphan body.",
    "sources_first": "Source: Europol\n\nSource: NATO\n\nTitle\n\nSource: Eurojust\n\nBody.",
    "source_last": "Title\n\nSource: Europol",
    "not_sources": (
        "Title\n\nSource: Europol\n\nSources: x\n\nSource code\n\nSource countries\n\n"
        "Source:Europol\n\n source: NATO\n\nSource:\tNATO"
    ),
    "source_mid_paragraph": "Title\nSource: Europol\n\nBody.",
    "source_mid_body": "Title\n\nSource: NATO\n\nSee the\nSource: Europol\nfor more.\n\nEnd.",
    "source_in_running_text": "Title\n\nSource: NATO\n\nAs the Source: Europol said.",
    # Text before the first release, empty and sourceless files.
    "text_before": "\nDump of 16 October 2024\n\nPreamble.\n\nTitle\n\nSource: NATO\n\nBody.",
    "no_source": "\n\nJust some text.\n\nSources: nobody",
    "empty": "",
    "blank_only": "\n   \n\xa0\n\r\n\t\n",
    "control_only": "\x00",
    # Dates.
    "date_line": "Title\n\nSource: Europol\n\n3 August 2023\n\nBody.",
    "date_line_padded": "Title\n\nSource: Europol\n\n  03 August 2023\xa0\n\nBody.",
    "date_line_leap_day": "Title\n\nSource: NATO\n\n29 February 2024\n\nBody.",
    "date_line_invalid": "Title\n\nSource: Europol\n\n31 February 2023\n\nOn 1 March 2023, x.",
    "date_line_no_year": "Title\n\nSource: Europol\n\n3 August\n\nBody.",
    "date_line_no_day": "Title\n\nSource: Europol\n\nAugust 2023\n\nBody.",
    "date_line_lowercase": "Title\n\nSource: Europol\n\n3 august 2023\n\nBody.",
    "date_line_year_zero": "Title\n\nSource: Europol\n\n1 January 0000\n\nBody.",
    "date_line_wide_digits": "Title\n\nSource: Europol\n\n３ August ２０２３\n\nBody.",
    "date_line_nbsp": "Title\n\nSource: Europol\n\n7\xa0November\xa02024\n\nBody.",
    "date_line_narrow_nbsp_tab": "Title\n\nSource: NATO\n\n7\u202f\tNovember \u30002024\n\nBody.",
    "date_line_space_runs": "Title\n\nSource: NATO\n\n  7   November\u2009\u2009 2024 \n\nBody.",
    "date_line_line_separator": "Title\n\nSource: NATO\n\n7\u2028November 2024\n\nBody.",
    "date_line_zero_width_space": "Title\n\nSource: NATO\n\n7\u200bNovember 2024\n\nBody.",
    "date_line_no_space": "Title\n\nSource: NATO\n\n7November 2024\n\nBody.",
    "date_in_text_nbsp": "T\n\nSource: NATO\n\nOn 7\xa0November\u202f2024, x and 123\xa0May 2020.",
    "date_in_text_glued_month": "T\n\nSource: NATO\n\n3 Mayday 2024, then 4\tMay\t2024.",
    "date_line_not_alone": "Title\n\nSource: Europol\n\n3 August 2023\nLYON, France\n\nBody.",
    "date_line_only_body": "Title\n\nSource: Europol\n\n3 August 2023",
    "date_line_after_refused": "Title\n\nSource: Europol\n\nSource: NATO\n\n3 August 2023",
    "date_in_text": "Title\n\nSource: NATO\n\nOn Wednesday (16 October 2024), the SG said.",
    "date_in_text_second_line": "Title\n\nSource: NATO\n\nFirst line\nOn 16 October 2024, x.",
    "date_in_text_invalid_first": "T\n\nSource: NATO\n\nOn 31 April 2024 or 1 May 2024.",
    "date_in_text_glued_digits": "T\n\nSource: NATO\n\n131 August 2023, 3 August 20234.",
    "date_in_text_no_year": "Title\n\nSource: NATO\n\nOn 22 February, police arrested two.",
    "date_in_second_paragraph": "Title\n\nSource: NATO\n\nFirst.\n\nOn 16 October 2024, x.",
    # Near-miss warnings.
    "near_source_forms": (
        "T\n\nSource: NATO\n\nSource Europol\n\nSOURCE: NATO\n\nsource :x\n\n\tSource: NATO\n\n"
        "Source\xa0Interpol (news and events)\n\nsource:\n\nSOURCE\n\nSources: NATO"
    ),
    "near_source_not_names": (
        "T\n\nSource: NATO\n\nSource code\n\nSource Code Of Conduct Is Here Now\n\n"
        "Source Europol.\n\nSource (x)\n\nSource countries include Spain.\n\nSourced Europol"
    ),
    "near_source_as_title": "Source Europol\n\nSource: NATO\n\nBody.",
    "near_source_multi_line": "T\n\nSource: NATO\n\nSource Europol\nmore\n\nSource Europol",
    "near_source_too_long": "T\n\nSource: NATO\n\nSource: " + "x" * 100,
    "near_source_first": "Source Europol\n\nTitle\n\nSource: NATO\n\nBody.",
    "date_shaped": "T\n\nSource: NATO\n\n0 May 2024\n\nT2\n\nSource: NATO\n\n3\xa0Mai\t2024",
    "date_shaped_not": "T\n\nSource: NATO\n\n3 Mai2024\n\nT\n\nSource: NATO\n\n3 Mai 20245",
    "date_shaped_after_refused": "T\n\nSource: A\n\nSource: B\n\n31 April 2024",
    "body_like_title": "One. Two\n\nSource: NATO\n\nOne. Two.\n\nSource: NATO\n\n“A.” (B)!”",
    "long_titles": "x " * 150
    + "\n\nSource: NATO\n\n"
    + "y" * 301
    + "\n\nSource: NATO\n\n"
    + "z" * 250
    + ".\n\nSource: NATO",
    "warnings_capped": "T\n\nSource: NATO\n\n" + "Source X\n\n" * 60 + "\x00",
    "warnings_and_problems_capped": "T\n\nSource: NATO\n\n" + "Source X\n\n\x00\n" * 30,
    # Multi-line titles and paragraphs.
    "wrapped_title": "Narsil disrupts\n   websites designed  \n\nSource: Interpol\n\nBody.",
    "multi_line_body": "Title\n\nSource: NATO\n\nLine one\nLine two\n  • bullet\n  • b\n\nEnd.",
    "wrapped_preamble": "Preamble\nwrapped\n\nTitle\n\nSource: Europol\n\n",
    "wrapped_preamble_no_agency": "Preamble\nwrapped\n\nSource: \n\n",
    "source_glued_then_release": "Title\n\nSource: NATO\nSource: NATO\n\nT\n\nSource: NATO\n\n",
    "several_releases": (
        "First\n\nSource: Europol\n\nOne.\n\nSecond\ntitle\n\nSource: NATO\n\n"
        "16 October 2024\n\nTwo.\n\nThird\n\nSource: Eurojust"
    ),
    # Characters XML cannot carry.
    "nul": "Title with\x00 nul\n\nSource: Europol\n\nBody\x00.",
    "vertical_tab": "Title\n\nSource: Euro\x0bpol\n\n\x0b\n\nBody.",
    "form_feed_line": "Title\n\nSource: Europol\n\nOne.\n\x0c\nTwo.",
    "noncharacters": "Title\ufffe\n\nSource: Europol\n\nBody\uffff.",
    "lone_surrogates": "Title\ud800\n\nSource: Europol\n\n\udfffBody.\n\ud800\udc00",
    "control_makes_crlf": "Title\r\x00\n\r\x01\nSource: Europol\r\x1f\n\nBody.",
    "control_in_source_prefix": "Title\n\nSource:\x00 Europol\n\nSource\x00: NATO",
    "many_control_lines": "\x00\n" * 60 + "Title\n\nSource: NATO\n\nBody.",
    "exactly_cap_problems": "\x00\n" * 50 + "Title\n\nSource: NATO",
    "cap_with_structure": "Source: A\n\n" * 30 + "\x00\n" * 30 + "T\n\nSource: B",
}


@pytest.mark.parametrize("text", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_example_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


# --- Hypothesis: generated text ------------------------------------------------------------

#: Lines (or what stays on a line) that are blank: nothing, ASCII and Unicode whitespace.
BLANK_FILLERS = ("", "", "", " ", "  ", "\t", "\xa0", " \xa0\t", "\r", "\u3000", "\u2028")
LINE_ENDS = ("\n", "\n", "\n", "\r\n")
WORDS = (
    "Operation",
    "Narsil",
    "disrupts",
    "INTERPOL",
    "“quoted”",
    "damageFor",
    "when…",
    "Интерпол",
    "(2009)",
    "Source:",
    "Sources:",
    "code",
    "16",
    "October",
    "2024",
    "On",
    "Wednesday",
    "arrested.",
    "  •",
)
#: Characters XML cannot carry, other odd characters, and whitespace that is not a line end.
ODD_CHARS = (
    "\x00",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "\ufeff",
    "\r",
    "\u2028",
    "\x85",
    "\xa0",
    "\t",
)
SOURCE_LINES = (
    "Source: Europol",
    "Source: NATO",
    "Source: Interpol (news and events)",
    "Source: Interpol (news and events)",
    "Source: NATO (OTAN) headquarters",
    "Source: Eurojust ()",
    "Source:   Eurojust  ",
    "Source: Интерпол",
    "Source: (news)",
    "Source: A (b (c))",
    "Source: ",
    "Source:",
    "Source:\xa0",
    "Source:Europol",
    "Sources: Europol",
    " Source: NATO",
    "Source: Euro\x00pol",
)
DATE_LINES = (
    "3 August 2023",
    "3 August 2023",
    "16 October 2024",
    "16 October 2024",
    "29 February 2024",
    "31 February 2023",
    "31 February 2023",
    "31 February 2023",
    "29 February 2023",
    "03 August 2023",
    "  3 August 2023\xa0",
    "August 2023",
    "3 August",
    "3 august 2023",
    "3  August 2023",
    "7\xa0November\xa02024",
    "7\u202fNovember\t 2024",
    "7\u2028November 2024",
    "123 August 2023",
    "3 August 20234",
    "1 January 0000",
    "３ August ２０２３",
)

#: What separates a date's parts, mostly one space; a line separator is not a space.
DATE_SPACES = (" ", " ", " ", " ", "\xa0", "\u202f", "\t", "  ", " \u3000", "\u2028", "")


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each as often as its weight says.

    (``st.one_of`` flattens nested choices and ignores repeats, so it cannot weight.)
    """
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda chosen: chosen
    )


blank_filler = st.sampled_from(BLANK_FILLERS)
line_end = st.sampled_from(LINE_ENDS)
#: A line with at least one word on it, and odd characters or leading space at times.
text_line = st.builds(
    lambda lead, word, words, trail: lead + " ".join((word, *words)) + trail,
    st.sampled_from(("", "", "", " ", "  ", "\xa0", "\t")),
    st.sampled_from(WORDS[:-1]),
    st.lists(
        weighted((4, st.sampled_from(WORDS)), (1, st.sampled_from(ODD_CHARS)), (1, st.text())),
        max_size=4,
    ),
    blank_filler,
)
date_text = weighted(
    (2, st.sampled_from(DATE_LINES)),
    (
        1,
        st.builds(
            lambda day, space, name, space_after, year: f"{day}{space}{name}{space_after}{year}",
            weighted((3, st.integers(1, 28)), (1, st.integers(0, 40))),
            st.sampled_from(DATE_SPACES),
            st.sampled_from((*MONTH_NAMES, "august", "Sept")),
            st.sampled_from(DATE_SPACES),
            st.sampled_from(("2023", "2024", "1999", "0001", "9999", "0000", "023", "20245")),
        ),
    ),
)
#: Paragraphs as lists of lines, by kind.
#: Titles that read like body text, or nearly: sentences, a final full stop, length.
SENTENCE_TITLES = (
    "Five arrested. Network dismantled.",
    "Five arrested. Network dismantled",
    "Dr. Smith visits Lyon",
    "Who funds crime?",
    "“Enough.” The minister resigns!”",
    "Police act." + " More words" * 20 + ".",
    "Police act" + " more words" * 30,
)
title_paragraph = weighted(
    (5, st.lists(text_line, min_size=1, max_size=3)),
    (1, st.sampled_from(SENTENCE_TITLES).map(lambda title: [title])),
)
#: Source lines that start a release (when a title comes before them).
valid_source = st.sampled_from(
    ("Source: Europol", "Source: NATO", "Source: Interpol (news and events)", "Source: Eurojust ()")
).map(lambda line: [line])
source_paragraph = weighted(
    (3, st.sampled_from(SOURCE_LINES)),
    (1, st.builds(lambda name: SOURCE_PREFIX + name, text_line)),
    (1, st.builds(lambda name, channel: f"Source: {name} ({channel})", text_line, text_line)),
).map(lambda line: [line])
date_paragraph = date_text.map(lambda line: [line])
dated_text_paragraph = st.builds(
    lambda before, when, after, more: [before + when + after, *more],
    st.sampled_from(("On Wednesday (", "On ", "", "Dated 1", "x")),
    date_text,
    st.sampled_from(("), the Secretary General said.", ", police", "0 apples", "")),
    st.lists(text_line, max_size=2),
)
source_mid_paragraph = st.builds(
    lambda before, source, after: [*before, source, *after],
    st.lists(text_line, min_size=1, max_size=2),
    st.sampled_from(SOURCE_LINES),
    st.lists(text_line, max_size=2),
)
body_paragraph = weighted(
    (3, st.lists(text_line, min_size=1, max_size=4)),
    (1, st.lists(st.builds(lambda line: "  • " + line, text_line), min_size=1, max_size=3)),
    (1, dated_text_paragraph),
    (1, source_mid_paragraph),
    (1, st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3)),
)
any_paragraph = st.one_of(title_paragraph, source_paragraph, date_paragraph, body_paragraph)
#: Groups of paragraphs: whole releases most of the time, odd pieces otherwise.
release_block = st.builds(
    lambda title, source, when, body: [title, source, *when, *body],
    title_paragraph,
    weighted((3, valid_source), (1, source_paragraph)),
    weighted(
        (1, st.just([])),
        (2, date_paragraph.map(lambda paragraph: [paragraph])),
        (1, dated_text_paragraph.map(lambda paragraph: [paragraph])),
    ),
    st.lists(body_paragraph, max_size=3),
)
block = weighted(
    (5, release_block),
    (1, any_paragraph.map(lambda paragraph: [paragraph])),
    (1, st.lists(source_paragraph, min_size=2, max_size=3)),
)


@st.composite
def release_like_text(draw: st.DrawFn) -> str:
    """Paragraphs shaped like releases, joined by runs of blank lines of every kind."""
    paragraphs = [
        paragraph for group in draw(st.lists(block, min_size=1, max_size=6)) for paragraph in group
    ]

    def blank_lines(min_size: int) -> str:
        fillers = draw(st.lists(blank_filler, min_size=min_size, max_size=4))
        return "".join(filler + draw(line_end) for filler in fillers)

    parts = [blank_lines(0)]
    for number, paragraph in enumerate(paragraphs):
        if number:
            # Mostly a proper break; sometimes none, which glues two paragraphs together.
            parts.append(
                draw(line_end) + blank_lines(draw(st.sampled_from((1, 1, 1, 1, 2, 2, 3, 0))))
            )
        parts.append(draw(line_end).join(paragraph))
    if draw(st.booleans()):
        parts.append(draw(line_end) + blank_lines(0))
    return "".join(parts)


#: Text over the grammar's own characters: separators, the Source prefix, dates, spaces.
grammar_text = st.lists(
    st.sampled_from(
        (
            "\n",
            "\n",
            "\r",
            " ",
            "\t",
            "\xa0",
            "\x00",
            "Source: ",
            "Source:",
            "(",
            ")",
            "x",
            "Interpol",
            "3",
            "1",
            " August ",
            "\u202fMay\xa0",
            " February ",
            "2023",
            "2024",
        )
    ),
    max_size=40,
).map("".join)


@given(seed_like_text)
def test_seed_like_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


@given(release_like_text())
def test_release_like_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


@given(grammar_text)
def test_grammar_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


@given(st.text())
def test_any_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


@given(st.lists(st.sampled_from(SEPARATORS + FRAGMENTS), max_size=40).map("".join))
def test_fragment_soup_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


# --- The generator reaches every feature the properties are meant to cover ---------------


def _releases(text: str) -> list[tuple[Paragraph, Paragraph]]:
    """(title, Source) paragraph pairs of the releases the reference finds."""
    paragraphs, _ = reference_paragraphs(text, PATH)
    pairs = []
    for index in range(1, len(paragraphs)):
        if reference_source(paragraphs[index]) and not reference_source(paragraphs[index - 1]):
            pairs.append((paragraphs[index - 1], paragraphs[index]))
    return pairs


def _sources(text: str) -> list[tuple[str, str | None] | None]:
    paragraphs, _ = reference_paragraphs(text, PATH)
    return [reference_source(paragraph) for paragraph in paragraphs]


def _drafts(text: str) -> list[Draft]:
    return reference_parse(text, PATH)[0]


def _messages(text: str) -> list[str]:
    return [problem.message for problem in reference_parse(text, PATH)[1]]


#: A first body paragraph shaped like a date line that is not one (31 February, day 0, ...).
INVALID_DATE_LINE = re.compile(r"(?a)\s*\d{1,2} [A-Z][a-z]+ \d{4}\s*")

FEATURES: dict[str, Callable[[str], bool]] = {
    "3+ newlines in a row": lambda text: "\n\n\n" in text,
    "spaces/tabs-only line": lambda text: bool(re.search(r"\n[ \t]+\r?\n", text)),
    "NBSP-only line": lambda text: bool(re.search(r"\n\xa0+\r?\n", text)),
    "CRLF blank line": lambda text: "\r\n\r\n" in text,
    "Source with channel": lambda text: any(
        source == ("Interpol", "news and events") for source in _sources(text)
    ),
    "Source with no agency": lambda text: NO_AGENCY in _messages(text),
    "two Source lines in a row": lambda text: FOLLOWS_SOURCE in _messages(text),
    "Source line first": lambda text: NO_TITLE in _messages(text),
    "text before first release": lambda text: TEXT_BEFORE in _messages(text),
    "valid date line": lambda text: any(d.date_line for d in _drafts(text)),
    "invalid date line": lambda text: any(
        d.paragraphs and INVALID_DATE_LINE.fullmatch(d.paragraphs[0]) for d in _drafts(text)
    ),
    "date in running text": lambda text: any(
        d.published and not d.date_line for d in _drafts(text)
    ),
    "multi-line title": lambda text: any(len(title.lines) > 1 for title, _ in _releases(text)),
    "multi-line body paragraph": lambda text: any(
        "\n" in paragraph for d in _drafts(text) for paragraph in d.paragraphs
    ),
    "NUL": lambda text: "\x00" in text and bool(_drafts(text)),
    "vertical tab": lambda text: "\x0b" in text and bool(_drafts(text)),
    "U+FFFE": lambda text: "\ufffe" in text and bool(_drafts(text)),
    "lone surrogate": lambda text: bool(re.search("[\ud800-\udfff]", text)),
    "near-miss Source line": lambda text: any("looks like a Source" in m for m in _messages(text)),
    "date-shaped warning": lambda text: any("looks like a date" in m for m in _messages(text)),
    "body-like title": lambda text: any("reads like body text" in m for m in _messages(text)),
    "Source: mid-paragraph": lambda text: any(
        line.startswith(SOURCE_PREFIX)
        for d in _drafts(text)
        for paragraph in d.paragraphs
        for line in paragraph.split("\n")[1:]
    ),
}


@pytest.mark.parametrize("feature", FEATURES, ids=FEATURES.keys())
def test_release_like_text_reaches(feature: str) -> None:
    """Within the profile's example budget, the generator produces each feature at least once."""
    find(
        release_like_text(),
        FEATURES[feature],
        settings=settings(database=None, derandomize=True, phases=[Phase.generate]),
    )
