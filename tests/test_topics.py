"""Topics found in release text: the rules one by one, and precision/recall on labelled sets.

The labelled sets live in ``tests/data/topics/``: ``dev`` (the releases of
``seeds/`` plus ``dev.txt``, written for the hard cases; the rules were tuned on
it) and ``holdout`` (``holdout.txt``, written and labelled before the rules
existed, never tuned to). Each ``<split>.json`` maps a release title to its true
topics. Run ``.venv/bin/pytest tests/test_topics.py -q -s`` to see the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from feeds import topics
from feeds.model import Draft
from feeds.parse import parse
from feeds.topics import KINDS, Kind, Topic, extract, resolve

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "topics"
SPLITS: dict[str, list[Path]] = {
    "dev": [ROOT / "seeds" / "000_cd6cbdc3db3c9078.txt", DATA / "dev.txt"],
    "holdout": [DATA / "holdout.txt"],
}
# (precision, recall) that the holdout must reach, per kind (issue 11).
TARGETS: dict[Kind, tuple[float, float]] = {
    "countries": (0.97, 0.95),
    "operations": (0.95, 0.95),
    "crime-areas": (0.85, 0.80),
}


def releases(split: str) -> Iterator[tuple[Draft, dict[str, list[str]]]]:
    labels = json.loads((DATA / f"{split}.json").read_text(encoding="utf-8"))
    seen = set()
    for path in SPLITS[split]:
        drafts, problems = parse(path.read_text(encoding="utf-8"), path.name)
        assert not problems
        for draft in drafts:
            seen.add(draft.title)
            yield draft, labels[draft.title]
    assert seen == set(labels), "every labelled title is a release and every release is labelled"


def scores(split: str) -> tuple[dict[Kind, tuple[float, float]], list[str]]:
    """Precision and recall per kind over the split, and one line per wrong release."""
    counts = {kind: [0, 0, 0] for kind in KINDS}  # true positives, found, expected
    errors: list[str] = []
    for draft, truth in releases(split):
        got = extract(draft.title, draft.paragraphs)
        for kind in KINDS:
            found = {t.slug for t in got if t.kind == kind}
            expected = set(truth[kind])
            counts[kind][0] += len(found & expected)
            counts[kind][1] += len(found)
            counts[kind][2] += len(expected)
            if found != expected:
                errors.append(
                    f"{draft.title[:50]!r} {kind}: extra {sorted(found - expected)}, "
                    f"missing {sorted(expected - found)}"
                )
    result = {
        kind: (tp / found if found else 1.0, tp / expected if expected else 1.0)
        for kind, (tp, found, expected) in counts.items()
    }
    return result, errors


def report(split: str, result: dict[Kind, tuple[float, float]], errors: list[str]) -> str:
    lines = [f"{split}: " + ", ".join(f"{k} P={p:.3f} R={r:.3f}" for k, (p, r) in result.items())]
    return "\n".join(lines + errors)


def test_dev_scores_are_reported() -> None:
    result, errors = scores("dev")
    print("\n" + report("dev", result, errors))
    # Tuned on: it must stay at least as good as the holdout targets.
    for kind, (precision, recall) in TARGETS.items():
        got_p, got_r = result[kind]
        assert got_p >= precision and got_r >= recall, report("dev", result, errors)


def test_holdout_meets_the_targets() -> None:
    result, errors = scores("holdout")
    print("\n" + report("holdout", result, errors))
    for kind, (precision, recall) in TARGETS.items():
        got_p, got_r = result[kind]
        assert got_p >= precision and got_r >= recall, report("holdout", result, errors)


# -- one rule at a time --------------------------------------------------------------------


def slugs(title: str, *paragraphs: str, kind: Kind = "countries") -> list[str]:
    return [t.slug for t in extract(title, paragraphs) if t.kind == kind]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Spanish police seize cocaine", ["es"]),
        ("Dutch and Belgian investigators arrest suspects", ["be", "nl"]),
        ("Romanian nationals arrested", ["ro"]),
        ("Raids in Holland", ["nl"]),
        ("Raids in the UK and Great Britain", ["gb"]),
        ("Raids in Czechia and the Czech Republic", ["cz"]),
        ("Turkey and Türkiye are one country", ["tr"]),
        ("Ivory Coast, Côte d’Ivoire and Côte d'Ivoire", ["ci"]),
        ("Viet Nam and Vietnam", ["vn"]),
        ("Officers in the USA", ["us"]),
        ("Kosovo police", ["xk"]),
        ("ARRESTS IN SPAIN", ["es"]),
    ],
)
def test_country_by_name_alias_or_adjective(text: str, expected: list[str]) -> None:
    assert slugs(text) == expected


def test_a_dateline_does_not_count_unless_the_country_is_named_again() -> None:
    assert slugs("Arrests", "LYON, France – INTERPOL said.") == []
    assert slugs("Arrests", "THE HAGUE, Netherlands – Europol said.") == []
    assert slugs("Arrests", "LYON, France – INTERPOL said.", "French police helped.") == ["fr"]


@pytest.mark.parametrize(
    "text",
    [
        "Meeting in The Hague, Brussels and Lyon",
        "Security in the Baltic region, the Western Balkans and the Sahel",
        "Cooperation across Europe and Latin America",
        "The United Nations and the European Union",
        "The Organization of American States and the African Union met",
        "A man from Atlanta, Georgia, was charged",
        "Police in the state of Georgia",
        "Michael Jordan signed jerseys",
        "Chad Williams trained officers",
        "Turkey sandwiches were served; a turkey was cooked",
        "The guinea pig was tested",
        "Arrests in New Mexico and New Jersey",
        "The handbook is in English, Spanish and Portuguese.",
        "Spanish-speaking investigators",
        "It was translated into French by volunteers.",
        "Ships in the Indian Ocean",
    ],
)
def test_look_alikes_are_not_countries(text: str) -> None:
    assert slugs(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Raids in Papua New Guinea", ["pg"]),
        ("Raids in Equatorial Guinea and Guinea-Bissau", ["gq", "gw"]),
        ("Raids in Guinea", ["gn"]),
        ("Raids in Nigeria", ["ng"]),
        ("Raids in Niger", ["ne"]),
        ("Raids in the Dominican Republic", ["do"]),
        ("Raids in Dominica", ["dm"]),
        ("Raids in South Sudan", ["ss"]),
        ("Raids in Sudan", ["sd"]),
        ("Police in Tbilisi, Georgia", ["ge"]),
        ("He lives in Georgia, USA", ["us"]),
        ("Jordan and Chad join the programme", ["jo", "td"]),
        ("Jordan Armed Forces", ["jo"]),
        ("Held in French custody", ["fr"]),
        ("From Spanish and Italian authorities", ["es", "it"]),
    ],
)
def test_the_country_itself_still_counts(text: str, expected: list[str]) -> None:
    assert slugs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Operation Narsil disrupts a network", ["narsil"]),
        ("OPERATION LIONFISH: cocaine seized", ["lionfish"]),
        (
            "Police joined Operation Pangea XVI and Operation Pangea XVII",
            ["pangea-xvi", "pangea-xvii"],
        ),
        ("Operation HAECHI-IV and Operation Haechi IV", ["haechi-iv"]),
        ("Results of Operation EMMA 8", ["emma-8"]),
        ("Officers joined Joint Operation Poseidon", ["poseidon"]),
        ("In an operation codenamed 'Dry Ice', police struck", ["dry-ice"]),
        ("Operations Athena II and Pandora IV targeted looters", ["athena-ii", "pandora-iv"]),
        ("Operation Çalık struck", ["calik"]),
        (
            "Operation Pangea XVI was a success. Operation Pangea reached 90 countries",
            ["pangea-xvi"],
        ),
    ],
)
def test_named_operations(text: str, expected: list[str]) -> None:
    assert slugs("Release", text, kind="operations") == expected


@pytest.mark.parametrize(
    "text",
    [
        "The Operational Task Force Cocaine supported the case",
        "The operation was a success",
        "An operation against drug traffickers",
        "During the Joint Action Days under EMPACT",
        "Project CRIMJUST and the SEACOP programme",
        "The Operation Room in The Hague",
    ],
)
def test_non_operations(text: str) -> None:
    assert slugs("Release", text, kind="operations") == []


def test_an_operation_in_a_title_case_title_takes_one_word() -> None:
    assert slugs("Operation Narsil Disrupts Child Abuse Network", kind="operations") == ["narsil"]


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        ("Cocaine network dismantled", [], ["drugs"]),
        ("Ransomware group taken down", [], ["cybercrime"]),
        (
            "Arrests",
            ["Migrant smugglers were caught. The migrant smuggling ring hid people."],
            ["migrant-smuggling"],
        ),
        ("War crimes suspect arrested", [], ["core-international-crimes"]),
        ("Customs officers took bribes", [], ["corruption"]),
    ],
)
def test_crime_areas_in_what_the_release_is_about(
    title: str, body: list[str], expected: list[str]
) -> None:
    assert slugs(title, *body, kind="crime-areas") == expected


def test_a_mandate_sentence_and_agency_names_are_no_crime_area() -> None:
    body = [
        "Officers met at the headquarters to sign an agreement on cooperation and training.",
        "Europol supports Member States in the fight against terrorism, cybercrime and drug "
        "trafficking.",
        "The European Cybercrime Centre and the United Nations Office on Drugs and Crime attended.",
        "About Europol",
        "Europol works against terrorism, cybercrime and drug trafficking and fraud.",
    ]
    assert slugs("Agreement signed", *body, kind="crime-areas") == []


def test_a_nato_defence_release_has_no_crime_area() -> None:
    body = [
        "NATO Defence Ministers agreed new regional defence plans to strengthen deterrence.",
        "Allies will deliver more air defence systems and ammunition to Ukraine.",
    ]
    assert slugs("Ministers agree defence plans", *body, kind="crime-areas") == []


# -- determinism and the API ---------------------------------------------------------------


def test_extract_is_sorted_and_deterministic() -> None:
    draft, _ = next(releases("dev"))
    first = extract(draft.title, draft.paragraphs)
    assert first == extract(draft.title, list(draft.paragraphs))
    assert list(first) == sorted(first, key=lambda t: (t.kind, t.slug))
    assert all(isinstance(t, Topic) for t in first)


@pytest.mark.parametrize(
    ("name", "slug"),
    [("HAECHI-IV", "haechi-iv"), ("Haechi IV", "haechi-iv"), ("Pangea XVI", "pangea-xvi"),
     ("Çalık", "calik"), ("  Trojan  Shield!! ", "trojan-shield"), ("EMMA 8", "emma-8")],
)  # fmt: skip
def test_slug_rules(name: str, slug: str) -> None:
    assert topics.slugify(name) == slug


@pytest.mark.parametrize(
    ("kind", "raw", "slug"),
    [
        ("countries", "spain", "es"),
        ("countries", "Spain", "es"),
        ("countries", "es", "es"),
        ("countries", "ES", "es"),
        ("countries", "holland", "nl"),
        ("countries", "the-netherlands", "nl"),
        ("countries", "united-kingdom", "gb"),
        ("countries", "cote-d-ivoire", "ci"),
        ("countries", "cote-divoire", "ci"),
        ("countries", "ivory_coast", "ci"),
        ("countries", "turkey", "tr"),
        ("countries", "kosovo", "xk"),
        ("countries", "narnia", None),
        ("crime-areas", "Drugs", "drugs"),
        ("crime-areas", "money_laundering", "money-laundering"),
        ("crime-areas", "knitting", None),
        ("operations", "Haechi IV", "haechi-iv"),
        ("nonsense", "spain", None),
    ],
)
def test_resolve(kind: str, raw: str, slug: str | None) -> None:
    assert resolve(kind, raw) == slug


def test_country_lookup_and_kinds() -> None:
    assert topics.country("Spain") == Topic("countries", "es", "Spain")
    assert topics.country("xk") == Topic("countries", "xk", "Kosovo")
    assert topics.country("Atlantis") is None
    assert set(KINDS) == set(get_args(Kind))
    assert len(topics.CRIME_AREAS) == 14


def test_every_iso_code_is_in_the_table() -> None:
    # 249 ISO 3166-1 alpha-2 codes plus Kosovo, each resolvable by its own code.
    codes = [line.split("\t")[0] for line in _table_lines()]
    assert len(codes) == len(set(codes)) == 250
    assert all(resolve("countries", code) == code for code in codes)


def _table_lines() -> list[str]:
    text = (ROOT / "feeds" / "data" / "countries.tsv").read_text(encoding="utf-8")
    return [line for line in text.splitlines()[1:] if line and not line.startswith(("#", "code\t"))]
