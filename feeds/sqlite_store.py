"""The SQLite store: the embedded backend of :mod:`feeds.store`, and the only module here
that runs SQLite SQL.

One file in WAL mode, one connection per thread. Every document is a few
indexed queries: archive pages by release number (``seq``) or by number within
an agency (``agency_pos``), subscription documents by the partial "newest"
indexes, releases by ID, filters through an FTS5 index that holds no second
copy of the text (external content). A release's text is stored once, in its
row; a copy of it in another file keeps its own text only while it loses.

Schema version 2; a version-1 store is migrated in place in one transaction
(:func:`_migrate_v1`), keeping every ID, number, first-seen and ``updated``.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from feeds import lock
from feeds.decide import Candidate, CopyRow, Decision, Held, Tally
from feeds.errors import (
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreIOError,
    StoreUnavailable,
)
from feeds.model import (
    Agency,
    Draft,
    Fingerprint,
    Problem,
    Release,
    State,
    SyncReport,
    Topic,
    TopicFeed,
)
from feeds.query import Filters
from feeds.store import (
    SYNC_LOG_ROWS,
    Copy,
    FileRow,
    Reader,
    Settled,
    SyncSession,
    digest_of,
    draft_from_json,
    draft_to_json,
    exact_digest,
    from_epoch,
    join_body,
    report_to_json,
    split_body,
    to_epoch,
    topics_from_json,
    topics_to_json,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
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


# New releases are indexed by one statement per sync (see ``_Session.settle``), not by
# a trigger: FTS5 flushes its pending terms at every statement savepoint, and a
# trigger runs each row in its own, so a first sync spent most of its time writing
# one tiny index segment per release and merging them (schema 3; 2 had the trigger).
# Changed texts and deletions, both rare, keep their triggers.
#
# Schema 4: a release's topics are its tagged memberships in ``release_topics`` (read
# with it, see ``_attach_topics``), not a second copy as JSON in ``releases`` (a sixth of
# the store); and the newest-first indexes are ascending, read backwards. A
# descending index takes every new release at its left edge, where SQLite splits a
# full page in two halves that stay half empty; ascending ones grow at the right,
# where pages are filled (both measured with ``dbstat``: 50 % unused against 10 %).
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE agencies (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    members INTEGER NOT NULL DEFAULT 0,
    present INTEGER NOT NULL DEFAULT 0,
    updated INTEGER,
    newest TEXT,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE agency_names (
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    releases INTEGER NOT NULL,
    PRIMARY KEY (slug, name)
) WITHOUT ROWID;
CREATE TABLE releases (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    agency_slug TEXT NOT NULL,
    agency_pos INTEGER NOT NULL,
    agency TEXT NOT NULL,
    channel TEXT,
    title TEXT NOT NULL,
    date_line TEXT,
    published TEXT,
    body TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    exact BLOB NOT NULL,
    first_seen INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    revised INTEGER NOT NULL,
    present INTEGER NOT NULL,
    left_at INTEGER,
    win_content INTEGER,
    win_idx INTEGER
);
CREATE UNIQUE INDEX releases_agency_pos ON releases(agency_slug, agency_pos);
CREATE INDEX releases_agency_seq ON releases(agency_slug, seq, agency_pos);
CREATE INDEX releases_newest ON releases(updated, revised, seq) WHERE present;
CREATE INDEX releases_agency_newest
    ON releases(agency_slug, updated, revised, seq) WHERE present;
CREATE INDEX releases_agency_published ON releases(agency_slug, published) WHERE present;
CREATE VIRTUAL TABLE releases_fts USING fts5(
    title, body, content='releases', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER releases_fts_delete AFTER DELETE ON releases BEGIN
    INSERT INTO releases_fts (releases_fts, rowid, title, body)
    VALUES ('delete', old.seq, old.title, old.body);
END;
CREATE TRIGGER releases_fts_update AFTER UPDATE OF title, body ON releases BEGIN
    INSERT INTO releases_fts (releases_fts, rowid, title, body)
    VALUES ('delete', old.seq, old.title, old.body);
    INSERT INTO releases_fts (rowid, title, body) VALUES (new.seq, new.title, new.body);
END;
CREATE TABLE topics (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    members INTEGER NOT NULL DEFAULT 0,
    present INTEGER NOT NULL DEFAULT 0,
    updated INTEGER,
    generation INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, slug)
);
CREATE TABLE release_topics (
    topic INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    tagged INTEGER NOT NULL,
    present INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    revised INTEGER NOT NULL,
    left_at INTEGER,
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX release_topics_pos ON release_topics(topic, pos);
CREATE INDEX release_topics_seq ON release_topics(seq);
CREATE INDEX release_topics_newest
    ON release_topics(topic, updated, revised, seq) WHERE present;
CREATE TABLE contents (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    version TEXT NOT NULL,
    UNIQUE (sha256, version)
);
CREATE TABLE files (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    content INTEGER NOT NULL
);
CREATE INDEX files_content ON files(content);
CREATE TABLE content_problems (
    content INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT 'problem'
);
CREATE INDEX content_problems_content ON content_problems(content);
CREATE TABLE copies (
    content INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    id TEXT NOT NULL,
    agency_slug TEXT NOT NULL,
    agency TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    exact BLOB NOT NULL,
    weight INTEGER NOT NULL,
    draft TEXT,
    topics TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (content, idx)
) WITHOUT ROWID;
CREATE INDEX copies_id ON copies(id);
CREATE TABLE problems (
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    message TEXT NOT NULL,
    severity TEXT NOT NULL DEFAULT 'problem'
);
CREATE TABLE syncs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started INTEGER NOT NULL,
    finished INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    report TEXT NOT NULL
);
"""

_TABLES = frozenset(
    line.split()[3 if "VIRTUAL" in line else 2]
    for line in _SCHEMA.splitlines()
    if line.startswith("CREATE TABLE") or line.startswith("CREATE VIRTUAL TABLE")
)

#: What a version-1 store must hold to be migrated.
_V1_TABLES = frozenset(
    {"meta", "agencies", "releases", "files", "contents", "content_problems", "copies",
     "problems", "syncs"}
)  # fmt: skip

_RELEASE = (
    "seq, id, agency_slug, agency, channel, title, date_line, published, body, "
    "content_hash, first_seen, updated, present, left_at"
)
#: The same columns for a topic's member: presence and departure are the membership's.
_MEMBER = (
    "r.seq, r.id, r.agency_slug, r.agency, r.channel, r.title, r.date_line, r.published,"
    " r.body, r.content_hash, r.first_seen, r.updated, t.present, t.left_at"
)
_TOPIC_NEWEST = "ORDER BY t.updated DESC, t.revised DESC, t.seq DESC"
_NEWEST = "ORDER BY updated DESC, revised DESC, seq DESC"
#: Words matching at least this many releases are searched by walking the newest
#: releases (:meth:`_Reader._walk_newest`) instead of sorting every match.
_COMMON = 2000
#: Releases per step of that walk.
_WALK = 500
#: Releases fetched per query when a sync walks its candidates.
_BATCH_VARIABLES = 500
#: A file's copy rows built and written at a time.
_ROW_BATCH = 64
#: Columns of a sync's listing: a file by name, with the fingerprint seen.
_LISTED = "name TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER"
#: Bytes of a page in a new store. Rows of a release (about 850 bytes for a short one)
#: fit four to a 4 KiB page, a sixth of it left empty; 16 KiB pages hold nineteen
#: (a first sync of 100,000 short releases: store 2.82x the seeds -> 2.61x, and faster).
PAGE_SIZE = 16384
#: A sync's page cache (KiB). It writes index entries all over the store (IDs are
#: random); with SQLite's default of 2 MiB a first sync of 100,000 releases read
#: 7.1 GB back from the file system, with this 0.7 GB (and took 5 % less time).
SYNC_CACHE_KIB = 64 * 1024
_DEFAULT_CACHE_KIB = 2000


