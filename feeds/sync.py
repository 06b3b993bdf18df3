"""One sync: seed directory → store. The single entry point for the scheduler, CLI and tests.

One walk of the directory stats every seed file and sums the listing in
buckets of names (:func:`feeds.scan.take_listing`): when it equals the
listing of the last complete sync nothing is opened at all. Otherwise only
the buckets that changed are walked again, inside one store transaction,
handing the store each file's stat a batch at a time; the store answers
which files to read. An unchanged file (same size, mtime and inode) is not
opened, a touched or renamed one with known content (same hash) is not
parsed again. Then only the releases whose copies came or went are decided
(:mod:`feeds.decide`), a batch at a time, so a sync costs in proportion to
what changed and its memory is bounded by the largest file, not by the
corpus. Which copy of a release wins when several files hold it is decided
by content alone, never by file name or order.
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from feeds import decide, ids, parse, scan, topics
from feeds.errors import FeedsError, SeedDirError, StoreError, SyncBusyError
from feeds.model import SAMPLE_IDS, Draft, SyncReport
from feeds.store import Copy, FileRow, Store, SyncSession, to_epoch

log = logging.getLogger(__name__)
T = TypeVar("T")

Clock = Callable[[], datetime]
#: Releases decided per store round trip.
DECIDE_BATCH = 100
#: Listing entries handed to the store (and files to read asked of it) at a time: enough
#: that a networked store pays a round trip per 64 files, few enough that the batch
#: weighs less than a small seed file (the sync's memory must not grow with the listing).
FILE_BATCH = 64
#: Stored file names asked for at a time, when a sync looks for files that left.
NAME_PAGE = 1000
#: Called after each file with (files done, files in all, bytes read so far).
Progress = Callable[[int, int, int], None]


def _no_progress(done: int, total: int, size: int) -> None:
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def squashed_body(draft: Draft) -> str:
    """The body as one line, every run of whitespace one space: what hash and weight read.

    Paragraph by paragraph, so that no more than one paragraph is split into words at a
    time; the result equals :func:`feeds.ids.squash` of the paragraphs joined.
    """
    return " ".join(filter(None, map(ids.squash, draft.paragraphs)))


def draft_hash(draft: Draft, body: str | None = None) -> str:
    """Content hash of a draft: everything a reader sees, whitespace-normalized.

    ``body`` is :func:`squashed_body`, when the caller has it already.
    """
    return ids.content_hash(
        [
            ids.squash(draft.agency),
            ids.squash(draft.channel or ""),
            ids.squash(draft.title),
            draft.date_line.isoformat() if draft.date_line else "",
            squashed_body(draft) if body is None else body,
        ]
    )


def draft_id(draft: Draft) -> str:
    return ids.release_id(draft.agency_slug, draft.title, draft.date_line)


#: Characters of a release read for its topics: a real release has a few thousand; a
#: file far larger than any real dump must not cost many times its size to tag.
TOPIC_TEXT_LIMIT = 100_000


def _opening(paragraphs: tuple[str, ...], limit: int) -> list[str]:
    """The paragraphs up to ``limit`` characters in all (the last one cut)."""
    kept: list[str] = []
    for paragraph in paragraphs:
        if limit <= 0:
            break
        kept.append(paragraph[:limit])
        limit -= len(paragraph)
    return kept


def to_copy(draft: Draft) -> Copy:
    """A draft as the store keeps it, with its topics; its weight decides between copies."""
    body = squashed_body(draft)
    found = topics.extract(
        draft.title[:TOPIC_TEXT_LIMIT], _opening(draft.paragraphs, TOPIC_TEXT_LIMIT)
    )
    return Copy(draft_id(draft), draft, draft_hash(draft, body), len(body), found)


#: What stored content was parsed with: a new parser or new topic rules make every
#: file count as unread once, so every release is parsed and tagged anew.
CONTENT_VERSION = f"parse-{parse.PARSER_VERSION}.topics-{topics.RULES_VERSION}"


#: Per store, the newest failed sync it could not record (a full disk, a read-only
#: file): /healthz shows it, so a failure never hides behind the last good sync.
_unrecorded: weakref.WeakKeyDictionary[Store, SyncReport] = weakref.WeakKeyDictionary()


def unrecorded_failure(store: Store) -> SyncReport | None:
    """The newest failed sync of ``store`` in this process that its log does not hold."""
    return _unrecorded.get(store)


def sync(
    store: Store,
    seed_dir: Path,
    *,
    max_file_bytes: int = 100 * 1024 * 1024,
    clock: Clock = utcnow,
    progress: Progress = _no_progress,
) -> SyncReport:
    """Run one sync now. Never raises for bad input or I/O trouble: failures are reported.

    A failed sync changes nothing (its transaction is rolled back), so the last good
    state keeps being served; its report carries the reason, and the next sync retries.
    Callers that may run in several processes use :func:`locked_sync` instead.
    """
    started = clock()
    try:
        try:
            # A missing directory must not read as "every release is gone".
            with os.scandir(seed_dir):
                pass
        except OSError as exc:
            raise SeedDirError(seed_dir, exc.strerror or str(exc)) from exc
        report = _sync(store, seed_dir, max_file_bytes, started, clock, progress)
    except Exception as exc:  # the service must keep serving the last good state
        return _failed(store, seed_dir, started, clock, exc)
    _unrecorded.pop(store, None)
    return report


def _failed(
    store: Store, seed_dir: Path, started: datetime, clock: Clock, exc: Exception
) -> SyncReport:
    """Report (and log, and record if the store still can) a sync that failed."""
    if isinstance(exc, FeedsError):  # a known reason: say it and what to do, no traceback
        error = str(exc)
        log.error(
            "sync failed, serving the last good state reason=%r hint=%r",
            error, getattr(exc, "hint", ""),
        )  # fmt: skip
    else:
        error = f"{type(exc).__name__}: {exc}"
        log.exception("sync failed, serving the last good state seed_dir=%s", seed_dir)
    report = SyncReport(started, clock(), ok=False, error=error)
    try:
        store.record_failure(report)
    except Exception as again:
        _unrecorded[store] = report
        log.error("could not record the failed sync error=%r", str(again))
    else:
        _unrecorded.pop(store, None)
    return report


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _hand_listing(session: SyncSession, seed_dir: Path, buckets: frozenset[int] | None) -> None:
    """The listing of ``buckets`` (None: all) to the store, a batch at a time.

    Memory never holds the listing, and the store answers which files to read.
    Listing problems were all found by the walk that summed the buckets.
    """
    for chunk in _chunks(scan.iter_seeds(seed_dir, buckets), FILE_BATCH):
        seeds = [
            (found.name, found.fingerprint) for found in chunk if isinstance(found, scan.SeedFile)
        ]
        session.list_files(seeds)


def _forget_left(session: SyncSession, buckets: frozenset[int] | None) -> None:
    """Forget the stored files that left the part of the listing walked (None: all of it).

    The stored names come a page at a time and their buckets are worked out here: a
    file costs its name, never a release.
    """
    if buckets is None:
        session.forget_unlisted(None)
        return
    after = ""
    while names := session.stored_names(after, NAME_PAGE):
        after = names[-1]
        if walked := [name for name in names if scan.bucket_of(name) in buckets]:
            session.forget_unlisted(walked)


def _sync(
    store: Store,
    seed_dir: Path,
    max_file_bytes: int,
    started: datetime,
    clock: Clock,
    progress: Progress,
) -> SyncReport:
    # Stored times have whole seconds; decide with the same precision.
    now = started.replace(microsecond=0)
    # Taken before anything is read: a change after this point makes the next listing
    # differ, so the next sync reads again.
    listing = scan.take_listing(seed_dir)
    # New parser or topic rules: the same listing must be read again.
    digest = f"{CONTENT_VERSION}:{listing.digest()}"
    stored = store.listing_digest()
    problems = list(listing.problems)
    if digest == stored:
        # Nothing was added, removed or touched since the last complete sync: open nothing.
        progress(listing.count, listing.count, 0)
        report = SyncReport(
            started, clock(), ok=True, files_seen=listing.count, files_skipped=listing.count,
            problems=tuple(store.problems()),
        )  # fmt: skip
        store.record_unchanged(report)
        log.info("%s", report.summary())
        return report

    # Only the buckets whose sums changed are walked again (all of them after an upgrade
    # of the parser or topic rules, or the first time): an unchanged file elsewhere costs
    # the one stat above and nothing more.
    version = f"{CONTENT_VERSION}:"
    previous = stored[len(version) :] if stored and stored.startswith(version) else None
    buckets = listing.changed_buckets(previous)
    root, listed = listing.root, listing.count
    del listing  # its bucket sums are in the digest; deciding needs none of it
    with store.sync_session(now, CONTENT_VERSION) as session:
        _hand_listing(session, seed_dir, buckets)
        skipped = max(0, listed - session.mark_unread())  # more only if files came since
        done, read, size = skipped, 0, 0
        complete = True
        # One file's text and releases at a time: memory is bounded by the largest file.
        for unread in session.unread(FILE_BATCH):
            for name, fingerprint in unread:
                progress(done, listed, size)
                done += 1
                content, read_problems = scan.read_seed(
                    scan.seed_at(root, name, fingerprint), max_file_bytes
                )
                if content is None:
                    # Read it again next time; until then its stored row (if any) stays, so
                    # a file caught mid-write loses nothing.
                    problems += read_problems
                    complete = False
                    continue
                read += 1
                size += content.fingerprint.size
                sha256, fingerprint = content.sha256, content.fingerprint
                if not session.has_content(sha256):
                    text, decode_problems = scan.decode(content.data, name)
                    content = None  # drop the bytes now: the text replaces them
                    drafts, parse_problems = parse.parse(text, name)
                    del text  # the drafts share the paragraphs; the whole text can go
                    session.add_content(
                        sha256, map(to_copy, drafts), decode_problems + parse_problems
                    )
                    del drafts
                session.put_file(FileRow(name, fingerprint, sha256))
        unread = []  # the last batch: deciding needs none of it
        _forget_left(session, buckets)
        problems.sort(key=lambda problem: (problem.path, problem.line))
        progress(done, done, size)
        # Only the releases whose copies came or went are decided, a batch at a time.
        epoch = to_epoch(now)
        tally = decide.Tally(SAMPLE_IDS)
        numbering = decide.Numbering(*session.numbers())
        for batch in session.candidates(DECIDE_BATCH):
            decisions = [decide.decide(candidate, epoch, numbering) for candidate in batch]
            session.apply(decisions)
            for decision in decisions:
                tally.add(decision, epoch)
        settled = session.settle(tally, problems)
        report = SyncReport(
            started=started,
            finished=clock(),
            ok=True,
            files_seen=listed,
            files_read=read,
            files_skipped=skipped,
            new=tuple(tally.ids["new"]),
            changed=tuple(tally.ids["changed"]),
            gone=tuple(tally.ids["gone"]),
            returned=tuple(tally.ids["returned"]),
            counts=dict(tally.counts),
            problems=tuple(store.problems()),  # this transaction sees its own writes
            agencies=settled.agencies,
            topics=settled.topics,
            generation=settled.generation,
        )
        session.finish(report, digest if complete else None)
    log.info("%s", report.summary())
    return report


def locked_sync(
    store: Store,
    seed_dir: Path,
    *,
    max_file_bytes: int = 100 * 1024 * 1024,
    blocking: bool = True,
    clock: Clock = utcnow,
    progress: Progress = _no_progress,
) -> SyncReport:
    """:func:`sync` under the store's cross-process lock; :class:`SyncBusyError` if busy.

    A lock that cannot be taken at all (a read-only mount, say) fails the sync like any
    other store trouble: reported, never raised.
    """
    try:
        with store.sync_lock(blocking=blocking) as acquired:
            if not acquired:
                raise SyncBusyError(f"another process is syncing ({store!r})")
            return sync(
                store, seed_dir, max_file_bytes=max_file_bytes, clock=clock, progress=progress
            )
    except StoreError as exc:  # the clock is read only once the lock is ours, or here
        return _failed(store, seed_dir, clock(), clock, exc)
