"""Several processes, one store: syncs take turns and the store stays whole.

Covers DESIGN.md "Running it": ``gunicorn wsgi:app`` with several workers, each
running the scheduler, must neither run overlapping syncs nor corrupt the
store, and readers keep getting answers while seed files keep arriving.

- ``gunicorn -w 4 -k gthread`` syncing every 0.2 s while new seed files land
  every 0.1 s and clients keep reading: every response is 200, afterwards the
  SQLite file passes ``integrity_check``, release numbers are 1..N without
  gaps, every release of every seed file is stored and served exactly once, no
  sync failed and the logged syncs never overlap;
- four plain processes calling :func:`feeds.sync.locked_sync` in a loop on one
  database while seed files keep arriving: no sync fails, their syncs (timed
  by the clock each sync reads while it holds the lock) never overlap, and the
  final store holds each release once.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from .servers import (
    REAL_SEED,
    REAL_SEED_RELEASES,
    Server,
    Servers,
    clean_environ,
    wait_until,
)

pytestmark = pytest.mark.e2e

#: Agencies of the generated releases: known ones (with a channel too) and a new one.
AGENCIES = ("Europol", "Interpol (news and events)", "Frontex", "Eurojust")
MONTHS = ("January", "March", "May", "July", "September", "November")


def load_file(number: int) -> tuple[str, list[tuple[str, str]]]:
    """Seed text of generated file ``number`` with its (agency slug, title) pairs."""
    parts: list[str] = []
    expected: list[tuple[str, str]] = []
    for half in range(2):
        agency = AGENCIES[(number + half) % len(AGENCIES)]
        title = f"Load test release {number:03d}-{half}: operation against organised crime"
        date_line = f"{number % 28 + 1} {MONTHS[number % len(MONTHS)]} 2024"
        parts += [
            title,
            f"Source: {agency}",
            *([date_line] if half == 0 else []),
            f"Investigators from {number % 9 + 2} countries took part in file {number}.",
            "  • 12 arrests\n  • 4 searches",
        ]
        expected.append((agency.split(" (")[0].lower(), title))
    return "\n\n".join(parts) + "\n", expected


def write_load_files(seeds: Path, count: int, every: float) -> list[tuple[str, str]]:
    """Write ``count`` new seed files, one every ``every`` seconds; their releases."""
    expected: list[tuple[str, str]] = []
    for number in range(count):
        text, releases = load_file(number)
        (seeds / f"load-{number:03d}.txt").write_bytes(text.encode("utf-8"))
        expected += releases
        time.sleep(every)
    return expected


def real_releases(server: Server) -> list[tuple[str, str]]:
    """(agency slug, title) of the releases the server serves right now."""
    feed = feedparser.parse(server.get("/feeds/all.atom").body)
    assert feed.bozo == 0
    return [(e.tags[0].term, e.title) for e in feed.entries]


def check_store(database: Path, expected: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The store is whole and holds each expected release once; returns the sync log."""
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        seqs = [r[0] for r in conn.execute("SELECT seq FROM releases ORDER BY seq")]
        rows = conn.execute("SELECT agency_slug, title, present FROM releases").fetchall()
        syncs = [
            {**json.loads(r[1]), "ok_column": r[0]}
            for r in conn.execute("SELECT ok, report FROM syncs ORDER BY id")
        ]
    assert seqs == list(range(1, len(seqs) + 1)), "release numbers have gaps or repeats"
    stored = Counter((slug, title) for slug, title, _ in rows)
    assert [k for k, n in stored.items() if n > 1] == [], "a release is stored twice"
    assert set(stored) == set(expected), (
        f"missing: {sorted(set(expected) - set(stored))[:5]}, "
        f"unexpected: {sorted(set(stored) - set(expected))[:5]}"
    )
    assert all(present for _, _, present in rows), "a release that is in the seeds is gone"
    assert len(seqs) == len(expected)
    return syncs


def overlaps(intervals: list[tuple[float, float, str]]) -> list[str]:
    """Neighbours (by start) among intervals (start, end, owner) that overlap in time.

    Empty exactly when no two intervals overlap.
    """
    ordered = sorted(intervals)
    return [
        f"{a[2]} [{a[0]}, {a[1]}] overlaps {b[2]} [{b[0]}, {b[1]}]"
        for a, b in zip(ordered, ordered[1:], strict=False)
        if b[0] < a[1]
    ]


class Readers:
    """Threads that keep reading the service and remember every status."""

    PATHS = ("/feeds/all.atom", "/healthz", "/", "/feeds/europol.atom", "/feeds/interpol.atom")

    def __init__(self, server: Server, threads: int) -> None:
        self.server = server
        self.statuses: Counter[tuple[str, int | str]] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, offset: int) -> None:
        number = offset
        while not self._stop.is_set():
            path = self.PATHS[number % len(self.PATHS)]
            number += 1
            try:
                status: int | str = self.server.get(path, timeout=10).status
            except OSError as exc:
                status = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.statuses[(path, status)] += 1

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        assert not any(t.is_alive() for t in self._threads), "a reader thread hung"


