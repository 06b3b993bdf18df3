"""The store contract: what the web layer, the catalog and the sync ask of a store.

A store keeps, per release, its text once plus what the service owns (number,
first seen, last content change, content hash, presence, last departure); per
agency its first sighting and its feed's running totals; per seed file its
fingerprint and content; per distinct content the copies it holds (without
their text, except where a copy lost to another) and its problems; and a
short sync log.

Every document is answered by a few indexed queries inside one
:meth:`Store.read` transaction (a :class:`Reader`), so it never mixes two sync
states and never touches more rows than it shows. A sync is one
:meth:`Store.sync_session` transaction; the decisions are made in
:mod:`feeds.decide`, in Python, and the session only finds the touched
releases and writes what was decided. Backends implement these protocols
(:mod:`feeds.sqlite_store`); nothing above this module knows which one runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from feeds.decide import Candidate, Decision, Tally
from feeds.errors import StoreError
from feeds.model import Draft, Fingerprint, Problem, Release, State, SyncReport, Topic
from feeds.query import Filters

#: How many sync log rows to keep.
SYNC_LOG_ROWS = 200


__all__ = ["StoreError"]  # the store's errors live in feeds.errors; kept here for callers


@dataclass(frozen=True, slots=True)
class FileRow:
    """A seed file as last read successfully."""

    name: str
    fingerprint: Fingerprint
    sha256: str


@dataclass(frozen=True, slots=True)
class Copy:
    """One release as one content holds it, ready to store."""

    id: str
    draft: Draft
    content_hash: str
    weight: int
    """How much text it has: among copies of one release, the heaviest wins."""
    topics: tuple[Topic, ...] = ()
    """What its text is about; the release takes them with the text when this copy wins."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What closing a sync changed beyond the releases themselves."""

    generation: int
    agencies: tuple[str, ...]
    """Slugs of agencies whose documents changed."""
    topics: tuple[str, ...] = ()
    """Keys (``kind/slug``) of topics whose documents changed."""


# -- shared encodings: every backend stores drafts and times the same way ----------


