"""A schema-v3 store, made by the v3 code, opened by this code: migrated in place, nothing lost.

``tests/data/golden/varied-v3.sqlite3`` is the ``varied`` corpus's store after its
last step, written by the schema-3 code (commit ``664f8af``; ``python -m tests.golden
--fixture`` with that code). Schema 4 keeps a release's topics only as its tagged
memberships (v3 also kept them as JSON in ``releases.topics``) and orders its
newest-first indexes ascending (``feeds/sqlite_store.py``). So the migrated store
must give every release the topics its JSON named, serve every golden URL of the
corpus byte for byte before its first sync and after it, and find nothing to change
in that sync; an interrupted migration must leave the v3 file as it was.

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

from feeds.app import create_app
from feeds.sqlite_store import SCHEMA_VERSION, SQLiteStore, dump
from feeds.store import topics_from_json
from feeds.sync import sync

from . import golden

CORPUS = golden.CORPORA["varied"]
FIXTURE = golden.V3_FIXTURE
NEWEST = ("releases_newest", "releases_agency_newest", "release_topics_newest")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _index_sql(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(
        conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE name IN ({', '.join('?' * len(NEWEST))})",
            NEWEST,
        )
    )


def _fixture_topics() -> dict[str, tuple[object, ...]]:
    """Every release's topics as the v3 store held them (its JSON column)."""
    with closing(golden.read_only(FIXTURE)) as conn:
        return {
            r[0]: topics_from_json(r[1]) for r in conn.execute("SELECT id, topics FROM releases")
        }


def test_the_fixture_is_a_v3_store_with_topics_as_json_and_descending_indexes() -> None:
    with closing(golden.read_only(FIXTURE)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert "topics" in _columns(conn, "releases")
        assert all("DESC" in sql for sql in _index_sql(conn).values())
        # It has what the checks below need: releases with topics, gone and changed ones,
        # and a membership that is no longer tagged.
        assert conn.execute("SELECT COUNT(*) FROM releases WHERE topics != '[]'").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM releases WHERE NOT present").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM releases WHERE revised").fetchone()[0]
    assert sum(1 for topics in _fixture_topics().values() if len(topics) > 1)


def test_every_release_keeps_the_topics_its_v3_row_named(tmp_path: Path) -> None:
    database, _ = golden.copy_fixture(3, tmp_path)
    expected = _fixture_topics()
    store = SQLiteStore(database)
    store.initialize(datetime.now(UTC))
    with store.read() as reader:
        found = {i: reader.release(i.removeprefix("urn:uuid:")) for i in expected}
    assert {i: r.topics if r else None for i, r in found.items()} == expected
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert "topics" not in _columns(conn, "releases")
        assert not any("DESC" in sql for sql in _index_sql(conn).values())
    # Another backend is loaded with the same topics (``feeds migrate``).
    (releases,) = [(c, rows) for table, c, rows in dump(store) if table == "releases"]
    columns, rows = releases
    at_id, at_topics = columns.index("id"), columns.index("topics")
    assert {r[at_id]: topics_from_json(r[at_topics]) for r in rows} == expected


def test_the_migrated_store_serves_what_v3_served_before_and_after_its_first_sync(
    tmp_path: Path,
) -> None:
    database, seed_dir = golden.copy_fixture(3, tmp_path)
    app = create_app(golden.settings(CORPUS, seed_dir, database), environ={})
    app.testing = True
    client = app.test_client()
    store = app.extensions["feeds.site"].store
    (report,) = store.last_syncs(1)
    assert report["ok"] and report["new"] == report["changed"] == report["gone"] == 0, report
    golden.assert_matches_goldens(client, CORPUS.directory)

    # A new release is tagged and reaches its topic's feed; the old members stay.
    topic_feed = "/feeds/topics/countries/nl.atom"
    before = [e.id for e in feedparser.parse(client.get(topic_feed).data).entries]
    assert before
    (seed_dir / "zz-new.txt").write_text(
        "Wombatique smugglers stopped in the Netherlands\n\nSource: Europol\n\n"
        "Dutch officers stopped the wombatique smugglers at dawn.\n\n",
        encoding="utf-8",
    )
    later = datetime.now(UTC) + timedelta(hours=1)
    assert sync(store, seed_dir, clock=lambda: later).count("new") == 1
    after = feedparser.parse(client.get(topic_feed).data).entries
    assert after[0].title == "Wombatique smugglers stopped in the Netherlands"
    assert [e.id for e in after[1:]] == before
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("INSERT INTO releases_fts (releases_fts) VALUES ('integrity-check')")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_interrupted_migration_leaves_the_v3_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def has_the_topics_column(conn: sqlite3.Connection) -> None:
        assert "topics" in _columns(conn, "releases")

    golden.assert_interrupted_migration_keeps(
        3, tmp_path, monkeypatch, "_migrate_v3", has_the_topics_column
    )