def _releases(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> list[Release]:
    """Rows of ``_RELEASE`` (or ``_MEMBER``) as releases, each with its topics."""
    rows = list(rows)
    topics = _topics_of(conn, [row[0] for row in rows])
    return [_release(row, topics.get(row[0], ())) for row in rows]


def _topics_of(conn: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, tuple[Topic, ...]]:
    """The topics of the releases numbered ``seqs``, each sorted by ``(kind, slug)``.

    A release's topics are its tagged memberships: one index lookup per release.
    """
    found: dict[int, list[Topic]] = {}
    for at in range(0, len(seqs), _BATCH_VARIABLES):
        part = seqs[at : at + _BATCH_VARIABLES]
        for seq, kind, slug, name in conn.execute(
            "SELECT t.seq, p.kind, p.slug, p.name FROM release_topics t"
            " JOIN topics p ON p.id = t.topic"
            f" WHERE t.seq IN ({_marks(len(part))}) AND t.tagged",
            part,
        ):
            found.setdefault(seq, []).append(Topic(kind, slug, name))
    return {seq: tuple(sorted(topics, key=_topic_order)) for seq, topics in found.items()}


def _topic_order(topic: Topic) -> tuple[str, str]:
    return topic.kind, topic.slug


def _release(row: Sequence[Any], topics: tuple[Topic, ...]) -> Release:
    return Release(
        id=row[1],
        seq=row[0],
        draft=Draft(
            agency=row[3],
            agency_slug=row[2],
            channel=row[4],
            title=row[5],
            date_line=date.fromisoformat(row[6]) if row[6] else None,
            published=date.fromisoformat(row[7]) if row[7] else None,
            paragraphs=split_body(row[8]),
            line=0,
        ),
        content_hash=bytes(row[9]).hex(),
        first_seen=from_epoch(row[10]),
        updated=from_epoch(row[11]),
        present=bool(row[12]),
        left_at=from_epoch(row[13]) if row[13] is not None else None,
        topics=topics,
    )


def _marks(count: int) -> str:
    return ",".join("?" * count)


def match_expression(words: Sequence[str]) -> str:
    """An FTS5 query in which each word must appear, as a word or the start of one.

    A word with inner punctuation (``e-commerce``) is a phrase of its parts, each
    a whole token but the last, which may be a prefix.
    """
    return " AND ".join('"' + word.replace('"', '""') + '"*' for word in words)


class SQLiteStore:
    """A SQLite file in WAL mode; one connection per thread."""

    def __init__(self, path: Path, *, busy_timeout: float | None = None) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connections -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise classify(exc, self.path) from exc
        timeout = BUSY_TIMEOUT if self.busy_timeout is None else self.busy_timeout
        with self._translated():
            # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            try:
                # Only a new file takes it, and only before WAL is on (see PAGE_SIZE).
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
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
            if conn.in_transaction:  # inside a sync or an export: it sees its own state
                yield conn
                return
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

    @contextmanager
    def sync_lock(self, blocking: bool = True) -> Iterator[bool]:
        """The lock file beside the database, so one process syncs at a time."""
        try:
            held = lock.exclusive(self.lock_path, blocking=blocking)
            acquired = held.__enter__()
        except OSError as exc:
            raise classify(exc, self.lock_path) from exc
        try:
            yield acquired
        finally:
            held.__exit__(None, None, None)

    def initialize(self, now: datetime) -> None:
        """Create the schema in a new file, or check (and migrate) an existing one.

        Only a corrupt store (:class:`StoreCorrupt`: not a database, a damaged header or
        schema, tables missing) is moved aside as ``<name>.corrupt-<time>`` and created
        anew: the next sync rebuilds it from the seeds with the same IDs, since IDs never
        come from the store. Any other trouble (permission, read-only, full, busy, I/O) raises its
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
            if version in (1, *_STEPPED, SCHEMA_VERSION):
                # A check that costs the same at any size: the header, the schema and the
                # meta rows. ``PRAGMA quick_check`` read the whole file (8 s at a million
                # releases) in every process that opened it; damage deeper in the file is
                # reported, classified as corrupt, by the query that meets it.
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                missing = (_V1_TABLES if version == 1 else _TABLES) - tables
                if missing:
                    raise StoreCorrupt(
                        "corrupt", self.path, f"tables missing: {', '.join(sorted(missing))}"
                    )
                if conn.execute("SELECT 1 FROM meta WHERE key = 'created'").fetchone() is None:
                    raise StoreCorrupt("corrupt", self.path, "meta holds no 'created' row")
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                _create(conn)
                # Generations start from the clock, so a rebuilt store never repeats one
                # that another process may still have cached.
                conn.execute(
                    "INSERT INTO meta VALUES ('created', ?), ('generation', ?)",
                    (str(to_epoch(now)), str(int(now.timestamp() * 1000))),
                )
                log.info("store created path=%s schema=%d", self.path, SCHEMA_VERSION)
            elif version == 1:
                _migrate_v1(conn)
                log.info("store migrated path=%s schema=1->%d", self.path, SCHEMA_VERSION)
            elif version in _STEPPED:
                _migrate(conn, version)
                log.info("store migrated path=%s schema=%d->%d", self.path, version, SCHEMA_VERSION)
            elif version == SCHEMA_VERSION:
                # A store this process cannot write (a read-only file, say) opens and reads
                # fine: fail now, at start, rather than at every sync.
                conn.execute("UPDATE meta SET value = value WHERE key = 'created'")
            else:
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

    @contextmanager
    def read(self) -> Iterator[Reader]:
        with self._read() as conn:
            yield _Reader(conn)

    def problems(self) -> list[Problem]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT path, line, message, severity FROM problems ORDER BY rowid"
            ).fetchall()
            rows += conn.execute(
                "SELECT f.name, p.line, p.message, p.severity FROM files f"
                " JOIN content_problems p ON p.content = f.content ORDER BY f.name, p.rowid"
            ).fetchall()
        return [_problem(r) for r in rows]

    def last_syncs(self, limit: int = 1) -> list[dict[str, Any]]:
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
        with self._read() as conn:
            present, members, agencies = conn.execute(
                "SELECT COALESCE(SUM(present), 0), COALESCE(SUM(members), 0), COUNT(*)"
                " FROM agencies"
            ).fetchone()
            files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        return {
            "releases": present,
            "releases_gone": members - present,
            "agencies": agencies,
            "files": files,
        }

    # -- writes ------------------------------------------------------------------

    @contextmanager
    def sync_session(self, now: datetime, version: str) -> Iterator[SyncSession]:
        with self._write() as conn:
            conn.execute(f"PRAGMA cache_size = -{SYNC_CACHE_KIB}")
            try:
                yield _Session(conn, to_epoch(now), version)
            finally:
                conn.execute(f"PRAGMA cache_size = -{_DEFAULT_CACHE_KIB}")

    def listing_digest(self) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'listing'").fetchone()
        return str(row[0]) if row and row[0] else None

    def record_unchanged(self, report: SyncReport) -> None:
        with self._write() as conn:
            _log_sync(conn, report)

    def record_failure(self, report: SyncReport) -> None:
        with self._write() as conn:
            _log_sync(conn, report)


def _problem(row: Sequence[Any]) -> Problem:
    return Problem(row[0], row[1], row[2], "warning" if row[3] == "warning" else "problem")


def _severity(problem: Problem) -> str:
    return problem.severity


def _create(conn: sqlite3.Connection) -> None:
    # Not executescript(): it would commit and leave this transaction.
    for statement in _statements(_SCHEMA):
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _statements(script: str) -> Iterator[str]:
    """The statements of a script; trigger bodies keep their inner semicolons."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if pending.strip() == ";":
            pending = ""
            continue
        if "CREATE TRIGGER" in pending and not part.strip().endswith("END"):
            continue
        yield pending
        pending = ""


def _log_sync(conn: sqlite3.Connection, report: SyncReport) -> None:
    conn.execute(
        "INSERT INTO syncs (started, finished, ok, report) VALUES (?, ?, ?, ?)",
        (to_epoch(report.started), to_epoch(report.finished), int(report.ok),
         report_to_json(report)),
    )  # fmt: skip
    conn.execute("DELETE FROM syncs WHERE id <= (SELECT MAX(id) FROM syncs) - ?", (SYNC_LOG_ROWS,))


# -- the read side -------------------------------------------------------------------


class _Reader:
    """Queries over one read transaction; each touches only the rows it returns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def state(self) -> State:
        conn = self._conn
        meta = dict(
            conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'created')")
        )
        agencies = tuple(
            Agency(
                slug=r[0],
                name=r[1],
                first_seen=from_epoch(r[2]),
                present_count=r[3],
                members=r[4],
                updated=from_epoch(r[5]) if r[5] is not None else None,
                newest=date.fromisoformat(r[6]) if r[6] else None,
                generation=r[7],
            )
            for r in conn.execute(
                "SELECT slug, name, first_seen, present, members, updated, newest, generation"
                " FROM agencies ORDER BY slug"
            )
        )
        releases = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases").fetchone()[0]
        topics = tuple(
            TopicFeed(
                topic=Topic(r[0], r[1], r[2]),
                first_seen=from_epoch(r[3]),
                present_count=r[4],
                members=r[5],
                updated=from_epoch(r[6]) if r[6] is not None else None,
                generation=r[7],
            )
            for r in conn.execute(
                "SELECT kind, slug, name, first_seen, present, members, updated, generation"
                " FROM topics ORDER BY kind, slug"
            )
        )
        return State(
            int(meta["generation"]), from_epoch(int(meta["created"])), agencies, releases, topics
        )

    def generation(self) -> int:
        (value,) = self._conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(value)

    def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[Release]:
        rows = self._conn.execute(f"SELECT {_RELEASE} FROM releases WHERE {where} {tail}", params)
        return _releases(self._conn, rows)

    def _count_upto(self, slugs: tuple[str, ...], seq: int) -> int:
        """How many members of the feed have a number at most ``seq``."""
        total = 0
        for slug in slugs:
            row = self._conn.execute(
                "SELECT agency_pos FROM releases WHERE agency_slug = ? AND seq <= ?"
                " ORDER BY seq DESC LIMIT 1",
                (slug, seq),
            ).fetchone()
            total += row[0] if row else 0
        return total

    def _seq_at(self, slugs: tuple[str, ...], position: int) -> int:
        """The release number of a multi-agency feed's member at ``position`` (binary search)."""
        if position <= 0:
            return 0
        low, high = (
            1,
            self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases").fetchone()[0],
        )
        while low < high:
            middle = (low + high) // 2
            if self._count_upto(slugs, middle) >= position:
                high = middle
            else:
                low = middle + 1
        return int(low)

    def members(self, slugs: tuple[str, ...] | None, first: int, last: int) -> list[Release]:
        if slugs is None:
            return self._select("seq BETWEEN ? AND ?", (first, last), "ORDER BY seq")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = ? AND agency_pos BETWEEN ? AND ?",
                (slugs[0], first, last),
                "ORDER BY agency_pos",
            )
        low, high = self._seq_at(slugs, first), self._seq_at(slugs, last)
        return self._select(
            f"agency_slug IN ({_marks(len(slugs))}) AND seq BETWEEN ? AND ?",
            (*slugs, low, high),
            "ORDER BY seq",
        )

    def present_after(self, slugs: tuple[str, ...] | None, position: int) -> list[Release]:
        if slugs is None:
            return self._select("seq > ? AND present", (position,), "ORDER BY seq")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = ? AND agency_pos > ? AND present",
                (slugs[0], position),
                "ORDER BY agency_pos",
            )
        after = self._seq_at(slugs, position)
        return self._select(
            f"agency_slug IN ({_marks(len(slugs))}) AND seq > ? AND present",
            (*slugs, after),
            "ORDER BY seq",
        )

    def newest(self, slugs: tuple[str, ...] | None, limit: int, offset: int = 0) -> list[Release]:
        if slugs is None:
            return self._select("present", (limit, offset), f"{_NEWEST} LIMIT ? OFFSET ?")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = ? AND present",
                (slugs[0], limit, offset),
                f"{_NEWEST} LIMIT ? OFFSET ?",
            )
        # Each agency's newest from its own index, merged: never a sort of every member.
        runs = [self.newest((slug,), limit + offset) for slug in slugs]
        merged = heapq.merge(*runs, key=_newest_key)
        return list(merged)[offset : offset + limit]

    def search(self, slugs: tuple[str, ...] | None, filters: Filters, limit: int) -> list[Release]:
        if filters.q and (slugs is None or len(slugs) == 1) and self._common(filters.q):
            return self._walk_newest(slugs, filters, limit)
        # Few matches: take them all from the index and sort them.
        where, params = _search_terms(filters, "seq", "updated")
        if slugs is not None:
            where.append(f"agency_slug IN ({_marks(len(slugs))})")
            params.extend(slugs)
        params.append(limit)
        return self._select(" AND ".join(["present", *where]), params, f"{_NEWEST} LIMIT ?")

    def _common(self, words: Sequence[str]) -> bool:
        """Whether the words match at least :data:`_COMMON` releases (a bounded probe)."""
        (found,) = self._conn.execute(
            "SELECT COUNT(*) FROM (SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?"
            " LIMIT ?)",
            (match_expression(words), _COMMON),
        ).fetchone()
        return bool(found >= _COMMON)

    def _walk_newest(
        self, slugs: tuple[str, ...] | None, filters: Filters, limit: int
    ) -> list[Release]:
        """Matches of common words: walk the newest releases, check each chunk in the index.

        Sorting every match of a word in 30% of a million releases costs a second; the
        newest ``limit`` of them are found within the first few chunks of the "newest"
        index, each checked with a range query on the full-text index.
        """
        conn = self._conn
        q = match_expression(filters.q)
        exclude = match_expression(filters.exclude).replace(" AND ", " OR ")
        where = ["present"]
        params: list[Any] = []
        if slugs is not None:
            where.append("agency_slug = ?")
            params.append(slugs[0])
        if filters.since is not None:
            where.append("updated > ?")
            params.append(math.floor(filters.since.timestamp()))
        found: list[int] = []
        after: tuple[int, int, int] | None = None
        while len(found) < limit:
            keyset = ["(updated, revised, seq) < (?, ?, ?)"] if after is not None else []
            chunk = conn.execute(
                f"SELECT seq, updated, revised FROM releases WHERE {' AND '.join(where + keyset)}"
                f" {_NEWEST} LIMIT ?",
                (*params, *(after or ()), _WALK),
            ).fetchall()
            if not chunk:
                break
            seqs = [row[0] for row in chunk]
            hits = self._in_index(q, seqs)
            misses = self._in_index(exclude, seqs) if filters.exclude else set()
            found += [seq for seq in seqs if seq in hits and seq not in misses]
            last = chunk[-1]
            after = (last[1], last[2], last[0])
            if len(chunk) < _WALK:
                break
        chosen = found[:limit]
        rows = {r.seq: r for r in self._select(f"seq IN ({_marks(len(chosen))})", chosen)}
        return [rows[seq] for seq in chosen]

    def _in_index(self, expression: str, seqs: list[int]) -> set[int]:
        """Which of ``seqs`` the full-text ``expression`` matches, by rowid ranges."""
        ordered = sorted(seqs)
        ranges: list[list[int]] = []
        for seq in ordered:  # nearby numbers share one range query
            if ranges and seq - ranges[-1][1] <= 2 * _WALK:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        wanted = set(seqs)
        found: set[int] = set()
        for low, high in ranges:
            found.update(
                row[0]
                for row in self._conn.execute(
                    "SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?"
                    " AND rowid BETWEEN ? AND ?",
                    (expression, low, high),
                )
                if row[0] in wanted
            )
        return found

    def release(self, uuid: str) -> Release | None:
        found = self._select("id = ?", (f"urn:uuid:{uuid}",))
        return found[0] if found else None

    def uuids(self) -> Iterator[str]:
        after = 0
        while True:
            rows = self._conn.execute(
                "SELECT seq, id FROM releases WHERE seq > ? ORDER BY seq LIMIT 1000", (after,)
            ).fetchall()
            if not rows:
                return
            for _, release_id in rows:
                yield release_id.removeprefix("urn:uuid:")
            after = rows[-1][0]

    # -- topic feeds ---------------------------------------------------------------

    def _topic(self, topic: str) -> int:
        kind, _, slug = topic.partition("/")
        row = self._conn.execute(
            "SELECT id FROM topics WHERE kind = ? AND slug = ?", (kind, slug)
        ).fetchone()
        return int(row[0]) if row else 0

    def _members_of(self, where: str, params: Sequence[Any], tail: str) -> list[Release]:
        rows = self._conn.execute(
            f"SELECT {_MEMBER} FROM release_topics t JOIN releases r ON r.seq = t.seq"
            f" WHERE {where} {tail}",
            params,
        )
        return _releases(self._conn, rows)

    def topic_members(self, topic: str, first: int, last: int) -> list[Release]:
        return self._members_of(
            "t.topic = ? AND t.pos BETWEEN ? AND ?",
            (self._topic(topic), first, last),
            "ORDER BY t.pos",
        )

    def topic_present_after(self, topic: str, position: int) -> list[Release]:
        return self._members_of(
            "t.topic = ? AND t.pos > ? AND t.present",
            (self._topic(topic), position),
            "ORDER BY t.pos",
        )

    def topic_newest(self, topic: str, limit: int, offset: int = 0) -> list[Release]:
        return self._members_of(
            "t.topic = ? AND t.present",
            (self._topic(topic), limit, offset),
            f"{_TOPIC_NEWEST} LIMIT ? OFFSET ?",
        )

    def topic_search(self, topic: str, filters: Filters, limit: int) -> list[Release]:
        where, params = _search_terms(filters, "t.seq", "t.updated")
        return self._members_of(
            " AND ".join(["t.topic = ?", "t.present", *where]),
            (self._topic(topic), *params, limit),
            f"{_TOPIC_NEWEST} LIMIT ?",
        )


