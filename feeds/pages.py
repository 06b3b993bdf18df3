"""Documents for people and their tools: HTML pages, the OPML list and ``robots.txt``.

Plain functions from the store's state and a reader to bytes (each page asks
only for the releases it shows), rendered with Jinja2 and
autoescaping on; release bodies come from :mod:`feeds.markup`, the same HTML
the feeds carry, and every path from :mod:`feeds.urls`. Pages are built for
reading: lists lead, and each page has one Subscribe control (one feed URL, a
format choice made in CSS, a copy button). Everything works without
JavaScript; the only script is the copy button's, and it is allowed by its
hash in the Content-Security-Policy (:data:`SCRIPT_CSP`).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from feeds import markup, query, urls
from feeds.catalog import newest_of, topic_title
from feeds.errors import BadRequestError
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
#: Results per search page, and the most pages a search shows: a search reads
#: ``page * SEARCH_PAGE`` rows, so the depth is bounded like the ``limit`` filter.
SEARCH_PAGE = 20
SEARCH_PAGES = query.MAX_LIMIT // SEARCH_PAGE
#: Longest summary shown in lists, in characters.
SUMMARY_CHARS = 280
#: Longest meta description, in characters (what search engines show).
DESCRIPTION_CHARS = 160

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
#: ``connect-src 'self'`` lets tools that check a page from inside it (Lighthouse's
#: robots.txt audit) read this site; no script of ours fetches anything.
SCRIPT_CSP = (
    f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Where a URL may wrap: after these characters, never inside a word.
_URL_BREAKS = re.compile(r"(?<=[/.+?&=])")


@dataclass(frozen=True, slots=True)
class _Item:
    release: Release
    agency_name: str
    published_text: str
    summary: str


@dataclass(frozen=True, slots=True)
class _Chip:
    """An agency as the index lists it: name, count, newest date, and for forms its state."""

    agency: Agency
    newest: str
    checked: bool = False


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated search: words, agencies, page. ``selection`` is None for no agency filter."""

    filters: query.Filters
    selection: query.Selection
    page: int = 1

    @property
    def chosen(self) -> tuple[str, ...]:
        return self.selection.slugs or ()


def date_text(value: date | None) -> str:
    """``3 August 2023``; empty for an unknown date."""
    return f"{value.day} {value.strftime('%B %Y')}" if value else ""


def breakable(url: str) -> Markup:
    """A URL as HTML that wraps only after ``/ . + ? & =`` (``<wbr>``), never mid-word."""
    return Markup("<wbr>").join(escape(part) for part in _URL_BREAKS.split(url))


def releases_text(count: int) -> str:
    """``1 release``, ``5 releases``."""
    return f"{count} release" if count == 1 else f"{count} releases"


_env.filters["breakable"] = breakable
_env.filters["releases"] = releases_text


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _items(state: State, releases: list[Release]) -> list[_Item]:
    names = {a.slug: a.name for a in state.agencies}
    return [
        _Item(
            r,
            names.get(r.draft.agency_slug, r.draft.agency),
            date_text(r.draft.published),
            _shorten(r.draft.summary, SUMMARY_CHARS),
        )
        for r in releases
    ]


def _chips(state: State, checked: tuple[str, ...] = ()) -> list[_Chip]:
    return [_Chip(a, date_text(a.newest), a.slug in checked) for a in state.agencies]


def _render(template: str, base_url: str, **context: Any) -> bytes:
    html = _env.get_template(template).render(
        base_url=base_url,
        urls=urls,
        formats=urls.FORMAT_LABELS,
        copy_script=Markup(COPY_SCRIPT),
        **context,
    )
    return html.encode("utf-8")


def _feed_link(base_url: str, name: str, title: str) -> dict[str, str]:
    return {"href": base_url + urls.feed(name, "atom"), "title": title}


def _names(agencies: tuple[Agency, ...]) -> str:
    """``Europol, Interpol and NATO``."""
    names = [a.name for a in agencies]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def index(reader: Reader, state: State, base_url: str) -> bytes:
    """The front page: the latest releases first, then subscribing, agencies, the chooser."""
    links = [_feed_link(base_url, query.ALL, "All agencies")] + [
        _feed_link(base_url, a.slug, a.name) for a in state.agencies
    ]
    description = (
        f"Press releases from {_names(state.agencies) or 'law-enforcement agencies'}, "
        "republished as Atom, RSS and JSON feeds to follow in any feed reader."
    )
    return _render(
        "index.html",
        base_url,
        agencies=state.agencies,
        chips=_chips(state),
        total=state.present,
        releases=_items(state, reader.newest(None, INDEX_LATEST)),
        feed_links=links,
        description=_shorten(description, DESCRIPTION_CHARS),
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
    newest = date_text(found.newest)
    description = f"{releases_text(found.present_count)} from {found.name}" + (
        f", the newest from {newest}," if newest else ","
    ) + " as a page and as feeds to follow in any feed reader."  # fmt: skip
    return _render(
        "agency.html",
        base_url,
        agency=found,
        newest=newest,
        page=page,
        pages=pages,
        releases=_items(state, shown),
        feed_links=[_feed_link(base_url, slug, found.name)],
        description=_shorten(description, DESCRIPTION_CHARS),
    )


def release(found: Release, state: State, base_url: str) -> bytes:
    """One release with its full text, dates, topics and feed links."""
    agency_found = state.agency(found.draft.agency_slug)
    agency_name = agency_found.name if agency_found else found.draft.agency
    description = found.draft.summary or f"A press release from {agency_name}."
    return _render(
        "release.html",
        base_url,
        release=found,
        agency_name=agency_name,
        published_text=date_text(found.draft.published),
        body=Markup(markup.body_html(found.draft.paragraphs)),
        feed_links=[_feed_link(base_url, found.draft.agency_slug, agency_name)],
        description=_shorten(description, DESCRIPTION_CHARS),
        topics=[_TopicLink(t.kind, t.name, urls.topic(t.key)) for t in found.topics],
    )


@dataclass(frozen=True, slots=True)
class _TopicLink:
    kind: str
    label: str
    path: str


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
    description = (
        "Every country, named operation and crime area in the press releases, "
        "each with its own page and feed."
    )
    return _render("topics.html", base_url, groups=groups, kind=kind, description=description)


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
        feed_links=[_feed_link(base_url, urls.topic_feed_name(found.key), title)],
        description=_shorten(
            f"{releases_text(found.present_count)} about {found.topic.name} from every agency, "
            "and a feed that follows them in any feed reader.",
            DESCRIPTION_CHARS,
        ),
    )


