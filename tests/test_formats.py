"""One feed, three formats, any set of agencies, filtered: what readers and automations get.

DESIGN.md "What readers see": RSS 2.0 (``guid`` = the entry ID,
``isPermaLink="false"``) and JSON Feed 1.1 (``application/feed+json``) carry
the same entries in the same order as the Atom feed; a multi-agency feed is
canonical (sorted, de-duplicated; other spellings ``301``), holds exactly the
union of its agencies' entries under their own IDs, has its own stable feed
ID, and names each entry's agency feed in ``atom:source``; filters (``q``,
``exclude``, ``limit``, ``since``) give a feed with its own ``self`` link and
ID, and a bad value answers ``400`` with one line naming the parameter and
the allowed range.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from .conftest import ATOM_RNG, BASE_URL, REAL_SEED

ATOM = "{http://www.w3.org/2005/Atom}"
AGENCIES = ["eurojust", "europol", "interpol", "nato"]
#: Every kind of feed: combined, each agency, and canonical multi-agency sets.
FEEDS = ["all", *AGENCIES, "europol+nato", "eurojust+interpol+nato"]
MULTI = ["all", "europol+nato", "eurojust+interpol+nato"]
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def fetch(client: FlaskClient, path: str, **kwargs: Any) -> bytes:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.data!r}"
    body: bytes = response.data
    return body


def atom_root(client: FlaskClient, path: str, **kwargs: Any) -> etree._Element:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.data!r}"
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root: etree._Element = etree.fromstring(response.data)
    assert root.tag == f"{ATOM}feed"
    return root


def entry_ids(root: etree._Element) -> list[str]:
    return [str(e.findtext(f"{ATOM}id")) for e in root.iter(f"{ATOM}entry")]


def self_link(root: etree._Element) -> str:
    (href,) = [
        str(link.get("href")) for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"
    ]
    return href


def alternate(entry: etree._Element) -> str:
    """An entry's ``alternate`` link (the default relation when ``rel`` is absent)."""
    (href,) = [
        str(link.get("href"))
        for link in entry.findall(f"{ATOM}link")
        if link.get("rel", "alternate") == "alternate"
    ]
    return href


def instant(value: str) -> datetime:
    """An RFC 3339 date-time as an aware datetime (``Z`` or an offset)."""
    assert RFC3339.fullmatch(value), f"not RFC 3339: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


# --- RSS 2.0 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FEEDS)
def test_rss_has_the_atom_entries_as_guids_in_the_same_order(
    client: FlaskClient, name: str
) -> None:
    atom = atom_root(client, f"/feeds/{name}.atom")
    response = client.get(f"/feeds/{name}.rss")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"

    rss = etree.fromstring(response.data)
    assert rss.tag == "rss" and rss.get("version") == "2.0"
    items = rss.findall("channel/item")
    guids = [item.find("guid") for item in items]
    assert all(g is not None for g in guids), "an item without guid"
    assert [g.get("isPermaLink") for g in guids if g is not None] == ["false"] * len(items)
    ids = entry_ids(atom)
    assert ids, f"/feeds/{name}.atom is empty"
    assert [g.text for g in guids if g is not None] == ids
    assert [e.id for e in parsed.entries] == ids

    atom_links = [alternate(e) for e in atom.iter(f"{ATOM}entry")]
    assert [item.findtext("link") for item in items] == atom_links
    self_links = [
        link.get("href") for link in rss.findall(f"channel/{ATOM}link") if link.get("rel") == "self"
    ]
    assert self_links == [f"{BASE_URL}/feeds/{name}.rss"]


# --- JSON Feed 1.1 ---------------------------------------------------------------------------