def _search_terms(filters: Filters, seq: str, updated: str) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters for ``q``, ``exclude`` and ``since`` (full-text index)."""
    where: list[str] = []
    params: list[Any] = []
    if filters.q:
        where.append(f"{seq} IN (SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?)")
        params.append(match_expression(filters.q))
    if filters.exclude:
        where.append(f"{seq} NOT IN (SELECT rowid FROM releases_fts WHERE releases_fts MATCH ?)")
        params.append(match_expression(filters.exclude).replace(" AND ", " OR "))
    if filters.since is not None:
        where.append(f"{updated} > ?")
        # Stored times are whole seconds: after s means after its whole second.
        params.append(math.floor(filters.since.timestamp()))
    return where, params


def _newest_key(release: Release) -> tuple[float, bool, int]:
    # heapq.merge takes ascending runs: negate the newest-first order.
    return (
        -release.updated.timestamp(),
        not (release.updated != release.first_seen),
        -release.seq,
    )


# -- the write side ------------------------------------------------------------------


class _Session:
    """One sync's writes inside its transaction (see :class:`feeds.store.SyncSession`)."""

    def __init__(self, conn: sqlite3.Connection, now: int, version: str) -> None:
        self._conn = conn
        self.now = now
        self.version = version
        # Topic bookkeeping of this sync: ids and names by key, next feed numbers, and
        # per topic the change in present members and the latest moment written.
        self._topic_ids: dict[tuple[str, str], tuple[int, str]] = {}
        self._topic_pos: dict[int, int] = {}
        self._topic_tally: dict[int, list[int]] = {}
        self._retagged_agencies: set[str] = set()
        #: The first number this sync gives a new release (see ``numbers``).
        self._first_new: int | None = None
        for table, columns in (
            # The listing as this sync walked it, and the part of it to read.
            ("listing", _LISTED),
            ("unread", _LISTED),
            ("old_contents", "content INTEGER PRIMARY KEY"),
            ("affected", "id TEXT PRIMARY KEY"),
            # The texts and topics of this sync's new copies, until the copy is known to win
            # (they go into the release) or to lose (into its own row, at settle). Kept out
            # of the store file: writing every text into ``copies`` and clearing it on a
            # win left a first sync's store a third free pages.
            (
                "drafts",
                "content INTEGER, idx INTEGER, draft TEXT NOT NULL, topics TEXT NOT NULL,"
                " PRIMARY KEY (content, idx)",
            ),
        ):
            rowid = "" if table not in ("listing", "unread") else " WITHOUT ROWID"
            conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}){rowid}")
            conn.execute(f"DELETE FROM temp.{table}")
        conn.execute("DROP TABLE IF EXISTS temp.work")

    def list_files(self, listed: Sequence[tuple[str, Fingerprint]]) -> None:
        # One statement of many rows, not executemany: half the cost per file, and this is
        # most of what an unchanged file costs a sync.
        for at in range(0, len(listed), _BATCH_VARIABLES // 4):
            part = listed[at : at + _BATCH_VARIABLES // 4]
            values: list[Any] = []
            for name, fp in part:
                values += name, fp.size, fp.mtime_ns, fp.inode
            self._conn.execute(
                "INSERT OR REPLACE INTO listing (name, size, mtime_ns, inode) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * len(part)),
                values,
            )

    def mark_unread(self) -> int:
        # One pass over the listing, a primary-key lookup per file, all inside SQLite.
        return self._conn.execute(
            "INSERT INTO unread (name, size, mtime_ns, inode)"
            " SELECT l.name, l.size, l.mtime_ns, l.inode FROM listing l"
            " LEFT JOIN files f ON f.name = l.name"
            " LEFT JOIN contents c ON c.id = f.content AND c.version = ?"
            " WHERE c.id IS NULL OR f.size != l.size OR f.mtime_ns != l.mtime_ns"
            " OR f.inode != l.inode",
            (self.version,),
        ).rowcount

    def unread(self, batch: int) -> Iterator[list[tuple[str, Fingerprint]]]:
        after = ""
        while rows := self._conn.execute(
            "SELECT name, size, mtime_ns, inode FROM unread WHERE name > ? ORDER BY name LIMIT ?",
            (after, batch),
        ).fetchall():
            after = rows[-1][0]
            yield [(r[0], Fingerprint(r[1], r[2], r[3])) for r in rows]

    def has_content(self, sha256: str) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM contents WHERE sha256 = ? AND version = ?", (sha256, self.version)
        )
        return found.fetchone() is not None

    def add_content(self, sha256: str, copies: Iterable[Copy], problems: list[Problem]) -> None:
        conn = self._conn
        content = conn.execute(
            "INSERT INTO contents (sha256, version) VALUES (?, ?)", (sha256, self.version)
        ).lastrowid
        assert content is not None
        # A few rows at a time: a file's copies are consumed as they are parsed and
        # tagged, never all held as rows (a sync's memory follows one file, not two).
        numbered = enumerate(copies)
        while rows := [
            _copy_row(content, idx, c) for idx, c in itertools.islice(numbered, _ROW_BATCH)
        ]:
            conn.executemany(
                "INSERT OR REPLACE INTO copies (content, idx, id, agency_slug, agency,"
                " content_hash, exact, weight, draft, topics)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '[]')",
                [row[:8] for row in rows],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO temp.drafts (content, idx, draft, topics)"
                " VALUES (?, ?, ?, ?)",
                [row[:2] + row[8:] for row in rows],
            )
        conn.execute(
            "INSERT OR IGNORE INTO affected (id) SELECT id FROM copies WHERE content = ?",
            (content,),
        )
        conn.executemany(
            "INSERT INTO content_problems (content, line, message, severity) VALUES (?, ?, ?, ?)",
            [(content, p.line, p.message, _severity(p)) for p in problems],
        )

    def put_file(self, row: FileRow) -> None:
        conn = self._conn
        fp = row.fingerprint
        (content,) = conn.execute(
            "SELECT id FROM contents WHERE sha256 = ? AND version = ?", (row.sha256, self.version)
        ).fetchone()
        conn.execute(
            "INSERT OR IGNORE INTO old_contents (content)"
            " SELECT content FROM files WHERE name = ? AND content != ?",
            (row.name, content),
        )
        conn.execute(
            "INSERT OR REPLACE INTO files (name, size, mtime_ns, inode, content)"
            " VALUES (?, ?, ?, ?, ?)",
            (row.name, fp.size, fp.mtime_ns, fp.inode, content),
        )

    def stored_names(self, after: str, limit: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM files WHERE name > ? ORDER BY name LIMIT ?", (after, limit)
        )
        return [r[0] for r in rows]

    def forget_unlisted(self, names: Sequence[str] | None) -> None:
        if names is None:
            self._forget("1", ())
            return
        for at in range(0, len(names), _BATCH_VARIABLES):
            part = names[at : at + _BATCH_VARIABLES]
            self._forget(f"name IN ({_marks(len(part))})", part)

    def _forget(self, which: str, params: Sequence[str]) -> None:
        """Forget the stored files ``which`` selects that the listing did not name."""
        gone = f"{which} AND name NOT IN (SELECT name FROM listing)"
        self._conn.execute(
            f"INSERT OR IGNORE INTO old_contents (content) SELECT content FROM files WHERE {gone}",
            params,
        )
        self._conn.execute(f"DELETE FROM files WHERE {gone}", params)

    def _drop_contents(self) -> None:
        """Contents no file holds any more go, and their copies' releases are candidates."""
        conn = self._conn
        conn.execute("DELETE FROM old_contents WHERE content IN (SELECT content FROM files)")
        # By key from the (few) dropped contents: as a join, with no statistics on the temp
        # table, SQLite walked every copy in the store instead (0.17 s at 1,000,000).
        conn.execute(
            "INSERT OR IGNORE INTO affected (id)"
            " SELECT id FROM copies WHERE content IN (SELECT content FROM old_contents)"
        )
        conn.execute("DELETE FROM contents WHERE rowid IN (SELECT content FROM old_contents)")

    def candidates(self, batch: int) -> Iterator[list[Candidate]]:
        conn = self._conn
        self._drop_contents()
        # The order new releases are numbered in: first file name holding them, then place.
        conn.execute("CREATE TEMP TABLE work (pos INTEGER PRIMARY KEY, id TEXT NOT NULL)")
        conn.execute(
            "INSERT INTO work (id) SELECT id FROM ("
            " SELECT a.id, (SELECT f.name || char(0) || printf('%012d', c.idx) FROM copies c"
            "  JOIN files f ON f.content = c.content WHERE c.id = a.id"
            "  ORDER BY f.name, c.idx LIMIT 1) AS first FROM affected a"
            ") ORDER BY first IS NULL, first, id"
        )
        batch = max(1, min(batch, _BATCH_VARIABLES))
        after = 0
        while True:
            rows = conn.execute(
                "SELECT pos, id FROM work WHERE pos > ? ORDER BY pos LIMIT ?", (after, batch)
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            ids = [r[1] for r in rows]
            yield self._candidates(ids)
        conn.execute("DROP TABLE temp.work")

    def _candidates(self, ids: list[str]) -> list[Candidate]:
        conn = self._conn
        copies: dict[str, list[CopyRow]] = {i: [] for i in ids}
        for r in conn.execute(
            "SELECT c.id, c.content, t.sha256, c.idx, c.agency_slug, c.agency, c.content_hash,"
            f" c.exact, c.weight FROM copies c JOIN contents t ON t.rowid = c.content"
            f" WHERE c.id IN ({_marks(len(ids))})",
            ids,
        ):
            copies[r[0]].append(
                CopyRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]).hex(), bytes(r[7]), r[8])
            )
        held: dict[str, Held] = {}
        for r in conn.execute(
            "SELECT id, seq, agency_slug, agency, content_hash, exact, present, first_seen,"
            " updated, win_content, win_idx FROM releases"
            f" WHERE id IN ({_marks(len(ids))})",
            ids,
        ):
            winner = (r[9], r[10]) if r[9] is not None else None
            held[r[0]] = Held(
                r[1], r[2], r[3], bytes(r[4]).hex(), bytes(r[5]), bool(r[6]), r[7], r[8], winner
            )
        return [Candidate(i, tuple(copies[i]), held.get(i)) for i in ids]

    def numbers(self) -> tuple[int, dict[str, int]]:
        conn = self._conn
        next_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM releases").fetchone()[0]
        positions = {r[0]: r[1] + 1 for r in conn.execute("SELECT slug, members FROM agencies")}
        self._first_new = int(next_seq)
        return int(next_seq), positions

    def _take_text(self, decision: Decision) -> tuple[Draft | None, tuple[Topic, ...] | None]:
        """Move texts for a release whose winning copy changes; the new winner's text and topics.

        A copy's text is kept in its own row only while it loses: the winner's text
        lives in the release. ``(None, None)`` when the release keeps what it has.
        """
        conn = self._conn
        best, held = decision.winner, decision.held
        assert best is not None
        old = held.winner if held is not None else None
        if old == best.key:
            return None, None
        if held is not None and old is not None:
            # The copy that spoke for the release until now keeps its text and topics as
            # a loser.
            (current,) = self._select_release(decision.id)
            conn.execute(
                "UPDATE copies SET draft = ?, topics = ? WHERE content = ? AND idx = ?",
                (draft_to_json(current.draft), topics_to_json(current.topics), *old),
            )
        row = conn.execute(
            "SELECT COALESCE(d.draft, c.draft), COALESCE(d.topics, c.topics) FROM copies c"
            " LEFT JOIN temp.drafts d ON d.content = c.content AND d.idx = c.idx"
            " WHERE c.content = ? AND c.idx = ?",
            best.key,
        ).fetchone()
        conn.execute("DELETE FROM temp.drafts WHERE content = ? AND idx = ?", best.key)
        conn.execute(
            "UPDATE copies SET draft = NULL, topics = '[]' WHERE content = ? AND idx = ?"
            " AND (draft IS NOT NULL OR topics != '[]')",
            best.key,
        )
        draft = draft_from_json(row[0]) if row[0] is not None else None
        return draft, topics_from_json(row[1])

    def _select_release(self, release_id: str) -> list[Release]:
        rows = self._conn.execute(f"SELECT {_RELEASE} FROM releases WHERE id = ?", (release_id,))
        return _releases(self._conn, rows)

    def _apply_new(self, decisions: list[Decision]) -> None:
        """Insert brand-new releases a batch at a time: a first sync is mostly these."""
        conn = self._conn
        now = self.now
        keys = [d.winner.key for d in decisions if d.winner is not None]
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS fresh (content INTEGER, idx INTEGER)")
        conn.execute("DELETE FROM temp.fresh")
        conn.executemany("INSERT INTO temp.fresh (content, idx) VALUES (?, ?)", keys)
        rows = {
            (r[0], r[1]): (r[2], r[3])
            for r in conn.execute(
                "SELECT c.content, c.idx, COALESCE(d.draft, c.draft),"
                " COALESCE(d.topics, c.topics) FROM temp.fresh f"
                " JOIN copies c ON c.content = f.content AND c.idx = f.idx"
                " LEFT JOIN temp.drafts d ON d.content = f.content AND d.idx = f.idx"
            )
        }
        releases = []
        memberships = []
        for d in decisions:
            best = d.winner
            assert best is not None
            text, topics_text = rows[best.key]
            draft = draft_from_json(text)
            releases.append(
                (d.seq, d.id, best.agency_slug, draft.agency, draft.channel, draft.title,
                 _iso(draft.date_line), _iso(draft.published), join_body(draft.paragraphs),
                 bytes.fromhex(best.content_hash), now, now, 1, None,
                 best.exact, d.agency_pos, best.content, best.idx)
            )  # fmt: skip
            # Topics as tagged, sorted by (kind, slug): their rows are created in that order.
            for topic in topics_from_json(topics_text):
                topic_id, _ = self._topic_id(topic)
                memberships.append((topic_id, d.seq, self._next_pos(topic_id), now))
                tally = self._topic_tally.setdefault(topic_id, [0, 0, 0])
                tally[0] += 1
                tally[1] = max(tally[1], now)
                tally[2] = 1
        conn.executemany(
            f"INSERT INTO releases ({_RELEASE}, exact, agency_pos, revised, win_content,"
            " win_idx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            releases,
        )
        # Full-text indexed at settle, all of this sync's new releases at once.
        conn.execute(
            "DELETE FROM temp.drafts WHERE (content, idx) IN (SELECT content, idx FROM temp.fresh)"
        )
        conn.executemany(
            "UPDATE copies SET draft = NULL, topics = '[]' WHERE content = ? AND idx = ?"
            " AND (draft IS NOT NULL OR topics != '[]')",
            keys,
        )
        conn.executemany(
            "INSERT INTO release_topics (topic, seq, pos, tagged, present, updated, revised)"
            " VALUES (?, ?, ?, 1, 1, ?, 0)",
            memberships,
        )

    def apply(self, decisions: Sequence[Decision]) -> None:
        conn = self._conn
        now = self.now
        fresh = [d for d in decisions if d.kind == "new"]
        if fresh:
            self._apply_new(fresh)
        for d in decisions:
            kind = d.kind
            if kind in ("same", "new"):
                continue
            if kind == "gone":
                assert d.held is not None
                conn.execute(
                    "UPDATE releases SET present = 0, left_at = ? WHERE id = ?", (now, d.id)
                )
                self._retag(d.held.seq, d.held.agency_slug, None, False, d.updated, True)
                continue
            best = d.winner
            assert best is not None
            draft, topics = self._take_text(d)
            winner = (best.content, best.idx)
            if draft is not None:
                conn.execute(
                    "UPDATE releases SET agency = ?, channel = ?, title = ?, date_line = ?,"
                    " published = ?, body = ? WHERE id = ?",
                    (draft.agency, draft.channel, draft.title, _iso(draft.date_line),
                     _iso(draft.published), join_body(draft.paragraphs), d.id),
                )  # fmt: skip
            conn.execute(
                "UPDATE releases SET content_hash = ?, exact = ?, agency_slug = ?, present = 1,"
                " updated = ?, revised = (? != first_seen), win_content = ?, win_idx = ?"
                " WHERE id = ?",
                (bytes.fromhex(best.content_hash), best.exact, best.agency_slug, d.updated,
                 d.updated, *winner, d.id),
            )  # fmt: skip
            self._retag(d.seq, best.agency_slug, topics, True, d.updated, kind != "moved")

    # -- topics ------------------------------------------------------------------

    def _topic_id(self, topic: Topic) -> tuple[int, str]:
        """The topic's row (created at first sight) and its display name."""
        key = (topic.kind, topic.slug)
        found = self._topic_ids.get(key)
        if found is None:
            row = self._conn.execute(
                "SELECT id, name FROM topics WHERE kind = ? AND slug = ?", key
            ).fetchone()
            if row is None:
                topic_id = self._conn.execute(
                    "INSERT INTO topics (kind, slug, name, first_seen) VALUES (?, ?, ?, ?)",
                    (topic.kind, topic.slug, topic.name, self.now),
                ).lastrowid
                assert topic_id is not None
                row = (topic_id, topic.name)
            found = self._topic_ids[key] = (int(row[0]), str(row[1]))
        return found

    def _next_pos(self, topic_id: int) -> int:
        pos = self._topic_pos.get(topic_id)
        if pos is None:
            (pos,) = self._conn.execute(
                "SELECT COALESCE(MAX(pos), 0) + 1 FROM release_topics WHERE topic = ?",
                (topic_id,),
            ).fetchone()
        self._topic_pos[topic_id] = pos + 1
        return int(pos)

    def _retag(
        self,
        seq: int,
        agency_slug: str,
        wanted: tuple[Topic, ...] | None,
        present: bool,
        updated: int,
        visible: bool,
    ) -> None:
        """Bring a release's topic memberships up to date.

        ``wanted`` is its topics now (None: unchanged). A membership is never deleted:
        a release that loses a topic or leaves the seeds keeps its number in the
        topic's feed and stops being present there, as in an agency's feed.
        """
        conn = self._conn
        rows = {
            r[0]: (bool(r[1]), bool(r[2]), r[3])
            for r in conn.execute(
                "SELECT topic, tagged, present, updated FROM release_topics WHERE seq = ?", (seq,)
            )
        }
        was_tagged_ids = {topic for topic, row in rows.items() if row[0]}
        if wanted is None:
            tagged_ids = was_tagged_ids
        else:
            # The release's topics are its tagged memberships: a change of them changes
            # its entry in its agency's documents too.
            tagged_ids = {self._topic_id(t)[0] for t in wanted}
            if tagged_ids != was_tagged_ids:
                self._retagged_agencies.add(agency_slug)
        revised = int(
            conn.execute("SELECT revised FROM releases WHERE seq = ?", (seq,)).fetchone()[0]
        )
        for topic_id in set(rows) | tagged_ids:
            tagged = topic_id in tagged_ids
            now_present = tagged and present
            tally = self._topic_tally.setdefault(topic_id, [0, 0, 0])
            row = rows.get(topic_id)
            if row is None:
                conn.execute(
                    "INSERT INTO release_topics (topic, seq, pos, tagged, present, updated,"
                    " revised) VALUES (?, ?, ?, 1, ?, ?, ?)",
                    (topic_id, seq, self._next_pos(topic_id), int(now_present), updated, revised),
                )
                tally[0] += int(now_present)
                tally[1] = max(tally[1], updated if now_present else 0)
                tally[2] = 1
                continue
            was_tagged, was_present, was_updated = row
            if (was_tagged, was_present, was_updated) != (tagged, now_present, updated):
                left = self.now if was_present and not now_present else None
                conn.execute(
                    "UPDATE release_topics SET tagged = ?, present = ?, updated = ?, revised = ?,"
                    " left_at = COALESCE(?, left_at) WHERE topic = ? AND seq = ?",
                    (int(tagged), int(now_present), updated, revised, left, topic_id, seq),
                )
                tally[0] += int(now_present) - int(was_present)
                moment = left if left is not None else (updated if now_present else 0)
                tally[1] = max(tally[1], moment)
                tally[2] = 1
            elif visible and now_present:
                tally[2] = 1  # its entry's text changed: the topic's documents did too

    def settle(self, tally: Tally, problems: list[Problem]) -> Settled:
        conn = self._conn
        now = self.now
        if self._first_new is not None:
            # One statement for every release this sync added: numbers are handed out
            # upwards from ``numbers``, so they are exactly those from there (with none,
            # a range seek that finds nothing). FTS5 flushes its pending terms at each
            # statement's end, so a statement per batch wrote a small index segment per
            # 100 releases and then merged them, again and again (a first sync of
            # 100,000: 71 s against 62 s).
            conn.execute(
                "INSERT INTO releases_fts (rowid, title, body)"
                " SELECT seq, title, body FROM releases WHERE seq >= ?",
                (self._first_new,),
            )
        # Every copy of this sync that did not win keeps its text and topics in its own row.
        # Written from the (few) staged rows by key: the UPDATE ... FROM form scanned every
        # copy in the store on every sync (10 ms at 100,000 releases).
        conn.execute(
            "UPDATE copies SET (draft, topics) = (SELECT d.draft, d.topics FROM temp.drafts d"
            " WHERE d.content = copies.content AND d.idx = copies.idx)"
            " WHERE (content, idx) IN (SELECT content, idx FROM temp.drafts)"
        )
        conn.execute("DELETE FROM temp.drafts")
        changed: list[str] = []
        for slug, t in sorted(tally.agencies.items()):
            for name, delta in t.names.items():
                conn.execute(
                    "INSERT INTO agency_names (slug, name, releases) VALUES (?, ?, ?)"
                    " ON CONFLICT (slug, name)"
                    " DO UPDATE SET releases = releases + excluded.releases",
                    (slug, name, delta),
                )
            conn.execute("DELETE FROM agency_names WHERE slug = ? AND releases <= 0", (slug,))
            best = conn.execute(
                "SELECT name FROM agency_names WHERE slug = ? ORDER BY releases DESC, name LIMIT 1",
                (slug,),
            ).fetchone()
            held = conn.execute("SELECT name FROM agencies WHERE slug = ?", (slug,)).fetchone()
            if held is None:
                assert best is not None
                conn.execute(
                    "INSERT INTO agencies (slug, name, first_seen) VALUES (?, ?, ?)",
                    (slug, best[0], now),
                )
            elif best is not None and best[0] != held[0]:
                conn.execute("UPDATE agencies SET name = ? WHERE slug = ?", (best[0], slug))
            members = conn.execute(
                "SELECT COALESCE(MAX(agency_pos), 0) FROM releases WHERE agency_slug = ?", (slug,)
            ).fetchone()[0]
            newest = conn.execute(
                "SELECT MAX(published) FROM releases WHERE agency_slug = ? AND present", (slug,)
            ).fetchone()[0]
            conn.execute(
                "UPDATE agencies SET members = ?, present = present + ?, newest = ?,"
                " updated = MAX(COALESCE(updated, 0), COALESCE(?, 0)) WHERE slug = ?",
                (members, t.present, newest, t.updated, slug),
            )
            conn.execute(
                "UPDATE agencies SET updated = NULL WHERE slug = ? AND updated = 0", (slug,)
            )
            if t.visible or held is None or (best is not None and best[0] != held[0]):
                changed.append(slug)
        for slug in sorted(self._retagged_agencies - set(changed)):
            changed.append(slug)  # its entries' categories changed
        topics_changed = self._settle_topics()
        conn.execute("DELETE FROM problems")
        conn.executemany(
            "INSERT INTO problems (path, line, message, severity) VALUES (?, ?, ?, ?)",
            [(p.path, p.line, p.message, _severity(p)) for p in problems],
        )
        (generation,) = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        generation = int(generation)
        if tally.written or changed or topics_changed:
            generation += 1
            conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
            conn.executemany(
                "UPDATE agencies SET generation = ? WHERE slug = ?",
                [(generation, slug) for slug in changed],
            )
            conn.executemany(
                "UPDATE topics SET generation = ? WHERE id = ?",
                [(generation, topic_id) for topic_id, _ in topics_changed],
            )
        return Settled(
            generation, tuple(sorted(changed)), tuple(sorted(key for _, key in topics_changed))
        )

    def _settle_topics(self) -> list[tuple[int, str]]:
        """Each touched topic's totals; the (id, key) of those whose documents changed."""
        conn = self._conn
        changed = []
        for topic_id, (present, moment, touched) in sorted(self._topic_tally.items()):
            if not touched:
                continue
            conn.execute(
                "UPDATE topics SET present = present + ?,"
                " members = (SELECT COALESCE(MAX(pos), 0) FROM release_topics WHERE topic = ?),"
                " updated = CASE WHEN ? > COALESCE(updated, 0) THEN ? ELSE updated END"
                " WHERE id = ?",
                (present, topic_id, moment, moment, topic_id),
            )
            kind, slug = conn.execute(
                "SELECT kind, slug FROM topics WHERE id = ?", (topic_id,)
            ).fetchone()
            changed.append((topic_id, f"{kind}/{slug}"))
        return changed

    def finish(self, report: SyncReport, listing_digest: str | None) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('listing', ?)",
            (listing_digest or "",),
        )
        _log_sync(self._conn, report)


