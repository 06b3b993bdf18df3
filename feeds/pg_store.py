"""The PostgreSQL store: the shared backend of :mod:`feeds.store` for several service nodes,
and the only module here that runs PostgreSQL SQL.

Same tables, numbers, times and answers as :mod:`feeds.sqlite_store` (the
reference), so the same seeds and sync times render the same bytes. Where the
two databases differ, this module makes PostgreSQL behave like the reference:
text columns that order or compare use the ``"C"`` collation (byte order, as
SQLite compares), and the full-text index is a ``tsvector`` of the words
:func:`feeds.query.tokens` finds, written with explicit positions and queried
with explicit ``tsquery`` terms, so that matching is the documented rule with no
PostgreSQL parser or dictionary in between.

Coordination between nodes goes through the database: one sync at a time
across every node holds a session advisory lock (a node that dies drops its
connection and with it the lock, and its transaction rolls back); each sync is
one transaction; each document is read in one ``REPEATABLE READ`` snapshot;
and "has anything changed?" is one primary-key read of the generation row.

Connections are opened lazily, one per thread and process (a gunicorn worker
forked from a process that had connections opens its own); a broken one is
replaced on next use, so the service recovers by itself when the database is
back. While the database is unreachable, :meth:`PgStore.generation` answers the
last generation it saw, so caches above keep serving what they hold; every
question that needs the database raises :class:`~feeds.errors.StoreUnavailable`.

Schema version 2 (the first PostgreSQL version), kept in ``meta``; later
versions add a step to :data:`MIGRATIONS`.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from feeds.config import mask_url
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
from feeds.query import Filters, tokens
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
    from_epoch,
    join_body,
    report_to_json,
    split_body,
    to_epoch,
    topics_from_json,
    topics_to_json,
)

log = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

SCHEMA_VERSION = 2
#: Seconds to wait for the server when connecting, unless the URL says otherwise.
CONNECT_TIMEOUT = 5
#: Advisory lock keys (per database): the sync lock, also taken while the schema is set up.
SYNC_LOCK_KEY = int.from_bytes(hashlib.sha256(b"feeds.sync").digest()[:8], "big", signed=True)
#: tsvector positions stop at this (PostgreSQL's limit); later words share it.
MAX_POSITION = 16383
#: Longest lexeme PostgreSQL indexes, in bytes; a longer word is indexed by its start.
MAX_LEXEME_BYTES = 2046

# SQLSTATE classes and codes by kind and reason (never the message text).
_SQLSTATE_KINDS: dict[str, tuple[type[StoreError], str]] = {
    "53100": (StoreFull, "disk full"),
    "53300": (StoreBusy, "too many connections"),
    "40001": (StoreBusy, "busy"),
    "40P01": (StoreBusy, "busy"),
    "55P03": (StoreBusy, "busy"),
    "57014": (StoreBusy, "busy"),
    "57P01": (StoreUnavailable, "server shut down"),
    "57P02": (StoreUnavailable, "server shut down"),
    "57P03": (StoreUnavailable, "server not accepting connections"),
    "3D000": (StoreUnavailable, "no such database"),
    "42501": (StoreUnavailable, "permission denied"),
    "25006": (StoreUnavailable, "read-only"),
    "XX001": (StoreCorrupt, "corrupt"),
    "XX002": (StoreCorrupt, "corrupt"),
}
_SQLSTATE_CLASSES: dict[str, tuple[type[StoreError], str]] = {
    "08": (StoreUnavailable, "connection lost"),
    "28": (StoreUnavailable, "authentication failed"),
    "53": (StoreError, "insufficient resources"),
    "58": (StoreIOError, "I/O error"),
}


def classify(exc: psycopg.Error, shown: str) -> StoreError:
    """The project's error for a psycopg error about the store ``shown`` (a masked URL).

    By SQLSTATE, never by message text; a connection that failed or broke without
    one is :class:`StoreUnavailable`. The detail never carries a password.
    """
    state = exc.sqlstate or ""
    detail = _first_line(str(exc))
    if state in _SQLSTATE_KINDS:
        kind, reason = _SQLSTATE_KINDS[state]
    elif state[:2] in _SQLSTATE_CLASSES:
        kind, reason = _SQLSTATE_CLASSES[state[:2]]
    elif isinstance(exc, psycopg.OperationalError):
        kind, reason = StoreUnavailable, "cannot connect"
    else:
        kind, reason = StoreError, "database error"
    return kind(reason, shown, f"{detail} ({state})" if state else detail)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else "no detail"


# -- the schema ----------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE agencies (
    slug TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    first_seen BIGINT NOT NULL,
    members BIGINT NOT NULL DEFAULT 0,
    present BIGINT NOT NULL DEFAULT 0,
    updated BIGINT,
    newest TEXT COLLATE "C",
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE agency_names (
    slug TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    releases BIGINT NOT NULL,
    PRIMARY KEY (slug, name)
);
CREATE TABLE releases (
    seq BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    agency_slug TEXT COLLATE "C" NOT NULL,
    agency_pos BIGINT NOT NULL,
    agency TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C",
    title TEXT COLLATE "C" NOT NULL,
    date_line TEXT COLLATE "C",
    published TEXT COLLATE "C",
    body TEXT COLLATE "C" NOT NULL,
    content_hash BYTEA NOT NULL,
    exact BYTEA NOT NULL,
    first_seen BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    revised INTEGER NOT NULL,
    present BOOLEAN NOT NULL,
    left_at BIGINT,
    win_content BIGINT,
    win_idx INTEGER,
    topics TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    words TSVECTOR NOT NULL
);
CREATE UNIQUE INDEX releases_agency_pos ON releases(agency_slug, agency_pos);
CREATE INDEX releases_agency_seq ON releases(agency_slug, seq, agency_pos);
CREATE INDEX releases_newest ON releases(updated DESC, revised DESC, seq DESC) WHERE present;
CREATE INDEX releases_agency_newest
    ON releases(agency_slug, updated DESC, revised DESC, seq DESC) WHERE present;
CREATE INDEX releases_agency_published ON releases(agency_slug, published) WHERE present;
CREATE INDEX releases_words ON releases USING GIN (words) WITH (fastupdate = off);
CREATE TABLE topics (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    slug TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    first_seen BIGINT NOT NULL,
    members BIGINT NOT NULL DEFAULT 0,
    present BIGINT NOT NULL DEFAULT 0,
    updated BIGINT,
    generation BIGINT NOT NULL DEFAULT 0,
    UNIQUE (kind, slug)
);
CREATE TABLE release_topics (
    topic BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    pos BIGINT NOT NULL,
    tagged BOOLEAN NOT NULL,
    present BOOLEAN NOT NULL,
    updated BIGINT NOT NULL,
    revised INTEGER NOT NULL,
    left_at BIGINT,
    PRIMARY KEY (topic, seq)
);
CREATE UNIQUE INDEX release_topics_pos ON release_topics(topic, pos);
CREATE INDEX release_topics_seq ON release_topics(seq);
CREATE INDEX release_topics_newest
    ON release_topics(topic, updated DESC, revised DESC, seq DESC) WHERE present;
CREATE TABLE contents (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    sha256 TEXT COLLATE "C" NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    UNIQUE (sha256, version)
);
CREATE TABLE files (
    name TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    inode NUMERIC(20) NOT NULL,
    content BIGINT NOT NULL
);
CREATE INDEX files_content ON files(content);
CREATE TABLE content_problems (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    content BIGINT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    line BIGINT NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL DEFAULT 'problem'
);
CREATE INDEX content_problems_content ON content_problems(content);
CREATE TABLE copies (
    content BIGINT NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    agency_slug TEXT COLLATE "C" NOT NULL,
    agency TEXT COLLATE "C" NOT NULL,
    content_hash BYTEA NOT NULL,
    exact BYTEA NOT NULL,
    weight BIGINT NOT NULL,
    draft TEXT COLLATE "C",
    topics TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    PRIMARY KEY (content, idx)
);
CREATE INDEX copies_id ON copies(id);
CREATE TABLE problems (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    path TEXT COLLATE "C" NOT NULL,
    line BIGINT NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL DEFAULT 'problem'
);
CREATE TABLE syncs (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    started BIGINT NOT NULL,
    finished BIGINT NOT NULL,
    ok BOOLEAN NOT NULL,
    report TEXT NOT NULL
)
"""