def topics_opml(state: State, base_url: str) -> bytes:
    """OPML 2.0 listing every topic's Atom feed, grouped by kind."""
    return _render(
        "topics.opml",
        base_url,
        groups=_topic_groups(state),
        modified=state.updated.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT"),
    )


def search_request(state: State, args: dict[str, list[str]]) -> SearchRequest:
    """The search a ``/search`` query string asks for.

    ``q`` (and ``exclude``) follow the ``q`` filter's rule and limits
    (:mod:`feeds.query`); ``agency`` may repeat; ``page`` counts from 1.

    :raises BadRequestError: malformed words or page, or the words missing.
    :raises NotFoundError: an agency never seen.
    """
    words = {name: args[name] for name in ("q", "exclude") if args.get(name)}
    filters = query.filters(words)
    if not filters.q:
        raise BadRequestError("q", "give one or more words to search for")
    pages = args.get("page", ["1"])
    number = pages[-1]
    if not (number.isascii() and number.isdigit() and 1 <= int(number) <= SEARCH_PAGES):
        raise BadRequestError("page", f"an integer from 1 to {SEARCH_PAGES}")
    chosen = args.get("agency", [])
    known = [a.slug for a in state.agencies]
    selection = query.select("+".join(chosen), known) if chosen else query.select(query.ALL, known)
    return SearchRequest(filters, selection, int(number))


def search(reader: Reader, state: State, wanted: SearchRequest, base_url: str) -> bytes:
    """One page of releases matching a search, with the feed that follows it."""
    offset = (wanted.page - 1) * SEARCH_PAGE
    found = reader.search(wanted.selection.slugs, wanted.filters, offset + SEARCH_PAGE + 1)
    shown = found[offset : offset + SEARCH_PAGE]
    more = len(found) > offset + SEARCH_PAGE and wanted.page < SEARCH_PAGES
    words = " ".join(wanted.filters.q)
    return _render(
        "search.html",
        base_url,
        words=words,
        exclude=" ".join(wanted.filters.exclude),
        chips=_chips(state, wanted.chosen),
        releases=_items(state, shown),
        first=offset + 1,
        page=wanted.page,
        newer=urls.search(words, wanted.chosen, wanted.page - 1) if wanted.page > 1 else "",
        older=urls.search(words, wanted.chosen, wanted.page + 1) if more else "",
        feed_name=wanted.selection.name,
        feed_query=wanted.filters.canonical(),
        feed_links=[],
        description=(
            f"Press releases matching “{_shorten(words, 60)}”, "
            "and a feed that follows this search in any feed reader."
        ),
        problem="",
    )


def search_help(state: State, base_url: str, args: dict[str, list[str]], problem: str) -> bytes:
    """The search page with no results: how to search, and what was wrong, if anything."""
    chosen = tuple(args.get("agency", []))
    return _render(
        "search.html",
        base_url,
        words=" ".join(args.get("q", [""])[-1:]),
        exclude="",
        chips=_chips(state, chosen),
        releases=None,
        feed_links=[],
        description="Search the press releases and subscribe to a search as a feed.",
        problem=problem,
    )


def chooser(state: State, base_url: str, extension: str, problem: str) -> bytes:
    """The agency chooser on a page of its own, saying what to correct."""
    return _render(
        "choose.html",
        base_url,
        chips=_chips(state),
        extension=extension,
        problem=problem,
        feed_links=[],
        description="Choose the agencies to follow in one feed.",
    )


def robots() -> bytes:
    """``robots.txt``: crawl everything but filtered feeds, the chooser and searches.

    Those are open-ended (any query string is another URL) and repeat what the
    agency pages and feeds already hold.
    """
    lines = [
        "User-agent: *",
        f"Disallow: {urls.SEARCH}",
        f"Disallow: {urls.CHOOSE}",
        f"Disallow: {urls.FEEDS}*?",
        "Allow: /",
        "",
    ]
    return "\n".join(lines).encode("ascii")


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