def check_json_feed(feed: Any, feed_url: str) -> list[str]:
    """Validate ``feed`` against JSON Feed 1.1's rules; return its item IDs in order."""
    assert isinstance(feed, dict)
    assert feed["version"] == JSON_FEED_VERSION
    assert isinstance(feed["title"], str) and feed["title"].strip()
    assert feed["feed_url"] == feed_url
    assert isinstance(feed["home_page_url"], str) and absolute(feed["home_page_url"])
    assert feed["home_page_url"].startswith(BASE_URL + "/")
    for key in ("next_url", "icon", "favicon"):
        if key in feed:
            assert absolute(feed[key]), f"{key} is not absolute: {feed[key]!r}"
    if "hubs" in feed:
        assert all({"type", "url"} <= set(h) for h in feed["hubs"])
    items = feed["items"]
    assert isinstance(items, list)
    ids: list[str] = []
    for item in items:
        assert isinstance(item, dict)
        assert isinstance(item["id"], str) and item["id"], item
        has_html = isinstance(item.get("content_html"), str)
        has_text = isinstance(item.get("content_text"), str)
        assert has_html or has_text, f"item {item['id']} has no content_html or content_text"
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item:
                assert absolute(item[key]), f"{key} is not absolute: {item[key]!r}"
        for key in ("date_published", "date_modified"):
            if key in item:
                instant(item[key])
        for key in ("title", "summary"):
            if key in item:
                assert isinstance(item[key], str)
        if "tags" in item:
            assert all(isinstance(tag, str) for tag in item["tags"])
        for author in item.get("authors", []):
            assert isinstance(author, dict) and {"name", "url", "avatar"} & set(author)
        ids.append(item["id"])
    assert len(ids) == len(set(ids)), "duplicate item IDs"
    return ids


@pytest.mark.parametrize("name", FEEDS)
def test_json_feed_is_valid_1_1_with_the_atom_entries_in_order(
    client: FlaskClient, name: str
) -> None:
    atom = atom_root(client, f"/feeds/{name}.atom")
    response = client.get(f"/feeds/{name}.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/feed+json; charset=utf-8"
    feed = json.loads(response.data)
    ids = check_json_feed(feed, f"{BASE_URL}/feeds/{name}.json")
    assert ids == entry_ids(atom)

    # Each item says what its Atom entry says.
    for item, entry in zip(feed["items"], atom.iter(f"{ATOM}entry"), strict=True):
        assert item["title"] == entry.findtext(f"{ATOM}title")
        assert item["url"] == alternate(entry)
        assert instant(item["date_modified"]) == instant(str(entry.findtext(f"{ATOM}updated")))
        published = entry.findtext(f"{ATOM}published")
        if published is None:
            assert "date_published" not in item, "a date the Atom entry does not claim"
        else:
            assert instant(item["date_published"]) == instant(published)


# --- multi-agency feeds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/feeds/nato+europol.atom", "/feeds/europol+nato.atom"),
        ("/feeds/nato+europol.rss", "/feeds/europol+nato.rss"),
        ("/feeds/nato+europol.json", "/feeds/europol+nato.json"),
        ("/feeds/nato+europol.atom?q=nato&limit=5", "/feeds/europol+nato.atom?q=nato&limit=5"),
        ("/feeds/europol+nato+europol.atom", "/feeds/europol+nato.atom"),
        ("/feeds/nato+nato.atom", "/feeds/nato.atom"),
        ("/feeds/nato+nato.json?limit=2", "/feeds/nato.json?limit=2"),
    ],
)
def test_non_canonical_agency_sets_redirect(client: FlaskClient, path: str, location: str) -> None:
    response = client.get(path)
    assert response.status_code == 301
    assert response.headers["Location"] == BASE_URL + location
    assert b"Traceback" not in response.data
    target = client.get(location)
    assert target.status_code == 200


@pytest.mark.parametrize(
    "path", ["/feeds/europol+fbi.atom", "/feeds/fbi+nato.rss", "/feeds/nato+europol+fbi.json"]
)
def test_an_unknown_agency_in_the_set_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.data.count(b"\n") == 1 and b"Traceback" not in response.data


def test_combined_set_holds_exactly_its_agencies_entries(client: FlaskClient) -> None:
    combo = atom_root(client, "/feeds/europol+nato.atom")
    europol = entry_ids(atom_root(client, "/feeds/europol.atom"))
    nato = entry_ids(atom_root(client, "/feeds/nato.atom"))
    ids = entry_ids(combo)
    assert len(ids) == len(set(ids)) == len(europol) + len(nato) == 4
    assert set(ids) == set(europol) | set(nato)

    feed_ids = {
        name: atom_root(client, f"/feeds/{name}.atom").findtext(f"{ATOM}id")
        for name in ["all", *AGENCIES]
    }
    combo_id = combo.findtext(f"{ATOM}id")
    assert combo_id and combo_id.startswith("urn:")
    assert combo_id not in feed_ids.values(), "the set shares a feed ID with another feed"
    assert self_link(combo) == f"{BASE_URL}/feeds/europol+nato.atom"
    other_set = atom_root(client, "/feeds/eurojust+interpol+nato.atom").findtext(f"{ATOM}id")
    assert other_set not in {combo_id, *feed_ids.values()}


