"""A schema-v1 store, made by the v1 code, opened by this code: migrated in place, nothing lost.

``tests/data/golden/varied-v1.sqlite3`` is the ``varied`` corpus's store after its
last step, written by schema-v1 code (``python -m tests.golden --regenerate
--v1-fixture``, which refuses with newer code). Opened with ``create_app`` beside
the last step's seeds, it must come out at this code's schema version and serve
every golden URL of the corpus byte for byte; every release keeps its ID, its
number (the archive page it sits on), its first-seen and its ``updated`` time.
DESIGN.md "The store": the schema is versioned and migrated in place, keeping IDs,
numbers, first-seen and ``updated``. Before any sync the migrated store serves
exactly what v1 served (``tests/data/golden/varied-v1``, captured from the v1
code); its first sync parses every file again (the parser and topic rules are
newer) and tags every release, keeping every ID but the one the date-line fix
changes on purpose.

Only the fixture is read with SQL (its v1 tables); the migrated store is checked
through HTTP alone, so this test does not depend on the new schema.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from lxml import etree

from feeds.app import create_app, serve
from feeds.config import load
from feeds.parse import parse
from feeds.sqlite_store import SCHEMA_VERSION, SQLiteStore
from feeds.sync import draft_id

from . import golden

CORPUS = golden.CORPORA["varied"]
ATOM = "{http://www.w3.org/2005/Atom}"
#: A labelled time on a release page: ``first seen <time datetime="...">``.
_TIME = re.compile(r'(first seen|updated)(?: here)? <time datetime="([^"]+)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class V1Release:
    id: str
    seq: int
    first_seen: datetime
    updated: datetime
    present: bool


def _v1_releases() -> list[V1Release]:
    conn = golden.read_only(golden.V1_FIXTURE)
    try:
        rows = conn.execute(
            "SELECT id, seq, first_seen, updated, present FROM releases ORDER BY seq"
        ).fetchall()
    finally:
        conn.close()
    return [V1Release(r[0], r[1], _moment(r[2]), _moment(r[3]), bool(r[4])) for r in rows]


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


#: What the v1 code served for the fixture's state: every feed and archive page.
V1_SERVED = golden.GOLDEN / "varied-v1"


@pytest.fixture
def unsynced(tmp_path: Path) -> tuple[Flask, Path]:
    """The app on a migrated copy of the v1 fixture, before any sync has run."""
    database = tmp_path / "db" / "feeds.sqlite3"
    database.parent.mkdir()
    shutil.copyfile(golden.V1_FIXTURE, database)
    seed_dir = tmp_path / "seeds"
    golden.replace_seeds(CORPUS.final_seeds, seed_dir)
    store = SQLiteStore(database)
    store.initialize(datetime.now(UTC))
    app = serve(load(environ={}, overrides=golden.settings(CORPUS, seed_dir, database)), store)
    app.testing = True
    return app, database


@pytest.fixture
def migrated(tmp_path: Path) -> tuple[Flask, Path]:
    """The app on a copy of the v1 fixture and the last step's seeds; and its database.

    Its start-up sync reads every file again: the parser and the topic rules are newer
    than those the v1 store's contents were parsed with.
    """
    database = tmp_path / "db" / "feeds.sqlite3"
    database.parent.mkdir()
    shutil.copyfile(golden.V1_FIXTURE, database)
    seed_dir = tmp_path / "seeds"
    golden.replace_seeds(CORPUS.final_seeds, seed_dir)
    app = create_app(golden.settings(CORPUS, seed_dir, database), environ={})
    app.testing = True
    return app, database


def _ids_parsed_now() -> set[str]:
    """The IDs this code's parser gives the final seeds (the date-line fix changes some)."""
    found = set()
    for path in sorted(CORPUS.final_seeds.glob("*.txt")):
        drafts, _ = parse(path.read_text(encoding="utf-8"), path.name)
        found.update(draft_id(d) for d in drafts)
    return found


def test_the_fixture_is_a_small_v1_store() -> None:
    conn = golden.read_only(golden.V1_FIXTURE)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        conn.close()
    releases = _v1_releases()
    # It has the history the checks below need: gone releases and changed ones.
    assert any(not r.present for r in releases)
    assert any(r.updated != r.first_seen for r in releases)


def test_migrated_store_has_this_schema_version(migrated: tuple[Flask, Path]) -> None:
    _, database = migrated
    assert _user_version(database) == SCHEMA_VERSION


def test_the_first_sync_after_the_upgrade_tags_every_release(
    migrated: tuple[Flask, Path],
) -> None:
    app, _ = migrated
    client = app.test_client()
    topics = client.get("/topics.opml")
    assert topics.status_code == 200 and b"/feeds/topics/countries/" in topics.data


def test_migrated_store_serves_what_v1_served_byte_for_byte(
    unsynced: tuple[Flask, Path],
) -> None:
    """Before anything new is parsed, every feed and archive page is v1's, byte for byte."""
    app, database = unsynced
    assert _user_version(database) == SCHEMA_VERSION
    golden.assert_matches_goldens(app.test_client(), V1_SERVED)


def _atom_entries(body: bytes) -> dict[str, datetime]:
    """Entry ID → ``updated`` of an Atom document."""
    feed = etree.fromstring(body)
    return {
        entry.findtext(f"{ATOM}id") or "": datetime.fromisoformat(
            entry.findtext(f"{ATOM}updated") or ""
        )
        for entry in feed.iter(f"{ATOM}entry")
    }


def test_every_release_keeps_id_number_first_seen_and_updated(
    migrated: tuple[Flask, Path],
) -> None:
    app, _ = migrated
    client = app.test_client()
    page_size = CORPUS.page_size
    current = _atom_entries(client.get("/feeds/all.atom").get_data())
    pages: list[dict[str, datetime]] = []
    while (response := client.get(f"/feeds/all/archive/{len(pages) + 1}.atom")).status_code == 200:
        pages.append(_atom_entries(response.get_data()))
    releases = _v1_releases()
    assert len(pages) == len(releases) // page_size
    # The one change this upgrade makes on purpose: a date line spaced with other
    # spaces than ASCII ones is read now, which changes its release's ID once.
    now = _ids_parsed_now()
    redated = {r.id for r in releases if r.present and r.id not in now}
    assert len(redated) == 1, redated

    for rank, release in enumerate(releases):
        where = f"release {release.id} (seq {release.seq})"
        if release.id in redated:
            served = [entries for entries in [current, *pages] if release.id in entries]
            assert not served, f"{where} has a new ID now but is served under the old one"
            continue
        on_page = rank // page_size
        served = [entries for entries in [current, *pages] if release.id in entries]
        if not release.present:
            assert not served, f"{where} left the seeds but is served"
        elif on_page < len(pages):
            # Its number puts it on exactly this archive page.
            assert release.id in pages[on_page], f"{where} not on archive page {on_page + 1}"
            assert pages[on_page][release.id] == release.updated, where
        else:
            assert current.get(release.id) == release.updated, f"{where} not in all.atom"
        for entries in served:
            assert entries[release.id] == release.updated, f"{where}: updated moved"

        page = client.get("/releases/" + release.id.removeprefix("urn:uuid:"))
        assert page.status_code == 200, where
        # The page labels its times; "updated" only when it differs from "first seen".
        labelled = {
            label.lower(): datetime.fromisoformat(moment)
            for label, moment in _TIME.findall(page.get_data(as_text=True))
        }
        assert labelled.get("first seen") == release.first_seen, f"{where}: first seen"
        assert labelled.get("updated", labelled["first seen"]) == release.updated, where
