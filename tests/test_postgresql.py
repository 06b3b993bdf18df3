"""What PostgreSQL adds to the store contract: a shared database and what happens around it.

Moving a SQLite store there keeps every byte readers see; nodes never sync at the
same time; a sync killed halfway loses nothing; one document is one snapshot;
the database going away costs uncached requests a 503 (cached ones are served)
and comes back by itself; and the password never shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors

from feeds import cli, pg_store
from feeds.config import DatabaseURL, load
from feeds.errors import (
    ConfigError,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreUnavailable,
    SyncBusyError,
)
from feeds.pg_store import PgStore, classify
from feeds.sqlite_store import SQLiteStore
from feeds.store import Store
from feeds.sync import locked_sync, sync

from . import golden
from .conftest import ROOT
from .postgres import Cluster, empty_store
from .records import everything

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
SECRET = "s3cr3t-pw"


def release_text(title: str, agency: str = "Europol", body: str = "Officers seized assets.") -> str:
    return f"{title}\n\nSource: {agency}\n\n{body}\n\n"


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    url = pg_cluster.database()
    yield url
    pg_cluster.drop(url)


# -- moving from SQLite ----------------------------------------------------------------


def test_migrate_store_keeps_every_byte_and_the_next_sync_finds_nothing(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    corpus = golden.CORPORA["varied"]
    seed_dir, database = golden.build_store(corpus, tmp_path / "sqlite")
    before = golden.capture(corpus, golden.serve(corpus, seed_dir, database).test_client())
    monkeypatch.setenv("FEEDS_DATABASE", str(database))
    monkeypatch.setenv("FEEDS_SEED_DIR", str(seed_dir))

    assert cli.main(["migrate-store", "--to", pg_url]) == 0
    assert "copied 75 releases" in capsys.readouterr().out

    migrated = PgStore(pg_url)
    generation = migrated.generation()
    report = sync(migrated, seed_dir, clock=lambda: T0)
    assert report.ok and report.files_read == 0
    assert [report.count(k) for k in ("new", "changed", "gone", "returned")] == [0, 0, 0, 0]
    assert migrated.generation() == generation
    migrated.close()
    # serve() also checks that the app's start-up sync changes nothing.
    after = golden.capture(
        corpus, golden.serve(corpus, seed_dir, DatabaseURL(pg_url)).test_client()
    )
    assert [(c.url, c.status, c.headers, c.body) for c in after] == [
        (c.url, c.status, c.headers, c.body) for c in before
    ]


def test_migrate_store_refuses_a_database_that_is_not_empty(
    tmp_path: Path, pg_url: str, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    source = SQLiteStore(tmp_path / "feeds.sqlite3")
    source.initialize(T0)
    sync(source, real_seed_dir, clock=lambda: T0)
    source.close()
    target = PgStore(pg_url)
    target.initialize(T0)  # an empty store is still not an empty database
    target.close()
    monkeypatch.setenv("FEEDS_DATABASE", str(tmp_path / "feeds.sqlite3"))
    monkeypatch.setenv("FEEDS_SEED_DIR", str(real_seed_dir))
    assert cli.main(["migrate-store", "--to", pg_url]) == 1
    err = capsys.readouterr().err
    assert "not empty" in err and err.count("\n") == 1


# -- coordination ------------------------------------------------------------------------


def test_one_sync_at_a_time_across_nodes(pg_url: str, real_seed_dir: Path) -> None:
    one, two = PgStore(pg_url), PgStore(pg_url)
    one.initialize(T0)
    two.initialize(T0)
    try:
        with one.sync_lock() as held:
            assert held
            with pytest.raises(SyncBusyError):
                locked_sync(two, real_seed_dir, blocking=False)
        assert locked_sync(two, real_seed_dir, blocking=False).ok  # free again
    finally:
        one.close()
        two.close()


KILLED_SYNC = """
import sys, time
from pathlib import Path
from feeds import pg_store
from feeds.pg_store import PgStore
from feeds.sync import locked_sync

