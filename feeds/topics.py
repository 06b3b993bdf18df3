"""Topics of a release, found in its text: countries, named operations, crime areas.

Pure and deterministic: :func:`extract` takes a title and body paragraphs and
returns topics sorted by ``(kind, slug)``. The only I/O is reading the country
table (``feeds/data/countries.tsv``) once, the first time it is needed.
:data:`RULES_VERSION` names the rules and data: the sync re-tags a release
whose stored version differs.

**Countries** (slug: lowercase ISO 3166-1 alpha-2, ``xk`` for Kosovo). One
combined regex (a trie of every name, alias and adjective/demonym in the table,
as written and in capitals, plus phrases that only look like a country) is run
over the title and each paragraph. A match counts unless:

- it is inside a dateline that opens a paragraph (``LYON, France –``): such a
  prefix is cut before matching, so the country counts only if named elsewhere;
- it is part of a longer phrase that is not the country: an international body
  ("Organization of American States"), a region ("Latin America", "Indian
  Ocean"), a city ("Mexico City"), a US state ("New Mexico"), another country
  ("Papua New Guinea" is ``pg``, never ``gn``), an animal or food ("guinea pig");
  the trie prefers the longest phrase, so these win over the short name;
- it is a language named only as a language: followed by ``-speaking``,
  ``language``, ``speakers``, ... or after ``in``/``into``/``from``/``speak``
  (through a list such as "in English, Spanish and Portuguese") when no noun
  follows ("in French custody" is France);
- it is a name that is also a person's name (Jordan, Chad, Georgia, Israel,
  India, Kenya, Holland, ...) used as one: after a title or a capitalised first
  name ("Michael Jordan"), or before a capitalised word that is not an
  institution ("Chad Williams", but "Jordan Armed Forces");
- it is Georgia the US state ("Atlanta, Georgia", "Georgia, USA", "state of
  Georgia"), or Turkey the bird ("Turkey sandwiches"; lowercase never matches).

Cities and regions are not in the table, so they never count alone.

**Operations** (slug: the name in lowercase ASCII, diacritics removed, other
runs of characters as ``-``). "Operation X", "OPERATION X", "Joint Operation
X", "Operations X and Y", "an operation codenamed 'X'": X is a capitalised or
quoted name of up to three words plus an edition (``XVI``, ``8``, ``-IV``).
"Operational", lowercase "the operation ..." and generic words after
"Operation" ("Operation Room", "Operation Task Force") do not count. In a Title
Case or capitalised title only the first word and an edition are taken. A name
that is a word-prefix of another found in the same release (``pangea`` beside
``pangea-xvi``) is the same operation and is dropped.

**Crime areas** (fixed list :data:`CRIME_AREAS`). Each area has a regex of
terms, matched on the lowercased text; a term inside the Title Case name of an
agency or unit does not count ("European Cybercrime Centre", "United Nations
Office on Drugs and Crime"). An area counts when a term is in the title or in a body
sentence that is not boilerplate (one sentence is enough: in the labelled
releases a crime is named once in a short release's body as often as not,
while a passing mention that is not the subject is rare outside boilerplate).
Each term starts with a literal stem; one Aho-Corasick pass (pyahocorasick)
over the lowercased title and body finds the stems, and only their terms are tried.

**Speed.** The same pass finds the country words (lowered, then checked as
written), replacing the regex scan; the regex is kept for text whose lowercase
changes length ("İ"). ``tests/topics_reference.py`` is the plain version these
rules were first written as, and tests assert the same result for every text.
Boilerplate: a mandate sentence ("Europol supports Member States in the fight
against ..."), any sentence about "the fight against" something, EMPACT or
priorities, and every paragraph from an "About X" heading on.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import get_args

import ahocorasick

from feeds.model import Topic, TopicKind

RULES_VERSION = 1
"""Bump whenever the rules or the country table change: stored topics are then re-tagged."""

Kind = TopicKind

KINDS: Mapping[Kind, str] = {
    "countries": "Countries",
    "operations": "Operations",
    "crime-areas": "Crime areas",
}
"""Every kind of topic (the URL segment) and its display name, in display order."""

CRIME_AREAS: Mapping[str, str] = {
    "drugs": "Drugs",
    "firearms": "Firearms",
    "migrant-smuggling": "Migrant smuggling",
    "human-trafficking": "Human trafficking",
    "cybercrime": "Cybercrime",
    "child-sexual-exploitation": "Child sexual exploitation",
    "fraud": "Fraud",
    "money-laundering": "Money laundering",
    "terrorism": "Terrorism",
    "environmental-crime": "Environmental crime",
    "property-crime": "Property crime",
    "counterfeiting": "Counterfeiting",
    "corruption": "Corruption",
    "core-international-crimes": "Core international crimes",
}
"""The fixed list of crime areas: slug → display name."""

crime_area_names = CRIME_AREAS

MIN_BODY_SENTENCES = 1
"""Body sentences (outside the lead and boilerplate) that make a crime area count."""


def extract(title: str, paragraphs: Sequence[str]) -> tuple[Topic, ...]:
    """Every topic of a release, sorted by ``(kind, slug)``; the same text gives the same tuple."""
    body = "\n\n".join([_strip_dateline(p) for p in paragraphs])
    names = _table().names
    title_case = _is_title_case(title)
    # Title and body lowered and searched at once, for country words and crime stems:
    # one pass of one automaton over the text (see _scan).
    joined = f"{title}\n\n{body}"
    low = joined.lower()
    if len(low) == len(joined):
        hits = _scan(joined, low, len(title) + 2)
        codes = _countries_at(title, body, joined, hits)
        areas = _crime_areas_at(title, body, low, hits, title_case)
    else:  # "İ" lowers to two characters: positions in ``low`` are not those of the text
        codes = _countries(title, body)
        areas = _crime_areas(title, body, title_case)
    found = [
        *(Topic("countries", code, names[code]) for code in codes),
        *_operations(title, body, title_case),
        *(Topic("crime-areas", area, CRIME_AREAS[area]) for area in areas),
    ]
    return tuple(sorted(found, key=lambda t: (t.kind, t.slug)))


def country(slug_or_name: str) -> Topic | None:
    """The country topic for a code (``es``), name, alias or adjective (``Spain``, ``Spanish``)."""
    code = resolve("countries", slug_or_name)
    if code is None:
        return None
    return Topic("countries", code, _table().names[code])


def resolve(kind: str, raw: str) -> str | None:
    """The canonical slug for ``raw`` in a URL (``spain`` → ``es``), or None if unknown.

    Countries accept a code, name, alias or adjective in any case, with ``-`` or ``_``
    for spaces. Crime areas and operations accept their slug in any case, and for
    operations any spelling that slugifies to it (``Haechi IV`` → ``haechi-iv``).
    """
    if kind == "countries":
        key = _lookup_key(raw)
        return _table().by_key.get(key)
    if kind == "crime-areas":
        slug = slugify(raw)
        return slug if slug in CRIME_AREAS else None
    if kind == "operations":
        return slugify(raw) or None
    return None


def slugify(name: str) -> str:
    """Lowercase ASCII, diacritics removed, runs of other characters as one ``-``."""
    spelled = name.translate(_LETTERS)
    ascii_text = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


def is_kind(kind: str) -> bool:
    """Whether ``kind`` is one of :data:`KINDS`."""
    return kind in get_args(Kind)


_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Letters that NFKD does not split into an ASCII letter and a mark.
_LETTERS = str.maketrans(
    {"ı": "i", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "Đ": "D",
     "ł": "l", "Ł": "L", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D"}
)  # fmt: skip

# -- one scan for countries and crime areas ------------------------------------------------


@dataclass(slots=True)
class _Hits:
    """What one pass over a release's lowered ``title\\n\\nbody`` found."""

    split: int
    """where the body starts in the joined text (the title's length + 2)"""
    countries: list[tuple[int, int, str]]
    """the country table's words as written, ``(start, end, word)``, in order, longest first"""
    stems: list[tuple[int, str]]
    """crime stems, ``(end, stem)`` with ``end`` the index of their last character"""


