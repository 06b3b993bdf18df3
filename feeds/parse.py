"""Parse the text of one seed file into release drafts and problems.

Pure: text in, ``(drafts, problems)`` out; no I/O, no clock. The path is only a
label for problems. The grammar is DESIGN.md "The input: the seed directory":
paragraphs separated by blank lines, a release starting at the paragraph right
before a one-line ``Source: Agency[ (channel)]`` paragraph.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from feeds import ids
from feeds.model import Draft, Problem

MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        start=1,
    )
}
_MONTH_ALTERNATION = "|".join(MONTHS)
#: A paragraph that is only a date: "3 August 2023".
_DATE_LINE = re.compile(rf"([0-9]{{1,2}}) ({_MONTH_ALTERNATION}) ([0-9]{{4}})")
#: A full date anywhere in running text: "On Wednesday (16 October 2024), ...".
# ASCII digits only: "３ August ２０２３" is not a date line, and must not change an ID.
_DATE_IN_TEXT = re.compile(
    rf"(?<![0-9])([0-9]{{1,2}}) ({_MONTH_ALTERNATION}) ([0-9]{{4}})(?![0-9])"
)
_SOURCE_PREFIX = "Source: "
#: Characters XML 1.0 cannot carry: C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Longest problem list kept per file: a binary file must not flood /healthz.
MAX_PROBLEMS_PER_FILE = 50


@dataclass(frozen=True, slots=True)
class _Source:
    agency: str
    channel: str | None


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` and ``\\r\\n`` only; other separators stay inside lines."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


#: Trailing whitespace of every line (``\r`` of CRLF, spaces, a lone NBSP): after removing
#: it, blank lines are empty and paragraphs are separated by two or more ``\n``.
#: Found in the *reversed* text, where the pattern starts with a literal and so the regex
#: engine can skip ahead: forwards, a pattern starting with a class tries every space.
_TRAILING_SPACE_REVERSED = re.compile(r"\n[^\S\n]+")
_PARAGRAPH_SPLIT = re.compile(r"(\n\n+)")  # not \n{2,}: 10x slower, no literal prefix
#: C0 controls but tab, LF and CR, as bytes: a fast check before the exact one.
_C0_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13))


def _source(line: str) -> _Source | None:
    """The agency and channel if ``line`` is a Source line, else None."""
    if not line.startswith(_SOURCE_PREFIX):
        return None
    value = line[len(_SOURCE_PREFIX) :].strip()
    channel: str | None = None
    # "Agency (channel)": the last parenthesised part, without parentheses inside. Plain
    # string operations: a regex with a lazy group here was quadratic in long spaces.
    if value.endswith(")"):
        opening = value.rfind("(")
        inner = value[opening + 1 : -1]
        if opening > 0 and ")" not in inner and value[:opening].strip():
            value, channel = value[:opening].strip(), inner.strip() or None
    if not value:
        return None
    return _Source(value, channel)


def _valid_date(day: str, month: str, year: str) -> date | None:
    try:
        return date(int(year), MONTHS[month], int(day))
    except ValueError:
        return None


def parse_date_line(text: str) -> date | None:
    """The date if ``text`` is exactly ``<day> <Month> <yyyy>`` and a real date."""
    match = _DATE_LINE.fullmatch(text.strip())
    return _valid_date(*match.groups()) if match else None


def find_date(text: str) -> date | None:
    """The first full, valid date (day, month name, year) in running text."""
    for match in _DATE_IN_TEXT.finditer(text):
        found = _valid_date(*match.groups())
        if found:
            return found
    return None


def _clean(text: str, path: str, problems: list[Problem]) -> str:
    """Remove characters XML cannot carry, reporting each affected line once."""
    try:
        encoded = text.encode("utf-8")  # fails on surrogates, which XML cannot carry
    except UnicodeEncodeError:
        encoded = b""
    if (
        encoded
        and len(encoded.translate(None, _C0_BYTES)) == len(encoded)
        and "\ufffe" not in text
        and "\uffff" not in text
    ) or not text:
        return text  # the common case, checked at C speed
    if not _XML_INVALID.search(text):
        return text
    lines = split_lines(text)
    for number, line in enumerate(lines, start=1):
        if _XML_INVALID.search(line):
            problems.append(Problem(path, number, "removed control or non-character code points"))
    return _XML_INVALID.sub("", text)


def _strip_line_ends(text: str) -> str:
    """Every line without its trailing whitespace (CR, spaces, NBSP): blank lines become empty."""
    # The leading "\n" lets the last line (first in reverse) match like any other.
    reversed_text = "\n" + text[::-1]
    if not _TRAILING_SPACE_REVERSED.search(reversed_text):
        return text
    return _TRAILING_SPACE_REVERSED.sub("\n", reversed_text)[:0:-1]


class _Lines:
    """Line numbers of offsets into the padded text, counted forward incrementally."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = -1  # the two padding newlines come before line 1

    def at(self, offset: int) -> int:
        if offset < self.offset:  # rare: problems reported out of order
            return self.text.count("\n", 0, offset) - 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def parse(text: str, path: str) -> tuple[list[Draft], list[Problem]]:
    """Parse one seed file's text. Never raises on any ``str`` input.

    One regex split of the whole text into paragraphs, then work per release, never
    per line: this is the hot loop of a sync and must stay close to a plain split.
    """
    problems: list[Problem] = []
    text = _clean(text, path, problems)
    padded = "\n\n" + _strip_line_ends(text) + "\n\n"
    lines = _Lines(padded)
    # Paragraphs and the breaks between them alternate; the padding makes the first and
    # last paragraph empty, so paragraph k (1-based among real ones) sits at items[2k].
    items = _PARAGRAPH_SPLIT.split(padded)
    paragraphs = items[0::2]
    ends = list(itertools.accumulate(map(len, items)))

    def offset(k: int) -> int:
        return ends[2 * k - 1]

    sources: dict[int, _Source] = {}
    # Find candidates with str.find and map them to paragraphs by bisection: a Python
    # loop over every paragraph would cost more than the split itself.
    found = padded.find("\n\nSource:")
    while found != -1:
        k = bisect.bisect_left(ends, found + 2) // 2 + 1  # the paragraph starting there
        paragraph = paragraphs[k] if k < len(paragraphs) else ""
        if offset(k) == found + 2 and paragraph.startswith("Source:") and "\n" not in paragraph:
            source = _source(paragraph)
            if source is not None:
                sources[k] = source
            elif paragraph == "Source:":
                problems.append(Problem(path, lines.at(offset(k)), "Source line names no agency"))
        found = padded.find("\n\nSource:", found + 2)
    last = len(paragraphs) - 1  # the empty one after the padding

    if not sources:
        if last > 1:
            problems.append(
                Problem(path, lines.at(offset(1)), "no 'Source: ' line; nothing published")
            )
        elif not text.strip():
            problems.append(Problem(path, 0, "file is empty"))
        return [], _capped(problems, path)

    drafts: list[Draft] = []
    previous: tuple[int, int, _Source] | None = None  # title index, source index, source
    seen_source = False
    refused: set[int] = set()  # Source paragraphs that could not start a release
    for k, source in sources.items():
        title = k - 1
        if title < 1 or title in sources:
            message = (
                "Source line follows another Source line; no title"
                if seen_source
                else "Source line has no title before it"
            )
            problems.append(Problem(path, lines.at(offset(k)), message))
            seen_source = True
            refused.add(k)
            continue
        seen_source = True
        if previous is not None:
            drafts.append(_draft(paragraphs, previous, title, lines, offset, refused))
        elif title > 1:  # paragraphs, or refused Source lines, before the first release
            problems.append(
                Problem(path, lines.at(offset(1)), "text before the first release is not published")
            )
        previous = (title, k, source)
    if previous is not None:
        drafts.append(_draft(paragraphs, previous, last, lines, offset, refused))
    return drafts, _capped(problems, path)