def _copy_row(content: int, idx: int, copy: Copy) -> tuple[Any, ...]:
    text = draft_to_json(copy.draft)  # once: the text and its exact digest
    return (
        content, idx, copy.id, copy.draft.agency_slug, copy.draft.agency,
        bytes.fromhex(copy.content_hash), digest_of(text), copy.weight, text,
        topics_to_json(copy.topics),
    )  # fmt: skip


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


# -- migration -----------------------------------------------------------------------


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Schema 1 → this schema in the caller's transaction: text once, totals kept, FTS built.

    Every ID, number, first-seen, ``updated``, presence and departure is copied as
    it is; what v1 computed on every read (agency totals, which copy won) is
    computed once here, by v1's own rules. The next sync re-lists the seed
    directory (its digest is cleared) but reads no unchanged file.
    """
    for table in ("agencies", "releases", "files", "contents", "content_problems", "copies",
                  "problems", "meta", "syncs"):  # fmt: skip
        conn.execute(f"ALTER TABLE {table} RENAME TO v1_{table}")
    for index in ("releases_agency", "files_sha256", "content_problems_sha256", "copies_id"):
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    _create(conn)
    conn.execute("INSERT INTO meta SELECT key, value FROM v1_meta WHERE key != 'listing'")
    conn.execute("INSERT INTO syncs SELECT * FROM v1_syncs")
    # Parsed by an older parser, without topics: every file is read again at the next sync.
    conn.execute(
        "INSERT INTO contents (sha256, version) SELECT sha256, 'v1' FROM v1_contents ORDER BY rowid"
    )
    conn.execute(
        "INSERT INTO files (name, size, mtime_ns, inode, content)"
        " SELECT f.name, f.size, f.mtime_ns, f.inode, c.rowid FROM v1_files f"
        " JOIN contents c ON c.sha256 = f.sha256"
    )
    conn.execute(
        "INSERT INTO content_problems (content, line, message)"
        " SELECT c.rowid, p.line, p.message FROM v1_content_problems p"
        " JOIN contents c ON c.sha256 = p.sha256 ORDER BY p.rowid"
    )
    # v1's winners: the heaviest copy among the files that hold it.
    conn.execute(
        "CREATE TEMP TABLE v1_win AS SELECT id, sha256, idx FROM ("
        " SELECT c.id, c.sha256, c.idx, ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY c.weight"
        "  DESC, c.content_hash DESC, c.sha256 DESC, c.idx DESC) AS rank"
        " FROM v1_copies c WHERE c.sha256 IN (SELECT sha256 FROM v1_files)) WHERE rank = 1"
    )
    conn.execute("CREATE UNIQUE INDEX temp.v1_win_key ON v1_win(sha256, idx)")
    rows = conn.execute(
        "SELECT c.rowid, v.idx, v.id, v.agency_slug, v.agency, v.content_hash, v.weight, v.draft,"
        " w.id IS NOT NULL FROM v1_copies v JOIN contents c ON c.sha256 = v.sha256"
        " LEFT JOIN v1_win w ON w.sha256 = v.sha256 AND w.idx = v.idx"
    )
    conn.executemany(
        "INSERT INTO copies (content, idx, id, agency_slug, agency, content_hash, exact, weight,"
        " draft) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (r[0], r[1], r[2], r[3], r[4], bytes.fromhex(r[5]),
             exact_digest(draft_from_json(r[7])), r[6], None if r[8] else r[7])
            for r in rows.fetchall()
        ),
    )  # fmt: skip
    releases = conn.execute(
        "SELECT r.seq, r.id, r.agency_slug, r.draft, r.content_hash, r.first_seen, r.updated,"
        " r.present, r.left_at, c.rowid, w.idx,"
        " ROW_NUMBER() OVER (PARTITION BY r.agency_slug ORDER BY r.seq)"
        " FROM v1_releases r LEFT JOIN v1_win w ON w.id = r.id"
        " LEFT JOIN contents c ON c.sha256 = w.sha256 ORDER BY r.seq"
    )
    conn.executemany(
        f"INSERT INTO releases ({_RELEASE}, exact, agency_pos, revised, win_content, win_idx)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_v1_release(r) for r in releases.fetchall()),
    )
    conn.execute("INSERT INTO releases_fts (releases_fts) VALUES ('rebuild')")
    conn.execute(
        "INSERT INTO agency_names (slug, name, releases)"
        " SELECT agency_slug, agency, COUNT(*) FROM releases WHERE present"
        " GROUP BY agency_slug, agency"
    )
    (generation,) = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    conn.execute(
        "INSERT INTO agencies (slug, name, first_seen, members, present, updated, newest,"
        " generation) SELECT a.slug, a.name, a.first_seen,"
        " (SELECT COUNT(*) FROM releases r WHERE r.agency_slug = a.slug),"
        " (SELECT COUNT(*) FROM releases r WHERE r.agency_slug = a.slug AND r.present),"
        " (SELECT MAX(m) FROM (SELECT MAX(updated) AS m FROM releases r"
        "   WHERE r.agency_slug = a.slug AND r.present UNION ALL SELECT MAX(left_at)"
        "   FROM releases r WHERE r.agency_slug = a.slug)),"
        " (SELECT MAX(published) FROM releases r WHERE r.agency_slug = a.slug AND r.present),"
        " ? FROM v1_agencies a",
        (int(generation),),
    )
    conn.execute("INSERT INTO problems (path, line, message) SELECT path, line, message"
                 " FROM v1_problems WHERE path NOT IN (SELECT name FROM files)")  # fmt: skip
    for table in ("copies", "content_problems", "files", "releases", "agencies", "contents",
                  "problems", "meta", "syncs"):  # fmt: skip
        conn.execute(f"DROP TABLE v1_{table}")
    conn.execute("DROP TABLE temp.v1_win")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Schema 2 → 3 in the caller's transaction: new releases are indexed without a trigger.

    Nothing else differs: every row and the full-text index stay as they are.
    """
    conn.execute("DROP TRIGGER releases_fts_insert")


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """Schema 3 → 4 in the caller's transaction: topics only as memberships, ascending indexes.

    Every row keeps its values: a release's topics JSON said no more than its tagged
    memberships do. The table is rewritten once without the column; the pages it
    frees are reused by the releases that come next (``VACUUM`` returns them at once).
    """
    for name, columns in (
        ("releases_newest", "releases(updated, revised, seq)"),
        ("releases_agency_newest", "releases(agency_slug, updated, revised, seq)"),
        ("release_topics_newest", "release_topics(topic, updated, revised, seq)"),
    ):
        conn.execute(f"DROP INDEX {name}")
        conn.execute(f"CREATE INDEX {name} ON {columns} WHERE present")
    conn.execute("ALTER TABLE releases DROP COLUMN topics")