@cache
def _automaton() -> ahocorasick.Automaton:
    """Crime stems and the country table's words lowered, each with what it stands for.

    The country words are matched case-sensitively by the regex of :func:`_countries`;
    here they are found in lowered text (with every crime stem, in the same pass) and then
    checked as written, which finds the same occurrences: no word changes length when
    lowered, and none holds a final sigma, the one letter that lowers by context.
    """
    words: dict[str, list[str]] = {}
    for word in _table().by_text:
        lowered = word.lower()
        assert len(lowered) == len(word) and "Σ" not in word, word
        words.setdefault(lowered, []).append(word)
    automaton = ahocorasick.Automaton()
    for key in {*words, *_TERMS_BY_STEM}:
        stem = key if key in _TERMS_BY_STEM else ""
        automaton.add_word(key, (stem, tuple(words.get(key, ()))))
    automaton.make_automaton()
    return automaton


def _scan(joined: str, low: str, split: int) -> _Hits:
    countries: list[tuple[int, int, str]] = []
    stems: list[tuple[int, str]] = []
    for end, (stem, words) in _automaton().iter(low):
        if stem:
            stems.append((end, stem))
        for word in words:
            start = end - len(word) + 1
            if joined.startswith(word, start):
                countries.append((start, -end - 1, word))
    countries.sort()
    return _Hits(split, [(a, -b, w) for a, b, w in countries], stems)


