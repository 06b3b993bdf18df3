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
_CHANNEL = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
#: Characters XML 1.0 cannot carry: C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Longest problem list kept per file: a binary file must not flood /healthz.
MAX_PROBLEMS_PER_FILE = 50


@dataclass(frozen=True, slots=True)
class _Paragraph:
    line: int  # 1-based line of its first line
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class _Source:
    agency: str
    channel: str | None


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` and ``\\r\\n`` only; other separators stay inside lines."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _paragraphs(lines: list[str]) -> list[_Paragraph]:
    paragraphs: list[_Paragraph] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():  # str.strip() also removes a lone non-breaking space
            if not current:
                start = number
            current.append(line.rstrip())
        elif current:
            paragraphs.append(_Paragraph(start, tuple(current)))
            current = []
    if current:
        paragraphs.append(_Paragraph(start, tuple(current)))
    return paragraphs


def _source(paragraph: _Paragraph) -> _Source | None:
    """The agency and channel if this paragraph is a Source line, else None."""
    if len(paragraph.lines) != 1 or not paragraph.lines[0].startswith(_SOURCE_PREFIX):
        return None
    value = paragraph.lines[0][len(_SOURCE_PREFIX) :].strip()
    channel: str | None = None
    match = _CHANNEL.match(value)
    if match and match.group(1).strip():
        value, channel = match.group(1).strip(), match.group(2).strip() or None
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
    if not _XML_INVALID.search(text):
        return text
    lines = split_lines(text)
    for number, line in enumerate(lines, start=1):
        if _XML_INVALID.search(line):
            problems.append(Problem(path, number, "removed control or non-character code points"))
    return _XML_INVALID.sub("", text)


def parse(text: str, path: str) -> tuple[list[Draft], list[Problem]]:
    """Parse one seed file's text. Never raises on any ``str`` input."""
    problems: list[Problem] = []
    text = _clean(text, path, problems)
    paragraphs = _paragraphs(split_lines(text))
    sources = [(i, s) for i, p in enumerate(paragraphs) if (s := _source(p)) is not None]
    for paragraph in paragraphs:
        first = paragraph.lines[0]
        if (
            len(paragraph.lines) == 1
            # Lines are right-stripped, so "Source: " with nothing after it reads "Source:".
            and (first.startswith(_SOURCE_PREFIX) or first == _SOURCE_PREFIX.rstrip())
            and not _source(paragraph)
        ):
            problems.append(Problem(path, paragraph.line, "Source line names no agency"))

    if not sources:
        if paragraphs:
            problems.append(
                Problem(path, paragraphs[0].line, "no 'Source: ' line; nothing published")
            )
        elif not text.strip():
            problems.append(Problem(path, 0, "file is empty"))
        return [], _capped(problems, path)

    # A release starts at the paragraph right before its Source paragraph. Find the
    # usable starts first so that each body runs up to the next release's title.
    starts: list[tuple[int, _Source]] = []
    for index, source in sources:
        title_index = index - 1
        if title_index < 0:
            problems.append(
                Problem(path, paragraphs[index].line, "Source line has no title before it")
            )
            continue
        if _source(paragraphs[title_index]) is not None:
            problems.append(
                Problem(
                    path,
                    paragraphs[index].line,
                    "Source line follows another Source line; no title",
                )
            )
            continue
        starts.append((title_index, source))

    if not starts:
        return [], _capped(problems, path)

    first_title = starts[0][0]
    if first_title > 0:
        problems.append(
            Problem(
                path,
                paragraphs[0].line,
                "text before the first release is not published",
            )
        )

    drafts: list[Draft] = []
    for number, (title_index, source) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(paragraphs)
        # A Source paragraph that could not start a release was reported above.
        body = [p for p in paragraphs[title_index + 2 : end] if _source(p) is None]
        drafts.append(_draft(paragraphs[title_index], source, body))
    return drafts, _capped(problems, path)


def _draft(title: _Paragraph, source: _Source, body: list[_Paragraph]) -> Draft:
    date_line = parse_date_line(body[0].text) if body and len(body[0].lines) == 1 else None
    if date_line is not None:
        body = body[1:]
    published = date_line or (find_date(body[0].text) if body else None)
    return Draft(
        agency=source.agency,
        agency_slug=ids.agency_slug(source.agency),
        channel=source.channel,
        title=" ".join(line.strip() for line in title.lines),
        date_line=date_line,
        published=published,
        paragraphs=tuple(p.text for p in body),
        line=title.line,
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