def test_combined_set_feed_id_is_stable(
    make_app: Callable[..., Flask], real_seed_dir: Path, tmp_path: Path
) -> None:
    """The same feed ID on another database, another base URL, after a restart."""
    first = make_app(real_seed_dir).test_client()
    moved = make_app(
        real_seed_dir, database=tmp_path / "other.sqlite3", base_url="https://mirror.example"
    ).test_client()
    ids = [atom_root(c, "/feeds/europol+nato.atom").findtext(f"{ATOM}id") for c in (first, moved)]
    again = make_app(real_seed_dir).test_client()
    ids.append(atom_root(again, "/feeds/europol+nato.atom").findtext(f"{ATOM}id"))
    assert len(set(ids)) == 1, ids


@pytest.mark.parametrize("name", MULTI)
def test_multi_agency_entries_name_their_agency_feed_in_atom_source(
    client: FlaskClient, name: str
) -> None:
    combo = atom_root(client, f"/feeds/{name}.atom")
    agency_feeds: dict[str, etree._Element] = {}
    agency_entries: dict[str, set[str]] = {}
    entries = list(combo.iter(f"{ATOM}entry"))
    assert entries
    for entry in entries:
        entry_id = str(entry.findtext(f"{ATOM}id"))
        category = entry.find(f"{ATOM}category")
        assert category is not None
        slug = str(category.get("term"))
        if slug not in agency_feeds:
            agency_feeds[slug] = atom_root(client, f"/feeds/{slug}.atom")
            agency_entries[slug] = set(entry_ids(agency_feeds[slug]))
        own = agency_feeds[slug]
        assert entry_id in agency_entries[slug], f"{entry_id} is not in its agency's feed"

        sources = entry.findall(f"{ATOM}source")
        assert len(sources) == 1, f"{entry_id}: {len(sources)} atom:source elements"
        source = sources[0]
        assert source.findtext(f"{ATOM}id") == own.findtext(f"{ATOM}id")
        assert source.findtext(f"{ATOM}title") == own.findtext(f"{ATOM}title")
        source_self = [
            link.get("href") for link in source.findall(f"{ATOM}link") if link.get("rel") == "self"
        ]
        assert source_self == [self_link(own)] == [f"{BASE_URL}/feeds/{slug}.atom"]
        source_updated = source.findtext(f"{ATOM}updated")
        own_updated = own.findtext(f"{ATOM}updated")
        assert source_updated and own_updated
        assert instant(source_updated) == instant(own_updated)

    # An agency's own feed is not multi-agency: no atom:source there.
    for own in agency_feeds.values():
        assert own.find(f"{ATOM}entry/{ATOM}source") is None


@pytest.mark.parametrize("name", [*MULTI, "nato"])
def test_atom_feeds_are_valid_against_relax_ng(client: FlaskClient, name: str) -> None:
    if not ATOM_RNG.is_file():
        pytest.skip(f"no Atom RELAX NG schema at {ATOM_RNG}")
    schema = etree.RelaxNG(etree.parse(str(ATOM_RNG)))
    document = atom_root(client, f"/feeds/{name}.atom")
    assert schema.validate(document), schema.error_log


# --- filters ---------------------------------------------------------------------------------


def entry_texts(root: etree._Element) -> dict[str, str]:
    """Entry ID → case-folded title and body text, as a reader reads them."""
    texts = {}
    for entry in root.iter(f"{ATOM}entry"):
        body = re.sub(r"<[^>]+>", " ", entry.findtext(f"{ATOM}content") or "")
        title = entry.findtext(f"{ATOM}title") or ""
        texts[str(entry.findtext(f"{ATOM}id"))] = html.unescape(title + "\n" + body).casefold()
    return texts


def filtered_ids(client: FlaskClient, name: str, query: dict[str, str]) -> list[str]:
    return entry_ids(atom_root(client, f"/feeds/{name}.atom", query_string=query))