def test_gunicorn_workers_share_one_store(tmp_path: Path, pool: Servers) -> None:
    """Four workers, each with its scheduler, under reads while seed files keep arriving."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    database = tmp_path / "db" / "feeds.sqlite3"
    server = pool.gunicorn(
        {
            "FEEDS_SEED_DIR": str(seeds),
            "FEEDS_DATABASE": str(database),
            "FEEDS_SYNC_INTERVAL": "0.2",
            "FEEDS_PAGE_SIZE": "1000",  # the subscription document holds every release
        },
        "-w",
        "4",
        "-k",
        "gthread",
        "--threads",
        "4",
    )
    expected = list(REAL_SEED_RELEASES)
    assert Counter(real_releases(server)) == Counter(expected)

    with Readers(server, threads=3) as readers:
        expected += write_load_files(seeds, count=30, every=0.1)
        health = server.wait_for_sync_after(datetime.now(UTC))
        # One more read of every document after the last sync, still under load.
        time.sleep(0.5)
    failures = {k: n for k, n in readers.statuses.items() if k[1] != 200}
    assert failures == {}, f"responses other than 200 under load: {failures}\n{server.log()}"
    assert sum(readers.statuses.values()) > 50, readers.statuses

    assert health["status"] == "ok", health
    assert health["counts"]["releases"] == len(expected), health["counts"]
    served = real_releases(server)
    assert Counter(served) == Counter(expected)
    assert len(served) == len(expected) == len(REAL_SEED_RELEASES) + 60

    # Shutting down is covered by test_e2e.py::test_stopping_the_service_logs_no_errors.
    assert server.errors() == [], server.log()
    assert server.stop() == 0, server.log()

    syncs = check_store(database, expected)
    assert [s for s in syncs if not (s["ok"] and s["ok_column"])] == []
    # The scheduler really ran (initial syncs of four workers plus scheduled ones).
    assert len(syncs) >= 10, len(syncs)
    logged = [
        (
            datetime.fromisoformat(s["started"]).timestamp(),
            datetime.fromisoformat(s["finished"]).timestamp(),
            f"sync {i}",
        )
        for i, s in enumerate(syncs)
    ]
    assert overlaps(logged) == [], "logged syncs overlap"


#: One syncing process: waits for the go file, then calls locked_sync in a loop. Each
#: sync reads the clock it is given when it starts and when it finishes, both while it
#: holds the lock; the first and last reading of one call bound its critical section.
SYNCER = r"""
import json, sys, time, traceback
from pathlib import Path
from feeds.config import load
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import locked_sync, utcnow

seed_dir, database, out, ready, go, seconds = sys.argv[1:]
config = load(environ={}, overrides={"seed_dir": seed_dir, "database": database})
marks = []
intervals = []
errors = []

def clock():
    marks.append(time.monotonic_ns())
    return utcnow()

store = Store(config.database)
store.initialize(utcnow())
Path(ready).touch()
deadline = time.monotonic() + 20
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal within 20 s")
    time.sleep(0.005)
end = time.monotonic() + float(seconds)
while time.monotonic() < end:
    marks.clear()
    try:
        report = locked_sync(store, config.seed_dir, clock=clock)
        if not report.ok:
            errors.append(report.error)
    except Exception:
        errors.append(traceback.format_exc())
    if len(marks) < 2:
        errors.append(f"a sync read its clock {len(marks)} times")
    else:
        intervals.append((marks[0], marks[-1]))
Path(out).write_text(json.dumps({"intervals": intervals, "errors": errors}))
"""


def test_locked_sync_from_four_processes_never_overlaps(tmp_path: Path) -> None:
    """The sync lock alone, without gunicorn or APScheduler: syncs take turns."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    database = tmp_path / "db" / "feeds.sqlite3"
    go = tmp_path / "go"
    processes: list[subprocess.Popen[bytes]] = []
    outputs = [tmp_path / f"syncer-{i}.json" for i in range(4)]
    readies = [tmp_path / f"syncer-{i}.ready" for i in range(4)]
    logs = [tmp_path / f"syncer-{i}.log" for i in range(4)]
    try:
        for out, ready, log in zip(outputs, readies, logs, strict=True):
            with open(log, "wb") as handle:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", SYNCER]
                        + [str(seeds), str(database), str(out), str(ready), str(go), "2.5"],
                        cwd=tmp_path,
                        env=clean_environ({}),
                        stdin=subprocess.DEVNULL,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )

        def logs_text() -> str:
            return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in logs)

        def all_ready() -> bool | None:
            if any(p.poll() is not None for p in processes):
                raise AssertionError(f"a syncer exited early\n{logs_text()}")
            return True if all(r.exists() for r in readies) else None

        wait_until(all_ready, "four syncers to be ready", details=logs_text)
        go.touch()
        expected = write_load_files(seeds, count=15, every=0.1)
        last_write = time.monotonic_ns()
        for process in processes:
            process.wait(timeout=20)
        assert [p.returncode for p in processes] == [0, 0, 0, 0], logs_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    results = [json.loads(out.read_text()) for out in outputs]
    assert [r["errors"] for r in results] == [[], [], [], []]
    intervals = [
        (start, end, f"process {i}")
        for i, result in enumerate(results)
        for start, end in result["intervals"]
    ]
    assert all(len(r["intervals"]) >= 3 for r in results), [len(r["intervals"]) for r in results]
    assert overlaps(intervals) == []
    assert any(start > last_write for start, _, _ in intervals), "no sync after the last write"
    check_store(database, list(REAL_SEED_RELEASES) + expected)