def _draft(
    paragraphs: list[str],
    release: tuple[int, int, _Source],
    end: int,
    lines: _Lines,
    offset: Callable[[int], int],
    refused: set[int],
) -> Draft:
    title_index, source_index, source = release
    body = paragraphs[source_index + 1 : end]
    if refused and any(source_index < k < end for k in refused):  # reported, not body text
        body = [paragraphs[k] for k in range(source_index + 1, end) if k not in refused]
    date_line = parse_date_line(body[0]) if body and "\n" not in body[0] else None
    if date_line is not None:
        body = body[1:]
    published = date_line or (find_date(body[0]) if body else None)
    return Draft(
        agency=source.agency,
        agency_slug=ids.agency_slug(source.agency),
        channel=source.channel,
        title=" ".join(part.strip() for part in paragraphs[title_index].split("\n")),
        date_line=date_line,
        published=published,
        paragraphs=tuple(body),
        line=lines.at(offset(title_index)),
    )


def _capped(problems: list[Problem], path: str) -> list[Problem]:
    """Problems in line order, like a compiler's, at most :data:`MAX_PROBLEMS_PER_FILE`."""
    problems = sorted(problems, key=lambda p: p.line)
    if len(problems) <= MAX_PROBLEMS_PER_FILE:
        return problems
    kept = problems[: MAX_PROBLEMS_PER_FILE - 1]
    rest = len(problems) - len(kept)
    kept.append(Problem(path, problems[len(kept)].line, f"... and {rest} more problems"))
    return kept