@pytest.mark.parametrize(
    ("query", "wanted", "unwanted"),
    [
        ({"q": "interpol"}, ["interpol"], []),
        ({"q": "InterPOL"}, ["interpol"], []),
        ({"q": "child ARREST"}, ["child", "arrest"], []),
        ({"exclude": "interpol"}, [], ["interpol"]),
        ({"exclude": "Interpol podcast"}, [], ["interpol", "podcast"]),
        ({"q": "arrest", "exclude": "INTERPOL"}, ["arrest"], ["interpol"]),
    ],
)
def test_q_and_exclude_select_entries_case_insensitively(
    client: FlaskClient, query: dict[str, str], wanted: list[str], unwanted: list[str]
) -> None:
    everything = atom_root(client, "/feeds/all.atom")
    texts = entry_texts(everything)
    expected = [
        i
        for i in entry_ids(everything)
        if all(w in texts[i] for w in wanted) and not any(w in texts[i] for w in unwanted)
    ]
    assert 0 < len(expected) < len(texts), "a filter case that tells nothing"
    assert filtered_ids(client, "all", query) == expected


def test_filters_work_on_agency_sets_and_every_format(client: FlaskClient) -> None:
    query = {"q": "Operation"}
    expected = filtered_ids(client, "europol+nato", query)
    everything = entry_texts(atom_root(client, "/feeds/europol+nato.atom"))
    assert expected == [i for i in everything if "operation" in everything[i]]
    assert 0 < len(expected) < len(everything)
    rss = feedparser.parse(fetch(client, "/feeds/europol+nato.rss", query_string=query))
    assert rss.bozo == 0 and [e.id for e in rss.entries] == expected
    feed = json.loads(fetch(client, "/feeds/europol+nato.json", query_string=query))
    assert [item["id"] for item in feed["items"]] == expected
    feed_url = urlsplit(feed["feed_url"])
    assert feed_url._replace(query="").geturl() == f"{BASE_URL}/feeds/europol+nato.json"
    assert [(k, v.casefold()) for k, v in parse_qsl(feed_url.query)] == [("q", "operation")]


@pytest.mark.parametrize("limit", [1, 3, 10, 500])
def test_limit_keeps_the_newest_entries(client: FlaskClient, limit: int) -> None:
    everything = entry_ids(atom_root(client, "/feeds/all.atom"))
    assert len(everything) == 10
    assert filtered_ids(client, "all", {"limit": str(limit)}) == everything[:limit]


