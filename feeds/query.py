"""What a feed URL asks for: which agencies, and which filters. Pure validation.

A feed name is ``all``, one agency slug, or several joined by ``+``; its
canonical spelling is sorted and de-duplicated. Filters are ``q``, ``exclude``,
``limit`` and ``since``; a malformed or out-of-range value is an error that
names the parameter and the allowed range, never silently clamped.

How ``q`` and ``exclude`` match (the stores' full-text indexes implement it):
each word must appear in the title or body as a whole word or the start of one
(``traffick`` finds "trafficking"; ``operation`` does not find "cooperation"),
ignoring case and diacritics (``zurich`` finds "Zürich"); a word with inner
punctuation is its parts in sequence (``e-commerce`` finds "e-commerce" and "e
commerce").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from feeds.errors import BadRequestError, NotFoundError

ALL = "all"
#: Most entries a filtered feed returns (``limit``'s upper bound).
MAX_LIMIT = 500
#: Longest ``q`` / ``exclude`` value, and most words in one.
MAX_QUERY_CHARS = 200
MAX_WORDS = 20
#: Most agencies in one multi-agency feed name.
MAX_AGENCIES = 50
FILTER_PARAMETERS = ("q", "exclude", "limit", "since")
#: A run of letters and digits: ``\w`` is ``str.isalnum`` plus ``_``.
_TOKEN = re.compile(r"[^\W_]+")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


@dataclass(frozen=True, slots=True)
class Selection:
    """What a feed covers: agencies (``None`` for all, else sorted slugs), or one topic."""

    name: str
    slugs: tuple[str, ...] | None
    topic: str | None = None
    """A topic feed's topic, ``kind/slug`` (its ``name`` is ``topics/kind/slug``)."""

    @property
    def multi(self) -> bool:
        """Whether entries come from several agency feeds (and so carry ``atom:source``)."""
        return self.topic is not None or self.slugs is None or len(self.slugs) > 1

    @property
    def deps(self) -> tuple[str, ...] | None:
        """What its documents depend on: its agencies or its topic (None: everything)."""
        return (self.topic,) if self.topic is not None else self.slugs


def topic_selection(key: str) -> Selection:
    """The feed of the topic ``kind/slug``."""
    return Selection(f"topics/{key}", None, key)


def select(raw: str, known: Collection[str]) -> Selection:
    """The feed named ``raw``; its ``name`` is canonical (compare to redirect).

    :raises NotFoundError: an agency that was never seen, or a malformed name.
    """
    if raw == ALL:
        return Selection(ALL, None)
    parts = raw.split("+")
    if len(parts) > MAX_AGENCIES:
        raise NotFoundError(f"at most {MAX_AGENCIES} agencies in one feed")
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise NotFoundError(f"no agency {unknown[0]!r} has ever been seen")
    slugs = tuple(sorted(set(parts)))
    return Selection("+".join(slugs), slugs)


@dataclass(frozen=True, slots=True)
class Filters:
    """Validated filters; empty when the URL has none."""

    q: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    limit: int | None = None
    since: datetime | None = None

    def __bool__(self) -> bool:
        return bool(self.q or self.exclude or self.limit is not None or self.since is not None)

    def canonical(self) -> str:
        """The canonical query string (no ``?``): fixed order, normalized values."""
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", " ".join(self.q)))
        if self.exclude:
            pairs.append(("exclude", " ".join(self.exclude)))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        if self.since is not None:
            pairs.append(("since", self.since.isoformat().replace("+00:00", "Z")))
        return urlencode(pairs)


def tokens(text: str) -> list[str]:
    """The words of ``text`` as the matching rule sees them, in order.

    Runs of letters and digits (``str.isalnum``), lower-cased, diacritics dropped
    (NFD without combining marks): what SQLite's ``unicode61 remove_diacritics 2``
    tokenizer does for the text feeds carry, written down once so that a store
    without that tokenizer (PostgreSQL) indexes and queries the very same words.
    """
    plain = "".join(
        ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch)
    ).lower()
    return _TOKEN.findall(plain)


def _words(name: str, value: str) -> tuple[str, ...]:
    if len(value) > MAX_QUERY_CHARS:
        raise BadRequestError(name, f"at most {MAX_QUERY_CHARS} characters")
    # Lower-cased, not case-folded: the store's full-text index folds case itself, and
    # "straße" must stay one word rather than become "strasse".
    words = tuple(dict.fromkeys(value.lower().split()))
    if not words:
        raise BadRequestError(name, "give one or more words")
    if not all(any(ch.isalnum() for ch in word) for word in words):
        raise BadRequestError(name, "every word needs a letter or digit")
    if len(words) > MAX_WORDS:
        raise BadRequestError(name, f"at most {MAX_WORDS} words")
    return words


def _limit(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequestError("limit", f"an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _since(value: str) -> datetime:
    if len(value) > 40 or not _RFC3339.fullmatch(value):
        raise BadRequestError("since", "an RFC 3339 date-time such as 2024-10-16T12:00:00Z")
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestError(
            "since", "an RFC 3339 date-time such as 2024-10-16T12:00:00Z"
        ) from None
    return moment


def filters(args: Mapping[str, list[str]]) -> Filters:
    """Filters from query arguments (each name → its values). Other names are ignored.

    :raises BadRequestError: a repeated, malformed or out-of-range filter.
    """
    values: dict[str, str] = {}
    for name in FILTER_PARAMETERS:
        given = args.get(name, [])
        if len(given) > 1:
            raise BadRequestError(name, "give it at most once")
        if given:
            values[name] = given[0]
    return Filters(
        q=_words("q", values["q"]) if "q" in values else (),
        exclude=_words("exclude", values["exclude"]) if "exclude" in values else (),
        limit=_limit(values["limit"]) if "limit" in values else None,
        since=_since(values["since"]) if "since" in values else None,
    )
