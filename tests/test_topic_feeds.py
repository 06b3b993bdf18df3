"""Topic feeds and pages: follow a subject across every agency (DESIGN.md "Topics").

A release's topics are found by the sync, stored with it, and carried by every
entry as Atom categories; each topic has a feed (with archives, filters and
conditional GET), a page, and a place in ``/topics`` and ``/topics.opml``. A
name or alias in a URL answers ``301`` to the canonical slug; a topic whose
releases all left keeps answering ``200``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feeds import sync as sync_module
from feeds.sync import sync

from .conftest import ATOM_RNG, BASE_URL

ATOM = "{http://www.w3.org/2005/Atom}"

SPAIN = "Spanish police arrest 12 in drug trafficking probe"
FRANCE = "French gendarmes seize counterfeit medicines"
BOTH = "Joint action by Spain and France"


def release_text(title: str, agency: str, body: str) -> str:
    return f"{title}\n\nSource: {agency}\n\n{body}\n\n"


def write(seed_dir: Path, name: str, *releases: tuple[str, str, str]) -> None:
    (seed_dir / name).write_text("".join(release_text(*r) for r in releases), encoding="utf-8")


def base_seeds(seed_dir: Path) -> None:
    write(seed_dir, "a.txt", (SPAIN, "Europol", "The Spanish National Police seized cocaine."))
    write(
        seed_dir,
        "b.txt",
        (FRANCE, "Interpol", "Officers in France seized falsified medicines."),
        (BOTH, "Eurojust", "Investigators dismantled a migrant smuggling network."),
    )


def later(hours: int) -> Callable[[], datetime]:
    moment = datetime.now(UTC) + timedelta(hours=hours)
    return lambda: moment


def titles(client: FlaskClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return sorted(e.title for e in feedparser.parse(response.data).entries)


@pytest.fixture
def topic_app(make_app: Callable[..., Flask], seed_dir: Path) -> Flask:
    base_seeds(seed_dir)
    return make_app(seed_dir, page_size=2)


def test_a_topic_feed_holds_the_releases_about_it_from_every_agency(topic_app: Flask) -> None:
    client = topic_app.test_client()
    assert titles(client, "/feeds/topics/countries/es.atom") == sorted([SPAIN, BOTH])
    assert titles(client, "/feeds/topics/countries/fr.atom") == sorted([FRANCE, BOTH])
    assert titles(client, "/feeds/topics/crime-areas/migrant-smuggling.atom") == [BOTH]
    feed = etree.fromstring(client.get("/feeds/topics/countries/es.atom").data)
    assert feed.findtext(f"{ATOM}title") == "Press releases about Spain"
    self_link = feed.find(f"{ATOM}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == f"{BASE_URL}/feeds/topics/countries/es.atom"
    # Entries keep the IDs they have everywhere and name their agency feed.
    everywhere = {
        e.id
        for path in ("/feeds/all.atom", "/feeds/all/archive/1.atom")
        for e in feedparser.parse(client.get(path).data).entries
    }
    for entry in feed.iter(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}id") in everywhere
        source = entry.find(f"{ATOM}source")
        assert source is not None and source.findtext(f"{ATOM}id", "").startswith("urn:uuid:")
    for fmt in ("rss", "json"):
        assert client.get(f"/feeds/topics/countries/es.{fmt}").status_code == 200


def test_every_entry_carries_its_topics_as_categories(topic_app: Flask) -> None:
    client = topic_app.test_client()
    for path in ("/feeds/all.atom", "/feeds/eurojust.atom", "/feeds/topics/countries/es.atom"):
        parsed = feedparser.parse(client.get(path).data)
        both = next(e for e in parsed.entries if e.title == BOTH)
        tags = {(t.term, t.scheme, t.label) for t in both.tags}
        assert ("es", f"{BASE_URL}/topics/countries", "Spain") in tags, path
        assert ("fr", f"{BASE_URL}/topics/countries", "France") in tags, path
        assert ("migrant-smuggling", f"{BASE_URL}/topics/crime-areas", "Migrant smuggling") in tags


def test_topic_feeds_are_valid_atom(topic_app: Flask) -> None:
    schema = etree.RelaxNG(file=str(ATOM_RNG))
    client = topic_app.test_client()
    opml = etree.fromstring(client.get("/topics.opml").data)
    urls = [o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")]
    assert f"{BASE_URL}/feeds/topics/countries/es.atom" in urls
    for url in urls:
        document = etree.fromstring(client.get(str(url).removeprefix(BASE_URL)).data)
        assert schema.validate(document), (url, schema.error_log)


def test_names_and_aliases_answer_301_to_the_canonical_slug(topic_app: Flask) -> None:
    client = topic_app.test_client()
    for path, target in [
        ("/topics/countries/spain", "/topics/countries/es"),
        ("/topics/countries/Spanish", "/topics/countries/es"),
        ("/feeds/topics/countries/france.atom", "/feeds/topics/countries/fr.atom"),
        (
            "/feeds/topics/countries/spain/archive/1.json",
            "/feeds/topics/countries/es/archive/1.json",
        ),
    ]:
        response = client.get(path)
        assert response.status_code == 301, path
        assert response.headers["Location"] == BASE_URL + target
    assert client.get("/topics/planets/mars").status_code == 404
    assert client.get("/feeds/topics/countries/jp.atom").status_code == 404  # never found
    assert client.get("/topics/countries/es").status_code == 200
    index = client.get("/topics").get_data(as_text=True)
    assert f'href="{BASE_URL}/topics/countries/es"' in index


def test_a_release_that_loses_a_topic_leaves_its_feed_which_keeps_answering(
    topic_app: Flask, seed_dir: Path
) -> None:
    client = topic_app.test_client()
    site = topic_app.extensions["feeds.site"]
    before = etree.fromstring(client.get("/feeds/topics/crime-areas/migrant-smuggling.atom").data)
    write(
        seed_dir,
        "b.txt",
        (FRANCE, "Interpol", "Officers in France seized falsified medicines."),
        (BOTH, "Eurojust", "Investigators met in The Hague."),
    )
    report = sync(site.store, seed_dir, clock=later(1))
    assert report.count("changed") == 1
    assert "crime-areas/migrant-smuggling" in report.topics
    assert titles(client, "/feeds/topics/crime-areas/migrant-smuggling.atom") == []
    after = etree.fromstring(client.get("/feeds/topics/crime-areas/migrant-smuggling.atom").data)
    # Its feed says when the release left it.
    assert after.findtext(f"{ATOM}updated") > before.findtext(f"{ATOM}updated")
    assert client.get("/topics/crime-areas/migrant-smuggling").status_code == 200
    assert titles(client, "/feeds/topics/countries/es.atom") == sorted([SPAIN, BOTH])


def test_topic_archives_keep_their_pages(make_app: Callable[..., Flask], seed_dir: Path) -> None:
    write(
        seed_dir,
        "spain.txt",
        *((f"Spanish case {n}", "Europol", "Police in Spain arrested suspects.") for n in range(5)),
    )
    app = make_app(seed_dir, page_size=2)
    client = app.test_client()
    current = etree.fromstring(client.get("/feeds/topics/countries/es.atom").data)
    prev = current.find(f"{ATOM}link[@rel='prev-archive']")
    assert prev is not None
    assert prev.get("href") == f"{BASE_URL}/feeds/topics/countries/es/archive/2.atom"
    assert titles(client, "/feeds/topics/countries/es/archive/1.atom") == [
        "Spanish case 0",
        "Spanish case 1",
    ]
    assert client.get("/feeds/topics/countries/es/archive/3.atom").status_code == 404
    page = client.get("/feeds/topics/countries/es/archive/1.atom")
    assert page.headers["Cache-Control"] == "public, max-age=86400"


def test_topic_feeds_have_filters_and_conditional_get(topic_app: Flask) -> None:
    client = topic_app.test_client()
    assert titles(client, "/feeds/topics/countries/es.atom?q=cocaine") == [SPAIN]
    assert client.get("/feeds/topics/countries/es.atom?limit=0").status_code == 400
    first = client.get("/feeds/topics/countries/es.atom")
    again = client.get(
        "/feeds/topics/countries/es.atom", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""


def test_a_change_elsewhere_leaves_a_topic_feed_cached(topic_app: Flask, seed_dir: Path) -> None:
    client = topic_app.test_client()
    site = topic_app.extensions["feeds.site"]
    client.get("/feeds/topics/crime-areas/drugs.atom")
    cached = site.hit(("url", "/feeds/topics/crime-areas/drugs.atom", ""))
    assert cached is not None
    write(seed_dir, "c.txt", (FRANCE + " again", "Interpol", "More medicines seized in France."))
    assert sync(site.store, seed_dir, clock=later(1)).count("new") == 1
    # The drugs feed shows only Europol's release: neither it nor Europol changed.
    assert site.hit(("url", "/feeds/topics/crime-areas/drugs.atom", "")) is cached
    assert site.hit(("url", "/feeds/topics/countries/fr.atom", "")) is None


def test_new_topic_rules_tag_every_release_again(
    topic_app: Flask, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = topic_app.extensions["feeds.site"]
    unchanged = sync(site.store, seed_dir, clock=later(1))
    assert unchanged.files_read == 0
    monkeypatch.setattr(sync_module, "CONTENT_VERSION", sync_module.CONTENT_VERSION + "-next")
    retagged = sync(site.store, seed_dir, clock=later(2))
    assert retagged.ok and retagged.files_read == 2
    # Same text, same rules: nothing readers see changed, and no release is new.
    assert retagged.count("new") == retagged.count("changed") == 0
    assert titles(site_client(topic_app), "/feeds/topics/countries/es.atom") == sorted(
        [SPAIN, BOTH]
    )


def site_client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_a_release_whose_winning_copy_changes_and_changes_back_has_that_copys_topics(
    make_app: Callable[..., Flask], seed_dir: Path
) -> None:
    """A release in two files is told by its fuller copy; its topics follow that copy.

    The copy that stops speaking for the release keeps its topics (they lived only in
    the release while it won), so when it speaks again its topics come back.
    """
    title = "Customs officers seize a shipment"
    write(seed_dir, "a.txt", (title, "Europol", "Officers in France seized it."))
    app = make_app(seed_dir)
    client = app.test_client()
    store = app.extensions["feeds.site"].store
    assert titles(client, "/feeds/topics/countries/fr.atom") == [title]
    fuller = "Officers in Spain seized it at the port of Valencia after a long investigation."
    write(seed_dir, "b.txt", (title, "Europol", fuller))
    report = sync(store, seed_dir, clock=later(1))
    assert report.count("changed") == 1
    assert titles(client, "/feeds/topics/countries/es.atom") == [title]
    assert titles(client, "/feeds/topics/countries/fr.atom") == []
    (seed_dir / "b.txt").unlink()
    report = sync(store, seed_dir, clock=later(2))
    assert report.count("changed") == 1
    assert titles(client, "/feeds/topics/countries/fr.atom") == [title]
    assert titles(client, "/feeds/topics/countries/es.atom") == []
    (entry,) = feedparser.parse(client.get("/feeds/europol.atom").data).entries
    countries = [t.term for t in entry.tags if "countries" in (t.scheme or "")]
    assert countries == ["fr"]