def _country_matches(joined: str, hits: _Hits) -> Iterable[tuple[int, int, str]]:
    """The matches of ``_patterns().pattern.finditer`` over title and body, from ``hits``.

    That regex takes, at the first position where one matches, the longest word not
    followed by a word character or an apostrophe, then goes on after it.
    """
    position = 0
    size = len(joined)
    for start, end, word in hits.countries:
        if start < position:
            continue
        if end < size:
            after = joined[end]
            if after.isalnum() or after in "_’'":
                continue
        position = end
        yield start, end, word


def _countries_at(title: str, body: str, joined: str, hits: _Hits) -> set[str]:
    """:func:`_countries` from the hits of :func:`_scan` over ``joined``."""
    if not hits.countries:
        return set()
    by_text = _table().by_text
    codes: set[str] = set()
    for start, end, word in _country_matches(joined, hits):
        text, offset = (title, 0) if start < hits.split else (body, hits.split)
        start, end = start - offset, end - offset
        if start and (text[start - 1].isalnum() or text[start - 1] in ".’'-"):
            continue  # inside a word or an abbreviation
        code = by_text.get(word, "")
        if not code or code in codes:
            continue
        if word in _LANGUAGES and _is_language(text, start, end):
            continue
        if word in _PERSONISH and _is_person(text, start, end):
            continue
        if word == "Georgia" and _is_us_georgia(text, start, end):
            continue
        codes.add(code)
    return codes


def _crime_areas_at(title: str, body: str, low: str, hits: _Hits, title_case: bool) -> set[str]:
    """:func:`_crime_areas` from the hits of :func:`_scan`."""
    if not hits.stems:
        return set()
    split = hits.split
    about = _ABOUT.search(body)
    cut = split + (about.start() if about else len(body))
    if about:
        body = body[: about.start()]  # "About Europol" and what follows: the agency's own words
    title_hits = [hit for hit in hits.stems if hit[0] < split]
    body_hits = [hit for hit in hits.stems if split <= hit[0] < cut]
    areas: set[str] = set()
    if title_hits:
        areas = _areas_in(title, low[: split - 2], title_hits, 0, names=not title_case)
    if body_hits:
        areas |= _areas_in(body, low[split:cut], body_hits, split, names=True, boilerplate=True)
    return areas


# -- paragraphs ----------------------------------------------------------------------------

# "LYON, France –", "THE HAGUE, Netherlands —", "SINGAPORE –", "LYON/NEW YORK –": a place
# in capitals, maybe a country after a comma, then a dash. Only at a paragraph's start.
_DATELINE = re.compile(
    r"[A-Z][A-Z.'’ -]*[A-Z.](?:/[A-Z][A-Z.'’ -]*[A-Z.])*"
    r"(?:,\s+[A-Z][\w.'’ -]{1,40}?)?\s+[–—-]\s+"
)


def _strip_dateline(paragraph: str) -> str:
    match = _DATELINE.match(paragraph)
    return paragraph[match.end() :] if match else paragraph


# -- countries -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    names: Mapping[str, str]
    """code → display name"""
    by_text: Mapping[str, str]
    """text as matched (as written or in capitals) → code; "" for a look-alike phrase"""
    by_key: Mapping[str, str]
    """lookup key of a code, name, alias or adjective → code (for URLs)"""


@dataclass(frozen=True, slots=True)
class _Patterns:
    """The country table as regexes: only for text whose lowercase changes length.

    Apart from the table because compiling them takes about as long as tagging a few
    thousand releases: a sync that adds one release, or a web worker that names a
    country, must not pay for them.
    """

    pattern: re.Pattern[str]
    capitals: re.Pattern[str]
    """``pattern`` without the words that start in lowercase ("the Netherlands"): it need
    only stop at capitals, so it is faster; the same matches when none of those is in a text"""
    lowercase: tuple[str, ...]
    """the words left out of ``capitals``"""


# Phrases that contain a country word but are not about that country. Matched by the
# same trie, they win as the longest match at their position and count for nothing.
_LOOK_ALIKES = (
    # international bodies
    "United Nations", "Organization of American States", "Organisation of American States",
    "Inter-American", "Pan-American", "African Union", "Arab League", "League of Arab States",
    "Economic Community of West African States", "Economic Community of Central African States",
    "Southern African Development Community", "Commonwealth of Independent States",
    "Council of Europe", "Association of Southeast Asian Nations",
    "Community of Latin American and Caribbean States",
    # regions and seas
    "Latin America", "Latin American", "South America", "South American", "North America",
    "North American", "Central America", "Central American", "American Indian",
    "Indian Ocean", "Indian Ocean Commission", "South China Sea", "Niger Delta",
    "Niger River", "New Guinea", "Jordan River", "Jordan Valley", "Guinea Gulf",
    "Gulf of Guinea", "Strait of Gibraltar", "Straits of Gibraltar",
    # cities and US states
    "Mexico City", "Guatemala City", "Panama City", "Kuwait City", "Luxembourg City",
    "Djibouti City", "New Mexico", "New Jersey", "Jersey City", "Georgia Tech",
    # animals and food
    "Guinea pig", "Guinea pigs", "Guinea fowl", "Turkey sandwich", "Turkey sandwiches",
    "Turkey farm", "Turkey farms", "Turkey farmers", "Turkey vulture", "Turkey meat",
)  # fmt: skip