TABLES = tuple(line.split()[2] for line in _SCHEMA.splitlines() if line.startswith("CREATE TABLE"))

#: Schema steps: ``MIGRATIONS[n]`` turns version ``n`` into ``n + 1`` inside the
#: caller's transaction, keeping every ID, number, first-seen and ``updated``.
#: Version 2 is the first PostgreSQL schema, so there is none yet.
MIGRATIONS: dict[int, Callable[[Conn], None]] = {}

_RELEASE = (
    "seq, id, agency_slug, agency, channel, title, date_line, published, body, "
    "content_hash, first_seen, updated, present, left_at, topics"
)
#: The same columns for a topic's member: presence and departure are the membership's.
_MEMBER = (
    "r.seq, r.id, r.agency_slug, r.agency, r.channel, r.title, r.date_line, r.published,"
    " r.body, r.content_hash, r.first_seen, r.updated, t.present, t.left_at, r.topics"
)
_TOPIC_NEWEST = "ORDER BY t.updated DESC, t.revised DESC, t.seq DESC"
_NEWEST = "ORDER BY updated DESC, revised DESC, seq DESC"
#: Releases fetched per query when a sync walks its candidates.
_BATCH = 500
#: Columns of a sync's listing: a file by name, with the fingerprint seen.
_LISTED = 'name TEXT COLLATE "C" PRIMARY KEY, size BIGINT, mtime_ns BIGINT, inode NUMERIC(20)'
#: Most releases a ``q`` filter may match for the full-text index alone to answer it
#: (their keys sorted here); a word in more is answered by walking the newest-first
#: index, which meets the first ``limit`` matches sooner.
_RARE = 2000
#: Releases a sync must touch to refresh the planner's statistics itself.
_ANALYZE_AFTER = 1000


def _release(row: Sequence[Any]) -> Release:
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
        topics=topics_from_json(row[14]),
    )


# -- the full-text rule ----------------------------------------------------------------


def _lexeme(word: str) -> str:
    """A word as a quoted tsvector/tsquery lexeme (cut to the longest PostgreSQL keeps)."""
    raw = word.encode("utf-8")
    if len(raw) > MAX_LEXEME_BYTES:
        word = raw[:MAX_LEXEME_BYTES].decode("utf-8", "ignore")
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def words_vector(title: str, paragraphs: Sequence[str]) -> str:
    """The tsvector literal of a release's words, with positions.

    Title words, then (after a gap, so that no phrase runs from the title into
    the body, as none does across SQLite's two FTS columns) the body's words.
    """
    positions: dict[str, list[int]] = {}
    position = 0
    for field in (title, join_body(paragraphs)):
        position += 1  # the gap
        for word in tokens(field):
            position += 1
            positions.setdefault(word, []).append(min(position, MAX_POSITION))
    # A lexeme keeps at most 256 positions; the first ones are what phrases need most.
    return " ".join(
        f"{_lexeme(word)}:{','.join(map(str, sorted(set(at))[:256]))}"
        for word, at in positions.items()
    )


def match_query(words: Sequence[str], join: str = " & ") -> str:
    """A tsquery in which each word must appear, as a word or the start of one.

    A word with inner punctuation (``e-commerce``) is a phrase of its parts,
    each a whole word but the last, which may be a prefix (as in
    :func:`feeds.sqlite_store.match_expression`).
    """
    terms = []
    for word in words:
        parts = [_lexeme(part) for part in tokens(word)]
        parts[-1] += ":*"
        terms.append("(" + " <-> ".join(parts) + ")")
    return join.join(terms)


# -- the store -------------------------------------------------------------------------

#: Where a sync announces a new generation (``pg_notify`` in its transaction: sent when
#: it commits, to every node's listening connection).
CHANNEL = "feeds_generation"
#: Seconds between a listening process's reads of the generation row: the durable path
#: behind notifications, which reach only connections listening when they are sent.
WATCH_POLL = 1.0


class _Watch:
    """The generation as a thread of this process last read it, woken by notifications.

    The thread listens on :data:`CHANNEL` and reads the generation row after each
    notification and every :data:`WATCH_POLL` seconds, so a request learns whether
    anything changed from memory instead of a round trip. ``value`` is None whenever
    it may be stale: before the first read, while the connection is down (callers
    then ask the database themselves), and from a commit of this process until the
    thread has read past it.
    """

    def __init__(self, url: str, connect_timeout: int, shown: str) -> None:
        self.value: int | None = None
        self.pid = os.getpid()
        self._url, self._timeout, self._shown = url, connect_timeout, shown
        self._lock = threading.Lock()
        self._commits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="feeds-generation-watch", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        """This process committed a sync: what was read before it may be stale."""
        with self._lock:
            self._commits += 1
            self.value = None

    def stop(self) -> None:
        self._stop.set()

    def _publish(self, conn: Conn) -> None:
        with self._lock:
            commits = self._commits
        (value,) = _row(conn.execute("SELECT value FROM meta WHERE key = 'generation'"))
        with self._lock:
            if commits == self._commits:  # read after this process's last commit
                self.value = int(value)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, connect_timeout=self._timeout
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Read after LISTEN: no commit from here on goes unnoticed.
                    self._publish(conn)
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=WATCH_POLL, stop_after=1):
                            pass
                        self._publish(conn)
            except (psycopg.Error, OSError) as exc:
                with self._lock:
                    was_live, self.value = self.value is not None, None
                if was_live:  # once per outage; requests ask the database meanwhile
                    log.info("generation watch interrupted store=%s error=%s", self._shown, exc)
                self._stop.wait(WATCH_POLL)
        with self._lock:
            self.value = None


#: Connections a forked child inherited: never used (their sockets are the parent's) and
#: never closed (closing would end the parent's sessions), only kept from the collector.
_INHERITED: list[Conn] = []


