"""Feed documents to bytes: Atom and RSS 2.0 via feedgen, JSON Feed 1.1 via json.

The only module that touches feedgen. Deterministic: the same records always
give the same bytes. feedgen would fill in "now" for ``updated``, prepend
entries and stamp its own version as the generator; every one of those is set
explicitly here. What feedgen cannot express (RFC 5005 and WebSub links,
``fh:archive``, a full ``atom:source``) is added through its extension hooks.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, time
from typing import Any

from feedgen.feed import FeedGenerator
from lxml import etree

from feeds import __version__, markup, urls
from feeds.catalog import FeedDoc
from feeds.model import Release, Topic

ATOM_TYPE = urls.FORMAT_TYPES["atom"]
RSS_TYPE = urls.FORMAT_TYPES["rss"]
JSON_FEED_TYPE = urls.FORMAT_TYPES["json"]
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
#: A date-only value is published at noon UTC, which keeps its calendar day nearly everywhere.
DATE_ONLY_TIME = time(12, 0, tzinfo=UTC)
#: Most characters of summary or content per entry in a feed (see :func:`_capped`).
MAX_ENTRY_TEXT = 1_000_000


def date_to_datetime(value: date) -> datetime:
    return datetime.combine(value, DATE_ONLY_TIME)


def release_path(release: Release) -> str:
    return urls.release(release.uuid)


def topic_scheme(base_url: str, topic: Topic) -> str:
    """A topic category's scheme: the URL of its kind's topics."""
    return f"{base_url}/topics/{topic.kind}"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _FeedExtension:
    """Adds links feedgen refuses (``prev-archive``, ``hub``, ...) and ``fh:archive``."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str | None]] = []
        self.archive = False
        self.rss = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS} if self.archive else {}

    def _add(self, parent: Any, tag: str) -> None:
        for rel, href, media_type in self.links:
            link = etree.SubElement(parent, tag, href=href, rel=rel)
            if media_type:
                link.attrib["type"] = media_type
        if self.archive:
            etree.SubElement(parent, f"{{{HISTORY_NS}}}archive")

    def extend_atom(self, feed: Any) -> Any:
        # feedgen writes Atom with xmlns as a plain attribute: its elements have bare tags.
        self._add(feed, "link")
        return feed

    def extend_rss(self, feed: Any) -> Any:
        self._add(feed[0], f"{{{ATOM_NS}}}link")  # feed[0] is <channel>
        return feed


class _EntryExtension:
    """Adds a full ``atom:source`` (id, title, self link, updated) to an entry."""

    def __init__(self) -> None:
        self.source: tuple[str, str, str, str] | None = None

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, entry: Any) -> Any:
        if self.source is not None:
            feed_id, title, href, updated = self.source
            source = etree.SubElement(entry, "source")
            etree.SubElement(source, "id").text = feed_id
            etree.SubElement(source, "title").text = title
            etree.SubElement(source, "updated").text = updated
            etree.SubElement(source, "link", href=href, rel="self")
        return entry

    def extend_rss(self, item: Any) -> Any:
        return item


def _generator(doc: FeedDoc, base_url: str, extension: str, hub: str | None) -> FeedGenerator:
    fg = FeedGenerator()
    fg.register_extension("feeds", _FeedExtension, _EntryExtension)
    fg.id(doc.id)
    fg.title(doc.title)
    fg.updated(doc.updated)
    if extension == "rss":
        fg.description(doc.title)
        fg.lastBuildDate(doc.updated)
    fg.language("en")
    fg.generator("feeds", version=__version__)
    media_type = ATOM_TYPE if extension == "atom" else RSS_TYPE
    if extension == "atom":
        fg.link(href=base_url + doc.path(extension), rel="self", type=media_type)
        fg.link(href=base_url + doc.html_path, rel="alternate", type="text/html")
    else:
        # RSS: <link> is the HTML page; the self link goes in as atom:link below.
        fg.link(href=base_url + doc.html_path, rel="alternate")
    extra: list[tuple[str, str, str | None]] = []
    if extension == "rss":
        extra.append(("self", base_url + doc.path(extension), media_type))
    for rel, path in doc.archive_links(extension).items():
        extra.append((rel, base_url + path, media_type))
    if hub:
        extra.append(("hub", hub, None))
    fg.feeds.links = extra
    fg.feeds.archive = doc.kind == "archive"
    for release in doc.entries:
        _entry(fg, release, doc, base_url, rss=extension == "rss")
    return fg


def _agency_name(doc: FeedDoc, release: Release) -> str:
    agency = doc.agencies.get(release.draft.agency_slug)
    return agency.name if agency else release.draft.agency