# Adjectives that are also languages, and the words that show a language use.
_LANGUAGES = frozenset(
    "Albanian Armenian Azerbaijani Belarusian Bosnian Bulgarian Burmese Chinese Croatian "
    "Czech Danish Dutch Estonian Filipino Finnish French Georgian German Greek Hungarian "
    "Icelandic Indonesian Irish Italian Japanese Kazakh Korean Kyrgyz Lao Latvian "
    "Lithuanian Luxembourgish Macedonian Malagasy Maltese Mongolian Montenegrin Nepali "
    "Norwegian Polish Portuguese Romanian Russian Serbian Slovak Slovenian Somali Spanish "
    "Swedish Tajik Thai Turkish Turkmen Ukrainian Uzbek Vietnamese Welsh".split()
)
_LANGUAGE_AFTER = re.compile(
    r"[\s-]*(?:speaking|speakers?|languages?|translations?|versions?|subtitles|"
    r"interpreters?|interpretation|dialects?|-language|native|literature|lessons|courses?)\b",
    re.IGNORECASE,
)
# Languages that are no country's adjective here, so that lists of languages are followed.
_OTHER_LANGUAGES = frozenset(
    "English Arabic Hindi Persian Farsi Urdu Swahili Hebrew Malay Tagalog Catalan Basque "
    "Pashto Dari Kurdish Tigrinya Amharic Bengali Punjabi Tamil".split()
)
_LANGUAGE_BEFORE = re.compile(
    r"\b(?:in|into|from|speak|speaks|spoke|spoken|speaking|learn|learning|translated|"
    r"translate|translating)\s+$",
    re.IGNORECASE,
)
_CHAIN_BEFORE = re.compile(r"([A-Z][a-z]+)(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)$")
# Words that may follow a language without making it an adjective of a noun.
_NOT_A_NOUN = frozenset(
    "and or by to on at for with as is was were are be been but if so since while when "
    "before after because than then the a an".split()
)

_PERSONISH = frozenset(
    "Jordan Chad Georgia Israel India Kenya Holland Ireland Jamaica Jersey Cuba".split()
)
_PERSON_BEFORE = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Sir|Dame|Judge|Officer|Inspector|Sergeant|Agent)\.?|"
    r"\b(?P<first>[A-Z][a-z]+)) $"
)
_PERSON_AFTER = re.compile(r" (?P<next>[A-Z][a-z]+)\b")
# Capitalised words that may stand before a country name without making it a surname.
_NOT_FIRST_NAMES = frozenset(
    "In From To With And But For On At By Of The Both Including Like Unlike While When "
    "After Before Since Across Between Against Via Also Only Neighbouring Neighboring "
    "Southern Northern Eastern Western Central Hashemite Kingdom Republic State "
    "Police Authorities Officers Europol Eurojust Interpol INTERPOL Frontex NATO EPPO OLAF "
    "Visit Visits Supports Support Joins Join Welcomes Meets Praises Thanks Helps "
    "Where Whereas Although Though Because Whether Then Today Yesterday Here There".split()
)
# Capitalised words that may follow a country name without making it a first name.
_INSTITUTION_WORDS = frozenset(
    "Police National Federal Government Ministry Minister Armed Army Navy Air Border Coast "
    "Customs Prime President Embassy Republic Office Gendarmerie Public Central Royal "
    "State General Court Courts Supreme Directorate Department Agency Authority "
    "Authorities Security Intelligence Financial Tax Post Telecom".split()
)
_GEORGIA_US = re.compile(r",?\s+(?:USA|U\.S\.A?\.?|US|United States)\b|\s+(?:State|state)\b")
_GEORGIA_US_BEFORE = re.compile(
    r"(?:\b(?:state|State|US state|U\.S\. state) of|"
    r"\b(?:Atlanta|Savannah|Augusta|Athens|Macon|Columbus|Alabama|Florida|Carolina|Tennessee),)"
    r"\s$"
)


def _lookup_key(raw: str) -> str:
    """``Côte d’Ivoire``, ``cote-d-ivoire`` and ``cote_divoire`` all become ``cotedivoire``."""
    return slugify(raw).replace("-", "")


