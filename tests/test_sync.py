"""Sync: seed directory → store.

Incremental reads, what a sync reports, and bad files costing only themselves.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feeds import parse, pg_store, scan, sqlite_store
from feeds import sync as sync_module
from feeds.model import SyncReport
from feeds.sqlite_store import SCHEMA_VERSION
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync

from .conftest import REAL_SEED
from .records import all_releases, everything


def release_text(title: str, agency: str = "Europol", body: str = "Body text.") -> str:
    return f"{title}\n\nSource: {agency}\n\n{body}\n\n"


class Clock:
    """A controllable clock: each call returns the current time; ``advance`` moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 60) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def present_titles(store: Store) -> set[str]:
    return {r.draft.title for r in all_releases(store) if r.present}


def test_first_sync_of_the_real_document(store: Store, real_seed_dir: Path) -> None:
    report = sync(store, real_seed_dir)
    assert report.ok
    assert (report.files_seen, report.files_read, len(report.new)) == (1, 1, 10)
    counts: dict[str, int] = {}
    for release in all_releases(store):
        counts[release.draft.agency_slug] = counts.get(release.draft.agency_slug, 0) + 1
    assert counts == {"europol": 2, "interpol": 5, "nato": 2, "eurojust": 1}


def test_unchanged_directory_opens_no_file(
    store: Store, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(store, real_seed_dir)
    generation = store.generation()
    opened: list[str] = []
    real_read = scan.read_seed
    monkeypatch.setattr(scan, "read_seed", lambda s, m: opened.append(s.name) or real_read(s, m))
    report = sync(store, real_seed_dir)
    assert opened == []
    assert (report.files_read, report.files_skipped, report.new, report.changed) == (0, 1, (), ())
    assert store.generation() == generation  # nothing visible changed


def test_touched_but_identical_file_is_read_not_parsed(
    store: Store, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(store, real_seed_dir)
    os.utime(real_seed_dir / REAL_SEED.name, ns=(1, 1))
    calls: list[str] = []
    real_parse = parse.parse
    monkeypatch.setattr(parse, "parse", lambda t, p: calls.append(p) or real_parse(t, p))
    report = sync(store, real_seed_dir)
    assert report.files_read == 1
    assert calls == []  # same content hash: the parsed result is reused
    assert report.new == report.changed == ()


def test_renamed_file_is_not_parsed_again_and_changes_nothing(
    store: Store, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(store, real_seed_dir)
    before = everything(store)
    (real_seed_dir / REAL_SEED.name).rename(real_seed_dir / "renamed.txt")
    calls: list[str] = []
    real_parse = parse.parse
    monkeypatch.setattr(parse, "parse", lambda t, p: calls.append(p) or real_parse(t, p))
    report = sync(store, real_seed_dir)
    assert calls == []
    assert report.new == report.changed == report.gone == ()
    assert all_releases(store) == before[1]


def test_a_sync_after_adding_a_file_walks_only_its_bucket_and_keeps_every_problem(
    store: Store, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding one file walks again (stats, lists, asks the store about) only the files whose
    names share its listing bucket: with many seed files, the others cost the one stat
    that tells the sync something changed. Problems anywhere in the listing stay reported,
    and files in other buckets keep their releases."""
    names = [f"part-{n:03d}.txt" for n in range(120)]
    for name in names:
        (seed_dir / name).write_text(release_text(f"Release {name}"), encoding="utf-8")
    (seed_dir / "dangling.txt").symlink_to(seed_dir / "missing")
    first = sync(store, seed_dir)
    assert first.count("new") == 120 and [p.path for p in first.problems] == ["dangling.txt"]
    walked: list[str] = []
    real_iter = scan.iter_seeds

    def recording(seed_dir: Path, *args: Any) -> Iterator[object]:
        for found in real_iter(seed_dir, *args):
            if isinstance(found, scan.SeedFile):
                walked.append(found.name)
            yield found

    monkeypatch.setattr(scan, "iter_seeds", recording)
    (seed_dir / "new.txt").write_text(release_text("New"), encoding="utf-8")
    report = sync(store, seed_dir)
    assert (report.count("new"), report.files_seen, report.files_read) == (1, 121, 1)
    bucket = scan.bucket_of("new.txt")
    assert sorted(walked) == sorted(n for n in [*names, "new.txt"] if scan.bucket_of(n) == bucket)
    assert len(walked) < 10  # of 121 files
    assert [p.path for p in report.problems] == ["dangling.txt"]
    assert present_titles(store) == {f"Release {name}" for name in names} | {"New"}


def test_listing_buckets_compare_only_with_a_listing_of_the_same_directory(
    seed_dir: Path, tmp_path: Path
) -> None:
    (seed_dir / "a.txt").write_text(release_text("A"), encoding="utf-8")
    before = scan.take_listing(seed_dir)
    assert before.changed_buckets(before.digest()) == frozenset()
    (seed_dir / "a.txt").write_text(release_text("A", body="Longer body text."), "utf-8")
    after = scan.take_listing(seed_dir)
    assert after.changed_buckets(before.digest()) == {scan.bucket_of("a.txt")}
    # Nothing kept, a digest of the form before buckets, or another directory: walk it all.
    assert after.changed_buckets(None) is None
    assert after.changed_buckets("ab" * 32) is None
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text(release_text("A"), encoding="utf-8")
    assert scan.take_listing(elsewhere).changed_buckets(before.digest()) is None


def test_new_changed_gone_and_returned(store: Store, seed_dir: Path, clock: Clock) -> None:
    (seed_dir / "a.txt").write_text(release_text("One") + release_text("Two"), encoding="utf-8")
    first = sync(store, seed_dir, clock=clock)
    assert len(first.new) == 2

    clock.advance()
    (seed_dir / "a.txt").write_text(
        release_text("One", body="Corrected body.") + release_text("Three"), encoding="utf-8"
    )
    second = sync(store, seed_dir, clock=clock)
    assert (len(second.new), len(second.changed), len(second.gone)) == (1, 1, 1)
    assert present_titles(store) == {"One", "Three"}

    clock.advance()
    (seed_dir / "b.txt").write_text(release_text("Two"), encoding="utf-8")
    third = sync(store, seed_dir, clock=clock)
    assert third.returned == first.new[1:]
    assert third.new == () and third.changed == ()
    two = next(r for r in all_releases(store) if r.draft.title == "Two")
    assert two.present and two.first_seen == clock.now - timedelta(seconds=120)
    assert two.updated == two.first_seen  # unchanged content keeps its updated time


def test_whitespace_only_edit_is_not_a_change(store: Store, seed_dir: Path, clock: Clock) -> None:
    (seed_dir / "a.txt").write_text(release_text("One", body="A  b\nc."), encoding="utf-8")
    sync(store, seed_dir, clock=clock)
    clock.advance()
    (seed_dir / "a.txt").write_text(
        "\r\n" + release_text("One", body="A b\n\n\n c. ").replace("\n", "\r\n"), encoding="utf-8"
    )
    report = sync(store, seed_dir, clock=clock)
    assert report.files_read == 1 and report.changed == ()


def test_updated_strictly_increases_within_one_second(store: Store, seed_dir: Path) -> None:
    fixed = datetime(2026, 1, 1, 12, 0, 0, 100, tzinfo=UTC)
    (seed_dir / "a.txt").write_text(release_text("One", body="v1"), encoding="utf-8")
    sync(store, seed_dir, clock=lambda: fixed)
    first = all_releases(store)[0].updated
    (seed_dir / "a.txt").write_text(release_text("One", body="v2 longer"), encoding="utf-8")
    sync(store, seed_dir, clock=lambda: fixed)
    assert all_releases(store)[0].updated > first


def test_copy_with_more_text_wins_whatever_the_file_names(
    make_store: Callable[[], Store], tmp_path: Path
) -> None:
    full = release_text("Same", body="The whole story, with its ending.")
    cut = release_text("Same", body="The whole story, with")
    results = []
    for names in (("a.txt", "b.txt"), ("b.txt", "a.txt")):
        seeds = tmp_path / "-".join(names)
        seeds.mkdir()
        (seeds / names[0]).write_text(full, encoding="utf-8")
        (seeds / names[1]).write_text(cut, encoding="utf-8")
        one = make_store()
        sync(one, seeds)
        (release,) = all_releases(one)
        results.append(release)
    assert results[0].id == results[1].id
    assert results[0].draft.paragraphs == results[1].draft.paragraphs
    assert results[0].draft.paragraphs == ("The whole story, with its ending.",)


def test_bad_file_costs_only_itself(store: Store, real_seed_dir: Path) -> None:
    (real_seed_dir / "broken.txt").write_bytes(b"\xff\xfe\x00garbage\x00" * 3 + b"\n\xc3(")
    (real_seed_dir / "notes.txt").write_text("Just some notes, no releases.\n", encoding="utf-8")
    report = sync(store, real_seed_dir)
    assert report.ok
    assert len(present_titles(store)) == 10
    paths = {p.path for p in report.problems}
    assert paths == {"broken.txt", "notes.txt"}
    assert {(p.path, p.line) for p in store.problems()} >= {("notes.txt", 1)}


def test_ignored_names(store: Store, seed_dir: Path) -> None:
    (seed_dir / ".hidden.txt").write_text(release_text("Hidden"), encoding="utf-8")
    (seed_dir / "other.md").write_text(release_text("Markdown"), encoding="utf-8")
    (seed_dir / "sub.txt").mkdir()
    (seed_dir / "sub.txt" / "x.txt").write_text(release_text("Nested"), encoding="utf-8")
    (seed_dir / "ok.txt").write_text(release_text("Visible"), encoding="utf-8")
    sync(store, seed_dir)
    assert present_titles(store) == {"Visible"}


def test_symlink_outside_is_refused_inside_is_followed(
    store: Store, seed_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(release_text("Secret"), encoding="utf-8")
    (seed_dir / "escape.txt").symlink_to(outside)
    (seed_dir / "real.txt").write_text(release_text("Inside"), encoding="utf-8")
    (seed_dir / "alias.txt").symlink_to(seed_dir / "real.txt")
    (seed_dir / "dangling.txt").symlink_to(seed_dir / "missing")
    report = sync(store, seed_dir)
    assert present_titles(store) == {"Inside"}
    messages = {p.path: p.message for p in report.problems}
    assert "outside the seed directory" in messages["escape.txt"]
    assert "dangling" in messages["dangling.txt"]


def test_file_changing_while_read_keeps_its_last_good_content(
    store: Store, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = seed_dir / "a.txt"
    target.write_text(release_text("One") + release_text("Two"), encoding="utf-8")
    sync(store, seed_dir)
    target.write_text(release_text("One"), encoding="utf-8")  # a writer is half-way
    real_fstat = os.fstat
    calls = {"n": 0}

    def moving_fstat(fd: int) -> os.stat_result:
        # The second fstat (after reading) sees the file grown: the writer went on.
        calls["n"] += 1
        result = real_fstat(fd)
        if calls["n"] == 2:
            values = list(result)
            values[6] += 10  # st_size
            return os.stat_result(values)
        return result

    monkeypatch.setattr(scan.os, "fstat", moving_fstat)
    report = sync(store, seed_dir)
    monkeypatch.undo()
    assert any("changed while being read" in p.message for p in report.problems)
    assert present_titles(store) == {"One", "Two"}  # nothing published is lost
    assert report.gone == ()
    # The next sync reads the file again and sees the half-written state for what it is.
    again = sync(store, seed_dir)
    assert again.files_read == 1 and len(again.gone) == 1


def test_vanished_file_between_listing_and_reading(
    store: Store, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (seed_dir / "a.txt").write_text(release_text("Stays"), encoding="utf-8")
    (seed_dir / "b.txt").write_text(release_text("Vanishes"), encoding="utf-8")
    real_iter = scan.iter_seeds

    def list_then_delete(seed_dir: Path, *args: Any) -> Iterator[object]:
        for found in real_iter(seed_dir, *args):
            if isinstance(found, scan.SeedFile) and found.name == "b.txt":
                (seed_dir / "b.txt").unlink()  # listed (and stat'ed), then gone
            yield found

    monkeypatch.setattr(scan, "iter_seeds", list_then_delete)
    report = sync(store, seed_dir)
    assert present_titles(store) == {"Stays"}
    assert any(p.path == "b.txt" and "vanished" in p.message for p in report.problems)


def test_a_file_unreadable_after_a_parser_upgrade_keeps_its_releases(
    store: Store, seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New parser or topic rules make every file unread; one that cannot be read then
    (here: grown over the size limit) still serves what it held, like any file a writer
    is busy with, instead of its releases leaving every feed until it can be read."""
    (seed_dir / "a.txt").write_text(release_text("Kept"), encoding="utf-8")
    (seed_dir / "b.txt").write_text(release_text("Other"), encoding="utf-8")
    sync(store, seed_dir)
    (seed_dir / "a.txt").write_text(release_text("Kept", body="x" * 5000), encoding="utf-8")
    monkeypatch.setattr(sync_module, "CONTENT_VERSION", sync_module.CONTENT_VERSION + "-next")
    report = sync(store, seed_dir, max_file_bytes=1000)
    assert report.ok and report.gone == () and report.files_read == 1
    assert [p.path for p in report.problems] == ["a.txt"]
    assert "FEEDS_MAX_FILE_BYTES" in report.problems[0].message
    assert present_titles(store) == {"Kept", "Other"}
    # Once it can be read, it is read under the new rules.
    again = sync(store, seed_dir)
    assert again.files_read == 1 and again.problems == ()
    assert len(again.changed) == 1 and present_titles(store) == {"Kept", "Other"}


def test_oversized_file_is_skipped_with_a_problem(store: Store, seed_dir: Path) -> None:
    (seed_dir / "big.txt").write_text(release_text("Big", body="x" * 5000), encoding="utf-8")
    (seed_dir / "small.txt").write_text(release_text("Small"), encoding="utf-8")
    report = sync(store, seed_dir, max_file_bytes=1000)
    assert present_titles(store) == {"Small"}
    (problem,) = report.problems
    assert problem.path == "big.txt" and "FEEDS_MAX_FILE_BYTES" in problem.message


def test_missing_seed_directory_fails_the_sync_and_keeps_the_last_good_state(
    store: Store, real_seed_dir: Path
) -> None:
    sync(store, real_seed_dir)
    before = everything(store)
    moved = real_seed_dir.rename(real_seed_dir.with_name("elsewhere"))
    report = sync(store, real_seed_dir)
    assert not report.ok
    assert report.error == (
        f"seed directory unavailable: {real_seed_dir}: No such file or directory"
    )
    assert everything(store) == before  # not "every release is gone"
    assert store.last_syncs(1)[0]["error"] == report.error
    moved.rename(real_seed_dir)
    assert sync(store, real_seed_dir).ok


def test_failed_sync_keeps_the_last_good_state(
    store: Store, real_seed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(store, real_seed_dir)
    before = everything(store)
    (real_seed_dir / "new.txt").write_text(release_text("New"), encoding="utf-8")

    def explode(*args: object) -> object:
        raise RuntimeError("disk on fire")

    # Fails inside the transaction, after the new file's content was written.
    for backend in (sqlite_store, pg_store):
        monkeypatch.setattr(backend._Session, "settle", explode)
    report = sync(store, real_seed_dir)
    assert not report.ok and "disk on fire" in (report.error or "")
    assert everything(store) == before
    assert store.last_syncs(1)[0]["ok"] is False
    monkeypatch.undo()
    again = sync(store, real_seed_dir)  # nothing of the failed sync stuck: it all happens now
    assert again.ok and again.count("new") == 1 and again.files_read == 1


def test_store_rejects_a_newer_schema(tmp_path: Path) -> None:
    from feeds.store import StoreError

    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        Store(path).initialize(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.sqlite_only
def test_store_is_wal_and_versioned(store: Store, real_seed_dir: Path) -> None:
    sync(store, real_seed_dir)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_real_seed_is_the_default_data() -> None:
    assert REAL_SEED.exists()
    shared = REAL_SEED.parent.parent.parent / "shared" / "seeds" / REAL_SEED.name
    if shared.exists():
        assert shared.read_bytes() == REAL_SEED.read_bytes()


@pytest.mark.parametrize(
    "damage",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 8000],
    ids=["garbage", "truncated-header"],
)
def test_corrupt_database_is_rebuilt_with_the_same_ids(
    tmp_path: Path, real_seed_dir: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite3"
    first = Store(path)
    first.initialize(datetime(2026, 1, 1, tzinfo=UTC))
    sync(first, real_seed_dir)
    ids = {r.id for r in all_releases(first)}
    old_generation = first.generation()
    first.close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.write_bytes(damage)

    rebuilt = Store(path)
    rebuilt.initialize(datetime(2026, 1, 2, tzinfo=UTC))
    sync(rebuilt, real_seed_dir)
    assert {r.id for r in all_releases(rebuilt)} == ids
    assert rebuilt.generation() != old_generation  # no other process may mistake it
    assert "rebuilding from the seeds" in caplog.text
    assert list(tmp_path.glob("db.sqlite3.corrupt-*"))


@pytest.mark.parametrize("version", [1, SCHEMA_VERSION])
def test_database_with_missing_tables_is_rebuilt(
    tmp_path: Path, real_seed_dir: Path, caplog: pytest.LogCaptureFixture, version: int
) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:  # a known version number, wrong contents
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(f"PRAGMA user_version = {version}")
    store = Store(path)
    store.initialize(datetime(2026, 1, 1, tzinfo=UTC))
    report = sync(store, real_seed_dir)
    assert report.ok and report.count("new") == 10
    assert "tables missing" in caplog.text


def test_the_sync_log_line_counts_problems_and_warnings_apart() -> None:
    """``problems=`` counts what was not published; ``warnings=`` the near-misses."""
    text = "Preamble\n\nTitle\n\nSource: NATO\n\n31 February 2026\n\nBody.\n\nSource Europol\n"
    _, problems = parse.parse(text, "a.txt")
    at = datetime(2024, 3, 1, tzinfo=UTC)
    report = SyncReport(at, at, True, files_seen=1, problems=tuple(problems))
    assert "problems=1 warnings=2 " in report.summary()
