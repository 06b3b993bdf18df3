"""HTML pages from records: the index, an agency's page, a release's page.

Plain functions returning bytes, rendered with Jinja2 and autoescaping on; the
release body comes from :mod:`feeds.markup`, the same HTML the feeds carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from feeds import catalog, markup, query
from feeds.model import Release, Snapshot

_env = Environment(
    loader=PackageLoader("feeds", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    keep_trailing_newline=True,
)

#: Releases listed on the index page.
INDEX_LATEST = 20


@dataclass(frozen=True, slots=True)
class _Item:
    release: Release
    agency_name: str
    published_text: str


def _date_text(value: date | None) -> str:
    return f"{value.day} {value.strftime('%B %Y')}" if value else ""


def _items(snapshot: Snapshot, releases: list[Release]) -> list[_Item]:
    names = {a.slug: a.name for a in snapshot.agencies}
    return [
        _Item(r, names.get(r.draft.agency_slug, r.draft.agency), _date_text(r.draft.published))
        for r in releases
    ]


def _render(template: str, base_url: str, **context: Any) -> bytes:
    return _env.get_template(template).render(base_url=base_url, **context).encode("utf-8")


def _feed_link(base_url: str, name: str, title: str) -> dict[str, str]:
    return {"href": f"{base_url}/feeds/{name}.atom", "title": title}


def index(snapshot: Snapshot, base_url: str) -> bytes:
    present = [r for r in snapshot.releases if r.present]
    links = [_feed_link(base_url, query.ALL, "All agencies")] + [
        _feed_link(base_url, a.slug, a.name) for a in snapshot.agencies
    ]
    return _render(
        "index.html",
        base_url,
        agencies=snapshot.agencies,
        total=len(present),
        releases=_items(snapshot, catalog.newest_first(present)[:INDEX_LATEST]),
        feed_links=links,
    )


def agency(snapshot: Snapshot, slug: str, base_url: str) -> bytes | None:
    found = snapshot.agency(slug)
    if found is None:
        return None
    present = [r for r in snapshot.releases if r.present and r.draft.agency_slug == slug]
    return _render(
        "agency.html",
        base_url,
        agency=found,
        releases=_items(snapshot, catalog.newest_first(present)),
        feed_links=[_feed_link(base_url, slug, found.name)],
    )


def release(snapshot: Snapshot, uuid: str, base_url: str) -> bytes | None:
    found = next((r for r in snapshot.releases if r.uuid == uuid), None)
    if found is None:
        return None
    agency_found = snapshot.agency(found.draft.agency_slug)
    agency_name = agency_found.name if agency_found else found.draft.agency
    return _render(
        "release.html",
        base_url,
        release=found,
        agency_name=agency_name,
        published_text=_date_text(found.draft.published),
        body=Markup(markup.body_html(found.draft.paragraphs)),
        feed_links=[_feed_link(base_url, found.draft.agency_slug, agency_name)],
    )