@cache
def _table() -> _Table:
    text = resources.files("feeds").joinpath("data/countries.tsv").read_text(encoding="utf-8")
    names: dict[str, str] = {}
    by_text: dict[str, str] = {}
    by_key: dict[str, str] = {}
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    for code, name, aliases, adjectives in rows[1:]:
        names[code] = name
        by_key[code] = code
        words = [name, *_split(aliases), *_split(adjectives)]
        for word in _variants(words):
            by_text.setdefault(word, code)
            by_key.setdefault(_lookup_key(word), code)
    for phrase in _LOOK_ALIKES:
        by_text[phrase] = ""
    for word in list(by_text):
        if len(word) >= 4:  # "SPAIN" in a capitalised title; "US" and "UK" are already
            by_text.setdefault(word.upper(), by_text[word])
    return _Table(names, by_text, by_key)


@cache
def _patterns() -> _Patterns:
    by_text = _table().by_text
    # No lookbehind: it would keep re from skipping to the possible first letters.
    pattern = re.compile(_trie_regex(by_text) + r"(?![\w’'])")
    lowercase = tuple(word for word in by_text if not word[0].isupper())
    capitals = re.compile(
        _trie_regex(word for word in by_text if word[0].isupper()) + r"(?![\w’'])"
    )
    return _Patterns(pattern, capitals, lowercase)


def _split(field: str) -> list[str]:
    return [value for value in field.split("|") if value]


def _variants(words: Iterable[str]) -> Iterable[str]:
    """Each word as written, with "&" as "and", "St." as "Saint" and "St", and both apostrophes."""
    for word in words:
        forms = {word, word.replace(" & ", " and ")}
        forms |= {f.replace("St. ", "Saint ") for f in forms} | {
            f.replace("St. ", "St ") for f in forms
        }
        forms |= {f.replace("'", "’") for f in forms}
        yield from sorted(forms)


_Trie = dict[str, "_Trie"]


