"""Documents for people and their tools: HTML pages and the OPML subscription list.

Plain functions from the store's state and a reader to bytes (each page asks
only for the releases it shows), rendered with Jinja2 and
autoescaping on; release bodies come from :mod:`feeds.markup`, the same HTML
the feeds carry. The only script is the copy button's, and it is allowed by
its hash in the Content-Security-Policy (:data:`SCRIPT_CSP`).
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from feeds import markup, query
from feeds.catalog import newest_of, topic_title
from feeds.model import Agency, Release, State, Topic, TopicFeed
from feeds.query import topic_selection
from feeds.store import Reader
from feeds.topics import KINDS

_env = Environment(
    loader=PackageLoader("feeds", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    keep_trailing_newline=True,
)

#: Releases listed on the index page.
INDEX_LATEST = 20
#: Releases per agency page.
AGENCY_PAGE = 50
#: Longest summary shown in lists, in characters.
SUMMARY_CHARS = 280

# Shows the copy buttons (hidden without JavaScript) and copies a feed URL on click.
COPY_SCRIPT = (
    "document.querySelectorAll('button.copy').forEach(function (b) {"
    " b.hidden = false;"
    " b.addEventListener('click', function () {"
    " navigator.clipboard.writeText(b.dataset.copy).then(function () {"
    " b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500);"
    " }); }); });"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(COPY_SCRIPT.encode()).digest()).decode()
#: Content-Security-Policy for every HTML page: nothing runs but the copy button.
SCRIPT_CSP = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class _Item:
    release: Release
    agency_name: str
    published_text: str
    summary: str


@dataclass(frozen=True, slots=True)
class _AgencyRow:
    agency: Agency
    newest: str


def date_text(value: date | None) -> str:
    """``3 August 2023``; empty for an unknown date."""
    return f"{value.day} {value.strftime('%B %Y')}" if value else ""


def _summary(release: Release) -> str:
    text = " ".join(release.draft.summary.split())
    if len(text) <= SUMMARY_CHARS:
        return text
    return text[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"


def _items(state: State, releases: list[Release]) -> list[_Item]:
    names = {a.slug: a.name for a in state.agencies}
    return [
        _Item(
            r,
            names.get(r.draft.agency_slug, r.draft.agency),
            date_text(r.draft.published),
            _summary(r),
        )
        for r in releases
    ]


def _render(template: str, base_url: str, **context: Any) -> bytes:
    html = _env.get_template(template).render(
        base_url=base_url, copy_script=Markup(COPY_SCRIPT), **context
    )
    return html.encode("utf-8")


def _feed_link(base_url: str, name: str, title: str) -> dict[str, str]:
    return {"href": f"{base_url}/feeds/{name}.atom", "title": title}


def index(reader: Reader, state: State, base_url: str) -> bytes:
    """The front page: every agency with counts and feeds, a chooser, the latest releases."""
    rows = [_AgencyRow(a, date_text(a.newest)) for a in state.agencies]
    links = [_feed_link(base_url, query.ALL, "All agencies")] + [
        _feed_link(base_url, a.slug, a.name) for a in state.agencies
    ]
    return _render(
        "index.html",
        base_url,
        agencies=state.agencies,
        agency_rows=rows,
        total=state.present,
        releases=_items(state, reader.newest(None, INDEX_LATEST)),
        feed_links=links,
    )


def agency_pages(state: State, slug: str) -> int:
    """How many pages the agency's release list has (at least 1)."""
    found = state.agency(slug)
    count = found.present_count if found else 0
    return max(1, math.ceil(count / AGENCY_PAGE))


def agency(reader: Reader, state: State, slug: str, base_url: str, page: int = 1) -> bytes | None:
    """One agency's releases, newest change first, :data:`AGENCY_PAGE` per page."""
    found = state.agency(slug)
    pages = agency_pages(state, slug)
    if found is None or not 1 <= page <= pages:
        return None
    shown = reader.newest((slug,), AGENCY_PAGE, (page - 1) * AGENCY_PAGE)
    return _render(
        "agency.html",
        base_url,
        agency=found,
        page=page,
        pages=pages,
        releases=_items(state, shown),
        feed_links=[_feed_link(base_url, slug, found.name)],
    )


def release(found: Release, state: State, base_url: str) -> bytes:
    """One release with its full text, dates, topics and feed links."""
    agency_found = state.agency(found.draft.agency_slug)
    agency_name = agency_found.name if agency_found else found.draft.agency
    return _render(
        "release.html",
        base_url,
        release=found,
        agency_name=agency_name,
        published_text=date_text(found.draft.published),
        body=Markup(markup.body_html(found.draft.paragraphs)),
        feed_links=[_feed_link(base_url, found.draft.agency_slug, agency_name)],
    )


@dataclass(frozen=True, slots=True)
class _TopicRow:
    key: str
    topic: Topic
    present_count: int
    title: str


def _topic_groups(state: State) -> list[tuple[str, str, list[_TopicRow]]]:
    """Topics by kind (in :data:`feeds.topics.KINDS` order), most releases first."""
    groups: list[tuple[str, str, list[_TopicRow]]] = []
    for kind, name in KINDS.items():
        found = [t for t in state.topics if t.topic.kind == kind]
        found.sort(key=lambda t: (-t.present_count, t.topic.name.casefold(), t.key))
        rows = [_TopicRow(t.key, t.topic, t.present_count, topic_title(t.topic)) for t in found]
        groups.append((kind, name, rows))
    return groups


def topics(state: State, base_url: str, kind: str | None = None) -> bytes:
    """Every topic (of one kind, or all) with its release count, most active first."""
    groups = [g for g in _topic_groups(state) if kind is None or g[0] == kind]
    return _render("topics.html", base_url, groups=groups, kind=kind)


def topic_pages(found: TopicFeed) -> int:
    return max(1, math.ceil(found.present_count / AGENCY_PAGE))


def topic(reader: Reader, state: State, found: TopicFeed, base_url: str, page: int) -> bytes | None:
    """One topic's releases across agencies, newest change first, paged."""
    pages = topic_pages(found)
    if not 1 <= page <= pages:
        return None
    selection = topic_selection(found.key)
    shown = newest_of(reader, selection, AGENCY_PAGE, (page - 1) * AGENCY_PAGE)
    title = topic_title(found.topic)
    return _render(
        "topic.html",
        base_url,
        topic=found,
        title=title,
        kind_name=KINDS[found.topic.kind],
        page=page,
        pages=pages,
        releases=_items(state, shown),
        feed_links=[_feed_link(base_url, f"topics/{found.key}", title)],
    )


def topics_opml(state: State, base_url: str) -> bytes:
    """OPML 2.0 listing every topic's Atom feed, grouped by kind."""
    return _render(
        "topics.opml",
        base_url,
        groups=_topic_groups(state),
        modified=state.updated.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    )


def opml(state: State, base_url: str) -> bytes:
    """OPML 2.0 listing every agency's Atom feed, to subscribe to all at once.

    The combined feed is left out on purpose: subscribing to it and to the agency
    feeds would show every release twice.
    """
    modified = state.updated
    return _render(
        "feeds.opml",
        base_url,
        agencies=state.agencies,
        modified=modified.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    )
