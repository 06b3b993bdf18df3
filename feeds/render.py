"""Feed documents to bytes: Atom via feedgen. The only module that touches feedgen.

Deterministic: the same records always give the same bytes. feedgen would fill
in "now" for ``updated``, prepend entries and stamp its own version as the
generator; every one of those is set explicitly here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from feedgen.feed import FeedGenerator

from feeds import __version__, markup
from feeds.catalog import FeedDoc
from feeds.model import Release

ATOM_TYPE = "application/atom+xml"
#: A date-only value is published at noon UTC, which keeps its calendar day nearly everywhere.
DATE_ONLY_TIME = time(12, 0, tzinfo=UTC)


def date_to_datetime(value: date) -> datetime:
    return datetime.combine(value, DATE_ONLY_TIME)


def release_path(release: Release) -> str:
    return f"/releases/{release.uuid}"


def feed_path(name: str, extension: str = "atom") -> str:
    return f"/feeds/{name}.{extension}"


def _entry(fg: FeedGenerator, release: Release, doc: FeedDoc, base_url: str) -> None:
    draft = release.draft
    agency = doc.agencies.get(draft.agency_slug)
    agency_name = agency.name if agency else draft.agency
    fe = fg.add_entry(order="append")
    fe.id(release.id)
    fe.title(draft.title)
    fe.updated(release.updated)
    if draft.published is not None:
        fe.published(date_to_datetime(draft.published))
    fe.author({"name": agency_name, "uri": f"{base_url}/agencies/{draft.agency_slug}"})
    fe.category({"term": draft.agency_slug, "label": agency_name})
    fe.link({"href": base_url + release_path(release), "rel": "alternate", "type": "text/html"})
    if draft.summary:
        fe.summary(" ".join(draft.summary.split()))
        fe.content(markup.body_html(draft.paragraphs), type="html")


def atom(doc: FeedDoc, base_url: str) -> bytes:
    """One Atom document (RFC 4287), UTF-8, with an XML declaration."""
    fg = FeedGenerator()
    fg.id(doc.id)
    fg.title(doc.title)
    fg.updated(doc.updated)
    fg.language("en")
    fg.generator("feeds", version=__version__)
    fg.link(href=base_url + feed_path(doc.name), rel="self", type=ATOM_TYPE)
    fg.link(href=base_url + doc.html_path, rel="alternate", type="text/html")
    for release in doc.entries:
        _entry(fg, release, doc, base_url)
    result: bytes = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return result