def stall(self, *args):
    Path(sys.argv[3]).write_text("writing")
    time.sleep(600)

pg_store._Session.settle = stall
store = PgStore(sys.argv[1])
locked_sync(store, Path(sys.argv[2]))
"""


def test_a_node_killed_mid_sync_loses_nothing(pg_url: str, seed_dir: Path, tmp_path: Path) -> None:
    (seed_dir / "a.txt").write_text(release_text("First"), encoding="utf-8")
    store = PgStore(pg_url)
    store.initialize(T0)
    assert sync(store, seed_dir, clock=lambda: T0).ok
    before = everything(store)
    (seed_dir / "b.txt").write_text(release_text("Second"), encoding="utf-8")
    flag = tmp_path / "writing"
    node = subprocess.Popen(
        [sys.executable, "-c", KILLED_SYNC, pg_url, str(seed_dir), str(flag)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert node.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        assert everything(store) == before  # its writes are invisible until it commits
        node.send_signal(signal.SIGKILL)
    finally:
        node.kill()
        node.wait()
    # The lock went with the connection (once the server has noticed it is gone: on a
    # busy machine that is not at once); the next sync does the whole change.
    deadline = time.monotonic() + 60
    while True:
        try:
            report = locked_sync(store, seed_dir, blocking=False, clock=lambda: T0 + timedelta(1))
            break
        except SyncBusyError:
            assert time.monotonic() < deadline, "the killed node's lock was never released"
            time.sleep(0.05)
    assert report.ok and report.count("new") == 1
    store.close()


def test_a_read_is_one_snapshot_while_a_sync_commits(store: Store, seed_dir: Path) -> None:
    (seed_dir / "a.txt").write_text(release_text("First"), encoding="utf-8")
    assert sync(store, seed_dir, clock=lambda: T0).ok
    with store.read() as reader:
        state = reader.state()
        (seed_dir / "b.txt").write_text(release_text("Second"), encoding="utf-8")
        done: list[bool] = []
        # Another thread (its own connection) commits a sync in the middle of this read.
        worker = threading.Thread(
            target=lambda: done.append(sync(store, seed_dir, clock=lambda: T0).ok)
        )
        worker.start()
        worker.join()
        assert done == [True]
        assert [r.draft.title for r in reader.newest(None, 10)] == ["First"]
        assert reader.state() == state
    with store.read() as reader:
        assert {r.draft.title for r in reader.newest(None, 10)} == {"First", "Second"}


# -- the database going away -------------------------------------------------------------


def test_database_gone_while_serving_then_back(
    pg_cluster: Cluster, pg_url: str, real_seed_dir: Path, tmp_path: Path
) -> None:
    from feeds.app import create_app

    app = create_app(
        {"seed_dir": real_seed_dir, "database": DatabaseURL(pg_url), "scheduler": False},
        environ={},
    )
    client = app.test_client()
    site = app.extensions["feeds.site"]
    cached = client.get("/feeds/all.atom")
    assert cached.status_code == 200
    pg_cluster.stop()
    try:
        again = client.get("/feeds/all.atom")
        assert again.status_code == 200 and again.data == cached.data
        uncached = client.get("/feeds/europol.atom")
        assert uncached.status_code == 503
        assert int(uncached.headers["Retry-After"]) > 0
        assert b"Traceback" not in uncached.data
        assert not sync(site.store, real_seed_dir).ok
        health = client.get("/healthz").get_json()
        assert health["status"] == "degraded"
    finally:
        pg_cluster.start()
    assert client.get("/feeds/europol.atom").status_code == 200
    assert sync(site.store, real_seed_dir).ok
    assert client.get("/healthz").get_json()["status"] == "ok"
    site.store.close()


def test_unreachable_at_start_is_one_line_and_exit_2(
    tmp_path: Path, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    url = f"postgresql://feeds:{SECRET}@/feeds?host={tmp_path}/no-server&connect_timeout=2"
    monkeypatch.setenv("FEEDS_DATABASE", url)
    monkeypatch.setenv("FEEDS_SEED_DIR", str(real_seed_dir))
    assert cli.main(["sync"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("feeds: cannot use FEEDS_DATABASE=postgresql://feeds:***@")
    assert err.count("\n") == 1 and SECRET not in err


def test_the_password_never_shows(capsys: Any) -> None:
    url = f"postgresql://feeds:{SECRET}@db.internal:5432/feeds?sslmode=require"
    config = load({"FEEDS_DATABASE": url})
    assert isinstance(config.database, DatabaseURL) and config.database.url == url
    for shown in (str(config.database), repr(config.database), repr(config)):
        assert SECRET not in shown and "feeds:***@db.internal" in shown
    assert SECRET not in repr(PgStore(url))
    with_query = load({"FEEDS_DATABASE": f"postgres://feeds@/feeds?password={SECRET}"})
    assert SECRET not in str(with_query.database)
    with pytest.raises(ConfigError) as refused:
        load({"FEEDS_DATABASE": f"mysql://feeds:{SECRET}@db/feeds"})
    assert "FEEDS_DATABASE" in str(refused.value) and SECRET not in str(refused.value)
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "FEEDS_DATABASE" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["sqlite:///feeds.db", "http://db/feeds", "postgresql://h:x/db"])
def test_another_scheme_fails_at_start_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="FEEDS_DATABASE"):
        load({"FEEDS_DATABASE": value})


def test_the_test_cluster_reaches_every_node(pg_cluster: Cluster) -> None:
    """The fixture itself: the server runs without TCP, on its own socket directory."""
    assert os.path.exists(os.path.join(pg_cluster.socket, ".s.PGSQL.5432"))


@pytest.mark.parametrize(
    ("error", "kind", "reason"),
    [
        (pg_errors.DiskFull, StoreFull, "disk full"),
        (pg_errors.SerializationFailure, StoreBusy, "busy"),
        (pg_errors.TooManyConnections, StoreBusy, "too many connections"),
        (pg_errors.InsufficientPrivilege, StoreUnavailable, "permission denied"),
        (pg_errors.InvalidCatalogName, StoreUnavailable, "no such database"),
        (pg_errors.ReadOnlySqlTransaction, StoreUnavailable, "read-only"),
        (pg_errors.InvalidPassword, StoreUnavailable, "authentication failed"),
        (pg_errors.DataCorrupted, StoreCorrupt, "corrupt"),
        (psycopg.OperationalError, StoreUnavailable, "cannot connect"),
        (pg_errors.UniqueViolation, StoreError, "database error"),
    ],
)
def test_driver_errors_become_the_project_s_kinds(
    error: type[psycopg.Error], kind: type[StoreError], reason: str
) -> None:
    found = classify(error("what the server said\nDETAIL: more"), "postgresql://feeds:***@db/x")
    assert type(found) is kind and found.reason == reason
    assert str(found).startswith(f"{reason}: postgresql://feeds:***@db/x: what the server said")


def test_a_database_holding_other_tables_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    store = PgStore(pg_url)
    with pytest.raises(StoreError, match="not a feeds database"):
        store.initialize(T0)
    store.close()


def test_emptying_a_store_in_place_gives_a_new_store(
    pg_url: str, pg_cluster: Cluster, real_seed_dir: Path
) -> None:
    """The shortcut property tests take (tests/postgres.py ``empty_store``) is honest."""
    used = PgStore(pg_url)
    used.initialize(T0)
    assert sync(used, real_seed_dir, clock=lambda: T0).ok
    used.close()
    assert empty_store(pg_url, T0 + timedelta(days=1))
    emptied = PgStore(pg_url)
    emptied.initialize(T0 + timedelta(days=1))
    other = pg_cluster.database()
    new = PgStore(other)
    new.initialize(T0 + timedelta(days=1))
    try:
        assert everything(emptied) == everything(new)
        assert emptied.generation() == new.generation()
        assert emptied.counts() == new.counts() and emptied.last_syncs(5) == []
        assert sync(emptied, real_seed_dir, clock=lambda: T0).count("new") == 10
    finally:
        emptied.close()
        new.close()
        pg_cluster.drop(other)


# -- how a serving node learns of a new generation ----------------------------------------


def _eventually(read: Any, expected: Any, seconds: float = 10.0) -> None:
    """Wait until ``read()`` gives ``expected`` (bounded; polled every 10 ms)."""
    deadline = time.monotonic() + seconds
    while (got := read()) != expected:
        assert time.monotonic() < deadline, f"still {got!r}, not {expected!r}, after {seconds} s"
        time.sleep(0.01)


@pytest.fixture
def two_nodes(pg_url: str, tmp_path: Path) -> Iterator[tuple[PgStore, PgStore, Path]]:
    """A syncing store and a serving one (listening) on one database, and their seeds."""
    seed_dir = tmp_path / "seeds"
    seed_dir.mkdir()
    (seed_dir / "a.txt").write_text(release_text("First"), encoding="utf-8")
    syncing, serving = PgStore(pg_url), PgStore(pg_url, listen=True)
    syncing.initialize(T0)
    sync(syncing, seed_dir, clock=lambda: T0)
    yield syncing, serving, seed_dir
    syncing.close()
    serving.close()


def test_a_serving_node_learns_another_nodes_sync_without_asking_per_request(
    two_nodes: tuple[PgStore, PgStore, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    syncing, serving, seed_dir = two_nodes
    # Polls far apart: only the notification can tell the node in time.
    monkeypatch.setattr(pg_store, "WATCH_POLL", 60.0)
    before = syncing.generation()
    asked: list[str] = []
    real_one = serving._one

    def counted(query: str, params: Any = ()) -> Any:
        asked.append(query)
        return real_one(query, params)

    monkeypatch.setattr(serving, "_one", counted)

    def answered_from_memory() -> bool:
        asked.clear()
        return serving.generation() == before and not asked

    # Until its listening thread has read the row, the node asks the database itself.
    _eventually(answered_from_memory, True)
    for _ in range(100):
        assert serving.generation() == before
    assert asked == []
    (seed_dir / "b.txt").write_text(release_text("Second"), encoding="utf-8")
    report = sync(syncing, seed_dir, clock=lambda: T0 + timedelta(hours=1))
    assert report.count("new") == 1
    after = syncing.generation()
    assert after != before
    # Notified when the sync committed.
    _eventually(serving.generation, after, seconds=5.0)


def test_a_change_no_notification_announced_is_still_learnt(
    two_nodes: tuple[PgStore, PgStore, Path], pg_url: str
) -> None:
    """Notifications are hints: the listening thread also reads the row every second."""
    syncing, serving, _ = two_nodes
    before = syncing.generation()
    _eventually(serving.generation, before)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = (value::bigint + 7)::text WHERE key = 'generation'")
    _eventually(serving.generation, before + 7, seconds=5.0)


def test_a_node_sees_its_own_sync_at_once(two_nodes: tuple[PgStore, PgStore, Path]) -> None:
    _, serving, seed_dir = two_nodes
    _eventually(serving.generation, serving.generation())
    (seed_dir / "b.txt").write_text(release_text("Second"), encoding="utf-8")
    report = sync(serving, seed_dir, clock=lambda: T0 + timedelta(hours=1))
    assert report.count("new") == 1
    with serving.read() as reader:
        committed = reader.generation()
    # No wait: what its listening thread read before the commit is not trusted.
    assert serving.generation() == committed
