"""Which releases belong in which feed document, and each document's own metadata.

Pure functions over a :class:`~feeds.model.Snapshot`; no I/O, no formats.
DESIGN.md "What readers see": a feed's releases are numbered in first-seen
order (gone ones keep their number) and cut into archive pages of exactly
``page_size``; a full page's set of entries never changes except when a release
leaves the seeds. The subscription document holds every release past the last
full page plus the ``page_size`` most recently changed ones, newest change
first, so a late arrival with an old date still reaches every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from feeds import ids
from feeds.model import Agency, Release, Snapshot
from feeds.query import ALL, Filters, Selection

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
            return archive_path(self.name, self.page, extension)
        base = feed_path(self.name, extension)
        return f"{base}?{self.query}" if self.query else base

    def archive_links(self, extension: str) -> dict[str, str]:
        """RFC 5005 links by relation: ``current``, ``prev-archive``, ``next-archive``."""
        links: dict[str, str] = {}
        if self.kind == "current" and self.full_pages:
            links["prev-archive"] = archive_path(self.name, self.full_pages, extension)
        elif self.kind == "archive":
            links["current"] = feed_path(self.name, extension)
            if self.page > 1:
                links["prev-archive"] = archive_path(self.name, self.page - 1, extension)
            if self.page < self.full_pages:
                links["next-archive"] = archive_path(self.name, self.page + 1, extension)
        return links


def feed_path(name: str, extension: str) -> str:
    return f"/feeds/{name}.{extension}"


def archive_path(name: str, page: int, extension: str) -> str:
    return f"/feeds/{name}/archive/{page}.{extension}"


def feed_names(snapshot: Snapshot) -> list[str]:
    """The feeds to list: the combined one, then one per agency ever seen."""
    return [ALL, *(a.slug for a in snapshot.agencies)]


def members(snapshot: Snapshot, selection: Selection) -> list[Release]:
    """Every release the feed ever had (gone ones too), in first-seen order."""
    if selection.slugs is None:
        return list(snapshot.releases)
    wanted = set(selection.slugs)
    return [r for r in snapshot.releases if r.draft.agency_slug in wanted]


def newest_first(releases: list[Release]) -> list[Release]:
    """Most recently changed first. A total order.

    Among releases changed at the same moment, corrections come before new arrivals,
    then the later-seen first: when one sync brings more than a page of changes, a
    new release can still be found through its new archive page, a correction of an
    archived one only here.
    """
    return sorted(
        releases, key=lambda r: (r.updated, r.updated != r.first_seen, r.seq), reverse=True
    )


def subscription_entries(feed_members: list[Release], page_size: int) -> list[Release]:
    """The subscription document's entries from a feed's releases in first-seen order."""
    full = (len(feed_members) // page_size) * page_size
    present = [r for r in feed_members if r.present]
    tail = {r.id for r in feed_members[full:] if r.present}
    recent = {r.id for r in newest_first(present)[:page_size]}
    return newest_first([r for r in present if r.id in tail or r.id in recent])


def updated_of(releases: list[Release], fallback: datetime) -> datetime:
    """Latest ``updated`` of present releases or departure of gone ones; never "now"."""
    moments = [r.updated for r in releases if r.present]
    moments += [r.left_at for r in releases if r.left_at is not None]
    return max(moments) if moments else fallback


def _title(selection: Selection, agencies: dict[str, Agency]) -> str:
    if selection.slugs is None:
        return "Agency press releases"
    return " + ".join(agencies[s].name for s in selection.slugs) + " press releases"


def _html_path(selection: Selection) -> str:
    if selection.slugs is not None and len(selection.slugs) == 1:
        return f"/agencies/{selection.slugs[0]}"
    return "/"


def _sources(snapshot: Snapshot, selection: Selection, page_size: int) -> dict[str, SourceFeed]:
    if not selection.multi:
        return {}
    agencies = {a.slug: a for a in snapshot.agencies}
    slugs = selection.slugs if selection.slugs is not None else tuple(agencies)
    result = {}
    for slug in slugs:
        own = Selection(slug, (slug,))
        result[slug] = SourceFeed(
            id=ids.feed_id(slug),
            title=_title(own, agencies),
            path=feed_path(slug, "atom"),
            updated=updated_of(members(snapshot, own), agencies[slug].first_seen),
        )
    return result


def _doc(
    snapshot: Snapshot,
    selection: Selection,
    page_size: int,
    kind: Kind,
    entries: list[Release],
    updated: datetime,
    *,
    page: int = 0,
    query: str = "",
    full_pages: int = 0,
) -> FeedDoc:
    agencies = {a.slug: a for a in snapshot.agencies}
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
        sources=_sources(snapshot, selection, page_size),
    )


def _fallback(snapshot: Snapshot, selection: Selection) -> datetime:
    """When a feed has nothing to date it by: its agencies' first sighting, or store creation."""
    if selection.slugs is None:
        return snapshot.created
    return min(a.first_seen for a in snapshot.agencies if a.slug in selection.slugs)


def current(snapshot: Snapshot, selection: Selection, page_size: int) -> FeedDoc:
    """The subscription document of a feed."""
    feed_members = members(snapshot, selection)
    return _doc(
        snapshot,
        selection,
        page_size,
        "current",
        subscription_entries(feed_members, page_size),
        updated_of(feed_members, _fallback(snapshot, selection)),
        full_pages=len(feed_members) // page_size,
    )


def archive(snapshot: Snapshot, selection: Selection, page: int, page_size: int) -> FeedDoc | None:
    """Archive page ``page`` (1 = oldest) of a feed; None unless it is a full page."""
    feed_members = members(snapshot, selection)
    full_pages = len(feed_members) // page_size
    if not 1 <= page <= full_pages:
        return None
    on_page = feed_members[(page - 1) * page_size : page * page_size]
    return _doc(
        snapshot,
        selection,
        page_size,
        "archive",
        newest_first([r for r in on_page if r.present]),
        updated_of(on_page, _fallback(snapshot, selection)),
        page=page,
        full_pages=full_pages,
    )


def filtered(snapshot: Snapshot, selection: Selection, filters: Filters, page_size: int) -> FeedDoc:
    """A feed's present releases that pass ``filters``, newest change first.

    ``limit`` defaults to ``page_size``; ``since`` keeps entries updated after it.
    """
    feed_members = members(snapshot, selection)
    chosen = [
        r
        for r in newest_first([r for r in feed_members if r.present])
        if (filters.since is None or r.updated > filters.since) and filters.matches(searchable(r))
    ]
    limit = filters.limit if filters.limit is not None else page_size
    return _doc(
        snapshot,
        selection,
        page_size,
        "filtered",
        chosen[:limit],
        updated_of(feed_members, _fallback(snapshot, selection)),
        query=filters.canonical(),
    )


def searchable(release: Release) -> str:
    """Case-folded title and body, as ``q`` and ``exclude`` search them."""
    return (release.draft.title + "\n" + "\n".join(release.draft.paragraphs)).casefold()