class PgStore:
    """A PostgreSQL database; one connection per thread, opened on first use."""

    def __init__(
        self, url: str, *, connect_timeout: int = CONNECT_TIMEOUT, listen: bool = False
    ) -> None:
        """``listen``: learn new generations from notifications (see :class:`_Watch`)
        rather than by a round trip per :meth:`generation` (for serving processes)."""
        self.url = url
        self.shown = mask_url(url)
        self.connect_timeout = connect_timeout
        self.listen = listen
        # At most one watch, in a list the finalizer below can stop without holding self.
        self._watches: list[_Watch] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: dict[int, tuple[threading.Thread, Conn]] = {}
        self._pid = os.getpid()
        self._generation: int | None = None
        self._unreachable = False
        # Connections close with the store, not one by one at interpreter exit.
        weakref.finalize(self, _close_all, self._conns)
        weakref.finalize(self, _stop_watches, self._watches)

    def __repr__(self) -> str:
        return f"PgStore({self.shown!r})"

    # -- connections -------------------------------------------------------------

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """The store's error boundary: a driver error leaves as the project's, chained."""
        try:
            yield
        except psycopg.Error as exc:
            raise classify(exc, self.shown) from exc

    def _connect(self) -> Conn:
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = self.connect_timeout
        # Times are epoch seconds and text compares by bytes ("C"): nothing read here
        # depends on the server's time zone or locale.
        return psycopg.connect(self.url, **kwargs)

    @property
    def _conn(self) -> Conn:
        if self._pid != os.getpid():  # forked: the parent's connections are not ours
            with self._lock:
                _INHERITED.extend(conn for _, conn in self._conns.values())
                self._conns.clear()
                self._local = threading.local()
                self._pid = os.getpid()
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.broken and not conn.closed:
            return conn
        if conn is not None:
            self._forget(conn)
        conn = self._connect()
        self._local.conn = conn
        with self._lock:
            self._sweep()
            self._conns[threading.get_ident()] = (threading.current_thread(), conn)
        return conn

    def _forget(self, conn: Conn) -> None:
        self._local.conn = None
        with self._lock:
            self._conns.pop(threading.get_ident(), None)
        conn.close()

    def _sweep(self) -> None:
        """Close the connections of threads that have ended (under ``self._lock``)."""
        for ident, (thread, conn) in list(self._conns.items()):
            if not thread.is_alive():
                del self._conns[ident]
                conn.close()

    def close(self) -> None:
        """Close every connection this store opened in this process."""
        if self._pid == os.getpid():
            with self._lock:
                _close_all(self._conns)
        _stop_watches(self._watches)
        self._local = threading.local()

    def _watched(self) -> int | None:
        """The generation the watch holds, starting it in this process on first use."""
        if not self.listen:
            return None
        with self._lock:
            if self._watches and self._watches[0].pid != os.getpid():
                self._watches.clear()  # forked: the parent's thread did not come along
            if not self._watches:
                self._watches.append(_Watch(self.url, self.connect_timeout, self.shown))
            return self._watches[0].value

    def _active(self) -> Conn | None:
        """This thread's connection if it is inside a transaction (a sync or a read)."""
        conn: Conn | None = getattr(self._local, "active", None)
        return conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Conn]:
        active = self._active()
        if active is not None:  # inside a sync or an export: it sees its own state
            yield active
            return
        with self._translated():
            conn = self._conn
            conn.execute(begin)
            self._local.active = conn
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                _roll_back(conn, exc)
                raise
            finally:
                self._local.active = None

    def _read(self) -> AbstractContextManager[Conn]:
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _write(self) -> AbstractContextManager[Conn]:
        return self._transaction("BEGIN ISOLATION LEVEL READ COMMITTED")

    def _one(self, query: str, params: Sequence[Any] = ()) -> Any:
        """One row of one statement, in this thread's transaction if there is one.

        Outside one, the statement is its own snapshot: one round trip, no BEGIN/COMMIT.
        """
        with self._translated():
            conn = self._active() or self._conn
            return _row(conn.execute(query, params))

    # -- schema ------------------------------------------------------------------

    @contextmanager
    def sync_lock(self, blocking: bool = True) -> Iterator[bool]:
        """A session advisory lock, so one node and process of the cluster syncs at a time.

        Held by this thread's connection: if the process dies, the server drops the
        connection and the lock with it.
        """
        with self._translated():
            conn = self._conn
            if blocking:
                conn.execute("SELECT pg_advisory_lock(%s)", (SYNC_LOCK_KEY,))
                acquired = True
            else:
                row = _row(conn.execute("SELECT pg_try_advisory_lock(%s)", (SYNC_LOCK_KEY,)))
                acquired = bool(row and row[0])
        try:
            yield acquired
        finally:
            if acquired and not conn.broken and not conn.closed:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SYNC_LOCK_KEY,))
                except psycopg.Error as exc:  # gone with its connection anyway
                    log.warning("sync lock release failed store=%s error=%s", self.shown, exc)

    def initialize(self, now: datetime) -> None:
        """Create the schema in an empty database, or check (and migrate) an existing one.

        Under the sync lock, so nodes starting together create it once. A database that
        cannot be reached, read or written raises its :class:`StoreError` at once: a
        shared database is never moved aside or rebuilt. A schema newer than this
        program's is an error.
        """
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK_KEY,))
            if _row(conn.execute("SELECT to_regclass('meta')"))[0] is None:
                others = _tables(conn)
                if others:
                    raise StoreError(
                        "not a feeds database",
                        self.shown,
                        f"it holds other tables ({', '.join(sorted(others)[:5])}); "
                        "give feeds a database of its own",
                    )
                _create(conn)
                # Generations start from the clock, so a rebuilt store never repeats one
                # that another process may still have cached.
                conn.execute(
                    "INSERT INTO meta VALUES ('created', %s), ('generation', %s)",
                    (str(to_epoch(now)), str(int(now.timestamp() * 1000))),
                )
                log.info("store created database=%s schema=%d", self.shown, SCHEMA_VERSION)
                return
            row = _row(conn.execute("SELECT value FROM meta WHERE key = 'schema'"))
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    "newer schema",
                    self.shown,
                    f"schema version {version} is newer than this program's "
                    f"({SCHEMA_VERSION}); upgrade feeds",
                )
            while version < SCHEMA_VERSION:
                if version not in MIGRATIONS:
                    raise StoreCorrupt("corrupt", self.shown, f"unknown schema version {version}")
                MIGRATIONS[version](conn)
                log.info(
                    "store migrated database=%s schema=%d->%d", self.shown, version, version + 1
                )
                version += 1
                _set_meta(conn, "schema", str(version))
            missing = set(TABLES) - _tables(conn)
            if missing:
                raise StoreCorrupt(
                    "corrupt", self.shown, f"tables missing: {', '.join(sorted(missing))}"
                )
            # A database this role cannot write (a standby, read-only grants) fails now,
            # at start, rather than at every sync.
            conn.execute("UPDATE meta SET value = value WHERE key = 'created'")

    def is_empty(self) -> bool:
        """Whether the database holds no table at all (a target for ``migrate-store``)."""
        with self._read() as conn:
            return not _tables(conn)

    # -- reads -------------------------------------------------------------------

    def generation(self) -> int:
        """Cheap "has anything changed?" question for caches: one primary-key read.

        While the database cannot be reached, the last generation this process saw,
        so that what caches hold keeps being served; anything else needs the database
        and fails with :class:`StoreUnavailable`.
        """
        watched = self._watched()
        if watched is not None:
            self._generation = watched
            return watched
        for attempt in (1, 2):
            try:
                row = self._one("SELECT value FROM meta WHERE key = 'generation'")
            except StoreUnavailable:
                held: Conn | None = getattr(self._local, "conn", None)
                if attempt == 1 and self._active() is None and held is not None and held.broken:
                    continue  # a connection broken by a restart: one retry on a new one
                if self._generation is None:
                    raise
                if not self._unreachable:  # once per outage, not once per request
                    self._unreachable = True
                    log.warning("store unreachable, serving cached documents store=%s", self.shown)
                return self._generation
            if self._unreachable:
                self._unreachable = False
                log.warning("store reachable again store=%s", self.shown)
            self._generation = int(row[0])
            return self._generation
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Reader]:
        with self._read() as conn:
            yield _Reader(conn)

    def problems(self) -> list[Problem]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT path, line, message, severity FROM problems ORDER BY id"
            ).fetchall()
            rows += conn.execute(
                "SELECT f.name, p.line, p.message, p.severity FROM files f"
                " JOIN content_problems p ON p.content = f.content ORDER BY f.name, p.id"
            ).fetchall()
        return [_problem(r) for r in rows]

    def last_syncs(self, limit: int = 1) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT report FROM syncs ORDER BY id DESC LIMIT %s", (limit,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def last_good_sync(self) -> dict[str, Any] | None:
        row = self._one("SELECT report FROM syncs WHERE ok ORDER BY id DESC LIMIT 1")
        return json.loads(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        with self._read() as conn:
            present, members, agencies = _row(
                conn.execute(
                    "SELECT COALESCE(SUM(present), 0), COALESCE(SUM(members), 0), COUNT(*)"
                    " FROM agencies"
                )
            )
            files = _row(conn.execute("SELECT COUNT(*) FROM files"))[0]
        return {
            "releases": int(present),
            "releases_gone": int(members - present),
            "agencies": int(agencies),
            "files": int(files),
        }

    # -- writes ------------------------------------------------------------------

    @contextmanager
    def sync_session(self, now: datetime, version: str) -> Iterator[SyncSession]:
        try:
            with self._write() as conn:
                yield _Session(conn, to_epoch(now), version)
        finally:
            # Committed or not, this process does not trust what its watch read before.
            for watch in self._watches:
                watch.committed()

    def listing_digest(self) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = 'listing'")
        return str(row[0]) if row and row[0] else None

    def record_unchanged(self, report: SyncReport) -> None:
        with self._write() as conn:
            _log_sync(conn, report)

    def record_failure(self, report: SyncReport) -> None:
        with self._write() as conn:
            _log_sync(conn, report)

    # -- moving a store here -----------------------------------------------------

    def load(self, tables: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> None:
        """Fill an empty database with another store's rows, in one transaction.

        ``tables`` gives each table's name, columns and rows as the SQLite store
        holds them (:func:`feeds.sqlite_store.dump`); the full-text words are
        computed here. Refuses a database that holds any table.
        """
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SYNC_LOCK_KEY,))
            found = _tables(conn)
            if found:
                raise StoreError(
                    "not empty",
                    self.shown,
                    f"the target holds tables ({', '.join(sorted(found)[:5])}); "
                    "give an empty database",
                )
            _create(conn)
            for table, columns, rows in tables:
                _copy_rows(conn, table, columns, rows)
            for table in ("topics", "contents", "content_problems", "problems", "syncs"):
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'),"
                        " COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    ).format(t=table, table=sql.Identifier(table))
                )


