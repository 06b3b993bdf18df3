"""The SQLite store: the only module that runs SQL.

Keeps, per release, the latest winning draft plus what the service owns
(number, first seen, last content change, content hash, presence, last
departure); per agency its first sighting; per seed file its fingerprint and
content hash; the releases and problems parsed from each distinct content (so a
renamed or unchanged file is not parsed again); the problems of the last sync;
and a short sync log.

A sync streams: :class:`SyncSession` takes one file at a time, and deciding
what is new, changed, gone or back happens in SQL over the stored copies, so a
sync's memory does not grow with the corpus. One sync is one write
transaction; readers take a snapshot in one read transaction, so they see the
state before or after a sync, never a mix.
"""

from __future__ import annotations

import errno
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

from feeds import lock
from feeds.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreIOError,
    StoreUnavailable,
)
from feeds.model import (
    SAMPLE_IDS,
    Agency,
    Draft,
    Fingerprint,
    Problem,
    Release,
    Snapshot,
    SyncReport,
)

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
CREATE INDEX files_sha256 ON files(sha256);
CREATE TABLE contents (sha256 TEXT PRIMARY KEY);
CREATE TABLE content_problems (
    sha256 TEXT NOT NULL REFERENCES contents(sha256) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX content_problems_sha256 ON content_problems(sha256);
CREATE TABLE copies (
    sha256 TEXT NOT NULL REFERENCES contents(sha256) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    id TEXT NOT NULL,
    agency_slug TEXT NOT NULL,
    agency TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    weight INTEGER NOT NULL,
    draft TEXT NOT NULL,
    PRIMARY KEY (sha256, idx)
);
CREATE INDEX copies_id ON copies(id);
CREATE TABLE problems (path TEXT NOT NULL, line INTEGER NOT NULL, message TEXT NOT NULL);
CREATE TABLE syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
);
"""

_TABLES = frozenset(
    line.split()[2] for line in _SCHEMA.splitlines() if line.startswith("CREATE TABLE")
)
#: How many sync log rows to keep.
SYNC_LOG_ROWS = 200
#: Seconds a connection waits for another one's lock before the store is "busy".
BUSY_TIMEOUT = 30.0
#: Bytes the WAL is cut back to after a checkpoint, so failed syncs never grow it for good.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

# Primary SQLite result codes (the low byte of an extended code) by kind and reason.
_SQLITE_KINDS: dict[int, tuple[type[StoreError], str]] = {
    sqlite3.SQLITE_CORRUPT: (StoreCorrupt, "corrupt"),
    sqlite3.SQLITE_NOTADB: (StoreCorrupt, "not a database"),
    sqlite3.SQLITE_FULL: (StoreFull, "disk full"),
    sqlite3.SQLITE_BUSY: (StoreBusy, "busy"),
    sqlite3.SQLITE_LOCKED: (StoreBusy, "busy"),
    sqlite3.SQLITE_READONLY: (StoreUnavailable, "read-only"),
    sqlite3.SQLITE_CANTOPEN: (StoreUnavailable, "cannot open"),
    sqlite3.SQLITE_PERM: (StoreUnavailable, "permission denied"),
    sqlite3.SQLITE_AUTH: (StoreUnavailable, "permission denied"),
    sqlite3.SQLITE_IOERR: (StoreIOError, "I/O error"),
}
_OS_KINDS: dict[int, tuple[type[StoreError], str]] = {
    errno.EACCES: (StoreUnavailable, "permission denied"),
    errno.EPERM: (StoreUnavailable, "permission denied"),
    errno.EROFS: (StoreUnavailable, "read-only file system"),
    errno.ENOTDIR: (StoreUnavailable, "cannot open"),
    errno.EISDIR: (StoreUnavailable, "a directory"),
    errno.ENOENT: (StoreUnavailable, "cannot open"),
    errno.ENOSPC: (StoreFull, "disk full"),
    errno.EDQUOT: (StoreFull, "disk full"),
    errno.EIO: (StoreIOError, "I/O error"),
    errno.EAGAIN: (StoreBusy, "busy"),
}


def classify(exc: sqlite3.Error | OSError, path: Path) -> StoreError:
    """The project's error for a driver or OS error about the store at ``path``.

    By SQLite's result code or the errno, never by message text; an error without
    either is a plain :class:`StoreError`, which never moves anything aside.
    """
    if isinstance(exc, OSError):
        kind, reason = _OS_KINDS.get(exc.errno or 0, (StoreUnavailable, "cannot open"))
        detail = exc.strerror or str(exc)
        if exc.filename is not None and Path(exc.filename) != path:
            detail = f"{detail}: {exc.filename}"
        return kind(reason, path, detail)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return StoreError("database error", path, str(exc))
    kind, reason = _SQLITE_KINDS.get(code & 0xFF, (StoreError, "database error"))
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_READONLY_DIRECTORY":
        reason = "read-only directory"
    elif name == "SQLITE_IOERR_SHMSIZE":  # the shared-memory file could not grow: no space
        kind, reason = StoreFull, "disk full"
    return kind(reason, path, f"{exc} ({exc.sqlite_errorname})")


def _roll_back(conn: sqlite3.Connection, cause: BaseException) -> None:
    """End a failed transaction; a failed ROLLBACK is noted on ``cause``, never raised instead.

    SQLite rolls back by itself on some errors (SQLITE_FULL, some I/O errors): then no
    transaction is active and ROLLBACK would fail with a message that hides the reason.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as failed:
        cause.add_note(f"ROLLBACK failed too: {failed}")


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
        line=0,  # where a copy sat in its file is not kept: it is no part of the release
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
            "new": report.count("new"),
            "changed": report.count("changed"),
            "gone": report.count("gone"),
            "returned": report.count("returned"),
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise classify(exc, self.path) from exc
        with self._translated():
            # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
                conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The store's error boundary: a driver error leaves as the project's, chained."""
        try:
            yield
        except sqlite3.Error as exc:
            raise classify(exc, self.path) from exc

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
        with self._translated():
            conn = self._conn
            conn.execute("BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                _roll_back(conn, exc)
                raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._translated():
            conn = self._conn
            # IMMEDIATE takes the write lock now, so two writers queue instead of deadlocking.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                _roll_back(conn, exc)
                raise

    # -- schema ------------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        """The lock file beside the database that syncs and store checks take in turn."""
        return self.path.with_name(self.path.name + ".lock")

    def initialize(self, now: datetime) -> None:
        """Create the schema in a new file, or check an existing one.

        Only a corrupt store (:class:`StoreCorrupt`: not a database, malformed, failing
        its check) is moved aside as ``<name>.corrupt-<time>`` and created anew: the next
        sync rebuilds it from the seeds with the same IDs, since IDs never come from the
        store. Any other trouble (permission, read-only, full, busy, I/O) raises its
        :class:`StoreError` and touches nothing. A schema newer than this program's is an
        error, never "repaired".
        """
        if self.path.is_dir():
            raise StoreUnavailable("a directory", self.path, "name a file, not a directory")
        try:
            # Under the sync lock: workers starting together on a damaged store must agree
            # on one rebuilt store, not each move the file aside and build their own.
            with lock.exclusive(self.lock_path):
                self._initialize_or_rebuild(now)
        except OSError as exc:
            raise classify(exc, self.path) from exc

    def _initialize_or_rebuild(self, now: datetime) -> None:
        try:
            self._initialize(now)
        except StoreCorrupt as exc:
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
            self._initialize(now)  # a second failure is not corruption: it raises as it is

    def _initialize(self, now: datetime) -> None:
        with self._translated():
            conn = self._conn
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise StoreCorrupt("corrupt", self.path, f"quick_check: {check}")
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                missing = _TABLES - tables
                if missing:
                    raise StoreCorrupt(
                        "corrupt", self.path, f"tables missing: {', '.join(sorted(missing))}"
                    )
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
            elif version == SCHEMA_VERSION:
                # A store this process cannot write (a read-only file, say) opens and reads
                # fine: fail now, at start, rather than at every sync.
                conn.execute("UPDATE meta SET value = value WHERE key = 'created'")
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    "newer schema",
                    self.path,
                    f"schema version {version} is newer than this program's "
                    f"({SCHEMA_VERSION}); upgrade feeds",
                )

    # -- reads -------------------------------------------------------------------

    def generation(self) -> int:
        """Cheap "has anything changed?" question for caches."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0])

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

    @contextmanager
    def sync_session(self, now: datetime) -> Iterator[SyncSession]:
        """One sync as one write transaction: committed if the block ends, else rolled back."""
        with self._write() as conn:
            yield SyncSession(conn, now)

    def listing_digest(self) -> str | None:
        """The digest of the seed directory listing after the last complete sync."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'listing'").fetchone()
        return str(row[0]) if row else None

    def file_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    def record_unchanged(self, report: SyncReport) -> None:
        """Log a sync that found nothing to read (the listing digest matched)."""
        with self._write() as conn:
            self._log_sync(conn, report)

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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What :meth:`SyncSession.reconcile` decided."""

    counts: dict[str, int]
    samples: dict[str, list[str]]
    """Up to :data:`~feeds.model.SAMPLE_IDS` IDs per outcome."""
    agencies: list[str]
    """Slugs of agencies whose feeds changed."""
    visible: bool
    """Whether readers see any difference."""