def test_since_keeps_entries_updated_after_it(
    client: FlaskClient, real_seed_dir: Path, resync: Callable[[], Any]
) -> None:
    before = atom_root(client, "/feeds/all.atom")
    updated = {
        str(e.findtext(f"{ATOM}id")): instant(str(e.findtext(f"{ATOM}updated")))
        for e in before.iter(f"{ATOM}entry")
    }
    (first_sync,) = set(updated.values())
    seed = real_seed_dir / REAL_SEED.name
    text = seed.read_text(encoding="utf-8")
    old = "INTERPOL has concluded a two-year global operation"
    assert text.count(old) == 1
    seed.write_text(text.replace(old, old.replace("global", "worldwide")), encoding="utf-8")
    assert resync().ok

    after = atom_root(client, "/feeds/all.atom")
    changed = [
        str(e.findtext(f"{ATOM}id"))
        for e in after.iter(f"{ATOM}entry")
        if instant(str(e.findtext(f"{ATOM}updated"))) > first_sync
    ]
    assert len(changed) == 1
    stamp = first_sync.strftime("%Y-%m-%dT%H:%M:%S")
    assert filtered_ids(client, "all", {"since": stamp + "Z"}) == changed
    assert filtered_ids(client, "all", {"since": stamp + "z"}) == changed
    # The same moment at another offset.
    shifted = (first_sync + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    assert filtered_ids(client, "all", {"since": shifted}) == changed
    earlier = (first_sync - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert sorted(filtered_ids(client, "all", {"since": earlier})) == sorted(updated)
    future = atom_root(client, "/feeds/all.atom", query_string={"since": "2999-01-01T00:00:00Z"})
    assert entry_ids(future) == []


def test_a_filtered_feed_has_its_own_self_link_and_id(client: FlaskClient) -> None:
    everything = atom_root(client, "/feeds/all.atom")
    spellings = [
        "since=2020-01-01T00:00:00Z&limit=5&exclude=Podcast&q=Operation",
        "q=operation&exclude=podcast&limit=5&since=2020-01-01T00:00:00Z",
    ]
    roots = [atom_root(client, f"/feeds/all.atom?{query}") for query in spellings]
    links = [self_link(root) for root in roots]
    assert links[0] == links[1], "one filter, two self links"
    link = urlsplit(links[0])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{BASE_URL}/feeds/all.atom"
    pairs = parse_qsl(link.query, strict_parsing=True)
    assert [key for key, _ in pairs] == ["q", "exclude", "limit", "since"]
    values = dict(pairs)
    assert values["q"].casefold() == "operation" and values["exclude"].casefold() == "podcast"
    assert values["limit"] == "5"
    assert instant(values["since"]) == instant("2020-01-01T00:00:00Z")

    ids = [root.findtext(f"{ATOM}id") for root in roots]
    assert ids[0] == ids[1]
    assert ids[0] != everything.findtext(f"{ATOM}id")
    other = atom_root(client, "/feeds/all.atom?q=operation&limit=5")
    assert other.findtext(f"{ATOM}id") not in {ids[0], everything.findtext(f"{ATOM}id")}
    assert self_link(other) == f"{BASE_URL}/feeds/all.atom?q=operation&limit=5"

    # Entries keep their IDs and titles.
    titles = {
        e.findtext(f"{ATOM}id"): e.findtext(f"{ATOM}title") for e in everything.iter(f"{ATOM}entry")
    }
    chosen = list(roots[0].iter(f"{ATOM}entry"))
    assert 0 < len(chosen) <= 5
    for entry in chosen:
        assert titles[entry.findtext(f"{ATOM}id")] == entry.findtext(f"{ATOM}title")


WORDS_21 = " ".join(f"w{i}" for i in range(21))

BAD_FILTERS = [
    ("limit=0", "limit", ["1", "500"]),
    ("limit=501", "limit", ["1", "500"]),
    ("limit=abc", "limit", ["1", "500"]),
    ("limit=-3", "limit", ["1", "500"]),
    ("limit=2.5", "limit", ["1", "500"]),
    ("limit=", "limit", ["1", "500"]),
    ("limit=5&limit=6", "limit", ["once"]),
    ("since=yesterday", "since", ["RFC 3339"]),
    ("since=2024-10-16", "since", ["RFC 3339"]),
    ("since=2024-10-16T12:00:00", "since", ["RFC 3339"]),
    ("since=2024-10-16T25:00:00Z", "since", ["RFC 3339"]),
    ("since=2024-02-30T12:00:00Z", "since", ["RFC 3339"]),
    ("q=", "q", ["word"]),
    ("q=%20%20", "q", ["word"]),
    ("q=" + "a" * 201, "q", ["200"]),
    ("q=" + WORDS_21.replace(" ", "+"), "q", ["20"]),
    ("q=a&q=b", "q", ["once"]),
    ("exclude=", "exclude", ["word"]),
    ("exclude=" + "b" * 201, "exclude", ["200"]),
    ("exclude=" + WORDS_21.replace(" ", "+"), "exclude", ["20"]),
]


@pytest.mark.parametrize(("query", "parameter", "allowed"), BAD_FILTERS)
@pytest.mark.parametrize("feed", ["all.atom", "nato.json", "europol+nato.rss"])
def test_bad_filter_values_answer_400_in_one_line(
    client: FlaskClient, feed: str, query: str, parameter: str, allowed: list[str]
) -> None:
    response = client.get(f"/feeds/{feed}?{query}")
    assert response.status_code == 400, f"?{query} answered {response.status_code}"
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.data.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"not one line: {text!r}"
    assert "Traceback" not in text
    assert re.search(rf"\b{parameter}\b", text), f"{text!r} does not name {parameter}"
    for fragment in allowed:
        assert fragment in text, f"{text!r} does not say the allowed range ({fragment!r})"


@pytest.mark.parametrize(
    "query",
    ["limit=1", "limit=500", "q=" + "a" * 200, "q=" + "+".join(f"w{i}" for i in range(20))],
)
def test_values_at_the_bounds_are_accepted(client: FlaskClient, query: str) -> None:
    assert client.get(f"/feeds/all.atom?{query}").status_code == 200