#: Older schemas migrated a step at a time (1 is rebuilt whole, by ``_migrate_v1``).
_STEPPED = (2, 3)


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Schema ``version`` (one of ``_STEPPED``) → this one, in the caller's transaction."""
    if version <= 2:
        _migrate_v2(conn)
    if version <= 3:
        _migrate_v3(conn)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _v1_release(row: Sequence[Any]) -> tuple[Any, ...]:
    seq, release_id, slug, text, content_hash, first_seen, updated, present, left_at = row[:9]
    draft = draft_from_json(text)
    return (
        seq, release_id, slug, draft.agency, draft.channel, draft.title, _iso(draft.date_line),
        _iso(draft.published), join_body(draft.paragraphs), bytes.fromhex(content_hash),
        first_seen, updated, present, left_at, exact_digest(draft), row[11],
        int(updated != first_seen), row[9], row[10],
    )  # fmt: skip


# -- moving the store elsewhere ------------------------------------------------------

#: Tables in the order another backend loads them (contents before what refers to them).
DUMP_TABLES = (
    "meta", "agencies", "agency_names", "contents", "files", "content_problems", "copies",
    "releases", "topics", "release_topics", "problems", "syncs",
)  # fmt: skip
#: Tables whose implicit rowid (their order) the other stores keep as ``id``.
_ROWID_TABLES = {"contents", "content_problems", "problems"}
#: Order of tables without a rowid.
_ORDER = {"agency_names": "slug, name", "copies": "content, idx", "release_topics": "topic, seq"}


