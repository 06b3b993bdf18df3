"""Which releases belong in which feed document, and each document's own metadata.

Each document is built from a few questions to a :class:`~feeds.store.Reader`
(one read transaction) and the store's :class:`~feeds.model.State`, asking
only for the rows the document shows; no formats here. DESIGN.md "What
readers see": a feed's releases are numbered in first-seen order (gone ones
keep their number) and cut into archive pages of exactly ``page_size``; a full
page's set of entries never changes except when a release leaves the seeds.
The subscription document holds every release past the last full page plus
the ``page_size`` most recently changed ones, newest change first, so a late
arrival with an old date still reaches every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from feeds import ids, urls
from feeds.model import Agency, Release, State, Topic
from feeds.query import ALL, Filters, Selection, topic_selection
from feeds.store import Reader

Kind = Literal["current", "archive", "filtered"]


@dataclass(frozen=True, slots=True)
class SourceFeed:
    """An agency feed, as an entry of a multi-agency feed names it in ``atom:source``."""

    id: str
    title: str
    path: str
    updated: datetime


@dataclass(frozen=True, slots=True)
class FeedDoc:
    """One feed document, ready for any renderer."""

    name: str
    """Canonical feed name: ``all``, an agency slug, or slugs joined by ``+``."""
    kind: Kind
    id: str
    title: str
    updated: datetime
    entries: tuple[Release, ...]
    """Newest change first."""
    agencies: dict[str, Agency]
    """Every agency by slug, for author names."""
    html_path: str
    """Path of the feed's HTML page (its ``alternate`` link)."""
    page: int = 0
    """Archive page number (1 = oldest), for ``kind == "archive"``."""
    full_pages: int = 0
    """How many full archive pages the feed has."""
    query: str = ""
    """Canonical filter query string, for ``kind == "filtered"``."""
    sources: dict[str, SourceFeed] = field(default_factory=dict)
    """Agency feeds by slug, for multi-agency documents' ``atom:source``; else empty."""
    topic: str | None = None
    """A topic feed's topic (``kind/slug``)."""

    @property
    def deps(self) -> tuple[str, ...] | None:
        """What the document's bytes depend on: agencies (by slug) and topics (by key).

        A topic's feed names only the agencies of its entries, so it depends on those
        and on the topic; an agency selection on its agencies; ``all`` on everything.
        """
        if self.topic is not None:
            return (self.topic, *self.sources)
        if self.name == ALL:
            return None
        return tuple(self.agencies_named)

    agencies_named: tuple[str, ...] = ()
    """The agencies an agency selection covers (its slugs)."""

    def path(self, extension: str) -> str:
        """This document's own URL path in the given format."""
        if self.kind == "archive":
            return urls.archive(self.name, self.page, extension)
        return urls.feed(self.name, extension, self.query)

    def archive_links(self, extension: str) -> dict[str, str]:
        """RFC 5005 links by relation: ``current``, ``prev-archive``, ``next-archive``."""
        links: dict[str, str] = {}
        if self.kind == "current" and self.full_pages:
            links["prev-archive"] = urls.archive(self.name, self.full_pages, extension)
        elif self.kind == "archive":
            links["current"] = urls.feed(self.name, extension)
            if self.page > 1:
                links["prev-archive"] = urls.archive(self.name, self.page - 1, extension)
            if self.page < self.full_pages:
                links["next-archive"] = urls.archive(self.name, self.page + 1, extension)
        return links


def member_count(state: State, selection: Selection) -> int:
    """How many releases the feed ever had (gone ones too)."""
    if selection.topic is not None:
        found = state.topic(selection.topic)
        return found.members if found else 0
    if selection.slugs is None:
        return state.releases
    agencies = state.by_slug
    return sum(agencies[slug].members for slug in selection.slugs)


def full_pages(state: State, selection: Selection, page_size: int) -> int:
    return member_count(state, selection) // page_size


def newest_first(releases: list[Release]) -> list[Release]:
    """Most recently changed first. A total order.

    Among releases changed at the same moment, corrections come before new arrivals,
    then the later-seen first: when one sync brings more than a page of changes, a
    new release can still be found through its new archive page, a correction of an
    archived one only here. The stores' "newest" indexes keep the same order.
    """
    return sorted(
        releases, key=lambda r: (r.updated, r.updated != r.first_seen, r.seq), reverse=True
    )


def updated_of(releases: list[Release], fallback: datetime) -> datetime:
    """Latest ``updated`` of present releases or departure of gone ones; never "now"."""
    moments = [r.updated for r in releases if r.present]
    moments += [r.left_at for r in releases if r.left_at is not None]
    return max(moments) if moments else fallback


def feed_updated(state: State, selection: Selection) -> datetime:
    """A feed's ``updated``: its agencies' latest change or departure, else their sighting."""
    if selection.topic is not None:
        found = state.topic(selection.topic)
        return found.feed_updated if found else state.created
    if selection.slugs is None:
        return state.updated
    chosen = [state.by_slug[slug] for slug in selection.slugs]
    moments = [a.updated for a in chosen if a.updated is not None]
    return max(moments) if moments else min(a.first_seen for a in chosen)


def _title(selection: Selection, agencies: dict[str, Agency], state: State) -> str:
    if selection.topic is not None:
        found = state.topic(selection.topic)
        return topic_title(found.topic) if found else f"Press releases about {selection.topic}"
    if selection.slugs is None:
        return "Agency press releases"
    return " + ".join(agencies[s].name for s in selection.slugs) + " press releases"


