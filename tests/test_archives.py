"""RFC 5005 archives at scale: 3,000 releases, pages of 50, then a sync that changes them.

DESIGN.md "What readers see": releases are numbered in first-seen order and cut
into archive pages of exactly ``FEEDS_PAGE_SIZE``; the subscription document
links the newest full page (``prev-archive``), every archive page links back
(``current``) and to its neighbours, and carries ``fh:archive``. A full page's
set of entries never changes except when a release leaves the seeds. The
subscription document holds the releases most recently added or changed, so a
correction of an old, archived release still reaches every subscriber.

A reader is simulated: start at ``/feeds/<name>.atom`` and follow
``prev-archive`` to the oldest page, before and after one sync that adds a
file of 120 releases, corrects three old releases and removes a file of 100.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feeds.app import create_app
from feeds.model import SAMPLE_IDS
from feeds.sync import sync, utcnow

from .conftest import ATOM_RNG, BASE_URL

ATOM = "{http://www.w3.org/2005/Atom}"
HISTORY = "{http://purl.org/syndication/history/1.0}"
PAGE_SIZE = 50
FILES = 30
PER_FILE = 100
OLD = FILES * PER_FILE
ADDED = 120
AGENCIES = ["Europol", "Interpol", "Frontex"]
THEMES = ["drug trafficking", "cybercrime", "money laundering", "people smuggling", "fraud"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July"]
#: Old releases whose bodies get corrected (in files 02, 11 and 25).
CORRECTED = (250, 1130, 2590)
#: The file that leaves the seeds: releases 700 to 799.
REMOVED_FILE = 7
#: Most documents a crawl follows before it gives up on a looping chain.
MAX_DOCUMENTS = 200
FEEDS = ["all", "frontex"]


def title(i: int) -> str:
    return f"Joint operation {i:04d} against {THEMES[i % len(THEMES)]}"


def agency(i: int) -> str:
    return AGENCIES[i % len(AGENCIES)]


def release_text(i: int, corrected: bool = False) -> str:
    first = f"First paragraph of release {i} about {THEMES[i % len(THEMES)]}."
    if corrected:
        first = first.removesuffix(".") + ", with corrected figures."
    date_line = f"{1 + i % 28} {MONTHS[i % len(MONTHS)]} {2015 + i % 10}"
    return "\n\n".join(
        [title(i), f"Source: {agency(i)}", date_line, first, "Second paragraph with details."]
    )


def write_file(seeds: Path, number: int, releases: range, corrected: tuple[int, ...] = ()) -> None:
    text = "\n\n".join(release_text(i, i in corrected) for i in releases) + "\n"
    (seeds / f"{number:02d}.txt").write_text(text, encoding="utf-8")


def file_releases(number: int) -> range:
    return range(number * PER_FILE, (number + 1) * PER_FILE)


def in_feed(name: str, i: int) -> bool:
    return name == "all" or agency(i).lower() == name


# --- crawling like a reader ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: str
    updated: datetime
    content: str


@dataclass(frozen=True, slots=True)
class Doc:
    """One fetched feed document, parsed."""

    url: str
    body: bytes = field(repr=False)
    root: etree._Element = field(repr=False)

    @property
    def entries(self) -> list[Entry]:
        return [
            Entry(
                str(e.findtext(f"{ATOM}id")),
                str(e.findtext(f"{ATOM}title")),
                datetime.fromisoformat(str(e.findtext(f"{ATOM}updated"))),
                e.findtext(f"{ATOM}content") or "",
            )
            for e in self.root.iter(f"{ATOM}entry")
        ]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def links(self, rel: str) -> list[str]:
        return [
            str(link.get("href"))
            for link in self.root.findall(f"{ATOM}link")
            if link.get("rel") == rel
        ]

    @property
    def archived(self) -> bool:
        return self.root.find(f"{HISTORY}archive") is not None


def fetch(client: FlaskClient, url: str) -> Doc:
    assert url.startswith(BASE_URL + "/"), f"a link off the site: {url}"
    response = client.get(url.removeprefix(BASE_URL))
    assert response.status_code == 200, f"{url}: {response.status_code} {response.data[:200]!r}"
    return Doc(url, response.data, etree.fromstring(response.data))


def crawl(client: FlaskClient, name: str) -> list[Doc]:
    """The subscription document, then each archive page along ``prev-archive``."""
    docs = [fetch(client, feed_url(name))]
    seen = {docs[0].url}
    while (previous := docs[-1].links("prev-archive")) and len(docs) <= MAX_DOCUMENTS:
        assert len(previous) == 1, f"{docs[-1].url} has {len(previous)} prev-archive links"
        assert previous[0] not in seen, f"the prev-archive chain loops at {previous[0]}"
        seen.add(previous[0])
        docs.append(fetch(client, previous[0]))
    return docs


def feed_url(name: str, extension: str = "atom") -> str:
    return f"{BASE_URL}/feeds/{name}.{extension}"


def page_url(name: str, page: int, extension: str = "atom") -> str:
    return f"{BASE_URL}/feeds/{name}/archive/{page}.{extension}"


@dataclass
class Corpus:
    """The app, and what a reader crawled of each feed before and after the changing sync."""

    app: Flask
    before: dict[str, list[Doc]] = field(repr=False)
    after: dict[str, list[Doc]] = field(repr=False)

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    workdir = tmp_path_factory.mktemp("archives")
    seeds = workdir / "seeds"
    seeds.mkdir()
    for number in range(FILES):
        write_file(seeds, number, file_releases(number))
    app = create_app(
        {
            "seed_dir": seeds,
            "database": workdir / "db" / "feeds.sqlite3",
            "base_url": BASE_URL,
            "scheduler": False,
            "page_size": PAGE_SIZE,
        },
        environ={},
    )
    client = app.test_client()
    before = {name: crawl(client, name) for name in FEEDS}

    # One sync, as the scheduler runs it a minute later: a new file, corrections, a removal.
    write_file(seeds, FILES, range(OLD, OLD + ADDED))
    for i in CORRECTED:
        write_file(seeds, i // PER_FILE, file_releases(i // PER_FILE), CORRECTED)
    (seeds / f"{REMOVED_FILE:02d}.txt").unlink()
    later = utcnow() + timedelta(seconds=60)
    report = sync(app.extensions["feeds.site"].store, seeds, clock=lambda: later)
    assert report.ok, report.error
    assert (report.count("new"), report.count("changed"), report.count("gone")) == (
        ADDED,
        3,
        PER_FILE,
    )
    # The report names at most SAMPLE_IDS of them: a big sync must not hold every ID.
    assert len(report.new) == min(ADDED, SAMPLE_IDS)
    assert len(report.gone) == min(PER_FILE, SAMPLE_IDS)

    return Corpus(app, before, {name: crawl(client, name) for name in FEEDS})


def present(name: str, when: str) -> set[str]:
    """Titles of the releases in feed ``name`` that the seeds hold ``before``/``after``."""
    numbers = range(OLD) if when == "before" else range(OLD + ADDED)
    gone = set(file_releases(REMOVED_FILE)) if when == "after" else set()
    return {title(i) for i in numbers if in_feed(name, i) and i not in gone}


def members(name: str, when: str) -> int:
    """How many releases feed ``name`` ever had (gone ones keep their number)."""
    numbers = range(OLD) if when == "before" else range(OLD + ADDED)
    return sum(in_feed(name, i) for i in numbers)


def crawled(corpus: Corpus, when: str) -> dict[str, list[Doc]]:
    return corpus.before if when == "before" else corpus.after


def by_page(docs: list[Doc]) -> dict[int, Doc]:
    """Archive pages by number, from their position in the chain (newest first)."""
    archives = docs[1:]
    return {len(archives) - k: doc for k, doc in enumerate(archives)}


# --- the chain -------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", FEEDS)
def test_prev_archive_chain_reaches_the_oldest_page(corpus: Corpus, name: str, when: str) -> None:
    docs = crawled(corpus, when)[name]
    full_pages = members(name, when) // PAGE_SIZE
    assert len(docs) == 1 + full_pages, f"{len(docs) - 1} archive pages, expected {full_pages}"

    subscription = docs[0]
    assert not subscription.archived, "the subscription document is marked fh:archive"
    assert subscription.links("self") == [feed_url(name)]
    assert subscription.links("prev-archive") == [page_url(name, full_pages)]

    for page, doc in by_page(docs).items():
        url = page_url(name, page)
        assert doc.url == url
        assert doc.archived, f"{url} has no fh:archive"
        assert doc.links("self") == [url]
        assert doc.links("current") == [feed_url(name)], url
        assert doc.links("prev-archive") == ([page_url(name, page - 1)] if page > 1 else [])
        expected_next = [page_url(name, page + 1)] if page < full_pages else []
        assert doc.links("next-archive") == expected_next, url


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name", FEEDS)
def test_every_present_release_is_reachable_and_no_page_shares_one(
    corpus: Corpus, name: str, when: str
) -> None:
    docs = crawled(corpus, when)[name]
    titles: dict[str, str] = {}
    for doc in docs:
        assert len(doc.ids) == len(set(doc.ids)), f"{doc.url} repeats an entry"
        for entry in doc.entries:
            assert titles.setdefault(entry.id, entry.title) == entry.title, "one ID, two titles"
    assert len(set(titles.values())) == len(titles), "one release under two IDs"
    assert set(titles.values()) == present(name, when), "missing or extra releases"

    pages = by_page(docs)
    owner: Counter[str] = Counter(i for doc in pages.values() for i in doc.ids)
    assert [i for i, n in owner.items() if n > 1] == [], "a release sits in two archive pages"
    subscription = docs[0]
    assert len(subscription.ids) >= PAGE_SIZE


def test_before_the_change_every_archive_page_is_full(corpus: Corpus) -> None:
    for name in FEEDS:
        sizes = {page: len(doc.ids) for page, doc in by_page(corpus.before[name]).items()}
        assert set(sizes.values()) == {PAGE_SIZE}, f"{name}: {sizes}"


def test_full_pages_keep_their_entries_except_removed_releases(corpus: Corpus) -> None:
    removed = {title(i) for i in file_releases(REMOVED_FILE)}
    for name in FEEDS:
        before = by_page(corpus.before[name])
        after = by_page(corpus.after[name])
        for page, doc in before.items():
            kept = {e.title for e in doc.entries} - removed
            assert {e.title for e in after[page].entries} == kept, f"{name} page {page} changed"
            assert {e.id for e in after[page].entries} <= set(doc.ids)
        for page in after.keys() - before.keys():
            assert len(after[page].ids) == PAGE_SIZE, f"{name} new page {page} is not full"


def test_removed_releases_are_nowhere(corpus: Corpus) -> None:
    removed = {title(i) for i in file_releases(REMOVED_FILE)}
    for name in FEEDS:
        for doc in corpus.after[name]:
            assert not {e.title for e in doc.entries} & removed, f"a removed release in {doc.url}"
    everything = [fetch(corpus.client, feed_url(a.lower())) for a in AGENCIES]
    for doc in everything:
        assert not {e.title for e in doc.entries} & removed, doc.url


def test_corrected_old_releases_reach_the_subscription_document(corpus: Corpus) -> None:
    """Readers keep archive pages forever: a correction must show in the subscription document."""
    subscription = corpus.after["all"][0]
    entries = subscription.entries
    updated = [e.updated for e in entries]
    assert updated == sorted(updated, reverse=True), "the subscription is not newest first"
    shown = {e.title: e for e in entries}
    missing = [title(i) for i in CORRECTED if title(i) not in shown]
    assert missing == [], f"corrected releases missing from /feeds/all.atom: {missing}"
    before = {e.title: e for doc in corpus.before["all"] for e in doc.entries}
    for i in CORRECTED:
        entry = shown[title(i)]
        assert "corrected figures" in entry.content
        assert entry.id == before[title(i)].id
        assert entry.updated > before[title(i)].updated


def test_new_releases_past_the_last_full_page_are_in_the_subscription(corpus: Corpus) -> None:
    full = members("all", "after") // PAGE_SIZE * PAGE_SIZE
    tail = {title(i) for i in range(full, OLD + ADDED)}
    assert tail, "the case needs releases past the last full page"
    assert tail <= {e.title for e in corpus.after["all"][0].entries}


# --- validity and the other formats ----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "page"), [("before", 1), ("before", 37), ("after", 15), ("after", 62)]
)
def test_archive_pages_are_valid_atom(corpus: Corpus, when: str, page: int) -> None:
    doc = by_page(crawled(corpus, when)["all"])[page]
    parsed = feedparser.parse(doc.body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert [e.id for e in parsed.entries] == doc.ids
    if not ATOM_RNG.is_file():
        pytest.skip(f"no Atom RELAX NG schema at {ATOM_RNG}")
    schema = etree.RelaxNG(etree.parse(str(ATOM_RNG)))
    assert schema.validate(doc.root), schema.error_log


def test_archive_pages_in_rss_and_json_hold_the_same_entries(corpus: Corpus) -> None:
    client = corpus.client
    atom = fetch(client, page_url("all", 2))
    rss = client.get(page_url("all", 2, "rss").removeprefix(BASE_URL))
    assert rss.status_code == 200
    assert feedparser.parse(rss.data).bozo == 0
    channel = etree.fromstring(rss.data).find("channel")
    assert channel is not None
    assert [g.text for g in channel.iter("guid")] == atom.ids
    links = {str(link.get("rel")): link.get("href") for link in channel.findall(f"{ATOM}link")}
    assert links["current"] == feed_url("all", "rss")
    assert links["prev-archive"] == page_url("all", 1, "rss")
    assert links["next-archive"] == page_url("all", 3, "rss")
    assert channel.find(f"{HISTORY}archive") is not None
    json_page = client.get(page_url("all", 2, "json").removeprefix(BASE_URL))
    assert json_page.status_code == 200
    assert [item["id"] for item in json_page.get_json()["items"]] == atom.ids