def dump(store: SQLiteStore) -> Iterator[tuple[str, list[str], Iterator[Sequence[Any]]]]:
    """Every table's name, columns and rows, in insertion order, for another backend.

    One read transaction, held until the last table is consumed; rows are streamed,
    never held all at once.
    """
    with store._read() as conn:
        for table in DUMP_TABLES:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            if table in _ROWID_TABLES:
                columns = ["rowid", *(c for c in columns if c != "id")]
            cursor = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY {_ORDER.get(table, 'rowid')}"
            )
            named = ["id" if c == "rowid" else c for c in columns]
            if table == "releases":  # other stores keep a release's topics beside it
                yield table, [*named, "topics"], _with_topics(conn, cursor)
            else:
                yield table, named, _rows(cursor)


def _rows(cursor: sqlite3.Cursor) -> Iterator[Sequence[Any]]:
    while batch := cursor.fetchmany(1000):
        yield from batch


def _with_topics(conn: sqlite3.Connection, cursor: sqlite3.Cursor) -> Iterator[Sequence[Any]]:
    """Release rows (``seq`` first) with their topics as JSON, a batch at a time."""
    while batch := cursor.fetchmany(_BATCH_VARIABLES):
        topics = _topics_of(conn, [row[0] for row in batch])
        for row in batch:
            yield (*row, topics_to_json(topics.get(row[0], ())))
