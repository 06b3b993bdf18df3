"""Which releases belong in which feed document, and the feed's own metadata.

Pure functions over a :class:`~feeds.model.Snapshot`; no I/O, no formats. A
feed is named by what it covers (``all``, ``nato``); its document is the
subscription document of DESIGN.md "What readers see": every release not yet
in a full archive page plus the ``page_size`` most recently changed ones,
newest change first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from feeds import ids
from feeds.model import Agency, Release, Snapshot

ALL = "all"


@dataclass(frozen=True, slots=True)
class FeedDoc:
    """One feed document, ready for any renderer."""

    name: str
    """Canonical feed name: ``all`` or an agency slug."""
    id: str
    title: str
    updated: datetime
    entries: tuple[Release, ...]
    """Newest change first."""
    agencies: dict[str, Agency]
    """Every agency by slug, for author names."""
    html_path: str
    """Path of the feed's HTML page (its ``alternate`` link)."""


def feed_names(snapshot: Snapshot) -> list[str]:
    """Every feed that answers: the combined one, then one per agency ever seen."""
    return [ALL, *(a.slug for a in snapshot.agencies)]


def _members(snapshot: Snapshot, name: str) -> list[Release]:
    if name == ALL:
        return list(snapshot.releases)
    return [r for r in snapshot.releases if r.draft.agency_slug == name]


def newest_first(releases: list[Release]) -> list[Release]:
    """Most recently changed first; among equals, the later-seen first. A total order."""
    return sorted(releases, key=lambda r: (r.updated, r.seq), reverse=True)


def subscription_entries(members: list[Release], page_size: int) -> list[Release]:
    """The subscription document's entries from a feed's releases in ``seq`` order.

    Releases are numbered within the feed in first-seen order (gone ones keep their
    number) and cut into archive pages of exactly ``page_size``. The document holds
    every present release past the last full page, plus the ``page_size`` most
    recently changed present releases, so a late arrival with an old date still
    reaches every subscriber.
    """
    full = (len(members) // page_size) * page_size
    present = [r for r in members if r.present]
    tail = {r.id for r in members[full:] if r.present}
    recent = {r.id for r in newest_first(present)[:page_size]}
    return newest_first([r for r in present if r.id in tail or r.id in recent])


def feed_updated(snapshot: Snapshot, name: str, members: list[Release]) -> datetime:
    """Latest entry ``updated`` or departure from this feed; never "now"."""
    moments = [r.updated for r in members if r.present]
    agencies = (
        snapshot.agencies if name == ALL else [a for a in snapshot.agencies if a.slug == name]
    )
    moments += [a.left_at for a in agencies if a.left_at is not None]
    if moments:
        return max(moments)
    # An agency with no release present and none departed cannot exist; the combined
    # feed of an empty store dates from the store's creation.
    return min([a.first_seen for a in agencies] or [snapshot.created])


def feed_doc(snapshot: Snapshot, name: str, page_size: int) -> FeedDoc | None:
    """The subscription document of feed ``name``; None for an agency never seen."""
    agencies = {a.slug: a for a in snapshot.agencies}
    if name == ALL:
        title = "Agency press releases"
        html_path = "/"
    elif name in agencies:
        title = f"{agencies[name].name} press releases"
        html_path = f"/agencies/{name}"
    else:
        return None
    members = _members(snapshot, name)
    return FeedDoc(
        name=name,
        id=ids.feed_id(name),
        title=title,
        updated=feed_updated(snapshot, name, members),
        entries=tuple(subscription_entries(members, page_size)),
        agencies=agencies,
        html_path=html_path,
    )
