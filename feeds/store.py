"""The SQLite store: the only module that runs SQL.

Keeps, per release, the latest winning draft plus what the service owns
(number, first seen, last content change, content hash, presence); per agency
its first sighting and the last time a release left it; per seed file its
fingerprint and content hash; parsed content by hash (so a renamed or
unchanged file is not parsed again); the problems of the last sync; and a
short sync log. One sync is one write transaction; readers take a snapshot
in one read transaction, so they see the state before or after a sync.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from feeds.errors import FeedsError
from feeds.model import Agency, Draft, Fingerprint, Problem, Release, Snapshot, SyncReport

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE agencies (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    first_seen INTEGER NOT NULL
);
CREATE TABLE releases (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    agency_slug TEXT NOT NULL REFERENCES agencies(slug),
    draft TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    present INTEGER NOT NULL,
    left_at INTEGER
);
CREATE INDEX releases_agency ON releases(agency_slug, seq);
CREATE TABLE files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE parsed (
    sha256 TEXT PRIMARY KEY,
    drafts TEXT NOT NULL,
    problems TEXT NOT NULL
);
CREATE TABLE problems (path TEXT NOT NULL, line INTEGER NOT NULL, message TEXT NOT NULL);
CREATE TABLE syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
);
"""

#: How many sync log rows to keep.
SYNC_LOG_ROWS = 200


class StoreError(FeedsError):
    """The database cannot be used (newer schema, not a database, ...)."""


@dataclass(frozen=True, slots=True)
class FileRow:
    """A seed file as last read successfully."""

    name: str
    fingerprint: Fingerprint
    sha256: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """What parsing one file's content gave; kept by content hash, without the file name."""

    drafts: tuple[Draft, ...]
    problems: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class ReleaseState:
    """What sync needs to know about a stored release to decide what changed."""

    seq: int
    content_hash: str
    first_seen: datetime
    updated: datetime
    present: bool
    draft: Draft
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class Changes:
    """Everything one sync writes, applied in one transaction by :meth:`Store.apply`."""

    releases: tuple[Release, ...]
    """Release rows to insert or replace."""
    agencies: tuple[Agency, ...]
    """Agency rows to insert or replace."""
    files: tuple[FileRow, ...] | None
    """The complete set of file rows after this sync; None when no file changed."""
    parsed: tuple[tuple[str, Parsed], ...]
    """Newly parsed contents by sha256."""
    problems: tuple[Problem, ...]
    report: SyncReport
    visible: bool
    """Whether readers see a difference (bumps the generation)."""


