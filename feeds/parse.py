"""Parse the text of one seed file into release drafts and problems.

Pure: text in, ``(drafts, problems)`` out; no I/O, no clock. The path is only a
label for problems. The grammar is DESIGN.md "The input: the seed directory":
paragraphs separated by blank lines, a release starting at the paragraph right
before a one-line ``Source: Agency[ (channel)]`` paragraph.
"""

from __future__ import annotations

import re
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
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
#: Where a paragraph starts with "Source:" (whether it is a Source line is checked after).
_SOURCE_START = "\n\nSource:"
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


def _split(padded: str, start: int, end: int) -> tuple[int, list[str]]:
    """Paragraphs of ``padded[start:end]``, and the offset of the last one (-1 if none)."""
    region = padded[start:end].strip("\n")
    if not region:
        return -1, []
    parts = _PARAGRAPH_BREAK.split(region)
    last_end = start + len(padded[start:end].rstrip("\n"))
    return last_end - len(parts[-1]), parts


def parse(text: str, path: str) -> tuple[list[Draft], list[Problem]]:
    """Parse one seed file's text. Never raises on any ``str`` input.

    Works on the whole text with regexes, release by release, never line by line:
    this is the hot loop of a sync and must stay close to a plain regex split.
    """
    problems: list[Problem] = []
    text = _clean(text, path, problems)
    padded = "\n\n" + _strip_line_ends(text) + "\n\n"
    lines = _Lines(padded)
    sources: list[tuple[int, int, _Source]] = []  # (start, end, source)
    found = padded.find(_SOURCE_START)
    while found != -1:
        start = found + 2
        end = padded.find("\n", start)
        # A Source paragraph is one line: a blank line (an empty one, now) must follow.
        if padded.startswith("\n\n", end):
            line = padded[start:end]
            source = _source(line)
            if source is not None:
                sources.append((start, end, source))
            elif line == "Source:":
                problems.append(Problem(path, lines.at(start), "Source line names no agency"))
        found = padded.find(_SOURCE_START, end)

    if not sources:
        if padded.strip("\n"):
            first_text = len(padded) - len(padded.lstrip("\n"))
            problems.append(
                Problem(path, lines.at(first_text), "no 'Source: ' line; nothing published")
            )
        elif not text.strip():
            problems.append(Problem(path, 0, "file is empty"))
        return [], _capped(problems, path)

    drafts: list[Draft] = []
    previous: tuple[int, _Source, str] | None = None  # title offset, source, title
    body_start = 0
    for start, end, source in sources:
        title_at, region = _split(padded, body_start, start)
        if not region:
            message = (
                "Source line follows another Source line; no title"
                if body_start > 0
                else "Source line has no title before it"
            )
            problems.append(Problem(path, lines.at(start), message))
            body_start = end
            continue
        if previous is not None:
            drafts.append(_draft(previous, region[:-1], lines))
        else:
            first_text = len(padded) - len(padded.lstrip("\n"))
            if first_text < title_at:  # paragraphs, or refused Source lines, before it
                problems.append(
                    Problem(
                        path,
                        lines.at(first_text),
                        "text before the first release is not published",
                    )
                )
        previous = (title_at, source, region[-1])
        body_start = end
    if previous is not None:
        drafts.append(_draft(previous, _split(padded, body_start, len(padded))[1], lines))
    return drafts, _capped(problems, path)


def _draft(release: tuple[int, _Source, str], body: list[str], lines: _Lines) -> Draft:
    title_at, source, title = release
    date_line = parse_date_line(body[0]) if body and "\n" not in body[0] else None
    if date_line is not None:
        body = body[1:]
    published = date_line or (find_date(body[0]) if body else None)
    return Draft(
        agency=source.agency,
        agency_slug=ids.agency_slug(source.agency),
        channel=source.channel,
        title=" ".join(part.strip() for part in title.split("\n")),
        date_line=date_line,
        published=published,
        paragraphs=tuple(body),
        line=lines.at(title_at),
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