class SyncSession:
    """The write side of one sync, inside its transaction: files in, outcome out.

    Feed it every file of the listing (:meth:`keep_file` or :meth:`put_file`), then
    call :meth:`reconcile`. Nothing is visible to readers before the commit.
    """

    def __init__(self, conn: sqlite3.Connection, now: datetime) -> None:
        self._conn = conn
        self.now = to_epoch(now)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (name TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM seen")

    def file(self, name: str) -> FileRow | None:
        """The file as last read successfully, if its content is still stored."""
        row = self._conn.execute(
            "SELECT f.size, f.mtime_ns, f.inode, f.sha256 FROM files f "
            "JOIN contents c ON c.sha256 = f.sha256 WHERE f.name = ?",
            (name,),
        ).fetchone()
        return FileRow(name, Fingerprint(row[0], row[1], row[2]), row[3]) if row else None

    def has_content(self, sha256: str) -> bool:
        return (
            self._conn.execute("SELECT 1 FROM contents WHERE sha256 = ?", (sha256,)).fetchone()
            is not None
        )

    def add_content(self, sha256: str, copies: Iterable[Copy], problems: list[Problem]) -> None:
        """Store what parsing one content gave: its releases and its problems (by line).

        ``copies`` is consumed lazily: one release's JSON is alive at a time, not a file's.
        """
        self._conn.execute("INSERT OR IGNORE INTO contents (sha256) VALUES (?)", (sha256,))
        self._conn.executemany(
            "INSERT OR REPLACE INTO copies "
            "(sha256, idx, id, agency_slug, agency, content_hash, weight, draft) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (sha256, idx, c.id, c.draft.agency_slug, c.draft.agency, c.content_hash, c.weight,
                 draft_to_json(c.draft))
                for idx, c in enumerate(copies)
            ),
        )  # fmt: skip
        self._conn.executemany(
            "INSERT INTO content_problems (sha256, line, message) VALUES (?, ?, ?)",
            [(sha256, p.line, p.message) for p in problems],
        )

    def keep_file(self, name: str) -> None:
        """The file is still there and its stored row stays as it is."""
        self._conn.execute("INSERT OR IGNORE INTO seen (name) VALUES (?)", (name,))

    def put_file(self, row: FileRow) -> None:
        """The file was read: remember its fingerprint and content."""
        fp = row.fingerprint
        self._conn.execute(
            "INSERT OR REPLACE INTO files (name, size, mtime_ns, inode, sha256) "
            "VALUES (?, ?, ?, ?, ?)",
            (row.name, fp.size, fp.mtime_ns, fp.inode, row.sha256),
        )
        self.keep_file(row.name)

    def reconcile(self, problems: list[Problem]) -> Outcome:
        """Decide and write what is new, changed, gone and back; returns counts and sample IDs.

        Among several copies of one release the heaviest wins (most text, then the
        highest content hash): content decides, never a file name or order. New
        releases are numbered by file name, then place in the file (not by the order of reading).
        """
        conn = self._conn
        conn.execute("DELETE FROM files WHERE name NOT IN (SELECT name FROM seen)")
        conn.execute("DELETE FROM contents WHERE sha256 NOT IN (SELECT sha256 FROM files)")
        conn.execute("DROP TABLE IF EXISTS temp.win")
        # Winners are chosen on small columns; their drafts are fetched by key afterwards,
        # so the sort never carries the release texts.
        conn.execute(
            "CREATE TEMP TABLE win AS SELECT id, sha256, idx, agency_slug, agency, content_hash,"
            " first_file, first_idx FROM ("
            " SELECT c.id, c.sha256, c.idx, c.agency_slug, c.agency, c.content_hash,"
            "  ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY c.weight DESC,"
            "   c.content_hash DESC, c.sha256 DESC, c.idx DESC) AS rank,"
            "  FIRST_VALUE(f.name) OVER (PARTITION BY c.id ORDER BY f.name, c.idx) AS first_file,"
            "  FIRST_VALUE(c.idx) OVER (PARTITION BY c.id ORDER BY f.name, c.idx) AS first_idx"
            " FROM copies c JOIN files f ON f.sha256 = c.sha256"
            ") WHERE rank = 1"
        )
        conn.execute("CREATE UNIQUE INDEX temp.win_id ON win(id)")
        conn.execute("DROP TABLE IF EXISTS temp.outcome")
        conn.execute(
            "CREATE TEMP TABLE outcome AS"
            " SELECT w.id,"
            "  CASE WHEN r.id IS NULL THEN 'new'"
            "   WHEN r.content_hash != w.content_hash THEN 'changed'"
            "   WHEN NOT r.present THEN 'returned'"
            "   WHEN r.draft != c.draft OR r.agency_slug != w.agency_slug THEN 'rewritten'"
            "   ELSE 'same' END AS kind,"
            "  COALESCE(r.present, 1) AS was_present"
            " FROM win w JOIN copies c ON c.sha256 = w.sha256 AND c.idx = w.idx"
            " LEFT JOIN releases r ON r.id = w.id"
            " UNION ALL SELECT id, 'gone', 1 FROM releases"
            "  WHERE present AND id NOT IN (SELECT id FROM win)"
        )
        conn.execute("CREATE INDEX temp.outcome_id ON outcome(id)")
        counts: dict[str, int] = {}
        samples: dict[str, list[str]] = {}
        queries = {
            "new": "kind = 'new'",
            "changed": "kind = 'changed'",
            "gone": "kind = 'gone'",
            "returned": "kind IN ('changed', 'returned') AND NOT was_present",
        }
        for outcome, where in queries.items():
            counts[outcome] = conn.execute(
                f"SELECT COUNT(*) FROM outcome WHERE {where}"
            ).fetchone()[0]
            samples[outcome] = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM outcome WHERE {where} ORDER BY rowid LIMIT {SAMPLE_IDS}"
                )
            ]
        written = conn.execute("SELECT COUNT(*) FROM outcome WHERE kind != 'same'").fetchone()[0]
        touched = sorted(
            r[0]
            for r in conn.execute(
                "SELECT w.agency_slug FROM outcome o JOIN win w ON w.id = o.id"
                " WHERE o.kind != 'same'"
                " UNION SELECT r.agency_slug FROM outcome o JOIN releases r ON r.id = o.id"
                " WHERE o.kind != 'same'"
            )
        )

        agencies_before = conn.total_changes
        conn.execute(
            "INSERT INTO agencies (slug, name, first_seen)"
            " SELECT agency_slug, agency, ? FROM ("
            "  SELECT agency_slug, agency, ROW_NUMBER() OVER (PARTITION BY agency_slug"
            "   ORDER BY COUNT(*) DESC, agency) AS rank"
            "  FROM win GROUP BY agency_slug, agency"
            " ) WHERE rank = 1"
            " ON CONFLICT (slug) DO UPDATE SET name = excluded.name"
            " WHERE agencies.name != excluded.name",
            (self.now,),
        )
        agencies_changed = conn.total_changes - agencies_before
        max_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases").fetchone()[0]
        conn.execute(
            "INSERT INTO releases"
            " (id, seq, agency_slug, draft, content_hash, first_seen, updated, present, left_at)"
            " SELECT w.id, ? + ROW_NUMBER() OVER (ORDER BY w.first_file, w.first_idx),"
            "  w.agency_slug, c.draft, w.content_hash, ?, ?, 1, NULL"
            " FROM win w JOIN outcome o ON o.id = w.id"
            " JOIN copies c ON c.sha256 = w.sha256 AND c.idx = w.idx WHERE o.kind = 'new'",
            (max_seq, self.now, self.now),
        )
        # A change is strictly newer than what readers hold, even within one second.
        conn.execute(
            "UPDATE releases SET draft = c.draft, content_hash = w.content_hash,"
            " agency_slug = w.agency_slug, present = 1, updated = MAX(?, releases.updated + 1)"
            " FROM win w JOIN outcome o ON o.id = w.id"
            " JOIN copies c ON c.sha256 = w.sha256 AND c.idx = w.idx"
            " WHERE w.id = releases.id AND o.kind = 'changed'",
            (self.now,),
        )
        conn.execute(
            "UPDATE releases SET draft = c.draft, agency_slug = w.agency_slug, present = 1"
            " FROM win w JOIN outcome o ON o.id = w.id"
            " JOIN copies c ON c.sha256 = w.sha256 AND c.idx = w.idx"
            " WHERE w.id = releases.id AND o.kind IN ('returned', 'rewritten')"
        )
        conn.execute(
            "UPDATE releases SET present = 0, left_at = ?"
            " WHERE id IN (SELECT id FROM outcome WHERE kind = 'gone')",
            (self.now,),
        )
        conn.execute("DELETE FROM problems")
        conn.executemany(
            "INSERT INTO problems (path, line, message) VALUES (?, ?, ?)",
            [(p.path, p.line, p.message) for p in problems],
        )
        conn.execute(
            "INSERT INTO problems (path, line, message)"
            " SELECT f.name, p.line, p.message FROM files f"
            " JOIN content_problems p ON p.sha256 = f.sha256 ORDER BY f.name, p.rowid"
        )
        if written or agencies_changed:
            generation = int(
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation + 1),)
            )
        conn.execute("DROP TABLE temp.win")
        conn.execute("DROP TABLE temp.outcome")
        return Outcome(counts, samples, touched, bool(written or agencies_changed))

    def finish(self, report: SyncReport, listing_digest: str | None) -> int:
        """Log the sync and remember the listing it saw; returns the generation."""
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('listing', ?)",
            (listing_digest or "",),
        )
        Store._log_sync(self._conn, report)
        return int(
            self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        )