def to_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def draft_to_json(draft: Draft) -> str:
    return json.dumps(
        {
            "agency": draft.agency,
            "agency_slug": draft.agency_slug,
            "channel": draft.channel,
            "title": draft.title,
            "date_line": draft.date_line.isoformat() if draft.date_line else None,
            "published": draft.published.isoformat() if draft.published else None,
            "paragraphs": list(draft.paragraphs),
            "line": draft.line,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def _draft_from(obj: dict[str, Any]) -> Draft:
    return Draft(
        agency=obj["agency"],
        agency_slug=obj["agency_slug"],
        channel=obj["channel"],
        title=obj["title"],
        date_line=date.fromisoformat(obj["date_line"]) if obj["date_line"] else None,
        published=date.fromisoformat(obj["published"]) if obj["published"] else None,
        paragraphs=tuple(obj["paragraphs"]),
        line=obj["line"],
    )


def draft_from_json(text: str) -> Draft:
    return _draft_from(json.loads(text))


def _report_to_json(report: SyncReport) -> str:
    return json.dumps(
        {
            "started": report.started.isoformat(),
            "finished": report.finished.isoformat(),
            "ok": report.ok,
            "error": report.error,
            "files_seen": report.files_seen,
            "files_read": report.files_read,
            "files_skipped": report.files_skipped,
            "new": len(report.new),
            "changed": len(report.changed),
            "gone": len(report.gone),
            "returned": len(report.returned),
            "problems": len(report.problems),
            "seconds": round(report.seconds, 6),
        },
        sort_keys=True,
    )


class Store:
    """A SQLite file in WAL mode; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        # IMMEDIATE takes the write lock now, so two writers queue instead of deadlocking.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # -- schema ------------------------------------------------------------------

    def initialize(self, now: datetime) -> None:
        """Create the schema in a new file, or check an existing one.

        A file that is not a usable database (corrupt, truncated, not SQLite) is moved
        aside as ``<name>.corrupt-<time>`` and a new store is created: the next sync
        rebuilds it from the seeds with the same IDs, since IDs never come from the
        store. A schema newer than this program's is an error, never "repaired".
        """
        try:
            self._initialize(now)
        except StoreError:
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            aside = self.path.with_name(f"{self.path.name}.corrupt-{to_epoch(now)}")
            for suffix in ("", "-wal", "-shm"):
                candidate = self.path.with_name(self.path.name + suffix)
                if candidate.exists():
                    candidate.rename(aside.with_name(aside.name + suffix))
            log.warning(
                "store unusable, rebuilding from the seeds path=%s moved_to=%s error=%s",
                self.path, aside, exc,
            )  # fmt: skip
            try:
                self._initialize(now)
            except sqlite3.DatabaseError as again:
                raise StoreError(f"{self.path}: cannot create database: {again}") from again

    def _initialize(self, now: datetime) -> None:
        conn = self._conn
        if conn.execute("PRAGMA user_version").fetchone()[0] != 0:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                # Not executescript(): it would commit and leave this transaction.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                # Generations start from the clock, so a rebuilt store never repeats one
                # that another process may still have cached.
                conn.execute(
                    "INSERT INTO meta VALUES ('created', ?), ('generation', ?)",
                    (str(to_epoch(now)), str(int(now.timestamp() * 1000))),
                )
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                log.info("store created path=%s schema=%d", self.path, SCHEMA_VERSION)
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this "
                    f"program's ({SCHEMA_VERSION}); upgrade feeds"
                )

    # -- reads -------------------------------------------------------------------

    def generation(self) -> int:
        """Cheap "has anything changed?" question for caches."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

    def files(self) -> dict[str, FileRow]:
        rows = self._conn.execute("SELECT name, size, mtime_ns, inode, sha256 FROM files")
        return {r[0]: FileRow(r[0], Fingerprint(r[1], r[2], r[3]), r[4]) for r in rows}

    def parsed(self, sha256: str) -> Parsed | None:
        row = self._conn.execute(
            "SELECT drafts, problems FROM parsed WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            return None
        return Parsed(
            tuple(_draft_from(d) for d in json.loads(row[0])),
            tuple((int(line), str(msg)) for line, msg in json.loads(row[1])),
        )

    def release_states(self) -> dict[str, ReleaseState]:
        rows = self._conn.execute(
            "SELECT id, seq, content_hash, first_seen, updated, present, draft, left_at "
            "FROM releases"
        )
        return {
            r[0]: ReleaseState(
                r[1],
                r[2],
                from_epoch(r[3]),
                from_epoch(r[4]),
                bool(r[5]),
                draft_from_json(r[6]),
                from_epoch(r[7]) if r[7] is not None else None,
            )
            for r in rows
        }

    def max_seq(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases").fetchone()[0])

    def agencies(self) -> dict[str, Agency]:
        rows = self._conn.execute("SELECT slug, name, first_seen FROM agencies")
        return {r[0]: Agency(r[0], r[1], from_epoch(r[2])) for r in rows}

    def snapshot(self) -> Snapshot:
        """Agencies and every release, read in one transaction."""
        with self._read() as conn:
            generation = int(
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
            created = from_epoch(
                int(conn.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()[0])
            )
            counts = dict(
                conn.execute(
                    "SELECT agency_slug, COUNT(*) FROM releases WHERE present GROUP BY agency_slug"
                ).fetchall()
            )
            agencies = tuple(
                Agency(r[0], r[1], from_epoch(r[2]), counts.get(r[0], 0))
                for r in conn.execute("SELECT slug, name, first_seen FROM agencies ORDER BY slug")
            )
            releases = tuple(
                Release(
                    id=r[0],
                    seq=r[1],
                    draft=draft_from_json(r[2]),
                    content_hash=r[3],
                    first_seen=from_epoch(r[4]),
                    updated=from_epoch(r[5]),
                    present=bool(r[6]),
                    left_at=from_epoch(r[7]) if r[7] is not None else None,
                )
                for r in conn.execute(
                    "SELECT id, seq, draft, content_hash, first_seen, updated, present, left_at "
                    "FROM releases ORDER BY seq"
                )
            )
        return Snapshot(generation, created, agencies, releases)

    def problems(self) -> list[Problem]:
        rows = self._conn.execute("SELECT path, line, message FROM problems ORDER BY rowid")
        return [Problem(r[0], r[1], r[2]) for r in rows]

    def last_syncs(self, limit: int = 1) -> list[dict[str, Any]]:
        """The newest sync log entries, newest first."""
        rows = self._conn.execute(
            "SELECT report FROM syncs ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def last_good_sync(self) -> dict[str, Any] | None:
        row = self._conn.execute(
            "SELECT report FROM syncs WHERE ok ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return json.loads(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        conn = self._conn
        return {
            "releases": conn.execute("SELECT COUNT(*) FROM releases WHERE present").fetchone()[0],
            "releases_gone": conn.execute(
                "SELECT COUNT(*) FROM releases WHERE NOT present"
            ).fetchone()[0],
            "agencies": conn.execute("SELECT COUNT(*) FROM agencies").fetchone()[0],
            "files": conn.execute("SELECT COUNT(*) FROM files").fetchone()[0],
        }

    # -- writes ------------------------------------------------------------------

    def apply(self, changes: Changes) -> int:
        """Write one sync's outcome in one transaction; returns the generation after it."""
        with self._write() as conn:
            generation = int(
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
            conn.executemany(
                "INSERT OR REPLACE INTO agencies (slug, name, first_seen) VALUES (?, ?, ?)",
                [(a.slug, a.name, to_epoch(a.first_seen)) for a in changes.agencies],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO releases "
                "(id, seq, agency_slug, draft, content_hash, first_seen, updated, present, "
                "left_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.id,
                        r.seq,
                        r.draft.agency_slug,
                        draft_to_json(r.draft),
                        r.content_hash,
                        to_epoch(r.first_seen),
                        to_epoch(r.updated),
                        int(r.present),
                        to_epoch(r.left_at) if r.left_at else None,
                    )
                    for r in changes.releases
                ],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO parsed (sha256, drafts, problems) VALUES (?, ?, ?)",
                [
                    (
                        sha,
                        "[" + ",".join(draft_to_json(d) for d in p.drafts) + "]",
                        json.dumps([list(x) for x in p.problems], ensure_ascii=False),
                    )
                    for sha, p in changes.parsed
                ],
            )
            if changes.files is not None:
                conn.execute("DELETE FROM files")
                conn.executemany(
                    "INSERT INTO files (name, size, mtime_ns, inode, sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            f.name,
                            f.fingerprint.size,
                            f.fingerprint.mtime_ns,
                            f.fingerprint.inode,
                            f.sha256,
                        )
                        for f in changes.files
                    ],
                )
                # Parsed content no file refers to any more is only a cache entry: drop it.
                conn.execute("DELETE FROM parsed WHERE sha256 NOT IN (SELECT sha256 FROM files)")
            conn.execute("DELETE FROM problems")
            conn.executemany(
                "INSERT INTO problems (path, line, message) VALUES (?, ?, ?)",
                [(p.path, p.line, p.message) for p in changes.problems],
            )
            if changes.visible:
                generation += 1
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),)
                )
            self._log_sync(conn, changes.report)
        return generation

    def record_failure(self, report: SyncReport) -> None:
        """Log a failed sync; nothing else changes, so the last good state keeps serving."""
        with self._write() as conn:
            self._log_sync(conn, report)

    @staticmethod
    def _log_sync(conn: sqlite3.Connection, report: SyncReport) -> None:
        conn.execute(
            "INSERT INTO syncs (started, finished, ok, report) VALUES (?, ?, ?, ?)",
            (
                to_epoch(report.started),
                to_epoch(report.finished),
                int(report.ok),
                _report_to_json(report),
            ),
        )
        conn.execute(
            "DELETE FROM syncs WHERE id <= (SELECT MAX(id) FROM syncs) - ?", (SYNC_LOG_ROWS,)
        )


def problems_for(name: str, parsed: Iterable[tuple[int, str]]) -> list[Problem]:
    """Attach a file name to stored (line, message) pairs."""
    return [Problem(name, line, message) for line, message in parsed]