def _row(cursor: psycopg.Cursor[Any]) -> Any:
    """The next row of ``cursor`` (None if there is none), as the queries above expect it."""
    return cursor.fetchone()


def _stop_watches(watches: list[_Watch]) -> None:
    for watch in watches:
        watch.stop()
    watches.clear()


def _close_all(conns: dict[int, tuple[threading.Thread, Conn]]) -> None:
    for _, conn in conns.values():
        conn.close()
    conns.clear()


def _roll_back(conn: Conn, cause: BaseException) -> None:
    """End a failed transaction; a failed ROLLBACK is noted on ``cause``, never raised instead."""
    if conn.broken or conn.closed:
        return
    try:
        conn.execute("ROLLBACK")
    except psycopg.Error as failed:
        cause.add_note(f"ROLLBACK failed too: {failed}")


def _tables(conn: Conn) -> set[str]:
    """Tables in the schema this connection creates tables in."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall()
    return {r[0] for r in rows}


def _create(conn: Conn) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('schema', %s)", (str(SCHEMA_VERSION),))


def _set_meta(conn: Conn, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (%s, %s)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _problem(row: Sequence[Any]) -> Problem:
    return Problem(row[0], row[1], row[2], "warning" if row[3] == "warning" else "problem")


def _log_sync(conn: Conn, report: SyncReport) -> None:
    conn.execute(
        "INSERT INTO syncs (started, finished, ok, report) VALUES (%s, %s, %s, %s)",
        (to_epoch(report.started), to_epoch(report.finished), report.ok,
         report_to_json(report)),
    )  # fmt: skip
    conn.execute("DELETE FROM syncs WHERE id <= (SELECT MAX(id) FROM syncs) - %s", (SYNC_LOG_ROWS,))


#: Columns whose SQLite integers are PostgreSQL booleans.
_BOOLEANS = {
    ("releases", "present"),
    ("syncs", "ok"),
    ("release_topics", "tagged"),
    ("release_topics", "present"),
}


def _copy_rows(
    conn: Conn, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    names = list(columns)
    flags = [(table, c) in _BOOLEANS for c in names]
    release = table == "releases"
    if release:
        title_at, body_at = names.index("title"), names.index("body")
        names.append("words")
    statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.Identifier(table), columns=sql.SQL(", ").join(map(sql.Identifier, names))
    )
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            values = [
                bool(v) if flag and v is not None else v for v, flag in zip(row, flags, strict=True)
            ]
            values = [bytes(v) if isinstance(v, memoryview) else v for v in values]
            if release:
                values.append(words_vector(row[title_at], split_body(row[body_at])))
            copy.write_row(values)


# -- the read side -------------------------------------------------------------------


class _Reader:
    """Queries over one read snapshot; each touches only the rows it returns."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    def state(self) -> State:
        conn = self._conn
        meta = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('generation', 'created')"
            ).fetchall()
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
            ).fetchall()
        )
        releases = _row(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases"))[0]
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
            ).fetchall()
        )
        return State(
            int(meta["generation"]), from_epoch(int(meta["created"])), agencies, releases, topics
        )

    def generation(self) -> int:
        (value,) = _row(self._conn.execute("SELECT value FROM meta WHERE key = 'generation'"))
        return int(value)

    def _select(self, where: str, params: Sequence[Any], tail: str = "") -> list[Release]:
        rows = self._conn.execute(
            f"SELECT {_RELEASE} FROM releases WHERE {where} {tail}", params
        ).fetchall()
        return [_release(r) for r in rows]

    def _count_upto(self, slugs: tuple[str, ...], seq: int) -> int:
        """How many members of the feed have a number at most ``seq``."""
        total = 0
        for slug in slugs:
            row = _row(
                self._conn.execute(
                    "SELECT agency_pos FROM releases WHERE agency_slug = %s AND seq <= %s"
                    " ORDER BY seq DESC LIMIT 1",
                    (slug, seq),
                )
            )
            total += row[0] if row else 0
        return total

    def _seq_at(self, slugs: tuple[str, ...], position: int) -> int:
        """The release number of a multi-agency feed's member at ``position`` (binary search)."""
        if position <= 0:
            return 0
        low = 1
        high = _row(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM releases"))[0]
        while low < high:
            middle = (low + high) // 2
            if self._count_upto(slugs, middle) >= position:
                high = middle
            else:
                low = middle + 1
        return int(low)

    def members(self, slugs: tuple[str, ...] | None, first: int, last: int) -> list[Release]:
        if slugs is None:
            return self._select("seq BETWEEN %s AND %s", (first, last), "ORDER BY seq")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = %s AND agency_pos BETWEEN %s AND %s",
                (slugs[0], first, last),
                "ORDER BY agency_pos",
            )
        low, high = self._seq_at(slugs, first), self._seq_at(slugs, last)
        return self._select(
            "agency_slug = ANY(%s) AND seq BETWEEN %s AND %s",
            (list(slugs), low, high),
            "ORDER BY seq",
        )

    def present_after(self, slugs: tuple[str, ...] | None, position: int) -> list[Release]:
        if slugs is None:
            return self._select("seq > %s AND present", (position,), "ORDER BY seq")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = %s AND agency_pos > %s AND present",
                (slugs[0], position),
                "ORDER BY agency_pos",
            )
        after = self._seq_at(slugs, position)
        return self._select(
            "agency_slug = ANY(%s) AND seq > %s AND present",
            (list(slugs), after),
            "ORDER BY seq",
        )

    def newest(self, slugs: tuple[str, ...] | None, limit: int, offset: int = 0) -> list[Release]:
        if slugs is None:
            return self._select("present", (limit, offset), f"{_NEWEST} LIMIT %s OFFSET %s")
        if len(slugs) == 1:
            return self._select(
                "agency_slug = %s AND present",
                (slugs[0], limit, offset),
                f"{_NEWEST} LIMIT %s OFFSET %s",
            )
        # Each agency's newest from its own index, merged: never a sort of every member.
        runs = [self.newest((slug,), limit + offset) for slug in slugs]
        merged = heapq.merge(*runs, key=_newest_key)
        return list(merged)[offset : offset + limit]

    def search(self, slugs: tuple[str, ...] | None, filters: Filters, limit: int) -> list[Release]:
        where, params = _search_terms(filters, "words", "updated")
        if slugs is not None:
            where.append("agency_slug = ANY(%s)")
            params.append(list(slugs))
        rare = self._rare_matches(filters)
        if rare is not None:
            keys = self._conn.execute(
                "SELECT seq, updated, revised FROM releases"
                f" WHERE {' AND '.join(['seq = ANY(%s)', 'present', *where])}",
                (rare, *params),
            ).fetchall()
            return self._select("seq = ANY(%s)", (_newest_seqs(keys, limit),), _NEWEST)
        params.append(limit)
        return self._select(" AND ".join(["present", *where]), params, f"{_NEWEST} LIMIT %s")

    def _rare_matches(self, filters: Filters) -> list[int] | None:
        """The numbers of the releases ``q`` matches, if at most :data:`_RARE`; else None.

        The planner cannot tell how many releases a prefix query matches (it guesses
        2 %), so it walked the newest-first index for a word in ten releases too: 190 ms
        at 100,000. Asked of the GIN index alone (a bitmap scan), the answer costs what
        it holds, and is cut at :data:`_RARE` + 1.
        """
        if not filters.q:
            return None
        conn = self._conn
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_seqscan = off")
        try:
            rows = conn.execute(
                "SELECT seq FROM releases WHERE words @@ %s::tsquery LIMIT %s",
                (match_query(filters.q), _RARE + 1),
            ).fetchall()
        finally:
            # Back to the session's own default (a value an operator configured stays).
            conn.execute("SET LOCAL enable_indexscan TO DEFAULT")
            conn.execute("SET LOCAL enable_seqscan TO DEFAULT")
        return [r[0] for r in rows] if len(rows) <= _RARE else None

    def release(self, uuid: str) -> Release | None:
        found = self._select("id = %s", (f"urn:uuid:{uuid}",))
        return found[0] if found else None

    def uuids(self) -> Iterator[str]:
        after = 0
        while True:
            rows = self._conn.execute(
                "SELECT seq, id FROM releases WHERE seq > %s ORDER BY seq LIMIT 1000", (after,)
            ).fetchall()
            if not rows:
                return
            for _, release_id in rows:
                yield release_id.removeprefix("urn:uuid:")
            after = rows[-1][0]

    # -- topic feeds ---------------------------------------------------------------

    def _topic(self, topic: str) -> int:
        kind, _, slug = topic.partition("/")
        row = _row(
            self._conn.execute("SELECT id FROM topics WHERE kind = %s AND slug = %s", (kind, slug))
        )
        return int(row[0]) if row else 0

    def _members_of(self, where: str, params: Sequence[Any], tail: str) -> list[Release]:
        rows = self._conn.execute(
            f"SELECT {_MEMBER} FROM release_topics t JOIN releases r ON r.seq = t.seq"
            f" WHERE {where} {tail}",
            params,
        ).fetchall()
        return [_release(r) for r in rows]

    def topic_members(self, topic: str, first: int, last: int) -> list[Release]:
        return self._members_of(
            "t.topic = %s AND t.pos BETWEEN %s AND %s",
            (self._topic(topic), first, last),
            "ORDER BY t.pos",
        )

    def topic_present_after(self, topic: str, position: int) -> list[Release]:
        return self._members_of(
            "t.topic = %s AND t.pos > %s AND t.present",
            (self._topic(topic), position),
            "ORDER BY t.pos",
        )

    def topic_newest(self, topic: str, limit: int, offset: int = 0) -> list[Release]:
        return self._members_of(
            "t.topic = %s AND t.present",
            (self._topic(topic), limit, offset),
            f"{_TOPIC_NEWEST} LIMIT %s OFFSET %s",
        )

    def topic_search(self, topic: str, filters: Filters, limit: int) -> list[Release]:
        where, params = _search_terms(filters, "r.words", "t.updated")
        rare = self._rare_matches(filters)
        if rare is not None:
            topic_id = self._topic(topic)
            keys = self._conn.execute(
                "SELECT t.seq, t.updated, t.revised FROM release_topics t"
                " JOIN releases r ON r.seq = t.seq WHERE "
                + " AND ".join(["t.topic = %s", "t.seq = ANY(%s)", "t.present", *where]),
                (topic_id, rare, *params),
            ).fetchall()
            return self._members_of(
                "t.topic = %s AND t.seq = ANY(%s)",
                (topic_id, _newest_seqs(keys, limit)),
                _TOPIC_NEWEST,
            )
        return self._members_of(
            " AND ".join(["t.topic = %s", "t.present", *where]),
            (self._topic(topic), *params, limit),
            f"{_TOPIC_NEWEST} LIMIT %s",
        )