def to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def draft_to_json(draft: Draft) -> str:
    """A draft as one JSON text (its place in the file is no part of it)."""
    return json.dumps(
        {
            "agency": draft.agency,
            "agency_slug": draft.agency_slug,
            "channel": draft.channel,
            "title": draft.title,
            "date_line": draft.date_line.isoformat() if draft.date_line else None,
            "published": draft.published.isoformat() if draft.published else None,
            "paragraphs": list(draft.paragraphs),
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def draft_from_json(text: str) -> Draft:
    obj: dict[str, Any] = json.loads(text)
    return Draft(
        agency=obj["agency"],
        agency_slug=obj["agency_slug"],
        channel=obj["channel"],
        title=obj["title"],
        date_line=date.fromisoformat(obj["date_line"]) if obj["date_line"] else None,
        published=date.fromisoformat(obj["published"]) if obj["published"] else None,
        paragraphs=tuple(obj["paragraphs"]),
        line=0,  # where a copy sat in its file is not kept: it is no part of the release
    )


def exact_digest(draft: Draft) -> bytes:
    """Digest of a draft's exact text: tells whitespace-only rewrites apart cheaply."""
    return digest_of(draft_to_json(draft))


def digest_of(text: str) -> bytes:
    """:func:`exact_digest` of a draft already as :func:`draft_to_json` text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


#: Paragraphs are stored joined by a blank line, which no paragraph contains.
PARAGRAPH_BREAK = "\n\n"


def join_body(paragraphs: Sequence[str]) -> str:
    return PARAGRAPH_BREAK.join(paragraphs)


def split_body(body: str) -> tuple[str, ...]:
    return tuple(body.split(PARAGRAPH_BREAK)) if body else ()


def topics_to_json(topics: Sequence[Topic]) -> str:
    return json.dumps([[t.kind, t.slug, t.name] for t in topics], ensure_ascii=False)


def topics_from_json(text: str | None) -> tuple[Topic, ...]:
    return tuple(Topic(kind, slug, name) for kind, slug, name in json.loads(text or "[]"))


def report_to_json(report: SyncReport) -> str:
    return json.dumps(
        {
            "started": report.started.isoformat(),
            "finished": report.finished.isoformat(),
            "ok": report.ok,
            "error": report.error,
            "files_seen": report.files_seen,
            "files_read": report.files_read,
            "files_skipped": report.files_skipped,
            "new": report.count("new"),
            "changed": report.count("changed"),
            "gone": report.count("gone"),
            "returned": report.count("returned"),
            "problems": len(report.problems),
            "seconds": round(report.seconds, 6),
        },
        sort_keys=True,
    )


# -- the contract --------------------------------------------------------------------


class Reader(Protocol):
    """One read transaction: every answer comes from the same sync state.

    ``slugs`` names a feed's agencies: None for every agency. A feed's members are
    every release it ever had (gone ones too) numbered 1, 2, ... in first-seen
    order; ``newest`` order is most recent change first (see
    :func:`feeds.catalog.newest_first`).
    """

    def state(self) -> State:
        """Generation, creation time, every agency and topic with its totals."""
        ...

    def generation(self) -> int:
        """The generation this transaction sees (a cheap check before :meth:`state`)."""
        ...

    def members(self, slugs: tuple[str, ...] | None, first: int, last: int) -> list[Release]:
        """The feed's members numbered ``first`` to ``last``, in number order."""
        ...

    def present_after(self, slugs: tuple[str, ...] | None, position: int) -> list[Release]:
        """Present members numbered after ``position``, in number order (a feed's tail)."""
        ...

    def newest(self, slugs: tuple[str, ...] | None, limit: int, offset: int = 0) -> list[Release]:
        """Present members, most recent change first, from ``offset``, at most ``limit``."""
        ...

    def search(self, slugs: tuple[str, ...] | None, filters: Filters, limit: int) -> list[Release]:
        """Present members that pass ``filters`` (full-text index), newest first."""
        ...

    def release(self, uuid: str) -> Release | None:
        """One release by the UUID part of its ID, present or not."""
        ...

    # A topic's feed (``topic`` is its key, ``kind/slug``): the releases ever tagged with
    # it, numbered in the order they were tagged. A release that loses the topic, or
    # leaves the seeds, stays a member that is not present (its ``present`` and
    # ``left_at`` here are the membership's).

    def topic_members(self, topic: str, first: int, last: int) -> list[Release]: ...

    def topic_present_after(self, topic: str, position: int) -> list[Release]: ...

    def topic_newest(self, topic: str, limit: int, offset: int = 0) -> list[Release]: ...

    def topic_search(self, topic: str, filters: Filters, limit: int) -> list[Release]: ...

    def uuids(self) -> Iterator[str]:
        """The UUID of every release ever seen, by number (for the static export)."""
        ...


class SyncSession(Protocol):
    """The write side of one sync, inside its transaction: files in, decisions applied.

    Give it the listing (:meth:`list_files`), read the files it calls unread
    (:meth:`mark_unread`, :meth:`unread`) and :meth:`put_file` each one read,
    :meth:`forget_unlisted` the files that left, then take the :meth:`candidates`,
    decide each (:mod:`feeds.decide`), :meth:`apply` the decisions and
    :meth:`settle`. Nothing is visible to readers before the transaction commits.
    """

    def list_files(self, listed: Sequence[tuple[str, Fingerprint]]) -> None:
        """Part of the listing: seed files present now, by name, with their fingerprints.

        Given a batch at a time (a networked store pays a round trip per batch, and
        memory never holds the listing). A listed file that is not read again keeps its
        stored row.
        """
        ...

    def mark_unread(self) -> int:
        """Find the listed files to read, once the whole listing is given; how many.

        Those with no stored row, another fingerprint than their stored one, or content
        parsed under another ``version``: every other file costs its stat and nothing
        more, so a sync that changes one file does not grow with the listing.
        """
        ...

    def unread(self, batch: int) -> Iterator[list[tuple[str, Fingerprint]]]:
        """The files :meth:`mark_unread` found, by name, with their listed fingerprints."""
        ...

    def stored_names(self, after: str, limit: int) -> list[str]:
        """Names of stored files after ``after`` in name order, at most ``limit``."""
        ...

    def forget_unlisted(self, names: Sequence[str] | None) -> None:
        """Forget the stored files among ``names`` (None: all) that the listing left out.

        A sync that walked part of the directory names the stored files of that part
        (:meth:`stored_names`, a page at a time). Contents no file holds any more go
        too, and their releases become candidates.
        """
        ...

    def has_content(self, sha256: str) -> bool: ...

    def add_content(self, sha256: str, copies: Iterable[Copy], problems: list[Problem]) -> None:
        """Store what parsing one content gave: its releases (consumed lazily) and problems."""
        ...

    def put_file(self, row: FileRow) -> None:
        """The file was read: remember its fingerprint and content."""
        ...

    def candidates(self, batch: int) -> Iterator[list[Candidate]]:
        """Every release whose copies came or went in this sync, in batches.

        Releases new to the store come in numbering order: by the first file name
        holding them, then their place in it.
        """
        ...

    def numbers(self) -> tuple[int, dict[str, int]]:
        """The next release number and each agency's next feed number."""
        ...

    def apply(self, decisions: Sequence[Decision]) -> None:
        """Write what was decided for a batch of candidates."""
        ...

    def settle(self, tally: Tally, problems: list[Problem]) -> Settled:
        """Close the sync: agencies' totals and names, problems, generations."""
        ...

    def finish(self, report: SyncReport, listing_digest: str | None) -> None:
        """Log the sync and remember the listing it saw."""
        ...


class Store(Protocol):
    """A store backend. Safe to share between threads; each uses its own connection."""

    def initialize(self, now: datetime) -> None:
        """Create the schema, or check and migrate an existing one."""
        ...

    def close(self) -> None: ...

    def sync_lock(self, blocking: bool = True) -> AbstractContextManager[bool]:
        """Held while syncing, across every process sharing the store; False if busy."""
        ...

    def generation(self) -> int:
        """The store's generation: one cheap question, asked per request."""
        ...

    def read(self) -> AbstractContextManager[Reader]:
        """One read transaction."""
        ...

    def sync_session(self, now: datetime, version: str) -> AbstractContextManager[SyncSession]:
        """One sync as one write transaction: committed if the block ends, else rolled back.

        ``version`` names the parser and topic rules: content parsed under another
        version counts as unknown, so every file is read and parsed again once.
        """
        ...

    def listing_digest(self) -> str | None:
        """The digest of the seed directory listing after the last complete sync."""
        ...

    def problems(self) -> list[Problem]:
        """Problems of the last sync: the listing's, then each file's by name and line."""
        ...

    def counts(self) -> dict[str, int]:
        """Releases present and gone, agencies and files."""
        ...

    def last_syncs(self, limit: int = 1) -> list[dict[str, Any]]:
        """The newest sync log entries, newest first."""
        ...

    def last_good_sync(self) -> dict[str, Any] | None: ...

    def record_unchanged(self, report: SyncReport) -> None:
        """Log a sync that found nothing to read (the listing digest matched)."""
        ...

    def record_failure(self, report: SyncReport) -> None:
        """Log a failed sync; nothing else changes, so the last good state keeps serving."""
        ...
