"""One sync: seed directory → store. The single entry point for the scheduler, CLI and tests.

Reads what changed (an unchanged file, by fingerprint or by content hash, is
not parsed again), decides per release whether it is new, changed, gone or
back, and hands the store one set of changes to apply in one transaction.
Which copy of a release wins when several files hold it is decided by content
alone, never by file name or order.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feeds import ids, lock, parse, scan
from feeds.errors import SyncBusyError
from feeds.model import Agency, Draft, Problem, Release, SyncReport
from feeds.store import Changes, FileRow, Parsed, ReleaseState, Store, problems_for

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: Called after each file with (files done, files in all, bytes read so far).
Progress = Callable[[int, int, int], None]


def _no_progress(done: int, total: int, size: int) -> None:
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def draft_hash(draft: Draft) -> str:
    """Content hash of a draft: everything a reader sees, whitespace-normalized."""
    return ids.content_hash(
        [
            draft.agency,
            draft.channel or "",
            draft.title,
            draft.date_line.isoformat() if draft.date_line else "",
            "\n".join(draft.paragraphs),
        ]
    )


def draft_id(draft: Draft) -> str:
    return ids.release_id(draft.agency_slug, draft.title, draft.date_line)


def _winner(copies: list[Draft]) -> Draft:
    """The copy with the most text wins (a truncated copy loses); ties by hash. Content only."""
    return max(
        copies,
        key=lambda d: (len(" ".join("\n".join(d.paragraphs).split())), draft_hash(d)),
    )


@dataclass(frozen=True, slots=True)
class _Read:
    """The outcome of looking at the seed directory."""

    files: list[FileRow]
    parsed: dict[str, Parsed]  # by file name
    new_parsed: dict[str, Parsed]  # by sha256
    problems: list[Problem]
    read: int
    skipped: int
    unchanged: bool


def _parse(data: bytes, name: str) -> Parsed:
    text, decode_problems = scan.decode(data, name)
    drafts, parse_problems = parse.parse(text, name)
    return Parsed(
        tuple(drafts), tuple((p.line, p.message) for p in decode_problems + parse_problems)
    )


def _read_dir(store: Store, seed_dir: Path, max_file_bytes: int, progress: Progress) -> _Read:
    listing, problems = scan.list_seeds(seed_dir)
    known = store.files()
    if {s.name for s in listing} == set(known) and all(
        known[s.name].fingerprint == s.fingerprint for s in listing
    ):
        # Fast path: nothing to open. Keep the file problems of the last sync.
        names = set(known)
        problems += [p for p in store.problems() if p.path in names]
        return _Read(list(known.values()), {}, {}, problems, 0, len(listing), True)

    files: list[FileRow] = []
    parsed: dict[str, Parsed] = {}
    new_parsed: dict[str, Parsed] = {}
    read = skipped = 0
    size = 0
    for done, seed in enumerate(listing):
        progress(done, len(listing), size)
        row = known.get(seed.name)
        result: Parsed | None = None
        if row is not None and row.fingerprint == seed.fingerprint:
            result = store.parsed(row.sha256)
            skipped += result is not None
        if result is None:
            content, read_problems = scan.read_seed(seed, max_file_bytes)
            if content is None:
                problems += read_problems
                # Keep what this file held last time: a file caught mid-write loses nothing.
                result = store.parsed(row.sha256) if row is not None else None
            else:
                read += 1
                size += len(content.data)
                row = FileRow(seed.name, content.fingerprint, content.sha256)
                result = new_parsed.get(row.sha256) or store.parsed(row.sha256)
                if result is None:
                    result = _parse(content.data, seed.name)
                    new_parsed[row.sha256] = result
        if row is None or result is None:
            continue
        files.append(row)
        parsed[seed.name] = result
        problems += problems_for(seed.name, result.problems)
    progress(len(listing), len(listing), size)
    return _Read(files, parsed, new_parsed, problems, read, skipped, False)


def _decide(
    states: dict[str, ReleaseState],
    agencies: dict[str, Agency],
    next_seq: int,
    parsed: dict[str, Parsed],
    now: datetime,
) -> tuple[list[Release], list[Agency], dict[str, list[str]]]:
    """Compare the winning drafts with the stored releases; return rows to write."""
    copies: dict[str, list[Draft]] = defaultdict(list)
    order: list[str] = []  # first appearance, to number new releases in reading order
    for name in sorted(parsed):
        for draft in parsed[name].drafts:
            rid = draft_id(draft)
            if rid not in copies:
                order.append(rid)
            copies[rid].append(draft)
    winners = {rid: _winner(found) for rid, found in copies.items()}

    rows: list[Release] = []
    outcome: dict[str, list[str]] = {"new": [], "changed": [], "gone": [], "returned": []}
    for rid in order:
        draft = winners[rid]
        digest = draft_hash(draft)
        state = states.get(rid)
        if state is None:
            rows.append(Release(rid, next_seq, draft, digest, now, now, True))
            next_seq += 1
            outcome["new"].append(rid)
            continue
        updated = state.updated
        if digest != state.content_hash:
            # Strictly newer than before, so readers always notice the change.
            updated = max(now, state.updated + timedelta(seconds=1))
            outcome["changed"].append(rid)
        if not state.present:
            outcome["returned"].append(rid)
        elif digest == state.content_hash and replace(draft, line=0) == replace(
            state.draft, line=0
        ):
            continue  # nothing to write
        rows.append(
            Release(rid, state.seq, draft, digest, state.first_seen, updated, True, state.left_at)
        )
    for rid, state in states.items():
        if state.present and rid not in winners:
            rows.append(
                Release(
                    rid,
                    state.seq,
                    state.draft,
                    state.content_hash,
                    state.first_seen,
                    state.updated,
                    False,
                    now,
                )
            )
            outcome["gone"].append(rid)

    agency_rows: list[Agency] = []
    names: dict[str, Counter[str]] = defaultdict(Counter)
    for draft in winners.values():
        names[draft.agency_slug][draft.agency] += 1
    for slug in sorted(names):
        old = agencies.get(slug)
        # The most used spelling names the agency; ties go to the alphabetically first.
        name = min(names[slug].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        new = Agency(slug, name, old.first_seen if old else now)
        if new != old:
            agency_rows.append(new)
    return rows, agency_rows, outcome


def sync(
    store: Store,
    seed_dir: Path,
    *,
    max_file_bytes: int = 100 * 1024 * 1024,
    clock: Clock = utcnow,
    progress: Progress = _no_progress,
) -> SyncReport:
    """Run one sync now. Never raises for bad input or I/O trouble: failures are reported.

    Callers that may run in several processes use :func:`locked_sync` instead.
    """
    started = clock()
    try:
        return _sync(store, seed_dir, max_file_bytes, started, clock, progress)
    except Exception as exc:  # the service must keep serving the last good state
        log.exception("sync failed seed_dir=%s", seed_dir)
        report = SyncReport(started, clock(), ok=False, error=f"{type(exc).__name__}: {exc}")
        try:
            store.record_failure(report)
        except Exception:
            log.exception("could not record the failed sync")
        return report


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
    seen = _read_dir(store, seed_dir, max_file_bytes, progress)
    rows: list[Release] = []
    agency_rows: list[Agency] = []
    outcome: dict[str, list[str]] = {"new": [], "changed": [], "gone": [], "returned": []}
    if not seen.unchanged:
        rows, agency_rows, outcome = _decide(
            store.release_states(), store.agencies(), store.max_seq() + 1, seen.parsed, now
        )
    report = SyncReport(
        started=started,
        finished=clock(),
        ok=True,
        files_seen=len(seen.files),
        files_read=seen.read,
        files_skipped=seen.skipped,
        new=tuple(outcome["new"]),
        changed=tuple(outcome["changed"]),
        gone=tuple(outcome["gone"]),
        returned=tuple(outcome["returned"]),
        problems=tuple(seen.problems),
        agencies=tuple(sorted({r.draft.agency_slug for r in rows})),
    )
    generation = store.apply(
        Changes(
            releases=tuple(rows),
            agencies=tuple(agency_rows),
            files=None if seen.unchanged else tuple(seen.files),
            parsed=tuple(seen.new_parsed.items()),
            problems=tuple(seen.problems),
            report=report,
            visible=bool(rows or agency_rows),
        )
    )
    report = replace(report, generation=generation)
    log.info("%s", report.summary())
    return report


def locked_sync(
    store: Store,
    seed_dir: Path,
    lock_path: Path,
    *,
    max_file_bytes: int = 100 * 1024 * 1024,
    blocking: bool = True,
    clock: Clock = utcnow,
    progress: Progress = _no_progress,
) -> SyncReport:
    """:func:`sync` under the cross-process lock; :class:`SyncBusyError` if busy, not blocking."""
    with lock.exclusive(lock_path, blocking=blocking) as acquired:
        if not acquired:
            raise SyncBusyError(f"another process is syncing ({lock_path})")
        return sync(store, seed_dir, max_file_bytes=max_file_bytes, clock=clock, progress=progress)
