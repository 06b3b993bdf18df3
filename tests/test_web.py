"""HTTP behaviour of the Flask app through its test client: URLs, status codes, links."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import feedparser
from flask import Flask
from flask.testing import FlaskClient

from .conftest import BASE_URL

AGENCIES = ["eurojust", "europol", "interpol", "nato"]


def test_combined_feed(client: FlaskClient) -> None:
    response = client.get("/feeds/all.atom")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0
    assert len(parsed.entries) == 10


def test_agency_feeds(client: FlaskClient) -> None:
    sizes = {}
    for slug in AGENCIES:
        response = client.get(f"/feeds/{slug}.atom")
        assert response.status_code == 200
        sizes[slug] = len(feedparser.parse(response.data).entries)
    assert sizes == {"eurojust": 1, "europol": 2, "interpol": 5, "nato": 2}


def test_unknown_agency_is_404_with_one_line(client: FlaskClient) -> None:
    for path in ["/feeds/fbi.atom", "/feeds/..%2Fetc.atom", "/feeds/ALL.atom", "/feeds/.atom"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.data.count(b"\n") == 1
        assert b"Traceback" not in response.data


def test_agency_whose_releases_left_keeps_answering(
    make_app: Callable[..., Flask], seed_dir: Path
) -> None:
    target = seed_dir / "a.txt"
    target.write_text("Gone soon\n\nSource: Frontex\n\nBody.\n", encoding="utf-8")
    app = make_app(seed_dir)
    target.write_text("Stays\n\nSource: Europol\n\nBody.\n", encoding="utf-8")
    site = app.extensions["feeds.site"]
    from feeds.sync import sync

    sync(site.store, seed_dir)
    client = app.test_client()
    response = client.get("/feeds/frontex.atom")
    assert response.status_code == 200
    assert feedparser.parse(response.data).entries == []
    assert client.get("/agencies/frontex").status_code == 200


def test_links_come_from_the_base_url_never_the_host_header(client: FlaskClient) -> None:
    response = client.get("/feeds/all.atom", headers={"Host": "evil.example"})
    assert b"evil.example" not in response.data
    parsed = feedparser.parse(response.data)
    hrefs = [link.href for link in parsed.feed.links] + [e.link for e in parsed.entries]
    assert hrefs and all(href.startswith(BASE_URL + "/") for href in hrefs)
    page = client.get("/", headers={"Host": "evil.example"})
    assert b"evil.example" not in page.data


def test_index_lists_every_feed_with_autodiscovery(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    html = response.data.decode()
    discovered = re.findall(
        r'<link rel="alternate" type="application/atom\+xml" title="[^"]*" href="([^"]+)"', html
    )
    assert discovered == [f"{BASE_URL}/feeds/{name}.atom" for name in ["all", *AGENCIES]]
    for slug in AGENCIES:
        assert f'href="{BASE_URL}/feeds/{slug}.atom"' in html


def test_every_entry_links_to_its_release_page(client: FlaskClient) -> None:
    parsed = feedparser.parse(client.get("/feeds/all.atom").data)
    for entry in parsed.entries:
        path = entry.link.removeprefix(BASE_URL)
        assert path == "/releases/" + entry.id.removeprefix("urn:uuid:")
        page = client.get(path)
        assert page.status_code == 200
        # The title, HTML-escaped as the page shows it.
        assert entry.title.replace("&", "&amp;").encode() in page.data


def test_release_page_keeps_structure(client: FlaskClient) -> None:
    parsed = feedparser.parse(client.get("/feeds/interpol.atom").data)
    entry = next(e for e in parsed.entries if e.title.startswith("INTERPOL and UNICEF"))
    page = client.get(entry.link.removeprefix(BASE_URL)).data.decode()
    body = page.split('<div class="body">', 1)[1].split("</div>", 1)[0]
    assert body.count("<li>") == 3  # its three bullet lines, as a list
    assert "13 April 2023" in page
    colombia = next(e for e in parsed.entries if e.title.startswith("Colombia"))
    assert "date not stated" in client.get(colombia.link.removeprefix(BASE_URL)).data.decode()


def test_unknown_release_and_agency_pages_are_404(client: FlaskClient) -> None:
    assert client.get("/releases/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/releases/not-a-uuid").status_code == 404
    assert client.get("/agencies/fbi").status_code == 404
    assert client.get("/agencies/nato").status_code == 200


def test_only_get_and_head(client: FlaskClient) -> None:
    response = client.post("/feeds/all.atom")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert b"Traceback" not in response.data
    head = client.head("/feeds/all.atom")
    assert head.status_code == 200 and head.data == b""


def test_healthz_reports_sync_counts_and_problems(
    make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    (real_seed_dir / "bad.txt").write_text("no source here\n", encoding="utf-8")
    client = make_app(real_seed_dir).test_client()
    data: dict[str, Any] = client.get("/healthz").get_json()
    assert data["status"] == "ok"
    assert data["last_sync"]["ok"] is True and data["last_sync"]["finished"]
    assert data["counts"]["releases"] == 10 and data["counts"]["agencies"] == 4
    assert data["problems"] == {
        "bad.txt": [{"line": 1, "message": "no 'Source: ' line; nothing published"}]
    }
    assert data["warnings"] == {}


def test_healthz_lists_warnings_apart_from_problems(
    make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    """A near-miss is a warning by file and line, not a problem; the real seeds have none."""
    (real_seed_dir / "near.txt").write_text(
        "Preamble\n\nTitle\n\nSource: NATO\n\n31 February 2026\n\nBody.\n\nSource Europol\n",
        encoding="utf-8",
    )
    data: dict[str, Any] = make_app(real_seed_dir).test_client().get("/healthz").get_json()
    assert data["problems"] == {
        "near.txt": [{"line": 1, "message": "text before the first release is not published"}]
    }
    assert {name: [w["line"] for w in listed] for name, listed in data["warnings"].items()} == {
        "near.txt": [7, 11]
    }
    assert "31 February 2026" in data["warnings"]["near.txt"][0]["message"]
    assert "'Source Europol' looks like a Source line" in data["warnings"]["near.txt"][1]["message"]


def test_errors_never_show_a_traceback(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom", "boom", boom)
    app.testing = False
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"secret" not in response.data and b"Traceback" not in response.data


def test_trusted_hosts_refuse_other_hosts(
    make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    app = make_app(real_seed_dir, trusted_hosts="feeds.example.org")
    client = app.test_client()
    hot = app.extensions["feeds.hotpath"]
    assert client.get("/feeds/all.atom", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/feeds/all.atom", headers={"Host": "feeds.example.org"}).status_code == 200
    # Now cached: the trusted host is answered in front of Flask, the other still refused.
    before = hot.answered
    assert client.get("/feeds/all.atom", headers={"Host": "feeds.example.org"}).status_code == 200
    assert hot.answered == before + 1
    assert client.get("/feeds/all.atom", headers={"Host": "evil.example"}).status_code == 400
    assert client.head("/feeds/all.atom", headers={"Host": "evil.example"}).status_code == 400
    assert hot.answered == before + 1


def test_every_method_but_get_and_head_is_refused(client: FlaskClient) -> None:
    for method in ["OPTIONS", "PUT", "DELETE", "PATCH"]:
        response = client.open("/", method=method)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"


def test_html_pages_carry_security_headers(client: FlaskClient, app: Flask) -> None:
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    for path in ["/", "/feeds/all.atom", "/feeds/nope.atom", "/healthz"]:
        assert client.get(path).headers["X-Content-Type-Options"] == "nosniff", path
    # A repeated request, answered by the hot path, carries them all the same.
    hot = app.extensions["feeds.hotpath"]
    before = hot.answered
    again = client.get("/")
    assert hot.answered == before + 1
    assert again.headers["Content-Security-Policy"] == policy
    assert again.headers["Referrer-Policy"] == "no-referrer"
    assert again.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/feeds/all.atom").headers["X-Content-Type-Options"] == "nosniff"
    assert hot.answered == before + 2


def test_repeated_requests_are_answered_in_front_of_flask(client: FlaskClient, app: Flask) -> None:
    """The second request for any cached document never enters Flask; misses always do."""
    hot = app.extensions["feeds.hotpath"]
    entry = feedparser.parse(client.get("/feeds/all.atom").data).entries[0]
    documents = [
        "/feeds/all.atom",
        "/feeds/nato.rss",
        "/feeds/europol+nato.json",
        "/feeds/all.atom?q=interpol&limit=2",
        "/",
        "/agencies/interpol",
        entry.link.removeprefix(BASE_URL),
        "/feeds.opml",
    ]
    for path in documents:
        first = client.get(path)
        before = hot.answered
        second = client.get(path)
        assert hot.answered == before + 1, path
        assert (second.status_code, second.data) == (200, first.data), path
        assert second.headers.to_wsgi_list() == first.headers.to_wsgi_list(), path
    before = hot.answered
    misses = {
        "/feeds/fbi.atom": 404,
        "/feeds/nato+europol.atom": 301,
        "/feeds/all.atom?limit=0": 400,
        "/healthz": 200,
    }
    for path, status in misses.items():
        assert [client.get(path).status_code for _ in range(2)] == [status, status], path
    assert client.post("/feeds/all.atom").status_code == 405
    assert hot.answered == before