def _trie_regex(words: Iterable[str]) -> str:
    """One regex matching any of ``words``, longest first, as a trie (fast in ``re``)."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _node_regex(trie)


def _node_regex(node: _Trie) -> str:
    branches = [
        re.escape(char) + _node_regex(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # A word ends here and longer ones go on: the optional group is greedy, so the
    # longest phrase wins ("Papua New Guinea" over a shorter word at the same place).
    return f"(?:{body})?" if "" in node else body


def _countries(title: str, body: str) -> set[str]:
    by_text = _table().by_text
    patterns = _patterns()
    codes: set[str] = set()
    for text in (title, body):
        # Same matches: a word that is not in the text cannot match.
        lowercase = any(word in text for word in patterns.lowercase)
        pattern = patterns.pattern if lowercase else patterns.capitals
        for match in pattern.finditer(text):
            word = match.group()
            start = match.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in ".’'-"):
                continue  # inside a word or an abbreviation
            code = by_text.get(word, "")
            if not code or code in codes:
                continue
            if word in _LANGUAGES and _is_language(text, match.start(), match.end()):
                continue
            if word in _PERSONISH and _is_person(text, match.start(), match.end()):
                continue
            if word == "Georgia" and _is_us_georgia(text, match.start(), match.end()):
                continue
            codes.add(code)
    return codes


_CHAIN = re.compile(r"\s*(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)([A-Z][a-z]+)")


def _is_language(text: str, start: int, end: int) -> bool:
    if _LANGUAGE_AFTER.match(text, end):
        return True
    # Follow a list of languages ("English, Spanish and Portuguese") to its end.
    position = end
    while (link := _CHAIN.match(text, position)) and (
        link.group(1) in _LANGUAGES or link.group(1) in _OTHER_LANGUAGES
    ):
        position = link.end()
    # Walk back over a list of languages ("in English, Spanish") to the word before it.
    while (link := _CHAIN_BEFORE.search(text, max(0, start - 30), start)) and (
        link.group(1) in _LANGUAGES or link.group(1) in _OTHER_LANGUAGES
    ):
        start = link.start()
    if not _LANGUAGE_BEFORE.search(text, max(0, start - 30), start):
        return False
    rest = text[position : position + 30].lstrip()
    next_word = re.match(r"[A-Za-z]+", rest)
    return next_word is None or next_word.group().lower() in _NOT_A_NOUN


def _is_person(text: str, start: int, end: int) -> bool:
    before = _PERSON_BEFORE.search(text, max(0, start - 20), start)
    if before and (before.group("first") or "") not in _NOT_FIRST_NAMES:
        first = before.group("first")
        if first is None or _table().by_text.get(first) is None:
            return True
    after = _PERSON_AFTER.match(text, end)
    return bool(after and after.group("next") not in _INSTITUTION_WORDS)


def _is_us_georgia(text: str, start: int, end: int) -> bool:
    return bool(
        _GEORGIA_US.match(text, end) or _GEORGIA_US_BEFORE.search(text, max(0, start - 20), start)
    )


# -- operations ----------------------------------------------------------------------------

_EDITION = r"(?:[IVX]{1,5}|\d{1,3})"
_UPPER = "A-ZÀ-ÖØ-ÞĆČĐĘĚŁŃŇŐŘŚŠŞŢŤŮŰŹŻŽĞİ"
_WORD = rf"[{_UPPER}][\w’'&]*(?:-[\w’']+)*"
_PART = rf"(?:{_WORD}|\d{{1,3}}\b)"
_OPERATION_NAME = (
    r"(?:code-?named +)?"
    r"(?:[‘'\"“](?P<quoted>[^’'\"”\n]{2,40})[’'\"”]"
    rf"|(?P<name>{_WORD}(?: +{_PART}){{0,3}}))"
)
# Two patterns. The first is run only when "Operation" or "OPERATION" is in the text;
# each of its alternatives starts with a literal letter, so that re only tries it at a
# "J" or an "O" (with "(?:Joint +)?" first it tried every position: 40 µs a release).
# The alternatives are those of "(?:Joint +)?Operations?|(?:JOINT +)?OPERATIONS?" in
# the order re tries them, so the matches are the same. The second starts with a
# literal word, which re finds as fast as ``in`` would.
_OPERATION = re.compile(
    r"(?P<kw>Joint +Operations?|Operations?|JOINT +OPERATIONS?|OPERATIONS?) +" + _OPERATION_NAME
)
_CODENAMED = re.compile(r"operation +(?:codenamed|code-named|dubbed) +" + _OPERATION_NAME)
_OPERATION_WORDS = ("Operation", "OPERATION")
_NAME_WORD = re.compile(rf"{_WORD}|\d{{1,3}}\b")
_AND_NAME = re.compile(rf"(?:, *| +and +|, +and +)(?P<name>{_WORD}(?: +{_PART}){{0,3}})")
_IS_EDITION = re.compile(rf"{_EDITION}|\d{{4}}")
# After "Operation": words that make a generic phrase, not a name.
_GENERIC = frozenset(
    "Task Team Teams Centre Center Room Rooms Plan Plans Unit Units Day Days Division "
    "Manager Managers Coordination Support Directorate Department Office Command Commander "
    "Area Areas Phase Mission Missions Headquarters Control Analysis Meeting Meetings Leader "
    "Officer Officers Lead The A An In On Of For And Is Was Has Had Will Was Were To At By "
    "With From Against This That These Those Its Their Our Director Directors Network Networks "
    "Against Programme Program Project Procedure Procedures".split()
)
# Words that end a name: agencies, months, and sentence starters that follow a name.
_STOP = frozenset(
    "INTERPOL Interpol Europol EUROPOL Eurojust Frontex EPPO OLAF NATO The In On Of And For "
    "January February March April May June July August September October November December "
    "This That It He She They We Officers Police Authorities".split()
)


def _operations(title: str, body: str, title_case: bool) -> list[Topic]:
    found: dict[str, str] = {}
    for text, short in ((title, title_case), (body, False)):
        matches: list[re.Match[str]] = []
        if any(word in text for word in _OPERATION_WORDS):  # a fast scan before the regex
            matches += _OPERATION.finditer(text)
        matches += _CODENAMED.finditer(text)
        for match in matches:
            if match.start() and (
                text[match.start() - 1].isalnum() or text[match.start() - 1] == "-"
            ):
                continue
            keyword = match.groupdict().get("kw") or ""
            capitals = keyword.isupper()
            if match.group("quoted"):
                _add(found, match.group("quoted"))
                continue
            names = [match.group("name")]
            position = match.end()
            # "Operations Athena II and Pandora IV": every name of the list.
            while keyword.lower().endswith("operations") and (
                more := _AND_NAME.match(text, position)
            ):
                names.append(more.group("name"))
                position = more.end()
            for raw in names:
                name = _clean_name(raw, short or capitals)
                if name:
                    _add(found, name)
    slugs = sorted(found)
    kept = [s for s in slugs if not any(o.startswith(s + "-") for o in slugs)]
    return [Topic("operations", slug, found[slug]) for slug in kept]


def _clean_name(raw: str, short: bool) -> str:
    words = _NAME_WORD.findall(raw)
    if not words or words[0] in _GENERIC or words[0] in _STOP:
        return ""
    kept = [words[0]]
    for word in words[1:]:
        if _IS_EDITION.fullmatch(word):
            kept.append(word)
            break
        if short or word in _STOP or word.isupper() != words[0].isupper():
            break
        kept.append(word)
    return " ".join(kept)


def _add(found: dict[str, str], name: str) -> None:
    slug = slugify(name)
    if not slug:
        return
    current = found.get(slug)
    # Prefer the name as written in mixed case over capitals ("Pangea" over "PANGEA").
    if current is None or (current.isupper() and not name.isupper()):
        found[slug] = name


def _is_title_case(title: str) -> bool:
    words = [w for w in title.split() if len(w) >= 4]
    if len(words) < 3:
        return False
    capitalised = sum(1 for w in words if w[0].isupper())
    return capitalised / len(words) >= 0.6


# -- crime areas ---------------------------------------------------------------------------

_AREA_TERMS: Mapping[str, tuple[str, ...]] = {
    "drugs": (
        r"drugs?(?:[- ]trafficking| traffickers?| smuggling| dealers?| dealing| labs?"
        r"| laborator(?:y|ies)| cartels?| gangs?| seizures?)",
        r"(?<!falsified )(?<!counterfeit )(?<!fake )(?<!cancer )drugs",
        r"narcotics?",
        r"cocaine",
        r"heroin",
        r"cannabis",
        r"marijuana",
        r"hashish",
        r"methamphetamine",
        r"amphetamines?",
        r"mdma",
        r"ecstasy",
        r"fentanyl",
        r"captagon",
        r"synthetic (?:opioids?|drugs)",
        r"illicit drugs",
    ),
    "firearms": (
        r"firearms?",
        r"handguns?",
        r"guns?",
        r"pistols?",
        r"rifles?",
        r"grenades?",
        r"arms trafficking",
        r"weapons? trafficking",
        r"trafficking (?:of|in) weapons",
        r"illicit weapons",
        r"illegal weapons",
        r"smuggling (?:of )?weapons",
    ),
    "migrant-smuggling": (
        r"migrant[- ]smuggl\w*",
        r"smuggl\w+ (?:of )?(?:\w+ ){0,4}migrants",
        r"people[- ]smuggl\w*",
        r"human smuggl\w*",
        r"facilitat\w+ (?:of )?(?:illegal|irregular) (?:immigration|migration)",
        r"facilitators",
        r"smugglers? of (?:\w+ ){0,2}migrants",
    ),
    "human-trafficking": (
        r"human[- ]trafficking",
        r"trafficking (?:in|of) human beings",
        r"trafficking in persons",
        r"human traffickers",
        r"victims of (?:human )?trafficking",
        r"trafficked",
        r"labou?r exploitation",
        r"trafficking for (?:the purpose of )?sexual exploitation",
        r"(?<!children )(?<!minors )sexually exploited",
        r"forced labou?r",
        r"forced prostitution",
        r"forced to beg",
        r"forced begging",
        r"forced criminality",
        r"servitude",
        r"thb",
    ),
    "cybercrime": (
        r"cyber ?crimes?",
        r"cyber-crimes?",
        r"cyber-?attacks?",
        r"cyber attacks?",
        r"ransomware",
        r"malware",
        r"botnets?",
        r"hack(?:ing|ers?|ed)",
        r"ddos",
        r"spyware",
        r"infostealers?",
        r"cyber-enabled",
    ),
    "child-sexual-exploitation": (
        r"child(?:ren)?(?:’s|'s)? sexual (?:abuse|exploitation)",
        r"child abuse",
        r"sexual abuse of (?:children|minors)",
        r"abuse of children",
        r"csam",
        r"child pornography",
        r"child exploitation",
        r"sexual violation of minors",
        r"online grooming",
    ),
    "fraud": (
        r"fraud(?:s|sters?|ulent(?:ly)?)?",
        r"scams?",
        r"scammers?",
        r"swindl\w*",
        r"phishing",
        r"defraud\w*",
        r"ponzi",
        r"missing trader",
        r"vat carousel",
        r"carousel fraud",
    ),
    "money-laundering": (
        r"money[- ]laundering",
        r"launder\w*",
        r"money mules?",
        r"underground banking",
    ),
    "terrorism": (
        r"terror\w*",
        r"jihad\w*",
        r"violent extremis\w*",
        r"radicali[sz]ation",
        r"foreign fighters",
    ),
    "environmental-crime": (
        r"environmental crimes?",
        r"waste trafficking",
        r"illegal waste",
        r"waste (?:crime|shipments?)",
        r"wildlife (?:trafficking|crime)",
        r"poach\w+",
        r"ivory(?!\s+coast)",
        r"illegal logging",
        r"timber trafficking",
        r"illegal fishing",
        r"endangered species",
        r"protected species",
        r"polluti\w+",
        r"polluting",
        r"f-gas\w*",
        r"hydrofluorocarbons",
    ),
    "property-crime": (
        r"burglar\w*",
        r"robber\w*",
        r"robbed",
        r"thefts?",
        r"thieves",
        r"atm attacks?",
        r"blow(?:ing)? up atms",
        r"stolen (?:vehicles|cars|goods|property|art)",
        r"cultural goods",
        r"antiquities",
        r"looted",
        r"looting",
        r"pickpocket\w*",
        r"stole",
    ),
    "counterfeiting": (
        r"counterfeit\w*",
        r"falsified (?:medicines|medical products|\w+ drugs)",
        r"fake (?:goods|medicines|toys|products)",
        r"intellectual property",
        r"ip crime",
        r"pirated",
        r"piracy",
        r"forged (?:wine|goods|labels)",
    ),
    "corruption": (r"corrupt\w*", r"brib\w+", r"kickbacks?", r"abuse of office"),
    "core-international-crimes": (
        r"war crimes?",
        r"genocide",
        r"crimes against humanity",
        r"core international crimes",
        r"atrocity crimes",
    ),
}
"""Terms of each area, as regexes over lowercased text; each starts with a literal stem."""


def _stem(term: str) -> str:
    """The literal characters every match of ``term`` starts with (after a lookbehind)."""
    term = re.sub(r"^(?:\(\?<!.*?\))+", "", term)
    literal = re.match(r"[a-z0-9 '’-]*", term)
    stem = literal.group() if literal else ""
    if term[len(stem) : len(stem) + 1] in ("?", "*", "{"):
        stem = stem[:-1]  # the last character is optional
    return stem


def _stem_table() -> tuple[ahocorasick.Automaton, dict[str, list[tuple[str, re.Pattern[str]]]]]:
    terms: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for area, alternatives in _AREA_TERMS.items():
        for term in alternatives:
            terms.setdefault(_stem(term), []).append((area, re.compile(rf"(?:{term})\b")))
    # Aho-Corasick, not a regex: stems start with most lowercase letters, so a regex
    # would try its alternatives at every position (measured: 4x slower).
    automaton = ahocorasick.Automaton()
    for stem in terms:
        automaton.add_word(stem, stem)
    automaton.make_automaton()
    return automaton, terms


_STEMS, _TERMS_BY_STEM = _stem_table()
_BOILERPLATE = re.compile(
    r"fight(?:ing|s)? against|mandate|empact|european multidisciplinary platform"
    r"|priorit(?:y|ies)|supports? (?:the )?(?:eu )?member states|preventing and combating"
)
_ABOUT = re.compile(r"\n\nAbout (?:the )?[A-Z][\w ]{1,40}(?:\n\n|$)")
# Title Case names of agencies and units: a term inside one does not count.
_PROPER_RUN = re.compile(
    r"(?:[A-Z][\w’'-]*)(?:\s+(?:(?:of|on|for|and|against|the|in|to|&)\s+)*[A-Z][\w’'-]*)+"
)
_INSTITUTION = re.compile(
    r"\b(?:Office|Centre|Center|Agency|Unit|Network|Administration|Division|Directorate"
    r"|Department|Taskforce|Task Force|Coalition|Programme|Bureau|Service|Team|Command"
    r"|Platform|Section|Squad|Cell|Branch|Prosecution|Convention|Protocol)\b"
)
_SENTENCE_ENDS = (". ", ".” ", "\n")  # "!" and "?" end few sentences in a release


def _crime_areas(title: str, body: str, title_case: bool) -> set[str]:
    about = _ABOUT.search(body)
    if about:
        body = body[: about.start()]  # "About Europol" and what follows: the agency's own words
    low_title, low_body = title.lower(), body.lower()
    return _areas_in(title, low_title, _STEMS.iter(low_title), 0, not title_case) | (
        _areas_in(body, low_body, _STEMS.iter(low_body), 0, names=True, boilerplate=True)
    )


def _areas_in(
    text: str,
    low: str,
    hits: Iterable[tuple[int, str]],
    offset: int,
    names: bool,
    boilerplate: bool = False,
) -> set[str]:
    """Areas with a term in ``text``, outside agency names and boilerplate sentences.

    ``low`` is ``text`` lowered, ``hits`` the stems found in it as ``(end, stem)`` with
    ``end`` counted from ``offset`` characters before ``text``.
    """
    found: set[str] = set()
    institution_spans: list[tuple[int, int]] | None = None
    boilerplate_at: dict[int, bool] = {}
    for end, stem in hits:
        start = end - offset - len(stem) + 1
        if start and low[start - 1].isalnum():
            continue  # inside a word: "begun" is not "gun"
        for area, term in _TERMS_BY_STEM[stem]:
            if area in found or not term.match(low, start):
                continue
            if names and text[start].isupper():
                if institution_spans is None:
                    institution_spans = _institution_spans(text)
                if any(a <= start < b for a, b in institution_spans):
                    continue
            if boilerplate and _is_boilerplate(low, start, boilerplate_at):
                continue
            found.add(area)
    return found


def _is_boilerplate(low: str, position: int, seen: dict[int, bool]) -> bool:
    start = max(low.rfind(end, 0, position) for end in _SENTENCE_ENDS)
    if start not in seen:
        ends = [i for end in _SENTENCE_ENDS if (i := low.find(end, position)) >= 0]
        sentence = low[start + 1 : min(ends) if ends else len(low)]
        seen[start] = _BOILERPLATE.search(sentence) is not None
    return seen[start]


def _institution_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _PROPER_RUN.finditer(text) if _INSTITUTION.search(m.group())]
