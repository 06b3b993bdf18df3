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
from feeds.model import Agency, Release, State
from feeds.query import ALL, Filters, Selection
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


def feed_names(state: State) -> list[str]:
    """The feeds to list: the combined one, then one per agency ever seen."""
    return [ALL, *(a.slug for a in state.agencies)]


def member_count(state: State, selection: Selection) -> int:
    """How many releases the feed ever had (gone ones too)."""
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
    if selection.slugs is None:
        return state.updated
    chosen = [state.by_slug[slug] for slug in selection.slugs]
    moments = [a.updated for a in chosen if a.updated is not None]
    return max(moments) if moments else min(a.first_seen for a in chosen)


def _title(selection: Selection, agencies: dict[str, Agency]) -> str:
    if selection.slugs is None:
        return "Agency press releases"
    return " + ".join(agencies[s].name for s in selection.slugs) + " press releases"


def _html_path(selection: Selection) -> str:
    if selection.slugs is not None and len(selection.slugs) == 1:
        return urls.agency(selection.slugs[0])
    return urls.INDEX


def _sources(state: State, selection: Selection) -> dict[str, SourceFeed]:
    if not selection.multi:
        return {}
    agencies = state.by_slug
    slugs = selection.slugs if selection.slugs is not None else tuple(agencies)
    return {
        slug: SourceFeed(
            id=ids.feed_id(slug),
            title=_title(Selection(slug, (slug,)), agencies),
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
    title = _title(selection, agencies)
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
        sources=_sources(state, selection),
    )


def current(reader: Reader, state: State, selection: Selection, page_size: int) -> FeedDoc:
    """The subscription document of a feed: its tail plus its most recent changes."""
    pages = full_pages(state, selection, page_size)
    tail = reader.present_after(selection.slugs, pages * page_size)
    recent = reader.newest(selection.slugs, page_size)
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
    on_page = reader.members(selection.slugs, (page - 1) * page_size + 1, page * page_size)
    if selection.slugs is None:
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
        reader.search(selection.slugs, filters, limit),
        feed_updated(state, selection),
        query=filters.canonical(),
    )