def _search_terms(filters: Filters, words: str, updated: str) -> tuple[list[str], list[Any]]:
    """WHERE terms and parameters for ``q``, ``exclude`` and ``since`` (full-text index)."""
    where: list[str] = []
    params: list[Any] = []
    if filters.q:
        where.append(f"{words} @@ %s::tsquery")
        params.append(match_query(filters.q))
    if filters.exclude:
        where.append(f"NOT {words} @@ %s::tsquery")
        params.append(match_query(filters.exclude, " | "))
    if filters.since is not None:
        where.append(f"{updated} > %s")
        # Stored times are whole seconds: after s means after its whole second.
        params.append(math.floor(filters.since.timestamp()))
    return where, params


def _newest_seqs(keys: Sequence[tuple[int, int, int]], limit: int) -> list[int]:
    """The numbers of the ``limit`` newest of (seq, updated, revised) keys, newest first."""
    ranked = heapq.nsmallest(limit, keys, key=lambda k: (-k[1], -k[2], -k[0]))
    return [k[0] for k in ranked]


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

    def __init__(self, conn: Conn, now: int, version: str) -> None:
        self._conn = conn
        self.now = now
        self.version = version
        self._added = 0  # copies written by this sync
        # Topic bookkeeping of this sync: ids and names by key, next feed numbers, and
        # per topic the change in present members, the latest moment written and
        # whether its documents changed.
        self._topic_ids: dict[tuple[str, str], tuple[int, str]] = {}
        self._topic_pos: dict[int, int] = {}
        self._topic_tally: dict[int, list[int]] = {}
        self._retagged_agencies: set[str] = set()
        for table, columns in (
            # The listing as this sync walked it, and the part of it to read.
            ("listing", _LISTED),
            ("unread", _LISTED),
            ("old_contents", "content BIGINT PRIMARY KEY"),
            ("affected", 'id TEXT COLLATE "C" PRIMARY KEY'),
            ("work", 'pos BIGINT PRIMARY KEY, id TEXT COLLATE "C" NOT NULL'),
        ):
            # Created once per connection, emptied at every commit (and a rollback takes its
            # rows with it): every sync starts from empty work tables without paying DDL.
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
            )

    def list_files(self, listed: Sequence[tuple[str, Fingerprint]]) -> None:
        if listed:
            self._conn.execute(
                "INSERT INTO listing (name, size, mtime_ns, inode)"
                " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::numeric[])"
                " ON CONFLICT (name) DO NOTHING",
                (
                    [name for name, _ in listed],
                    [fp.size for _, fp in listed],
                    [fp.mtime_ns for _, fp in listed],
                    [fp.inode for _, fp in listed],
                ),
            )

    def mark_unread(self) -> int:
        # One statement over the listing, a primary-key lookup per file, in the server.
        return self._conn.execute(
            "INSERT INTO unread (name, size, mtime_ns, inode)"
            " SELECT l.name, l.size, l.mtime_ns, l.inode FROM listing l"
            " LEFT JOIN files f ON f.name = l.name"
            " LEFT JOIN contents c ON c.id = f.content AND c.version = %s"
            " WHERE c.id IS NULL OR f.size != l.size OR f.mtime_ns != l.mtime_ns"
            " OR f.inode != l.inode",
            (self.version,),
        ).rowcount

    def unread(self, batch: int) -> Iterator[list[tuple[str, Fingerprint]]]:
        after = ""
        while rows := self._conn.execute(
            "SELECT name, size, mtime_ns, inode FROM unread WHERE name > %s ORDER BY name LIMIT %s",
            (after, batch),
        ).fetchall():
            after = rows[-1][0]
            yield [(r[0], Fingerprint(r[1], r[2], int(r[3]))) for r in rows]

    def has_content(self, sha256: str) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM contents WHERE sha256 = %s AND version = %s", (sha256, self.version)
        )
        return _row(found) is not None

    def add_content(self, sha256: str, copies: Iterable[Copy], problems: list[Problem]) -> None:
        conn = self._conn
        (content,) = _row(
            conn.execute(
                "INSERT INTO contents (sha256, version) VALUES (%s, %s) RETURNING id",
                (sha256, self.version),
            )
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO copies (content, idx, id, agency_slug, agency, content_hash, exact,"
                " weight, draft, topics) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (content, idx) DO UPDATE SET id = excluded.id,"
                " agency_slug = excluded.agency_slug, agency = excluded.agency,"
                " content_hash = excluded.content_hash, exact = excluded.exact,"
                " weight = excluded.weight, draft = excluded.draft, topics = excluded.topics",
                rows := [_copy_row(content, idx, c) for idx, c in enumerate(copies)],
            )
            self._added += len(rows)
            conn.execute(
                "INSERT INTO affected (id) SELECT id FROM copies WHERE content = %s"
                " ON CONFLICT DO NOTHING",
                (content,),
            )
            if problems:
                cursor.executemany(
                    "INSERT INTO content_problems (content, line, message, severity)"
                    " VALUES (%s, %s, %s, %s)",
                    [(content, p.line, p.message, p.severity) for p in problems],
                )

    def put_file(self, row: FileRow) -> None:
        conn = self._conn
        fp = row.fingerprint
        (content,) = _row(
            conn.execute(
                "SELECT id FROM contents WHERE sha256 = %s AND version = %s",
                (row.sha256, self.version),
            )
        )
        conn.execute(
            "INSERT INTO old_contents (content)"
            " SELECT content FROM files WHERE name = %s AND content != %s ON CONFLICT DO NOTHING",
            (row.name, content),
        )
        conn.execute(
            "INSERT INTO files (name, size, mtime_ns, inode, content) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (name) DO UPDATE SET size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, inode = excluded.inode, content = excluded.content",
            (row.name, fp.size, fp.mtime_ns, fp.inode, content),
        )

    def stored_names(self, after: str, limit: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM files WHERE name > %s ORDER BY name LIMIT %s", (after, limit)
        )
        return [r[0] for r in rows]

    def forget_unlisted(self, names: Sequence[str] | None) -> None:
        which, params = ("TRUE", ()) if names is None else ("name = ANY(%s)", (list(names),))
        gone = f"{which} AND name NOT IN (SELECT name FROM listing)"
        self._conn.execute(
            f"INSERT INTO old_contents (content) SELECT content FROM files WHERE {gone}"
            " ON CONFLICT DO NOTHING",
            params,
        )
        self._conn.execute(f"DELETE FROM files WHERE {gone}", params)

    def _drop_contents(self) -> None:
        """Contents no file holds any more go, and their copies' releases are candidates."""
        conn = self._conn
        conn.execute("DELETE FROM old_contents WHERE content IN (SELECT content FROM files)")
        conn.execute(
            "INSERT INTO affected (id) SELECT c.id FROM old_contents o"
            " JOIN copies c ON c.content = o.content ON CONFLICT DO NOTHING"
        )
        conn.execute("DELETE FROM contents WHERE id IN (SELECT content FROM old_contents)")

    def candidates(self, batch: int) -> Iterator[list[Candidate]]:
        conn = self._conn
        self._drop_contents()
        if self._added >= _ANALYZE_AFTER:
            # Statistics for the rows this transaction wrote, before asking for them by
            # release ID: without them the planner takes ``id = ANY(<100 IDs>)`` for half
            # of ``copies`` and scans the whole table for every batch (a first sync of
            # 1,000,000 releases did not finish). ANALYZE samples: its cost is bounded.
            conn.execute("ANALYZE copies, contents, files, affected")
        # The order new releases are numbered in: first file name holding them, then place
        # (names compare by bytes, as SQLite compares them).
        # Set-based (one join, one sort), not a lookup per release: rows written in this
        # transaction have no statistics, and a per-release subquery planned as if the
        # tables were empty made a first sync of 1,000,000 releases quadratic.
        conn.execute(
            "INSERT INTO work (pos, id) SELECT ROW_NUMBER() OVER (ORDER BY first.name IS NULL,"
            " first.name, first.idx, a.id), a.id FROM affected a LEFT JOIN ("
            "  SELECT DISTINCT ON (c.id) c.id, f.name, c.idx FROM affected x"
            "  JOIN copies c ON c.id = x.id JOIN files f ON f.content = c.content"
            "  ORDER BY c.id, f.name, c.idx) AS first ON first.id = a.id"
        )
        batch = max(1, min(batch, _BATCH))
        after = 0
        while True:
            rows = conn.execute(
                "SELECT pos, id FROM work WHERE pos > %s ORDER BY pos LIMIT %s", (after, batch)
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            yield self._candidates([r[1] for r in rows])

    def _candidates(self, ids: list[str]) -> list[Candidate]:
        conn = self._conn
        copies: dict[str, list[CopyRow]] = {i: [] for i in ids}
        for r in conn.execute(
            "SELECT c.id, c.content, t.sha256, c.idx, c.agency_slug, c.agency, c.content_hash,"
            " c.exact, c.weight FROM copies c JOIN contents t ON t.id = c.content"
            " WHERE c.id = ANY(%s)",
            (ids,),
        ).fetchall():
            copies[r[0]].append(
                CopyRow(r[0], r[1], r[2], r[3], r[4], r[5], bytes(r[6]).hex(), bytes(r[7]), r[8])
            )
        held: dict[str, Held] = {}
        for r in conn.execute(
            "SELECT id, seq, agency_slug, agency, content_hash, exact, present, first_seen,"
            " updated, win_content, win_idx FROM releases WHERE id = ANY(%s)",
            (ids,),
        ).fetchall():
            winner = (r[9], r[10]) if r[9] is not None else None
            held[r[0]] = Held(
                r[1], r[2], r[3], bytes(r[4]).hex(), bytes(r[5]), bool(r[6]), r[7], r[8], winner
            )
        return [Candidate(i, tuple(copies[i]), held.get(i)) for i in ids]

    def numbers(self) -> tuple[int, dict[str, int]]:
        conn = self._conn
        next_seq = _row(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM releases"))[0]
        positions = {
            r[0]: r[1] + 1 for r in conn.execute("SELECT slug, members FROM agencies").fetchall()
        }
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
            # a loser (a store migrated from SQLite keeps a winner's topics only in its
            # release).
            row = _row(
                conn.execute(f"SELECT {_RELEASE} FROM releases WHERE id = %s", (decision.id,))
            )
            current = _release(row)
            conn.execute(
                "UPDATE copies SET draft = %s, topics = %s WHERE content = %s AND idx = %s",
                (draft_to_json(current.draft), topics_to_json(current.topics), *old),
            )
        found = _row(
            conn.execute(
                "SELECT draft, topics FROM copies WHERE content = %s AND idx = %s", best.key
            )
        )
        conn.execute("UPDATE copies SET draft = NULL WHERE content = %s AND idx = %s", best.key)
        draft = draft_from_json(found[0]) if found[0] is not None else None
        return draft, topics_from_json(found[1])

    def _insert_new(self, decisions: list[Decision]) -> None:
        """Insert releases new to the store, a batch in a few round trips.

        Each takes its winning copy's text and topics, and the copy stops keeping the
        text (a first sync is mostly this, so it is not done one release at a time).
        """
        conn = self._conn
        now = self.now
        keys = [d.winner.key for d in decisions if d.winner is not None]
        contents, places = [k[0] for k in keys], [k[1] for k in keys]
        texts = {
            (r[0], r[1]): (r[2], r[3])
            for r in conn.execute(
                "SELECT c.content, c.idx, c.draft, c.topics FROM copies c"
                " JOIN unnest(%s::bigint[], %s::int[]) AS k(content, idx)"
                " ON c.content = k.content AND c.idx = k.idx",
                (contents, places),
            ).fetchall()
        }
        conn.execute(
            "UPDATE copies c SET draft = NULL FROM unnest(%s::bigint[], %s::int[]) AS k(content,"
            " idx) WHERE c.content = k.content AND c.idx = k.idx",
            (contents, places),
        )
        rows = []
        memberships = []
        for d in decisions:
            best = d.winner
            assert best is not None
            text, topics_text = texts[best.key]
            draft = draft_from_json(text)
            named = sorted(
                ((self._topic_id(t), t) for t in topics_from_json(topics_text)),
                key=lambda n: (n[1].kind, n[1].slug),
            )
            stored = [Topic(t.kind, t.slug, name) for (_, name), t in named]
            rows.append(
                (d.seq, d.id, best.agency_slug, draft.agency, draft.channel, draft.title,
                 _iso(draft.date_line), _iso(draft.published), join_body(draft.paragraphs),
                 bytes.fromhex(best.content_hash), now, now, True, None, topics_to_json(stored),
                 best.exact, d.agency_pos, best.content, best.idx,
                 words_vector(draft.title, draft.paragraphs))
            )  # fmt: skip
            for (topic_id, _), _topic in named:
                memberships.append((topic_id, d.seq, self._next_pos(topic_id), now))
                tally = self._topic_tally.setdefault(topic_id, [0, 0, 0])
                tally[0] += 1
                tally[1] = max(tally[1], now)
                tally[2] = 1
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO releases ({_RELEASE}, exact, agency_pos, revised, win_content,"
                " win_idx, words) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, 0, %s, %s, %s::tsvector)",
                rows,
            )
            if memberships:
                cursor.executemany(
                    "INSERT INTO release_topics (topic, seq, pos, tagged, present, updated,"
                    " revised) VALUES (%s, %s, %s, true, true, %s, 0)",
                    memberships,
                )

    def apply(self, decisions: Sequence[Decision]) -> None:
        conn = self._conn
        now = self.now
        fresh = [d for d in decisions if d.kind == "new"]
        if fresh:
            self._insert_new(fresh)
        for d in decisions:
            kind = d.kind
            if kind in ("same", "new"):
                continue
            if kind == "gone":
                assert d.held is not None
                conn.execute(
                    "UPDATE releases SET present = false, left_at = %s WHERE id = %s", (now, d.id)
                )
                self._retag(d.held.seq, d.held.agency_slug, None, False, d.updated, True)
                continue
            best = d.winner
            assert best is not None
            draft, topics = self._take_text(d)
            winner = (best.content, best.idx)
            if draft is not None:
                conn.execute(
                    "UPDATE releases SET agency = %s, channel = %s, title = %s, date_line = %s,"
                    " published = %s, body = %s, words = %s::tsvector WHERE id = %s",
                    (draft.agency, draft.channel, draft.title, _iso(draft.date_line),
                     _iso(draft.published), join_body(draft.paragraphs),
                     words_vector(draft.title, draft.paragraphs), d.id),
                )  # fmt: skip
            conn.execute(
                "UPDATE releases SET content_hash = %s, exact = %s, agency_slug = %s,"
                " present = true, updated = %s, revised = (%s != first_seen)::int,"
                " win_content = %s, win_idx = %s WHERE id = %s",
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
            row = _row(
                self._conn.execute("SELECT id, name FROM topics WHERE kind = %s AND slug = %s", key)
            )
            if row is None:
                (topic_id,) = _row(
                    self._conn.execute(
                        "INSERT INTO topics (kind, slug, name, first_seen)"
                        " VALUES (%s, %s, %s, %s) RETURNING id",
                        (topic.kind, topic.slug, topic.name, self.now),
                    )
                )
                row = (topic_id, topic.name)
            found = self._topic_ids[key] = (int(row[0]), str(row[1]))
        return found

    def _next_pos(self, topic_id: int) -> int:
        pos = self._topic_pos.get(topic_id)
        if pos is None:
            (pos,) = _row(
                self._conn.execute(
                    "SELECT COALESCE(MAX(pos), 0) + 1 FROM release_topics WHERE topic = %s",
                    (topic_id,),
                )
            )
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
                "SELECT topic, tagged, present, updated FROM release_topics WHERE seq = %s",
                (seq,),
            ).fetchall()
        }
        if wanted is None:
            tagged_ids = {topic for topic, row in rows.items() if row[0]}
        else:
            named = [(self._topic_id(t), t) for t in wanted]
            tagged_ids = {topic_id for (topic_id, _), _ in named}
            stored = [
                Topic(t.kind, t.slug, name)
                for (_, name), t in sorted(named, key=lambda n: n[1].key)
            ]
            text = topics_to_json(stored)
            changed = conn.execute(
                "UPDATE releases SET topics = %s WHERE seq = %s AND topics != %s",
                (text, seq, text),
            ).rowcount
            if changed:
                self._retagged_agencies.add(agency_slug)
        (revised,) = _row(conn.execute("SELECT revised FROM releases WHERE seq = %s", (seq,)))
        revised = int(revised)
        for topic_id in set(rows) | tagged_ids:
            tagged = topic_id in tagged_ids
            now_present = tagged and present
            tally = self._topic_tally.setdefault(topic_id, [0, 0, 0])
            row = rows.get(topic_id)
            if row is None:
                conn.execute(
                    "INSERT INTO release_topics (topic, seq, pos, tagged, present, updated,"
                    " revised) VALUES (%s, %s, %s, true, %s, %s, %s)",
                    (topic_id, seq, self._next_pos(topic_id), now_present, updated, revised),
                )
                tally[0] += int(now_present)
                tally[1] = max(tally[1], updated if now_present else 0)
                tally[2] = 1
                continue
            was_tagged, was_present, was_updated = row
            if (was_tagged, was_present, was_updated) != (tagged, now_present, updated):
                left = self.now if was_present and not now_present else None
                conn.execute(
                    "UPDATE release_topics SET tagged = %s, present = %s, updated = %s,"
                    " revised = %s, left_at = COALESCE(%s, left_at)"
                    " WHERE topic = %s AND seq = %s",
                    (tagged, now_present, updated, revised, left, topic_id, seq),
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
        changed: list[str] = []
        for slug, t in sorted(tally.agencies.items()):
            for name, delta in t.names.items():
                conn.execute(
                    "INSERT INTO agency_names (slug, name, releases) VALUES (%s, %s, %s)"
                    " ON CONFLICT (slug, name)"
                    " DO UPDATE SET releases = agency_names.releases + excluded.releases",
                    (slug, name, delta),
                )
            conn.execute("DELETE FROM agency_names WHERE slug = %s AND releases <= 0", (slug,))
            best = _row(
                conn.execute(
                    "SELECT name FROM agency_names WHERE slug = %s"
                    " ORDER BY releases DESC, name LIMIT 1",
                    (slug,),
                )
            )
            held = _row(conn.execute("SELECT name FROM agencies WHERE slug = %s", (slug,)))
            if held is None:
                assert best is not None
                conn.execute(
                    "INSERT INTO agencies (slug, name, first_seen) VALUES (%s, %s, %s)",
                    (slug, best[0], now),
                )
            elif best is not None and best[0] != held[0]:
                conn.execute("UPDATE agencies SET name = %s WHERE slug = %s", (best[0], slug))
            members = _row(
                conn.execute(
                    "SELECT COALESCE(MAX(agency_pos), 0) FROM releases WHERE agency_slug = %s",
                    (slug,),
                )
            )[0]
            newest = _row(
                conn.execute(
                    "SELECT MAX(published) FROM releases WHERE agency_slug = %s AND present",
                    (slug,),
                )
            )[0]
            conn.execute(
                "UPDATE agencies SET members = %s, present = present + %s, newest = %s,"
                " updated = NULLIF(GREATEST(COALESCE(updated, 0), COALESCE(%s, 0)), 0)"
                " WHERE slug = %s",
                (members, t.present, newest, t.updated, slug),
            )
            if t.visible or held is None or (best is not None and best[0] != held[0]):
                changed.append(slug)
        for slug in sorted(self._retagged_agencies - set(changed)):
            changed.append(slug)  # its entries' categories changed
        topics_changed = self._settle_topics()
        conn.execute("DELETE FROM problems")
        if problems:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO problems (path, line, message, severity) VALUES (%s, %s, %s, %s)",
                    [(p.path, p.line, p.message, p.severity) for p in problems],
                )
        (generation,) = _row(
            conn.execute("SELECT value FROM meta WHERE key = 'generation' FOR UPDATE")
        )
        generation = int(generation)
        if tally.written or changed or topics_changed:
            generation += 1
            conn.execute("UPDATE meta SET value = %s WHERE key = 'generation'", (str(generation),))
            # Sent when this transaction commits, to every listening node (a hint: each
            # also reads the row every WATCH_POLL seconds).
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(generation)))
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE agencies SET generation = %s WHERE slug = %s",
                    [(generation, slug) for slug in changed],
                )
                cursor.executemany(
                    "UPDATE topics SET generation = %s WHERE id = %s",
                    [(generation, topic_id) for topic_id, _ in topics_changed],
                )
        if sum(tally.counts.values()) >= _ANALYZE_AFTER:
            # Many rows moved (a first sync, a big import): give the planner fresh numbers
            # now rather than when autovacuum next comes round, so filters and pages use
            # the indexes meant for them from the first request.
            conn.execute("ANALYZE releases, copies, files, contents, release_topics")
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
                "UPDATE topics SET present = present + %s,"
                " members = (SELECT COALESCE(MAX(pos), 0) FROM release_topics WHERE topic = %s),"
                " updated = CASE WHEN %s > COALESCE(updated, 0) THEN %s ELSE updated END"
                " WHERE id = %s",
                (present, topic_id, moment, moment, topic_id),
            )
            kind, slug = _row(
                conn.execute("SELECT kind, slug FROM topics WHERE id = %s", (topic_id,))
            )
            changed.append((topic_id, f"{kind}/{slug}"))
        return changed

    def finish(self, report: SyncReport, listing_digest: str | None) -> None:
        _set_meta(self._conn, "listing", listing_digest or "")
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
