"""The OPML subscription list (``/feeds.opml``) as a feed reader imports it.

A reader that imports the file must find an OPML 2.0 document with a title and
a parseable ``dateModified``, one ``rss`` outline per agency whose ``xmlUrl``
is a well-formed feed and whose ``htmlUrl`` is the agency's page, every URL
absolute under the configured base URL and answering 200. The list is
revalidated like every feed: its ``ETag`` and ``Last-Modified`` answer ``304``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from .conftest import BASE_URL

REAL_AGENCIES = {
    "eurojust": "Eurojust",
    "europol": "Europol",
    "interpol": "Interpol",
    "nato": "NATO",
}
#: An agency name with every character XML attributes must escape.
AWKWARD_NAME = 'Customs & Border <Joint> "Ops"'
AWKWARD_SLUG = "customs-border-joint-ops"


def parse_opml(body: bytes) -> etree._Element:
    """The document's root; fails the test if it is not well-formed XML."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        pytest.fail(f"/feeds.opml is not well-formed XML: {exc}\n{body[:500]!r}")


def get_opml(client: FlaskClient) -> tuple[etree._Element, bytes]:
    response = client.get("/feeds.opml")
    assert response.status_code == 200, response.data[:200]
    content_type = response.headers["Content-Type"]
    assert content_type.split(";")[0] in {"text/x-opml", "text/xml", "application/xml"}, (
        content_type
    )
    return parse_opml(response.data), response.data


def outlines(root: etree._Element) -> list[etree._Element]:
    body = root.find("body")
    assert body is not None, "OPML without <body>"
    return list(body.iter("outline"))


def local_path(url: str) -> str:
    """The path of an absolute URL under the base URL (what the test client takes)."""
    assert url.startswith(BASE_URL + "/"), f"{url!r} is not absolute under {BASE_URL}"
    return url.removeprefix(BASE_URL)


def test_opml_is_opml_2_with_head(client: FlaskClient) -> None:
    root, _ = get_opml(client)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    head = root.find("head")
    assert head is not None, "OPML without <head>"
    title = head.findtext("title")
    assert title and title.strip(), "OPML <head> has no <title>"
    modified_text = head.findtext("dateModified")
    assert modified_text, "OPML <head> has no <dateModified>"
    # OPML 2.0: dateModified is an RFC 822 date-time.
    modified = parsedate_to_datetime(modified_text)
    assert modified.tzinfo is not None, modified_text
    assert modified <= datetime.now(UTC), f"dateModified {modified_text} is in the future"
    # It says when the list's data last changed: the same moment as Last-Modified.
    last_modified = client.get("/feeds.opml").headers["Last-Modified"]
    assert modified == parsedate_to_datetime(last_modified)


def test_one_outline_per_agency(client: FlaskClient) -> None:
    root, _ = get_opml(client)
    found = outlines(root)
    assert len(found) == len(REAL_AGENCIES), [o.attrib for o in found]
    by_feed: dict[str, etree._Element] = {}
    for outline in found:
        assert outline.get("type") == "rss", outline.attrib
        text = outline.get("text")
        assert text and text.strip(), f"outline without text: {outline.attrib}"
        assert outline.get("title"), f"outline without title: {outline.attrib}"
        xml_url = outline.get("xmlUrl") or ""
        html_url = outline.get("htmlUrl") or ""
        xml_path = local_path(xml_url)
        html_path = local_path(html_url)
        by_feed[xml_path] = outline
        slug = html_path.removeprefix("/agencies/")
        assert html_path == f"/agencies/{slug}", html_url
        assert slug in REAL_AGENCIES, html_url
        assert xml_path == f"/feeds/{slug}.atom", f"{xml_url} does not belong to {html_url}"
        assert REAL_AGENCIES[slug] in text, f"{text!r} does not name {REAL_AGENCIES[slug]}"
    assert sorted(by_feed) == [f"/feeds/{slug}.atom" for slug in sorted(REAL_AGENCIES)]


def test_every_listed_url_answers(client: FlaskClient) -> None:
    root, _ = get_opml(client)
    for outline in outlines(root):
        xml_path = local_path(outline.get("xmlUrl") or "")
        feed = client.get(xml_path)
        assert feed.status_code == 200, f"{xml_path} answered {feed.status_code}"
        parsed = feedparser.parse(feed.data)
        assert parsed.bozo == 0, f"{xml_path}: {parsed.get('bozo_exception')}"
        assert parsed.entries, f"{xml_path} has no entries"
        # The feed's own alternate link is the page the outline names.
        assert parsed.feed.get("link") == outline.get("htmlUrl"), xml_path

        html_path = local_path(outline.get("htmlUrl") or "")
        page = client.get(html_path)
        assert page.status_code == 200, f"{html_path} answered {page.status_code}"
        assert page.headers["Content-Type"].startswith("text/html")


def test_conditional_get(client: FlaskClient) -> None:
    first = client.get("/feeds.opml")
    etag = first.headers.get("ETag")
    last_modified = first.headers.get("Last-Modified")
    assert etag and last_modified, dict(first.headers)

    again = client.get("/feeds.opml", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers.get("ETag") == etag

    since = client.get("/feeds.opml", headers={"If-Modified-Since": last_modified})
    assert since.status_code == 304
    assert since.data == b""

    other = client.get("/feeds.opml", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.data == first.data

    gzipped = client.get("/feeds.opml", headers={"Accept-Encoding": "gzip"})
    assert gzipped.status_code == 200
    gz_etag = gzipped.headers["ETag"]
    unchanged = client.get(
        "/feeds.opml", headers={"Accept-Encoding": "gzip", "If-None-Match": gz_etag}
    )
    assert unchanged.status_code == 304


def test_new_agency_is_listed_and_escaped(
    make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    (real_seed_dir / "customs.txt").write_text(
        f"Joint action at the border\n\nSource: {AWKWARD_NAME}\n\n2 May 2024\n\nBody text.\n",
        encoding="utf-8",
    )
    client = make_app(real_seed_dir).test_client()
    root, _ = get_opml(client)
    found = {o.get("xmlUrl"): o for o in outlines(root)}
    assert len(found) == len(REAL_AGENCIES) + 1
    outline = found.get(f"{BASE_URL}/feeds/{AWKWARD_SLUG}.atom")
    assert outline is not None, sorted(k or "" for k in found)
    assert AWKWARD_NAME in (outline.get("text") or "")
    assert AWKWARD_NAME in (outline.get("title") or "")
    assert client.get(local_path(outline.get("htmlUrl") or "")).status_code == 200
