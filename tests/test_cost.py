"""Cost follows the change, not the archive: what a sync or a request touches.

- A sync that changes one agency's releases leaves every other agency's cached
  representations valid (the same bytes, not rendered again) and re-renders
  the combined feed and that agency's documents.
- A request reads only its document's rows: with 50,000 releases in the
  store, one uncached feed request allocates a few megabytes at most.
- A sync that adds one file decides only that file's releases.
- A v1 store whose migration is interrupted stays a usable v1 store.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from feeds import decide, sqlite_store
from feeds.errors import StoreError
from feeds.sqlite_store import SQLiteStore
from feeds.sync import sync

from .records import all_releases

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
FIXTURE = Path(__file__).resolve().parent / "data" / "golden" / "varied-v1.sqlite3"


def release_text(title: str, agency: str, body: str = "Investigators seized assets.") -> str:
    return f"{title}\n\nSource: {agency}\n\n{body}\n\n"


def write_agency(seeds: Path, agency: str, count: int, name: str | None = None) -> None:
    text = "".join(release_text(f"{agency} release {n}", agency) for n in range(count))
    (seeds / (name or f"{agency.lower()}.txt")).write_text(text, encoding="utf-8")


def synced_parts(seed_dir: Path, tmp_path: Path, parts: int) -> SQLiteStore:
    """A store after a first sync of ``parts`` Europol files of 50 releases each."""
    for part in range(parts):
        write_agency(seed_dir, "Europol", 50, name=f"part-{part}.txt")
        text = (seed_dir / f"part-{part}.txt").read_text("utf-8").replace("release", f"r{part}")
        (seed_dir / f"part-{part}.txt").write_text(text, "utf-8")
    store = SQLiteStore(tmp_path / "db.sqlite3")
    store.initialize(T0)
    assert sync(store, seed_dir, clock=lambda: T0).count("new") == parts * 50
    return store


def test_a_change_to_one_agency_leaves_the_others_cached(
    make_app: Callable[..., Flask], seed_dir: Path
) -> None:
    write_agency(seed_dir, "Europol", 7)
    write_agency(seed_dir, "Interpol", 7)
    app = make_app(seed_dir, page_size=3)
    site = app.extensions["feeds.site"]
    client = app.test_client()
    urls = [
        "/feeds/interpol.atom",
        "/feeds/interpol/archive/1.atom",
        "/agencies/interpol",
        "/feeds/europol.atom",
        "/feeds/all.atom",
        "/",
    ]
    before = {url: client.get(url) for url in urls}
    made = {url: site.hit(("url", url, "")) for url in urls[:1]}
    assert made["/feeds/interpol.atom"] is not None
    interpol_rep = site.archive(site.selection("interpol"), 1, "atom")

    later = datetime.now(UTC) + timedelta(hours=1)
    (seed_dir / "europol-more.txt").write_text(release_text("Europol late", "Europol"), "utf-8")
    report = sync(site.store, seed_dir, clock=lambda: later)
    assert report.agencies == ("europol",)

    after = {url: client.get(url) for url in urls}
    for url in urls[:3]:
        assert after[url].headers["ETag"] == before[url].headers["ETag"], url
    for url in urls[3:]:
        assert after[url].headers["ETag"] != before[url].headers["ETag"], url
    # Interpol's documents were not rendered again: the very same objects are served.
    assert site.hit(("url", "/feeds/interpol.atom", "")) is made["/feeds/interpol.atom"]
    assert site.archive(site.selection("interpol"), 1, "atom") is interpol_rep


def test_an_uncached_request_reads_only_its_own_rows(
    make_app: Callable[..., Flask], seed_dir: Path
) -> None:
    for part in range(50):
        text = "".join(
            release_text(f"Release {part}-{n}", "Europol" if n % 2 else "Interpol")
            for n in range(1000)
        )
        (seed_dir / f"part-{part:02}.txt").write_text(text, encoding="utf-8")
    app = make_app(seed_dir)
    client = app.test_client()
    assert client.get("/healthz").get_json()["counts"]["releases"] == 50_000
    peaks = {}
    for url in ("/feeds/all.atom", "/feeds/europol.atom?q=release", "/feeds/all/archive/500.atom"):
        tracemalloc.start()
        try:
            response = client.get(url)
            peaks[url] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert response.status_code == 200, url
    # A whole archive in memory would be well over 50 MB; a document is a few.
    assert max(peaks.values()) < 5 * 1024 * 1024, peaks


def test_a_sync_decides_only_what_changed(
    tmp_path: Path, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = synced_parts(seed_dir, tmp_path, 20)
    decided: list[str] = []
    real = decide.decide

    def counting(candidate: decide.Candidate, now: int, numbering: decide.Numbering) -> object:
        decided.append(candidate.id)
        return real(candidate, now, numbering)

    monkeypatch.setattr(decide, "decide", counting)
    (seed_dir / "new.txt").write_text(release_text("One more", "Europol"), "utf-8")
    report = sync(store, seed_dir, clock=lambda: T0 + timedelta(hours=1))
    assert report.count("new") == 1
    assert len(decided) == 1
    # Editing one file decides that file's releases, not the archive's.
    decided.clear()
    (seed_dir / "part-3.txt").write_text(
        (seed_dir / "part-3.txt").read_text("utf-8") + release_text("Added", "Europol"), "utf-8"
    )
    report = sync(store, seed_dir, clock=lambda: T0 + timedelta(hours=2))
    assert report.count("new") == 1 and report.count("changed") == 0
    assert len(decided) == 51
    assert len(all_releases(store)) == 1002


def test_an_interrupted_migration_leaves_the_v1_store_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "feeds.sqlite3"
    shutil.copyfile(FIXTURE, database)
    with closing(sqlite3.connect(database)) as conn:
        v1_rows = conn.execute("SELECT id, seq, first_seen, updated FROM releases").fetchall()

    def fail(row: object) -> tuple[object, ...]:
        raise OSError("power cut")

    monkeypatch.setattr(sqlite_store, "_v1_release", fail)
    with pytest.raises(StoreError, match="power cut"):
        SQLiteStore(database).initialize(T0)
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        again = conn.execute("SELECT id, seq, first_seen, updated FROM releases").fetchall()
        assert again == v1_rows
    monkeypatch.undo()
    store = SQLiteStore(database)
    store.initialize(T0)
    migrated = {(r.id, r.seq, int(r.first_seen.timestamp()), int(r.updated.timestamp()))
                for r in all_releases(store)}  # fmt: skip
    assert migrated == set(v1_rows)


#: Tables that grow with the archive: no statement of a small sync may scan one.
_ARCHIVE_TABLES = ("releases", "copies", "release_topics", "releases_fts", "agency_names")


def test_a_sync_that_adds_one_file_scans_no_table_that_grows_with_the_archive(
    tmp_path: Path, seed_dir: Path
) -> None:
    """Every statement of such a sync reaches archive rows by key (SQLite's query plans).

    Deciding only the touched releases is not enough: a statement that walks a whole
    table (an ``UPDATE ... FROM`` planned with the big table outside, say) makes every
    sync cost the archive. Scanning the listing's own rows (``files``) is allowed.
    """
    store = synced_parts(seed_dir, tmp_path, 10)
    (seed_dir / "new.txt").write_text(release_text("One more", "Interpol"), "utf-8")
    statements: list[str] = []
    conn = store._conn  # the connection the sync runs on (its temp tables included)
    conn.set_trace_callback(statements.append)
    try:
        report = sync(store, seed_dir, clock=lambda: T0 + timedelta(hours=1))
    finally:
        conn.set_trace_callback(None)
    assert report.count("new") == 1
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS work (pos INTEGER PRIMARY KEY, id TEXT)")
    scans = []
    for statement in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            continue
        # A plan names a table by its alias in the statement ("SCAN c" for "copies c").
        tables = {alias: table for table, alias in _ALIASED.findall(statement) if alias}
        for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}"):
            detail = str(row[3])
            scanned = re.match(r"SCAN (\w+)", detail)
            if scanned and tables.get(scanned[1], scanned[1]) in _ARCHIVE_TABLES:
                scans.append(f"{detail}  <-  {statement[:160]}")
    assert scans == [], "\n".join(scans)


#: ``FROM copies c``, ``JOIN releases AS r``: a table and the alias a plan calls it by.
_ALIASED = re.compile(
    r"\b(?:FROM|JOIN)\s+(?:temp\.)?(\w+)(?:\s+(?:AS\s+)?(?!(?:ON|WHERE|JOIN|LEFT|CROSS"
    r"|INNER|GROUP|ORDER|LIMIT|USING|SET|WHEN|AND|OR|NOT)\b)(\w+))?",
    re.IGNORECASE,
)
