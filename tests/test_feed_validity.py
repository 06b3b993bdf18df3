"""Every Atom feed the app serves is valid, complete and deterministic.

Feeds are discovered as a reader discovers them (the index page's autodiscovery
links) and cross-checked against the store's agencies; only one separate test
names the agencies of the real seed document. Each feed must:

- validate against the RFC 4287 RELAX NG schema (``conftest.ATOM_RNG``);
- parse with feedparser without errors (``bozo == 0``), with unique entry IDs;
- carry a feed ID, title, ``updated``, a ``self`` link on the configured base URL
  (never the client's Host) and an ``alternate`` link;
- give every entry a ``urn:uuid:`` ID, title, ``updated``, author name, category
  term equal to its agency's slug, a link to ``<base>/releases/<uuid>`` that
  answers 200, a summary and content; ``published`` exactly when the release has
  a known date, at 12:00 UTC;
- be served as ``application/atom+xml; charset=utf-8``.

Also: the same records give the same bytes (twice in one app, and from a second app
on the same database); the generator is not feedgen's; an agency whose releases all
left the seeds still has a valid, empty feed whose ``updated`` is the moment they
left; and seeds full of markup, CDATA terminators, control characters,
non-characters, astral emoji and a 5,000-character title still give valid feeds
that say what the seeds said.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import feedgen.version
import feedparser
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feeds import ids
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync

from .conftest import ATOM_RNG, BASE_URL

ATOM = "{http://www.w3.org/2005/Atom}"
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
#: A Host header no link in any feed may ever carry.
FOREIGN_CLIENT_URL = "http://client-host.invalid:8123"

#: The releases of the real seed document with a known date: four Interpol date lines
#: and the NATO release whose first paragraph says "On Wednesday (16 October 2024)".
REAL_PUBLISHED = {
    "Operation Narsil disrupts network of child abuse websites designed to generate "
    "profits from advertising": date(2023, 8, 3),
    "INTERPOL and UNICEF sign cooperation agreement to address child sexual exploitation "
    "and abuse": date(2023, 4, 13),
    "Australian support for enhanced INTERPOL database to combat online child abuse": date(
        2022, 11, 18
    ),
    "INTERPOL Secretary General: More specialist units needed to investigate online child "
    "abuse": date(2022, 10, 20),
    "Secretary General praises Latvia for its contributions to NATO": date(2024, 10, 16),
}


@pytest.fixture(scope="module")
def atom_schema() -> etree.RelaxNG:
    if not ATOM_RNG.is_file():
        pytest.skip(f"RFC 4287 RELAX NG schema not found at {ATOM_RNG}")
    return etree.RelaxNG(file=str(ATOM_RNG))


# -- discovery --------------------------------------------------------------------------


def feed_paths(client: FlaskClient, app: Flask) -> list[str]:
    """Every Atom feed URL path, as the index page advertises them.

    Cross-checked with the store: the combined feed plus one per agency ever seen.
    """
    index = client.get("/")
    assert index.status_code == 200
    html = lxml.html.fromstring(index.data)
    hrefs = html.xpath('//link[@rel="alternate"][@type="application/atom+xml"]/@href')
    assert hrefs, "the index page advertises no Atom feed"
    paths = []
    for href in hrefs:
        assert href.startswith(BASE_URL + "/feeds/"), href
        paths.append(href.removeprefix(BASE_URL))
    assert len(set(paths)) == len(paths)
    slugs = [agency.slug for agency in app.extensions["feeds.site"].state().agencies]
    assert sorted(paths) == sorted(["/feeds/all.atom", *(f"/feeds/{s}.atom" for s in slugs)])
    return paths


def feed_name(path: str) -> str:
    return path.removeprefix("/feeds/").removesuffix(".atom")


# -- checking one feed -----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    updated: datetime
    published: datetime | None
    category: str


@dataclass(frozen=True)
class CheckedFeed:
    path: str
    body: bytes
    id: str
    updated: datetime
    entries: tuple[Entry, ...]


def when(text: str | None) -> datetime:
    assert text, "missing date"
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, f"{text!r} has no time zone"
    return moment


def only(elements: list[etree._Element], what: str) -> etree._Element:
    assert len(elements) == 1, f"expected exactly one {what}, found {len(elements)}"
    return elements[0]


def check_feed(client: FlaskClient, path: str, schema: etree.RelaxNG) -> CheckedFeed:
    """Fetch ``path`` and assert everything a feed reader relies on; return what it says."""
    response = client.get(path, base_url=FOREIGN_CLIENT_URL)
    assert response.status_code == 200, (path, response.data[:300])
    assert response.headers["Content-Type"] == ATOM_CONTENT_TYPE
    body = response.data
    assert b"client-host.invalid" not in body, "a link was built from the request's Host"

    root = etree.fromstring(body)
    assert schema.validate(root), f"{path}: {schema.error_log}"

    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, f"{path}: {parsed.get('bozo_exception')!r}"
    feed = parsed.feed
    assert feed.get("id"), f"{path}: feed has no id"
    assert feed.get("title"), f"{path}: feed has no title"
    assert feed.get("updated"), f"{path}: feed has no updated"
    rels = [link.rel for link in feed.links]
    assert rels.count("self") == 1 and rels.count("alternate") == 1, f"{path}: links {rels}"
    links = {link.rel: link.href for link in feed.links}
    assert links.get("self") == BASE_URL + path, f"{path}: self link {links.get('self')!r}"
    alternate = links.get("alternate")
    assert alternate and alternate.startswith(BASE_URL + "/"), f"{path}: alternate {alternate!r}"
    assert client.get(alternate.removeprefix(BASE_URL)).status_code == 200

    entry_elements = root.findall(f"{ATOM}entry")
    assert len(parsed.entries) == len(entry_elements)
    entries: list[Entry] = []
    for element, entry in zip(entry_elements, parsed.entries, strict=True):
        entries.append(check_entry(client, path, element, entry))
    entry_ids = [entry.id for entry in entries]
    assert len(set(entry_ids)) == len(entry_ids), f"{path}: duplicate entry ids"

    updated = when(only(root.findall(f"{ATOM}updated"), "feed updated").text)
    if entries:
        assert updated >= max(entry.updated for entry in entries), path
    return CheckedFeed(path, body, feed.id, updated, tuple(entries))


def check_entry(
    client: FlaskClient, path: str, element: etree._Element, entry: feedparser.FeedParserDict
) -> Entry:
    entry_id = only(element.findall(f"{ATOM}id"), "entry id").text or ""
    where = f"{path} entry {entry_id}"
    assert entry.get("id") == entry_id
    assert entry_id.startswith("urn:uuid:"), where
    entry_uuid = str(uuid.UUID(entry_id.removeprefix("urn:uuid:")))
    assert entry_id == "urn:uuid:" + entry_uuid, where
    assert entry.get("title"), f"{where}: no title"
    assert entry.get("author_detail", {}).get("name"), f"{where}: no author name"
    # Its agency (no scheme), then its topics (each with its kind's scheme and a label).
    tags = entry.get("tags", [])
    terms = [tag.term for tag in tags if not tag.get("scheme")]
    assert len(terms) == 1 and terms[0], f"{where}: categories {terms}"
    for tag in tags:
        if tag.get("scheme"):
            assert tag.scheme.startswith(f"{BASE_URL}/topics/"), f"{where}: {tag}"
            assert tag.term and tag.label, f"{where}: {tag}"
    assert entry.get("summary"), f"{where}: no summary"
    contents = entry.get("content", [])
    assert len(contents) == 1 and contents[0].value, f"{where}: no content"
    assert contents[0].type == "text/html", where

    alternates = [link.href for link in entry.links if link.rel == "alternate"]
    assert alternates == [f"{BASE_URL}/releases/{entry_uuid}"], where
    page = client.get(f"/releases/{entry_uuid}")
    assert page.status_code == 200, where
    assert page.headers["Content-Type"].startswith("text/html")

    updated = when(only(element.findall(f"{ATOM}updated"), "entry updated").text)
    published_elements = element.findall(f"{ATOM}published")
    assert len(published_elements) <= 1, where
    published = when(published_elements[0].text) if published_elements else None
    return Entry(
        entry_id, only(element.findall(f"{ATOM}title"), "title").text or "", updated, published,
        terms[0],
    )  # fmt: skip


def check_all_feeds(
    client: FlaskClient, app: Flask, schema: etree.RelaxNG
) -> dict[str, CheckedFeed]:
    """Check every served feed, then what they say about each other."""
    feeds = {feed_name(p): check_feed(client, p, schema) for p in feed_paths(client, app)}
    assert len({feed.id for feed in feeds.values()}) == len(feeds), "two feeds share an id"
    combined = feeds.pop("all")
    home: dict[str, str] = {}
    for slug, feed in feeds.items():
        for entry in feed.entries:
            assert entry.category == slug, f"{entry.id} in {slug}'s feed has term {entry.category}"
            assert entry.id not in home, f"{entry.id} is in {home[entry.id]} and {slug}"
            home[entry.id] = slug
    # Small data (fewer releases than a page): the combined feed is every agency's entries.
    assert {e.id: e.category for e in combined.entries} == home
    feeds["all"] = combined
    return feeds


# -- the real seed document -------------------------------------------------------------


def test_every_served_feed_is_valid_and_complete(
    client: FlaskClient, app: Flask, atom_schema: etree.RelaxNG
) -> None:
    feeds = check_all_feeds(client, app, atom_schema)
    for name, feed in feeds.items():
        assert feed.entries, f"{name} has no entries"
        # Nothing has left the seeds yet: the feed dates from its newest entry.
        assert feed.updated == max(entry.updated for entry in feed.entries), name


def test_the_real_document_yields_exactly_four_agencies(client: FlaskClient, app: Flask) -> None:
    names = {feed_name(path) for path in feed_paths(client, app)}
    assert names == {"all", "eurojust", "europol", "interpol", "nato"}
    assert client.get("/feeds/no-such-agency.atom").status_code == 404


def test_published_is_present_exactly_for_releases_with_a_known_date(
    client: FlaskClient, app: Flask, atom_schema: etree.RelaxNG
) -> None:
    feeds = check_all_feeds(client, app, atom_schema)
    combined = feeds["all"]
    assert len(combined.entries) == 10
    published = {e.title: e.published for e in combined.entries if e.published is not None}
    assert published == {
        title: datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)
        for title, day in REAL_PUBLISHED.items()
    }
    # The same in every agency feed.
    for feed in feeds.values():
        for entry in feed.entries:
            assert entry.published == combined_published(combined, entry.id)


def combined_published(combined: CheckedFeed, entry_id: str) -> datetime | None:
    return next(e.published for e in combined.entries if e.id == entry_id)


def test_same_records_give_the_same_bytes(
    client: FlaskClient,
    app: Flask,
    make_app: Callable[..., Flask],
    real_seed_dir: Path,
    tmp_path: Path,
) -> None:
    paths = feed_paths(client, app)
    # Two stores built apart, each from the same seeds at the same moment, hold the same
    # records: their apps, each rendering on its own, must give the same bytes.
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    built = []
    for name in ("one", "two"):
        store = Store(tmp_path / name / "feeds.sqlite3")
        store.initialize(moment)
        assert sync(store, real_seed_dir, clock=lambda: moment).ok
        store.close()
        apart = make_app(real_seed_dir, database=tmp_path / name / "feeds.sqlite3")
        apart_client = apart.test_client()
        built.append({path: apart_client.get(path).data for path in paths})
    assert built[0] == built[1]
    assert all(b"<entry>" in body for body in built[0].values())
    # A second app (a restart, or another gunicorn worker) on the same database.
    first = {path: client.get(path).data for path in paths}
    other = make_app(real_seed_dir)
    other_client = other.test_client()
    assert {path: other_client.get(path).data for path in paths} == first


def test_the_generator_is_ours_not_feedgens(client: FlaskClient, app: Flask) -> None:
    for path in feed_paths(client, app):
        root = etree.fromstring(client.get(path).data)
        for generator in root.findall(f"{ATOM}generator"):
            text = etree.tostring(generator, encoding="unicode").lower()
            assert "feedgen" not in text and "lkiesow" not in text, (path, text)
            assert generator.get("version") != feedgen.version.version_full_str, path


def _releases_of(text: str) -> Iterator[tuple[str, str]]:
    """Split a seed text (LF, blank-line separated) into (agency slug, release text)."""
    paragraphs = text.split("\n\n")
    sources = [i for i, p in enumerate(paragraphs) if p.startswith("Source: ") and "\n" not in p]
    starts = [i - 1 for i in sources]
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(paragraphs)
        agency = re.sub(r"\s*\([^()]*\)$", "", paragraphs[start + 1].removeprefix("Source: "))
        yield ids.agency_slug(agency.strip()), "\n\n".join(paragraphs[start:end])


def test_an_agency_whose_releases_all_left_still_has_a_truthful_feed(
    client: FlaskClient, app: Flask, real_seed_dir: Path, atom_schema: etree.RelaxNG
) -> None:
    site = app.extensions["feeds.site"]
    seed_file = next(real_seed_dir.glob("*.txt"))
    original = seed_file.read_text(encoding="utf-8")
    releases = list(_releases_of(original))
    assert len(releases) == 10
    before = check_all_feeds(client, app, atom_schema)
    clock = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    for slug in sorted(name for name in before if name != "all"):
        clock += timedelta(hours=1)
        left_at = clock
        last_entry_update = max(e.updated for e in before[slug].entries)
        seed_file.write_text(
            "\n\n".join(text for owner, text in releases if owner != slug) + "\n",
            encoding="utf-8",
        )
        report = sync(site.store, real_seed_dir, clock=lambda at=left_at: at)
        assert report.ok and len(report.gone) == len(before[slug].entries)

        emptied = check_all_feeds(client, app, atom_schema)
        assert emptied[slug].entries == (), f"{slug}'s releases are gone from the seeds"
        assert emptied[slug].id == before[slug].id
        assert emptied[slug].updated >= last_entry_update
        assert emptied[slug].updated == left_at, f"{slug}: updated is not when they left"
        # The combined feed lost entries at that moment too.
        assert emptied["all"].updated == left_at
        for other in emptied:
            if other not in (slug, "all"):
                assert emptied[other].entries == before[other].entries

        # Put them back for the next agency; nothing about them changed.
        clock += timedelta(hours=1)
        seed_file.write_text(original, encoding="utf-8")
        back = sync(site.store, real_seed_dir, clock=lambda at=clock: at)
        assert back.ok and len(back.returned) == len(before[slug].entries)
        restored = check_feed(client, f"/feeds/{slug}.atom", atom_schema)
        assert restored.entries == before[slug].entries


# -- nasty seeds ------------------------------------------------------------------------

NASTY_TITLE = "Fish &amp; chips ]]> <script>alert('x')</script> \U0001f6a8 done"
NASTY_BODY = (
    "Opening ]]> <![CDATA[ x ]]> <script>alert(1)</script> &amp; &lt; \x01 bell\x1b[0m "
    "non\ufffecharacter \U0001f600 astral \u2028 separator"
)
LONG_TITLE = ("Lorem ipsum dolor sit amet " * 200)[:4999] + "X"
#: Characters XML 1.0 cannot carry: they must be gone, everything else kept.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _nasty_seeds(seed_dir: Path) -> dict[str, str]:
    """Write the nasty seed files; return title → expected first body paragraph."""
    (seed_dir / "markup.txt").write_text(
        f"{NASTY_TITLE}\n\nSource: Europol\n\n{NASTY_BODY}\n\nSecond paragraph \x01 <b>bold</b>\n",
        encoding="utf-8",
    )
    (seed_dir / "long.txt").write_text(
        f"{LONG_TITLE}\n\nSource: NATO\n\nA body for the long title ]]>\n", encoding="utf-8"
    )
    (seed_dir / "agency-markup.txt").write_text(
        'Control\x1b title \x01 here\n\nSource: <Agency> & "Partners" ]]>\n\n'
        "Body with \x0b vertical tab and \x0c form feed \ufffe\ufffe\n",
        encoding="utf-8",
    )
    (seed_dir / "crlf-bom.txt").write_bytes(
        "\ufeffCRLF title \U0001f46e\u200d\u2640\ufe0f\r\n\r\nSource: Интерпол\r\n\r\n"
        "Line one\r\nline two ]]>\r\n".encode()
    )
    (seed_dir / "latin1.txt").write_bytes(
        b"Caf\xe9 raid \xff\n\nSource: Eurojust\n\nBody with bad byte \xfe here\n"
    )
    return {
        NASTY_TITLE: NASTY_BODY,
        LONG_TITLE: "A body for the long title ]]>",
        "Control title here": "Body with vertical tab and form feed",
        "CRLF title \U0001f46e\u200d\u2640\ufe0f": "Line one line two ]]>",
        "Caf\ufffd raid \ufffd": "Body with bad byte \ufffd here",
    }


def _spaced(text: str) -> str:
    return " ".join(XML_INVALID.sub("", text).split())


def test_nasty_seeds_still_give_valid_feeds_that_say_what_the_seeds_said(
    make_app: Callable[..., Flask], seed_dir: Path, atom_schema: etree.RelaxNG
) -> None:
    expected = _nasty_seeds(seed_dir)
    app = make_app(seed_dir)
    client = app.test_client()
    feeds = check_all_feeds(client, app, atom_schema)

    combined = etree.fromstring(feeds["all"].body)
    seen: dict[str, str] = {}
    for entry in combined.findall(f"{ATOM}entry"):
        title = entry.findtext(f"{ATOM}title") or ""
        summary = entry.findtext(f"{ATOM}summary") or ""
        seen[" ".join(title.split())] = " ".join(summary.split())
    assert seen == {_spaced(title): _spaced(body) for title, body in expected.items()}
    assert len(next(t for t in seen if t.endswith("X"))) == 5000

    # The markup is text, not markup: the content is escaped HTML showing it literally.
    parsed = feedparser.parse(feeds["all"].body)
    nasty = next(e for e in parsed.entries if e.id.startswith("urn:uuid:") and "Fish" in e.title)
    raw_content = next(
        e.findtext(f"{ATOM}content")
        for e in combined.findall(f"{ATOM}entry")
        if e.findtext(f"{ATOM}id") == nasty.id
    )
    assert raw_content is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw_content
    assert "&amp;amp;" in raw_content
    assert "<script>" not in raw_content
    assert "\U0001f600" in raw_content