def _capped(text: str, url: str) -> str:
    """At most :data:`MAX_ENTRY_TEXT` characters: a longer text points to the full page.

    XML readers built on libxml2 refuse a text node over 10 MB, and with it the whole
    feed; the release page always has the whole text.
    """
    if len(text) <= MAX_ENTRY_TEXT:
        return text
    return text[:MAX_ENTRY_TEXT] + f" … [shortened in feeds; the full text is at {url}]"


def _entry(fg: FeedGenerator, release: Release, doc: FeedDoc, base_url: str, rss: bool) -> None:
    draft = release.draft
    agency_name = _agency_name(doc, release)
    fe = fg.add_entry(order="append")
    fe.id(release.id)
    if rss:
        fe.guid(release.id, permalink=False)
    fe.title(draft.title)
    fe.updated(release.updated)
    if draft.published is not None:
        fe.published(date_to_datetime(draft.published))
    fe.author({"name": agency_name, "uri": base_url + urls.agency(draft.agency_slug)})
    fe.category({"term": draft.agency_slug, "label": agency_name})
    for topic in release.topics:
        fe.category(
            {"term": topic.slug, "scheme": topic_scheme(base_url, topic), "label": topic.name}
        )
    fe.link({"href": base_url + release_path(release), "rel": "alternate", "type": "text/html"})
    if draft.summary:
        summary = _capped(" ".join(draft.summary.split()), base_url + release_path(release))
        # RSS readers take <description> as HTML; Atom's summary is plain text.
        fe.summary(html.escape(summary, quote=False) if rss else summary)
        content = _capped(markup.body_html(draft.paragraphs), base_url + release_path(release))
        fe.content(content, type="html")
    source = doc.sources.get(draft.agency_slug)
    if source is not None:
        fe.feeds.source = (
            source.id,
            source.title,
            base_url + source.path,
            _rfc3339(source.updated),
        )


def atom(doc: FeedDoc, base_url: str, hub: str | None = None) -> bytes:
    """One Atom document (RFC 4287, RFC 5005 where archived), UTF-8."""
    fg = _generator(doc, base_url, "atom", hub)
    result: bytes = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return result


def rss(doc: FeedDoc, base_url: str, hub: str | None = None) -> bytes:
    """One RSS 2.0 document; ``guid`` is the entry ID with ``isPermaLink="false"``."""
    fg = _generator(doc, base_url, "rss", hub)
    result: bytes = fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return result


def json_feed(doc: FeedDoc, base_url: str, hub: str | None = None) -> bytes:
    """One JSON Feed 1.1 document (https://jsonfeed.org/version/1.1)."""
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": doc.title,
        "home_page_url": base_url + doc.html_path,
        "feed_url": base_url + doc.path("json"),
        "language": "en",
        "_feeds": {"id": doc.id, "updated": _rfc3339(doc.updated)},
    }
    links = doc.archive_links("json")
    if "prev-archive" in links:
        feed["next_url"] = base_url + links["prev-archive"]  # JSON Feed pages toward older
    if doc.kind == "archive":
        feed["_feeds"]["archive"] = True
        feed["_feeds"]["current"] = base_url + links["current"]
    if hub:
        feed["hubs"] = [{"type": "WebSub", "url": hub}]
    items = []
    for release in doc.entries:
        draft = release.draft
        item: dict[str, Any] = {
            "id": release.id,
            "url": base_url + release_path(release),
            "title": draft.title,
            "content_html": _capped(
                markup.body_html(draft.paragraphs), base_url + release_path(release)
            ),
            "date_modified": _rfc3339(release.updated),
            "authors": [
                {
                    "name": _agency_name(doc, release),
                    "url": base_url + urls.agency(draft.agency_slug),
                }
            ],
            "tags": [draft.agency_slug, *(topic.name for topic in release.topics)],
        }
        if release.topics:
            item["_feeds"] = {
                "topics": [
                    {
                        "kind": t.kind,
                        "slug": t.slug,
                        "name": t.name,
                        "url": f"{base_url}/topics/{t.key}",
                    }
                    for t in release.topics
                ]
            }
        if draft.summary:
            item["summary"] = _capped(
                " ".join(draft.summary.split()), base_url + release_path(release)
            )
        if draft.published is not None:
            item["date_published"] = _rfc3339(date_to_datetime(draft.published))
        source = doc.sources.get(draft.agency_slug)
        if source is not None:
            item.setdefault("_feeds", {})["source"] = {
                "id": source.id,
                "feed_url": base_url + source.path,
            }
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render(doc: FeedDoc, extension: str, base_url: str, hub: str | None = None) -> bytes:
    """The document in the format named by its URL extension."""
    if extension == "atom":
        return atom(doc, base_url, hub)
    if extension == "rss":
        return rss(doc, base_url, hub)
    if extension == "json":
        return json_feed(doc, base_url, hub)
    raise ValueError(f"unknown format {extension!r}")
