"""The fast :func:`feeds.topics.extract` gives exactly what the rules' first version gave.

``tests/topics_reference.py`` is a frozen copy of ``feeds/topics.py`` as it was when
the labelled sets first met their targets (``RULES_VERSION`` 1): a plain,
slower implementation of the same rules. ``feeds.topics`` was then rewritten
for speed (issue 11: tagging must cost under 15% of a first sync), and a speed-up
must not change a single topic: a reader who follows a country would see
releases come and go, and the stored topics would no longer match the rules
version they were tagged with.

So every test here asserts that production and reference return the same tuple
of topics (kind, slug and display name, in order) for the same text:

- every release of the labelled sets and the real seed file;
- a few thousand releases of the benchmark's generated corpus (``bench/seedgen.py``);
- Hypothesis: release-like text assembled from the vocabulary the rules look at
  (country names, aliases, demonyms and look-alike phrases from the country table,
  languages, first names and titles, "Operation X" in its spellings, crime terms,
  boilerplate and "About X" headings, datelines), in varied case and punctuation.

When the rules change on purpose, bump ``RULES_VERSION`` and replace the
reference with the new rules' plain version; never edit the two apart.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds import topics
from feeds.parse import parse

from . import topics_reference as reference

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "topics"
LABELLED = [
    ROOT / "seeds" / "000_cd6cbdc3db3c9078.txt",
    DATA / "dev.txt",
    DATA / "holdout.txt",
]
GENERATED = 3000


def seedgen() -> ModuleType:
    """``bench/seedgen.py`` (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("seedgen", ROOT / "bench" / "seedgen.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same(title: str, paragraphs: list[str] | tuple[str, ...]) -> None:
    expected = [(t.kind, t.slug, t.name) for t in reference.extract(title, paragraphs)]
    got = topics.extract(title, paragraphs)
    assert all(type(t) is topics.Topic for t in got)
    assert [(t.kind, t.slug, t.name) for t in got] == expected, (title, paragraphs)


def test_the_reference_is_the_current_rules_version() -> None:
    # A rules change must come with a new reference (see the module docstring).
    assert topics.RULES_VERSION == reference.RULES_VERSION == 1


@pytest.mark.parametrize("path", LABELLED, ids=lambda p: p.name)
def test_labelled_releases_get_the_reference_topics(path: Path) -> None:
    drafts, _ = parse(path.read_text(encoding="utf-8"), path.name)
    assert drafts
    found = 0
    for draft in drafts:
        same(draft.title, draft.paragraphs)
        found += len(topics.extract(draft.title, draft.paragraphs))
    assert found >= len(drafts)  # real text: the comparison is not between empty tuples


def test_generated_releases_get_the_reference_topics() -> None:
    text = "".join(seedgen().corpus_release(n) for n in range(GENERATED))
    drafts, problems = parse(text, "corpus.txt")
    assert not problems and len(drafts) == GENERATED
    for draft in drafts:
        same(draft.title, draft.paragraphs)


def test_paragraphs_one_by_one_get_the_reference_topics() -> None:
    # Each labelled paragraph alone, as a title and as a body: other contexts, other edges.
    for path in LABELLED:
        drafts, _ = parse(path.read_text(encoding="utf-8"), path.name)
        for draft in drafts:
            for paragraph in draft.paragraphs:
                same(paragraph, [])
                same("", [paragraph])
                same(paragraph.upper(), [paragraph.lower()])


# -- release-like text from the rules' own vocabulary --------------------------------------


def _words(pattern: str) -> list[str]:
    return sorted(set(re.findall(r"[A-Za-z][\w’'-]*", pattern)))


_TABLE = reference._table()
COUNTRY_WORDS = sorted(_TABLE.by_text)  # names, aliases, demonyms, look-alikes, CAPITALS
NAMES = sorted(
    reference._LANGUAGES
    | reference._OTHER_LANGUAGES
    | reference._PERSONISH
    | reference._NOT_FIRST_NAMES
    | reference._INSTITUTION_WORDS
    | {"Michael", "Chad", "Anna", "Atlanta", "Savannah", "Lyon", "Madrid", "Mr", "Dr.", "Judge"}
)
OPERATION_WORDS = sorted(
    reference._GENERIC
    | reference._STOP
    | {"Pangea", "PANGEA", "Haechi", "HAECHI", "EMMA", "Lionfish", "Trigger", "Ciconia"}
    | {"Alba", "Sunbird", "Jackal", "First Light", "Global Chain", "Ágata", "Łódź", "Øresund"}
    | {"XVI", "XVII", "IV", "-IV", "8", "2023", "II", "III"}
)
OPERATION_KEYWORDS = [
    "Operation",
    "Operations",
    "OPERATION",
    "OPERATIONS",
    "Joint Operation",
    "JOINT OPERATION",
    "operation",
    "Operational",
    "an operation codenamed",
    "the operation code-named",
    "operation dubbed",
    "codenamed",
]
CRIME_WORDS = sorted(
    set(reference._TERMS_BY_STEM)
    | {
        "drug trafficking", "drugs", "falsified drugs", "cancer drugs", "cocaine", "firearms",
        "gun", "guns", "begun", "migrant smuggling", "smuggling of 40 migrants",
        "facilitation of illegal immigration", "human trafficking", "trafficking in persons",
        "children sexually exploited", "sexually exploited", "labour exploitation",
        "cybercrime", "cyber-attacks", "hacked", "hackers", "child sexual abuse",
        "children’s sexual exploitation", "fraudsters", "fraudulently", "scams", "defrauded",
        "money-laundering", "laundered", "terrorists", "terrorism", "jihadist",
        "radicalisation", "ivory", "Ivory Coast", "ivory coast", "poaching", "pollution",
        "f-gases", "burglaries", "robbery", "thefts", "stolen cars", "stole", "counterfeit",
        "falsified medicines", "fake goods", "corruption", "bribery", "bribes",
        "war crimes", "genocide", "crimes against humanity",
    }
)  # fmt: skip
BOILERPLATE = [
    "Europol supports Member States in the fight against terrorism, cybercrime and drugs.",
    "This is one of the EU priorities.",
    "The EMPACT mandate covers fraud.",
    "the fight against corruption",
    "fighting against firearms trafficking",
    "preventing and combating money laundering",
    "European Multidisciplinary Platform Against Criminal Threats",
]
INSTITUTIONS = [
    "European Cybercrime Centre",
    "United Nations Office on Drugs and Crime",
    "Anti-Fraud Office",
    "Counter Terrorism Unit",
    "Migrant Smuggling Centre",
    "Drugs Squad",
    "Firearms Expert Network",
    "the Intellectual Property Crime Coordinated Coalition",
]
FILLER = _words(
    "the a an and or of in into from to by with on at for as is was police officers "
    "investigators arrested seized suspects network language speaking speakers version "
    "custody nationals authorities state State of USA US sandwich farm pig City River "
    "said met raids against speak translated learn native courses"
)
SEPARATORS = [" ", " ", " ", ", ", ". ", ".” ", " – ", "-", "\n", "’s ", "'s ", " (", ") ", "/"]
HEADINGS = ["About Europol", "About the European Cybercrime Centre", "About INTERPOL"]
DATELINES = ["LYON, France – ", "THE HAGUE, Netherlands – ", "SINGAPORE – ", "LYON/NEW YORK – "]


PIECE_KINDS = (
    ["country"] * 4 + ["name"] * 2 + ["op"] * 2 + ["crime"] * 3 + ["filler"] * 4
    + ["boilerplate", "institution", "quote"]
)  # fmt: skip


def _cased(draw: st.DrawFn, word: str) -> str:
    case = draw(st.sampled_from(["as is"] * 6 + ["upper", "lower", "title"]))
    if case == "upper":
        return word.upper()
    if case == "lower":
        return word.lower()
    if case == "title":
        return word.title()
    return word


@st.composite
def _piece(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(PIECE_KINDS))
    if kind == "country":
        return _cased(draw, draw(st.sampled_from(COUNTRY_WORDS)))
    if kind == "name":
        return draw(st.sampled_from(NAMES))
    if kind == "op":
        keyword = draw(st.sampled_from(OPERATION_KEYWORDS))
        names = draw(st.lists(st.sampled_from(OPERATION_WORDS), min_size=1, max_size=4))
        quote = draw(st.sampled_from(["", "", "", "'", "‘", "“", '"']))
        close = {"‘": "’", "“": "”"}.get(quote, quote)
        return f"{keyword} {quote}{' '.join(names)}{close}"
    if kind == "crime":
        return _cased(draw, draw(st.sampled_from(CRIME_WORDS)))
    if kind == "boilerplate":
        return draw(st.sampled_from(BOILERPLATE))
    if kind == "institution":
        return draw(st.sampled_from(INSTITUTIONS))
    if kind == "quote":
        return draw(st.sampled_from(["“", "”", "'", "’", "‘", '"', "&", "St.", "–", "—"]))
    return draw(st.sampled_from(FILLER))


@st.composite
def _text(draw: st.DrawFn, max_pieces: int = 12) -> str:
    pieces = draw(st.lists(_piece(), max_size=max_pieces))
    parts: list[str] = []
    for piece in pieces:
        parts.append(piece)
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts[:-1])


@st.composite
def release_like(draw: st.DrawFn) -> tuple[str, list[str]]:
    title = draw(_text(max_pieces=8))
    paragraphs: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.sampled_from([""] * 4 + DATELINES))
        heading = draw(st.sampled_from([None] * 8 + HEADINGS))
        if heading:
            paragraphs.append(heading)
        paragraphs.append(start + draw(_text()))
    return title, paragraphs


@settings(max_examples=1500, deadline=None)
@given(release_like())
def test_release_like_text_gets_the_reference_topics(release: tuple[str, list[str]]) -> None:
    title, paragraphs = release
    same(title, paragraphs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.lists(st.text(max_size=200), max_size=3))
def test_arbitrary_text_gets_the_reference_topics(title: str, paragraphs: list[str]) -> None:
    same(title, paragraphs)
