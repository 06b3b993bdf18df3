"""Parse the text of one seed file into release drafts and problems.

Pure: text in, ``(drafts, problems)`` out; no I/O, no clock. The path is only a
label for problems. The grammar is ``docs/seed-format.md``: paragraphs separated
by blank lines, a release starting at the paragraph right before a one-line
``Source: Agency[ (channel)]`` paragraph. The problems list also holds warnings
(``Problem.severity == "warning"``) about near-misses the grammar accepts: a date
line that is not a date, a misspelt Source line, a Source line after a body-like
paragraph, an overlong title. They are found on the side and never change a draft.

This is the hot loop of a first sync, so the work is done by whole-text string
operations in C (one ``str.split``; tests mapped over the paragraph list) and
the Python per release is kept to a few dozen steps. Files whose blank lines
hold whitespace or come several in a row take a slower path that still never
copies the whole text. ``tests/test_parse_reference.py`` checks both against
a plain line-by-line reading of the grammar.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
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
#: What may separate a date's parts: a run of tabs and Unicode space separators (category
#: Zs: U+0020, U+00A0, U+2000..U+200A, U+202F, U+3000, ...), as text copied from web pages
#: has them. Not line or paragraph separators (U+0085, U+2028), nor zero-width characters.
SPACES = "\t \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPACE_CHARS = frozenset("\t \xa0\u1680\u202f\u205f\u3000").union(map(chr, range(0x2000, 0x200B)))
#: Bump when the same text parses differently (a grammar fix): stored parses of every
#: file are then redone at the next sync (see ``feeds.sync.CONTENT_VERSION``).
PARSER_VERSION = 2

#: A paragraph that is only a date: "3 August 2023".
_DATE_LINE = re.compile(rf"([0-9]{{1,2}})[{SPACES}]+({_MONTH_ALTERNATION})[{SPACES}]+([0-9]{{4}})")
#: A full date anywhere in running text: "On Wednesday (16 October 2024), ...". Searched
#: from the month name, whose first letters the regex engine skips ahead to (a pattern
#: that starts with the day's digits, or with a class of spaces, tries far more places);
#: :func:`find_date` reads the spaces and the day before the match itself.
_MONTH_YEAR = re.compile(rf"({_MONTH_ALTERNATION})[{SPACES}]+([0-9]{{4}})(?![0-9])")
# ASCII digits only: "３ August ２０２３" is not a date line, and must not change an ID.
_ASCII_DIGITS = frozenset("0123456789")
_SOURCE_PREFIX = "Source: "
#: Characters XML 1.0 cannot carry: C0 controls but tab/LF/CR, surrogates, U+FFFE/U+FFFF.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Longest problem list kept per file: a binary file must not flood /healthz.
MAX_PROBLEMS_PER_FILE = 50

# Near-misses: warnings about text the grammar accepts but a person probably did not mean.
# None of them changes what is published.
#: A first body paragraph shaped like a date line, valid or not: day, a word, year.
_DATE_SHAPED = re.compile(rf"([0-9]{{1,2}})[{SPACES}]+([A-Za-z]+)[{SPACES}]+([0-9]{{4}})")
#: The start of a paragraph that is a Source line or may be a near-miss of one: "source" in
#: any case, perhaps indented, then a colon or whitespace (so not "Sources", "Sourced").
_SOURCE_LIKE = re.compile(r"\s*[Ss][Oo][Uu][Rr][Cc][Ee](?=[\s:])")
#: Longest one-line paragraph taken for a misspelt Source line; agency lines are short.
NEAR_SOURCE_LENGTH = 100
#: Most words in the agency name of ``Source Agency`` (no colon): more is running text.
_NEAR_SOURCE_WORDS = 4
#: A paragraph before a Source line that ends like a sentence and is longer than this, or
#: holds more than one sentence, reads like body text rather than a title.
BODY_LIKE_TITLE = 200
#: Longest title before a warning; the real titles run to about 110 characters.
LONG_TITLE = 300
#: What may close a sentence after its full stop: quotes and a parenthesis.
_CLOSERS = "\"'”’)"
_SENTENCE_ENDS = (".", "!", "?")
#: A sentence's end then the next one's start: ". The", "?” 3", "! (A".
_SENTENCE_BREAK = re.compile(r"[.!?][\"'”’)]*\s+[\"'“‘(]*[A-Z0-9]")
#: Longest Source line remembered between calls: agencies repeat thousands of times in
#: a corpus, but a 10 MB junk line must not be kept alive.
_CACHED_LINE = 200


@dataclass(frozen=True, slots=True)
class _Source:
    agency: str
    slug: str
    channel: str | None


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` and ``\\r\\n`` only; other separators stay inside lines."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


#: A newline right after whitespace: some line has trailing whitespace to remove. The
#: pattern starts with a literal, so the regex engine skips ahead to each newline; one
#: that starts with a character class would try every character.
_SPACE_BEFORE_NEWLINE = re.compile(r"\n(?<=[^\S\n]\n)")
#: A paragraph separator in general: the end of a line, then one or more lines that are
#: empty or only whitespace (each ending in a newline).
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
#: Lines that are empty or only whitespace, at the start of a text.
_LEADING_BLANK_LINES = re.compile(r"(?:[^\S\n]*\n)*")
#: C0 controls but tab, LF and CR, as bytes, for the fast check in :func:`_xml_safe`.
_C0_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13))
#: Characters checked at a time by :func:`_xml_safe`: a few KB of memory, as fast as more.
_CHECK_SLICE = 2048


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
    return _Source(value, ids.agency_slug(value), channel)


#: A corpus names a handful of agencies on every release; a file of junk Source lines
#: only misses.
_cached_source = functools.lru_cache(maxsize=64)(_source)


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
    """The first full, valid date (day, month name, year) in running text.

    The same shape as a date line: one or two ASCII digits with no digit before them, a
    month name and four ASCII digits, separated by runs of :data:`SPACES`.
    """
    digits = _ASCII_DIGITS
    spaces = _SPACE_CHARS
    position = 0
    while (match := _MONTH_YEAR.search(text, position)) is not None:
        end = position = match.start()
        position += 1
        while end and text[end - 1] in spaces:
            end -= 1
        if end == match.start() or not end or text[end - 1] not in digits:
            continue
        if end > 1 and text[end - 2] in digits:
            if end > 2 and text[end - 3] in digits:
                continue  # "123 May 2020": no day
            day = text[end - 2 : end]
        else:
            day = text[end - 1]
        found = _valid_date(day, match[1], match[2])
        if found:
            return found
    return None


def _xml_safe(text: str) -> bool:
    """Whether ``text`` holds only characters XML can carry, checked at C speed.

    Slice by slice: encoding a whole file at once would allocate three bytes a character
    (UTF-8's worst case) and so triple a sync's peak memory for this test alone.
    """
    if "\ufffe" in text or "\uffff" in text:
        return False
    for start in range(0, len(text), _CHECK_SLICE):
        try:
            encoded = text[start : start + _CHECK_SLICE].encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate
            return False
        if len(encoded.translate(None, _C0_BYTES)) != len(encoded):
            return False
    return True


def _clean(text: str, path: str, problems: list[Problem]) -> str:
    """Remove characters XML cannot carry, reporting each affected line once."""
    if _xml_safe(text):
        return text  # the common case
    lines = split_lines(text)
    for number, line in enumerate(lines, start=1):
        if _XML_INVALID.search(line):
            problems.append(Problem(path, number, "removed control or non-character code points"))
    return _XML_INVALID.sub("", text)


Runs = tuple[list[int], list[int]]
"""Paragraph indices after runs of several blank lines, and the extra newlines up to each."""


class _Lines:
    """Line numbers of paragraphs, from their index: two lines per separator, plus extras.

    The extras are the newlines inside paragraphs before it (none in most files), the
    newlines removed from the start of the text (``lead``) and those of blank-line runs
    collapsed to one (``runs``: paragraph indices and the total removed up to each).
    """

    def __init__(
        self,
        paragraphs: list[str],
        inner: bool,
        lead: int,
        runs: Runs | None,
    ) -> None:
        self.base = lead + 1
        # Newlines inside the paragraphs before each one, only for files that have any.
        self.inner = (
            [0, *itertools.accumulate(map(str.count, paragraphs, itertools.repeat("\n")))]
            if inner
            else None
        )
        self.runs = runs

    def at(self, index: int) -> int:
        line = self.base + 2 * index
        if self.inner is not None:
            line += self.inner[index]
        if self.runs is not None:
            indices, totals = self.runs
            found = bisect.bisect_right(indices, index)
            line += totals[found - 1] if found else 0
        return line


def _split(text: str) -> list[str]:
    """Paragraphs of a text whose blank lines are empty and single, without the end's."""
    paragraphs = text.split("\n\n")
    if paragraphs[-1].endswith("\n"):  # the text ended with a single newline
        paragraphs[-1] = paragraphs[-1][:-1]
    if not paragraphs[-1]:  # it ended with a blank line, or is empty
        paragraphs.pop()
    return paragraphs


def _strip_lines(paragraph: str) -> str:
    """The paragraph with no whitespace at the end of any line (CR, spaces, NBSP)."""
    if not _SPACE_BEFORE_NEWLINE.search(paragraph) and not paragraph[-1:].isspace():
        return paragraph
    return "\n".join(line.rstrip() for line in paragraph.split("\n"))


def _split_slowly(text: str) -> tuple[list[str], int, Runs | None]:
    """Paragraphs of any text: blank lines may hold whitespace, come several in a row or
    start the text, and lines may end in whitespace.

    Returns the paragraphs, the number of blank lines before the first, and the runs of
    several blank lines for :class:`_Lines`. One paragraph at a time, never a second
    copy of the whole text: a CRLF file is as big as any other.
    """
    start = _LEADING_BLANK_LINES.match(text).end()  # type: ignore[union-attr]  # always matches
    lead = text.count("\n", 0, start)
    paragraphs: list[str] = []
    indices: list[int] = []
    totals: list[int] = []
    extra = 0
    for separator in _BLANK_LINES.finditer(text, start):
        paragraphs.append(_strip_lines(text[start : separator.start()]))
        newlines = text.count("\n", separator.start(), separator.end())
        if newlines > 2:
            extra += newlines - 2
            indices.append(len(paragraphs))
            totals.append(extra)
        start = separator.end()
    last = _strip_lines(text[start:])
    if last.endswith("\n"):  # the text ended with a newline and perhaps blank spaces
        last = last[:-1]
    if last:
        paragraphs.append(last)
    return paragraphs, lead, (indices, totals) if indices else None


def _paragraphs(text: str) -> tuple[list[str], int, Runs | None]:
    """The paragraphs of ``text``, with what :class:`_Lines` needs to number them."""
    last = text[-1:]
    if not _SPACE_BEFORE_NEWLINE.search(text) and not (last.isspace() and last != "\n"):
        # No line ends in whitespace, so blank lines are empty: one split does it, unless
        # the text starts with a newline or has several blank lines in a row. Either
        # makes an empty paragraph or one that starts with a newline, the smallest
        # characters a paragraph can start with but a tab: min() looks in one quick pass.
        paragraphs = _split(text)
        if not (
            paragraphs
            and min(paragraphs)[:1] <= "\n"
            and (text.startswith("\n") or "\n\n\n" in text)
        ):
            return paragraphs, 0, None
    return _split_slowly(text)


def parse(text: str, path: str) -> tuple[list[Draft], list[Problem]]:
    """Parse one seed file's text. Never raises on any ``str`` input."""
    problems: list[Problem] = []
    paragraphs, lead, runs = _paragraphs(_clean(text, path, problems))
    count = len(paragraphs)
    # Whether any paragraph spans several lines; map() runs the test in C.
    inner = any(map(operator.contains, paragraphs, itertools.repeat("\n")))
    lines = _Lines(paragraphs, inner, lead, runs)

    # Source paragraphs by index: the test runs in C over the list, then only the few
    # candidates are looked at in Python. Candidates that are not Source lines may be
    # near-misses ("Source Europol", "source: NATO"), checked once the Source lines are known.
    sources: dict[int, _Source] = {}
    near: list[int] = []
    for index in itertools.compress(itertools.count(), map(_SOURCE_LIKE.match, paragraphs)):
        paragraph = paragraphs[index]
        if "\n" in paragraph:
            continue
        source = _cached_source(paragraph) if len(paragraph) <= _CACHED_LINE else _source(paragraph)
        if source is not None:
            sources[index] = source
        elif paragraph == "Source:":
            problems.append(Problem(path, lines.at(index), "Source line names no agency"))
        else:
            near.append(index)
    for index in near:
        # A paragraph right before a Source line is a title ("Source code leaks: ...").
        if index + 1 not in sources and _looks_like_source(paragraphs[index]):
            problems.append(
                Problem(
                    path,
                    lines.at(index),
                    f"{paragraphs[index].strip()!r} looks like a Source line but is not one "
                    "(a Source line is a paragraph starting with exactly 'Source: '); "
                    "it is read as text",
                    "warning",
                )
            )

    if not sources:
        if count:
            problems.append(Problem(path, lines.at(0), "no 'Source: ' line; nothing published"))
        else:
            problems.append(Problem(path, 0, "file is empty"))
        return [], _capped(problems, path)

    drafts: list[Draft] = []
    previous: tuple[int, int, _Source] | None = None  # title, Source, source
    refused: list[int] = []  # Source paragraphs that could not start a release
    for index, source in sources.items():
        title = index - 1
        if title < 0 or title in sources:
            message = (
                "Source line follows another Source line; no title"
                if previous is not None or refused
                else "Source line has no title before it"
            )
            problems.append(Problem(path, lines.at(index), message))
            refused.append(index)
            continue
        if previous is not None:
            drafts.append(_draft(paragraphs, previous, title, lines, refused, path, problems))
        elif title > 0:  # paragraphs, or refused Source lines, before the first release
            problems.append(
                Problem(path, lines.at(0), "text before the first release is not published")
            )
        previous = (title, index, source)
    if previous is not None:
        drafts.append(_draft(paragraphs, previous, count, lines, refused, path, problems))
    return drafts, _capped(problems, path)


def _draft(
    paragraphs: list[str],
    release: tuple[int, int, _Source],
    end: int,
    lines: _Lines,
    refused: list[int],
    path: str,
    problems: list[Problem],
) -> Draft:
    """The release whose title is paragraph ``release[0]``, its body running up to ``end``.

    Appends to ``problems`` the warnings about this release's title, Source line and
    date line.
    """
    title_index, source_index, source = release
    body = paragraphs[source_index + 1 : end]
    first_index = source_index + 1
    if refused and any(source_index < k < end for k in refused):  # reported, not body text
        kept = [k for k in range(source_index + 1, end) if k not in refused]
        body = [paragraphs[k] for k in kept]
        first_index = kept[0] if kept else end
    date_line = None
    published = None
    if body:
        first = body[0]
        # Cheap test first: a date line ends in its year's four digits.
        if first[-4:].isdigit() and "\n" not in first:
            date_line = parse_date_line(first)
            if date_line is not None:
                del body[0]
            else:
                _check_date_shape(first, path, lines.at(first_index), problems)
        published = date_line or (find_date(body[0]) if body else None)
    title = paragraphs[title_index]
    title = " ".join(part.strip() for part in title.split("\n")) if "\n" in title else title.strip()
    # Cheap test first: the warnings are about long titles or titles ending like sentences.
    if len(title) > LONG_TITLE or title.rstrip(_CLOSERS)[-1:] in _SENTENCE_ENDS:
        _check_title(title, path, lines, (title_index, source_index), problems)
    return Draft(
        agency=source.agency,
        agency_slug=source.slug,
        channel=source.channel,
        title=title,
        date_line=date_line,
        published=published,
        paragraphs=tuple(body),
        line=lines.at(title_index),
    )


def _looks_like_source(paragraph: str) -> bool:
    """Whether a one-line paragraph that is not a Source line was probably meant as one.

    ``paragraph`` starts (perhaps after whitespace) with "source" in any case and then a
    colon or whitespace. With a colon, anything after it counts (``Source:Europol``,
    ``SOURCE: NATO``, `` Source: NATO``). Without one, what follows must look like an
    agency name: at most :data:`_NEAR_SOURCE_WORDS` words, the first capitalised, no
    sentence punctuation, perhaps a parenthesised channel (``Source Europol``, not
    ``Source code of the tool is published.``).
    """
    text = paragraph.strip()
    if len(text) > NEAR_SOURCE_LENGTH:
        return False
    rest = text[len("source") :].lstrip()
    if rest.startswith(":"):
        return bool(rest[1:].strip())
    if rest.endswith(")") and "(" in rest:
        rest = rest[: rest.rfind("(")].rstrip()
    words = rest.split()
    return (
        0 < len(words) <= _NEAR_SOURCE_WORDS
        and rest[0].isupper()
        and not any(mark in rest for mark in ".,;:!?")
    )


def _check_date_shape(text: str, path: str, line: int, problems: list[Problem]) -> None:
    """Warn if ``text``, a first body paragraph that is not a date line, is shaped like one."""
    match = _DATE_SHAPED.fullmatch(text.strip())
    if match is None:
        return
    word = match[2]
    reason = (
        "is not a calendar date"
        if word in MONTHS
        else f"{word!r} is not an English month name (January to December)"
    )
    problems.append(
        Problem(
            path,
            line,
            f"{text.strip()!r} looks like a date line but {reason}; "
            "it is published as body text and gives the release no date",
            "warning",
        )
    )


def _check_title(
    title: str, path: str, lines: _Lines, indices: tuple[int, int], problems: list[Problem]
) -> None:
    """Warn about a title that reads like body text (at its Source line) or is overlong.

    ``indices`` are those of the title and Source paragraphs.
    """
    ends_like_sentence = title.rstrip(_CLOSERS)[-1:] in _SENTENCE_ENDS
    if ends_like_sentence and len(title) > BODY_LIKE_TITLE:
        why = f"{len(title)} characters ending like a sentence"
    elif ends_like_sentence and _SENTENCE_BREAK.search(title):
        why = "several sentences"
    else:
        if len(title) > LONG_TITLE:
            problems.append(
                Problem(
                    path,
                    lines.at(indices[0]),
                    f"title is {len(title)} characters long (more than {LONG_TITLE}); "
                    "is a body paragraph or a missing blank line part of it?",
                    "warning",
                )
            )
        return
    problems.append(
        Problem(
            path,
            lines.at(indices[1]),
            f"Source line follows a paragraph that reads like body text ({why}), "
            "which becomes the release's title; is this Source line misplaced?",
            "warning",
        )
    )


def _capped(problems: list[Problem], path: str) -> list[Problem]:
    """Problems and warnings in line order, like a compiler's (a line's problems before its
    warnings), at most :data:`MAX_PROBLEMS_PER_FILE` of them.

    The last one kept then counts the rest; it is a problem if any of the rest is.
    """
    problems = sorted(problems, key=lambda p: (p.line, p.severity == "warning"))
    if len(problems) <= MAX_PROBLEMS_PER_FILE:
        return problems
    kept = problems[: MAX_PROBLEMS_PER_FILE - 1]
    rest = problems[len(kept) :]
    warnings = sum(problem.severity == "warning" for problem in rest)
    errors = len(rest) - warnings
    counts = [_plural(errors, "more problem")] if errors else []
    if warnings:
        counts.append(_plural(warnings, "more warning"))
    message = "... and " + " and ".join(counts)
    kept.append(Problem(path, rest[0].line, message, "problem" if errors else "warning"))
    return kept


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