def topic_title(topic: Topic) -> str:
    """A topic feed's title: about ``Spain``, ``Operation Pangea XVI``, ``Fraud``."""
    name = f"Operation {topic.name}" if topic.kind == "operations" else topic.name
    return f"Press releases about {name}"


def _html_path(selection: Selection) -> str:
    if selection.topic is not None:
        return urls.topic(selection.topic)
    if selection.slugs is not None and len(selection.slugs) == 1:
        return urls.agency(selection.slugs[0])
    return urls.INDEX


def _sources(state: State, selection: Selection, entries: list[Release]) -> dict[str, SourceFeed]:
    if not selection.multi:
        return {}
    agencies = state.by_slug
    if selection.topic is not None:  # a topic's feed names only the agencies it shows
        slugs: tuple[str, ...] = tuple(sorted({r.draft.agency_slug for r in entries}))
    else:
        slugs = selection.slugs if selection.slugs is not None else tuple(agencies)
    return {
        slug: SourceFeed(
            id=ids.feed_id(slug),
            title=_title(Selection(slug, (slug,)), agencies, state),
            path=urls.feed(slug, "atom"),
            updated=agencies[slug].feed_updated,
        )
        for slug in slugs
    }


def _doc(
    state: State,
    selection: Selection,
    kind: Kind,
    entries: list[Release],
    updated: datetime,
    *,
    page: int = 0,
    query: str = "",
    full_pages: int = 0,
) -> FeedDoc:
    agencies = state.by_slug
    title = _title(selection, agencies, state)
    feed_key = selection.name
    if kind == "filtered":
        # A filtered feed is a feed of its own: its own ID and title.
        feed_key = f"{selection.name}?{query}"
        title = f"{title} ({query})"
    return FeedDoc(
        name=selection.name,
        kind=kind,
        id=ids.feed_id(feed_key),
        title=title,
        updated=updated,
        entries=tuple(entries),
        agencies=agencies,
        html_path=_html_path(selection),
        page=page,
        full_pages=full_pages,
        query=query,
        sources=_sources(state, selection, entries),
        topic=selection.topic,
        agencies_named=selection.slugs or (),
    )


def current(reader: Reader, state: State, selection: Selection, page_size: int) -> FeedDoc:
    """The subscription document of a feed: its tail plus its most recent changes."""
    pages = full_pages(state, selection, page_size)
    rows = _Rows(reader, selection)
    tail = rows.present_after(pages * page_size)
    recent = rows.newest(page_size)
    entries = newest_first(list({r.id: r for r in (*tail, *recent)}.values()))
    return _doc(
        state,
        selection,
        "current",
        entries,
        feed_updated(state, selection),
        full_pages=pages,
    )


def archive(
    reader: Reader, state: State, selection: Selection, page: int, page_size: int
) -> FeedDoc | None:
    """Archive page ``page`` (1 = oldest) of a feed; None unless it is a full page."""
    pages = full_pages(state, selection, page_size)
    if not 1 <= page <= pages:
        return None
    on_page = _Rows(reader, selection).members((page - 1) * page_size + 1, page * page_size)
    if selection.topic is not None:
        found = state.topic(selection.topic)
        fallback = found.first_seen if found else state.created
    elif selection.slugs is None:
        fallback = state.created
    else:
        fallback = min(state.by_slug[slug].first_seen for slug in selection.slugs)
    return _doc(
        state,
        selection,
        "archive",
        newest_first([r for r in on_page if r.present]),
        updated_of(on_page, fallback),
        page=page,
        full_pages=pages,
    )


def filtered(
    reader: Reader, state: State, selection: Selection, filters: Filters, page_size: int
) -> FeedDoc:
    """A feed's present releases that pass ``filters``, newest change first.

    ``limit`` defaults to ``page_size``; ``since`` keeps entries updated after it.
    """
    limit = filters.limit if filters.limit is not None else page_size
    return _doc(
        state,
        selection,
        "filtered",
        _Rows(reader, selection).search(filters, limit),
        feed_updated(state, selection),
        query=filters.canonical(),
    )


class _Rows:
    """A feed's rows from the reader: an agency selection's or a topic's."""

    def __init__(self, reader: Reader, selection: Selection) -> None:
        self.reader = reader
        self.selection = selection

    def members(self, first: int, last: int) -> list[Release]:
        topic = self.selection.topic
        if topic is not None:
            return self.reader.topic_members(topic, first, last)
        return self.reader.members(self.selection.slugs, first, last)

    def present_after(self, position: int) -> list[Release]:
        topic = self.selection.topic
        if topic is not None:
            return self.reader.topic_present_after(topic, position)
        return self.reader.present_after(self.selection.slugs, position)

    def newest(self, limit: int, offset: int = 0) -> list[Release]:
        topic = self.selection.topic
        if topic is not None:
            return self.reader.topic_newest(topic, limit, offset)
        return self.reader.newest(self.selection.slugs, limit, offset)

    def search(self, filters: Filters, limit: int) -> list[Release]:
        topic = self.selection.topic
        if topic is not None:
            return self.reader.topic_search(topic, filters, limit)
        return self.reader.search(self.selection.slugs, filters, limit)


def newest_of(reader: Reader, selection: Selection, limit: int, offset: int = 0) -> list[Release]:
    """A feed's present releases, most recent change first (for pages)."""
    return _Rows(reader, selection).newest(limit, offset)


def selections(state: State) -> list[Selection]:
    """Every enumerable feed: the combined one, one per agency, one per topic ever found."""
    return [
        Selection(ALL, None),
        *(Selection(a.slug, (a.slug,)) for a in state.agencies),
        *(topic_selection(t.key) for t in state.topics),
    ]
