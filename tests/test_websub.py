"""WebSub: feeds name the hub, and a sync that changes feeds pings it for exactly those feeds.

README "WebSub": with ``FEEDS_WEBSUB_HUB`` set, feeds carry ``rel="hub"``
(Atom and RSS ``link``, HTTP ``Link`` headers, JSON Feed ``hubs``), and after
each sync that changed a feed the service sends the hub a publish ping
(``hub.mode=publish``, ``hub.url=<feed URL>``) for the combined feed and every
changed agency feed, in each format. A hub that is down never costs a sync.
The hub is a real HTTP server on 127.0.0.1 that records what it receives.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feeds.parse import parse
from feeds.schedule import scheduled_sync
from feeds.site import Site
from feeds.topics import extract

from .conftest import BASE_URL, REAL_SEED
from .servers import free_port

ATOM = "{http://www.w3.org/2005/Atom}"
FORMATS = ("atom", "rss", "json")
REAL_AGENCIES = ("eurojust", "europol", "interpol", "nato")
FORM = "application/x-www-form-urlencoded"

NATO_RELEASE = (
    "NATO Allies open new training centre for maritime security\n\n"
    "Source: NATO\n\n"
    "5 May 2025\n\n"
    "NATO Allies opened a new training centre for maritime security on Monday.\n"
)
FRONTEX_RELEASE = (
    "Frontex supports return operation from Cyprus\n\n"
    "Source: Frontex\n\n"
    "12 March 2024\n\n"
    "Frontex coordinated a return operation from Larnaca.\n"
)


class Hub:
    """A stand-in WebSub hub: records every POST (content type and form fields)."""

    def __init__(self, status: int = 204) -> None:
        self.pings: list[tuple[str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("ascii")
                with hub._lock:
                    hub.pings.append(
                        (self.headers.get("Content-Type", ""), parse_qs(body, strict_parsing=True))
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads self.pings

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hub"

    def published(self) -> list[str]:
        """``hub.url`` of every ping so far, each checked to be a well-formed publish ping."""
        with self._lock:
            pings = list(self.pings)
        urls = []
        for content_type, fields in pings:
            assert content_type.split(";")[0].strip() == FORM, content_type
            assert fields.get("hub.mode") == ["publish"], fields
            assert len(fields.get("hub.url", [])) == 1, fields
            urls.append(fields["hub.url"][0])
        return urls

    def clear(self) -> None:
        with self._lock:
            self.pings.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def hub() -> Iterator[Hub]:
    started = Hub()
    try:
        yield started
    finally:
        started.close()


def wait_for_startup_pings() -> None:
    """The app pings after its start-up sync in a background thread; let it finish."""
    for thread in threading.enumerate():
        if thread.name == "websub-ping":
            thread.join(timeout=30)
            assert not thread.is_alive(), "the start-up ping did not finish"


@pytest.fixture
def hub_app(make_app: Callable[..., Flask], real_seed_dir: Path, hub: Hub) -> Flask:
    app = make_app(real_seed_dir, websub_hub=hub.url)
    wait_for_startup_pings()
    hub.clear()  # what the start-up sync sent is another test's business
    return app


def run_scheduled_sync(app: Flask) -> None:
    """What the scheduler job does, once, now."""
    site: Site = app.extensions["feeds.site"]
    scheduled_sync(site.store, site.config)


def feed_urls(*names: str) -> set[str]:
    return {f"{BASE_URL}/feeds/{name}.{ext}" for name in names for ext in FORMATS}


def topic_feed_urls(text: str, title_part: str = "") -> set[str]:
    """The topic feeds of the releases in ``text`` (those whose title has ``title_part``).

    A release that changes changes every topic feed it is in, so those are pinged too.
    """
    drafts, _ = parse(text, "release.txt")
    return feed_urls(
        *(
            f"topics/{topic.key}"
            for draft in drafts
            if title_part in draft.title
            for topic in extract(draft.title, draft.paragraphs)
        )
    )


def link_relations(headers: list[str]) -> dict[str, list[str]]:
    """HTTP ``Link`` header values as relation → targets."""
    found: dict[str, list[str]] = {}
    for value in headers:
        for target, rel in re.findall(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?', value):
            found.setdefault(rel, []).append(target)
    return found


# --- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["all", "nato", "europol+nato"])
def test_feeds_name_the_hub_in_every_format_and_header(hub_app: Flask, hub: Hub, name: str) -> None:
    client = hub_app.test_client()
    for ext in FORMATS:
        response = client.get(f"/feeds/{name}.{ext}")
        assert response.status_code == 200
        links = link_relations(response.headers.getlist("Link"))
        assert links.get("hub") == [hub.url], f"{ext}: Link headers {links}"
        assert links.get("self") == [f"{BASE_URL}/feeds/{name}.{ext}"], f"{ext}: {links}"

    atom = etree.fromstring(client.get(f"/feeds/{name}.atom").data)
    atom_links = {(link.get("rel"), link.get("href")) for link in atom.findall(f"{ATOM}link")}
    assert ("hub", hub.url) in atom_links
    assert ("self", f"{BASE_URL}/feeds/{name}.atom") in atom_links

    channel = etree.fromstring(client.get(f"/feeds/{name}.rss").data).find("channel")
    assert channel is not None
    rss_links = {(link.get("rel"), link.get("href")) for link in channel.findall(f"{ATOM}link")}
    assert ("hub", hub.url) in rss_links
    assert ("self", f"{BASE_URL}/feeds/{name}.rss") in rss_links

    feed = json.loads(client.get(f"/feeds/{name}.json").data)
    assert feed["hubs"] == [{"type": "WebSub", "url": hub.url}]
    assert hub.published() == [], "reading feeds pinged the hub"


def test_without_a_hub_nothing_names_one(client: FlaskClient) -> None:
    for ext in FORMATS:
        response = client.get(f"/feeds/all.{ext}")
        assert "hub" not in link_relations(response.headers.getlist("Link"))
        assert b'rel="hub"' not in response.data
    assert "hubs" not in json.loads(client.get("/feeds/all.json").data)


# --- pings -----------------------------------------------------------------------------------


def add_nato_release(seeds: Path) -> set[str]:
    (seeds / "nato-may.txt").write_text(NATO_RELEASE, encoding="utf-8")
    return feed_urls("all", "nato") | topic_feed_urls(NATO_RELEASE)


def correct_an_interpol_release(seeds: Path) -> set[str]:
    seed = seeds / REAL_SEED.name
    text = seed.read_text(encoding="utf-8")
    old = "INTERPOL has concluded a two-year global operation"
    assert text.count(old) == 1
    seed.write_text(text.replace(old, old.replace("global", "worldwide")), encoding="utf-8")
    return feed_urls("all", "interpol") | topic_feed_urls(text, "Operation Narsil")


def rename_and_reorder(seeds: Path) -> set[str]:
    """Not a change readers see: no ping."""
    seed = seeds / REAL_SEED.name
    seed.rename(seeds / "renamed.txt")
    return set()


CHANGES: dict[str, Callable[[Path], set[str]]] = {
    "new release": add_nato_release,
    "corrected body": correct_an_interpol_release,
    "renamed file": rename_and_reorder,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_sync_pings_the_hub_for_exactly_the_changed_feeds(
    hub_app: Flask, hub: Hub, real_seed_dir: Path, change: str
) -> None:
    expected = CHANGES[change](real_seed_dir)
    run_scheduled_sync(hub_app)
    published = hub.published()
    assert len(published) == len(set(published)), f"a feed pinged twice: {published}"
    assert set(published) == expected
    unchanged = [a for a in REAL_AGENCIES if not any(f"/feeds/{a}." in u for u in expected)]
    assert not [u for u in published for a in unchanged if f"/feeds/{a}." in u]


def test_a_release_leaving_pings_its_agency(hub_app: Flask, hub: Hub, real_seed_dir: Path) -> None:
    frontex = real_seed_dir / "frontex.txt"
    frontex.write_text(FRONTEX_RELEASE, encoding="utf-8")
    run_scheduled_sync(hub_app)
    expected = feed_urls("all", "frontex") | topic_feed_urls(FRONTEX_RELEASE)
    assert set(hub.published()) == expected
    hub.clear()
    frontex.unlink()
    run_scheduled_sync(hub_app)
    assert set(hub.published()) == expected


def test_a_sync_without_change_sends_nothing(hub_app: Flask, hub: Hub, real_seed_dir: Path) -> None:
    run_scheduled_sync(hub_app)
    run_scheduled_sync(hub_app)
    # Rewritten with the same bytes: read again, still no change readers see.
    seed = real_seed_dir / REAL_SEED.name
    seed.write_bytes(seed.read_bytes())
    run_scheduled_sync(hub_app)
    assert hub.published() == []


def test_a_restart_that_finds_changes_pings_the_hub(
    make_app: Callable[..., Flask], real_seed_dir: Path, hub: Hub
) -> None:
    """The start-up sync is a sync too: releases that arrived while the service was down."""
    make_app(real_seed_dir, websub_hub=hub.url)
    wait_for_startup_pings()
    hub.clear()
    expected = add_nato_release(real_seed_dir)
    make_app(real_seed_dir, websub_hub=hub.url)  # a restart on the same database
    wait_for_startup_pings()
    assert set(hub.published()) == expected


@pytest.mark.parametrize("trouble", ["hub down", "hub answers 500"])
def test_hub_trouble_never_costs_the_sync(
    make_app: Callable[..., Flask], real_seed_dir: Path, trouble: str
) -> None:
    failing = Hub(status=500) if trouble == "hub answers 500" else None
    hub_url = failing.url if failing else f"http://127.0.0.1:{free_port()}/hub"
    try:
        app = make_app(real_seed_dir, websub_hub=hub_url)
        wait_for_startup_pings()
        if failing:
            failing.clear()
        add_nato_release(real_seed_dir)
        run_scheduled_sync(app)  # must not raise
        client = app.test_client()
        titles = [
            e.findtext(f"{ATOM}title")
            for e in etree.fromstring(client.get("/feeds/nato.atom").data).iter(f"{ATOM}entry")
        ]
        assert NATO_RELEASE.split("\n")[0] in titles
        health: dict[str, Any] = client.get("/healthz").get_json()
        assert health["status"] == "ok" and health["last_sync"]["ok"] is True, health
        if failing:
            assert set(failing.published()) == feed_urls("all", "nato")
    finally:
        if failing:
            failing.close()
