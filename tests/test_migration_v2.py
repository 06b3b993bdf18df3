"""A schema-v2 store, made by the v2 code, opened by this code: migrated in place, nothing lost.

``tests/data/golden/varied-v2.sqlite3`` is the ``varied`` corpus's store after its
last step, written by the schema-2 code (commit ``c26089b``; ``python -m tests.golden
--regenerate --fixture`` with that code). Schema 3 indexes new releases without a
trigger (DESIGN.md "The store"; ``feeds/sqlite_store.py``): nothing else differs, so
the migrated store must serve every golden URL of the corpus byte for byte, before
its first sync and after it, and that sync must find nothing to change. The
full-text index must still hold every old release and take in new ones exactly once.

The fixture is read with SQL only to learn what it holds; the migrated store is
checked through HTTP and through the store's own interface.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from flask import Flask

from feeds.app import create_app, serve
from feeds.config import load
from feeds.sqlite_store import SCHEMA_VERSION, SQLiteStore
from feeds.sync import sync

from . import golden

CORPUS = golden.CORPORA["varied"]
FIXTURE = golden.V2_FIXTURE


def _triggers(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


@pytest.fixture
def unsynced(tmp_path: Path) -> tuple[Flask, Path]:
    """The app on a migrated copy of the v2 fixture, before any sync has run."""
    database, seed_dir = golden.copy_fixture(2, tmp_path)
    store = SQLiteStore(database)
    store.initialize(datetime.now(UTC))
    app = serve(load(environ={}, overrides=golden.settings(CORPUS, seed_dir, database)), store)
    app.testing = True
    return app, seed_dir


def test_the_fixture_is_a_v2_store_with_the_insert_trigger() -> None:
    with closing(golden.read_only(FIXTURE)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "releases_fts_insert" in _triggers(conn)
        # It has the history the checks below need: gone releases and changed ones.
        assert conn.execute("SELECT COUNT(*) FROM releases WHERE NOT present").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM releases WHERE revised").fetchone()[0]


def test_migrated_store_serves_what_v2_served_byte_for_byte(
    unsynced: tuple[Flask, Path],
) -> None:
    app, _ = unsynced
    database = app.extensions["feeds.site"].store.path
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "releases_fts_insert" not in _triggers(conn)
        # The index the migration kept is the one its rows say.
        conn.execute("INSERT INTO releases_fts (releases_fts) VALUES ('integrity-check')")
    golden.assert_matches_goldens(app.test_client(), CORPUS.directory)


def test_its_first_sync_changes_nothing_and_new_releases_are_found_once(
    tmp_path: Path,
) -> None:
    database, seed_dir = golden.copy_fixture(2, tmp_path)
    app = create_app(golden.settings(CORPUS, seed_dir, database), environ={})
    app.testing = True
    client = app.test_client()
    store = app.extensions["feeds.site"].store
    (report,) = store.last_syncs(1)
    assert report["ok"] and report["new"] == report["changed"] == report["gone"] == 0, report
    golden.assert_matches_goldens(client, CORPUS.directory)

    old = feedparser.parse(client.get("/feeds/all.atom").data).entries[0]
    word = old.title.split()[-1].strip(".,:;!?")
    assert any(e.title == old.title for e in _found(client, word))

    (seed_dir / "zz-new.txt").write_text(
        "Wombatique smugglers stopped\n\nSource: Europol\n\n"
        "Officers stopped the wombatique smugglers at dawn.\n\n",
        encoding="utf-8",
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    assert sync(store, seed_dir, clock=lambda: later).count("new") == 1
    assert [e.title for e in _found(client, "wombatique")] == ["Wombatique smugglers stopped"]
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("INSERT INTO releases_fts (releases_fts) VALUES ('integrity-check')")


def _found(client: object, word: str) -> list[feedparser.FeedParserDict]:
    response = client.get(f"/feeds/all.atom?q={word}&limit=100")  # type: ignore[attr-defined]
    assert response.status_code == 200, response.status_code
    return list(feedparser.parse(response.data).entries)


def test_an_interrupted_migration_leaves_the_v2_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def has_the_trigger(conn: sqlite3.Connection) -> None:
        assert "releases_fts_insert" in _triggers(conn)

    golden.assert_interrupted_migration_keeps(
        2, tmp_path, monkeypatch, "_migrate_v2", has_the_trigger
    )
