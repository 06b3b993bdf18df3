"""Crash safety: a sync killed at any moment loses nothing and leaves the store whole.

Covers the issue "Never falls over, never loses a release" against DESIGN.md
("Identity", "Running it") and the README's deployment promise: each sync is
one SQLite transaction, so a process killed in the middle of one leaves the
store exactly as it was before that sync or exactly as it is after it, and the
next sync finishes the work without repeating or losing anything.

- ``feeds sync`` (a real process on a large generated seed directory) is
  SIGKILLed at three moments: while it reads the seed files, while it writes
  its transaction, and while SQLite copies the committed transaction into the
  database file (checkpoint). After each kill the file passes
  ``PRAGMA integrity_check`` and holds exactly the state before the sync or
  exactly the state after it (after, for the checkpoint kill: the commit was
  done); the next ``feeds sync`` completes, every release of every file is
  stored once and present, and no release stored before the crash changed its
  ID, number, first-seen time or ``updated``.
- ``feeds serve`` killed as a whole process group in the middle of a scheduled
  sync: the store is whole and before/after as above; after a restart and a
  sync, ``/healthz`` is ``ok`` and the combined feed's archive pages and
  subscription document serve every release exactly once with its stored ID.
- A database deleted, overwritten with garbage, or with garbage behind an
  intact first page, while the service is stopped: the restarted service
  (two workers) serves the same entry IDs, and its log says the store was
  created (deleted) or that it is rebuilding from the seeds (damaged).
- Four processes opening one damaged store at the same moment, as gunicorn's
  workers do at boot: none fails, all end up on one new database at the
  configured path (none keeps a renamed or deleted file open, which would make
  it serve and sync a store of its own), and the damaged file is kept aside.
- The before/after check itself catches an altered or partial store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from .servers import FEEDS, REAL_SEED, Server, Servers, clean_environ, wait_until

pytestmark = pytest.mark.e2e

#: The generated seed directory: FILES files of RELEASES releases; the first sync sees FIRST.
FILES = 100
FIRST = 20
RELEASES = 100
#: The server test serves the first SERVED files (fewer: it reads every release back).
SERVED = 50
AGENCIES = ("Europol", "Interpol (news and events)", "NATO", "Eurojust", "Frontex")
MONTHS = ("January", "March", "May", "July", "September", "November")
#: Longest a whole `feeds sync` of the generated directory may take on a slow machine.
SYNC_TIMEOUT = 120.0
#: Feed pages hold this many entries, so that few documents hold everything.
PAGE_SIZE = 1000
MIB = 1024 * 1024

Key = tuple[str, str]  # (agency slug, title)


def slug(agency: str) -> str:
    return agency.split(" (")[0].lower()


def seed_file(number: int) -> tuple[str, list[Key]]:
    """Text of generated seed file ``number`` and the (slug, title) of its releases."""
    parts: list[str] = []
    keys: list[Key] = []
    for n in range(RELEASES):
        agency = AGENCIES[(number + n) % len(AGENCIES)]
        title = f"Release {number:03d}-{n:03d}"
        parts += [
            title,
            f"Source: {agency}",
            f"{(number + n) % 28 + 1} {MONTHS[n % len(MONTHS)]} 2024",
            f"Investigators from {n % 9 + 2} countries took part in operation {number}-{n}, "
            "which targeted a criminal network active across several Member States. " * 2,
            "The action day was coordinated from headquarters, where analysts cross-checked "
            "the information gathered during the searches in real time.",
            "  • 12 arrests\n  • 4 searches\n  • 3 million euros in assets seized",
            f"Further details on case {number}-{n} will follow as the investigation continues.",
        ]
        keys.append((slug(agency), title))
    return "\n\n".join(parts) + "\n", keys


def write_seeds(directory: Path, numbers: range) -> list[Key]:
    keys: list[Key] = []
    for number in numbers:
        text, found = seed_file(number)
        (directory / f"dump-{number:03d}.txt").write_text(text, encoding="utf-8")
        keys += found
    return keys


# -- the store, read with sqlite3 -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """What a reader relies on for one stored release."""

    id: str
    seq: int
    first_seen: int
    updated: int
    content_hash: str
    present: bool


@dataclass(frozen=True, slots=True)
class State:
    """Everything a sync may change, read from the SQLite file in one transaction."""

    releases: dict[Key, Row]
    duplicates: list[Key]
    agencies: list[tuple[Any, ...]]
    files: list[tuple[Any, ...]]
    meta: list[tuple[Any, ...]]
    last_sync: int
    """Number of the last logged sync (a sync that changed nothing logs one too)."""

    def same_as(self, other: State) -> bool:
        """The same data, whatever syncs that changed nothing have logged since."""
        return (
            self.releases == other.releases
            and self.agencies == other.agencies
            and self.files == other.files
            and self.meta == other.meta
        )


def read_state(database: Path) -> State:
    """The store's state; the file must pass ``integrity_check`` and ``foreign_key_check``."""
    assert database.exists(), f"{database} is missing"
    with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], f"{database} is damaged: {integrity[:5]}"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # The full-text index must agree with the releases it indexes (raises if not).
        conn.execute("INSERT INTO releases_fts (releases_fts) VALUES ('integrity-check')")
        conn.execute("BEGIN")
        rows = conn.execute(
            "SELECT id, seq, agency_slug, title, first_seen, updated, content_hash, present"
            " FROM releases"
        ).fetchall()
        agencies = conn.execute("SELECT * FROM agencies ORDER BY slug").fetchall()
        files = conn.execute("SELECT * FROM files ORDER BY name").fetchall()
        meta = conn.execute("SELECT * FROM meta ORDER BY key").fetchall()
        last_sync = conn.execute("SELECT COALESCE(MAX(id), 0) FROM syncs").fetchone()[0]
        conn.execute("COMMIT")
    releases: dict[Key, Row] = {}
    counts: Counter[Key] = Counter()
    for rid, seq, slug, title, first_seen, updated, content_hash, present in rows:
        key = (slug, title)
        counts[key] += 1
        releases[key] = Row(rid, seq, first_seen, updated, content_hash, bool(present))
    duplicates = [k for k, n in counts.items() if n > 1]
    return State(releases, duplicates, agencies, files, meta, last_sync)


def read_state_of_copy(database: Path, into: Path) -> State:
    """:func:`read_state` of a copy of the files a killed process left behind.

    The copy (database and WAL, no shared-memory index) is recovered by this test's
    sqlite3; the original stays as it was, for the product to recover itself.
    """
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for suffix in ("", "-wal"):
        source = database.with_name(database.name + suffix)
        if source.exists():
            shutil.copyfile(source, into / (database.name + suffix))
    return read_state(into / database.name)


def after_problems(state: State, before: State, expected: list[Key]) -> list[str]:
    """How ``state`` falls short of "every expected release once, the earlier ones untouched"."""
    problems: list[str] = []
    if state.duplicates:
        problems.append(f"stored twice: {state.duplicates[:5]}")
    missing = sorted(set(expected) - set(state.releases))
    if missing:
        problems.append(f"{len(missing)} releases missing, e.g. {missing[:5]}")
    unexpected = sorted(set(state.releases) - set(expected))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected releases, e.g. {unexpected[:5]}")
    gone = sorted(k for k, r in state.releases.items() if not r.present)
    if gone:
        problems.append(f"{len(gone)} releases marked gone, e.g. {gone[:5]}")
    changed = [
        f"{k}: {r} -> {state.releases.get(k)}"
        for k, r in sorted(before.releases.items())
        if state.releases.get(k) != r
    ]
    if changed:
        problems.append(f"{len(changed)} earlier releases changed, e.g. {changed[:3]}")
    ids = Counter(r.id for r in state.releases.values())
    shared = [i for i, n in ids.items() if n > 1]
    if shared:
        problems.append(f"entry IDs shared by several releases: {shared[:5]}")
    seqs = sorted(r.seq for r in state.releases.values())
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append("release numbers have gaps or repeats")
    if state.last_sync <= before.last_sync:
        problems.append(f"no sync logged after the earlier state (last {state.last_sync})")
    return problems


def classify(state: State, before: State, expected: list[Key]) -> str:
    """``"before"`` or ``"after"``; fails if the store holds anything else (a partial sync)."""
    if state.same_as(before):
        return "before"
    problems = after_problems(state, before, expected)
    assert problems == [], "the store is neither the state before the sync nor after it:\n" + (
        "\n".join(problems)
    )
    return "after"


# -- processes ---------------------------------------------------------------------


def sync_environ(seeds: Path, database: Path) -> dict[str, str]:
    return clean_environ({"FEEDS_SEED_DIR": str(seeds), "FEEDS_DATABASE": str(database)})


def run_sync(seeds: Path, database: Path, log: Path) -> dict[str, int]:
    """``feeds sync`` to completion; its table as numbers (``releases new`` -> 12000, ...)."""
    with open(log, "ab") as err:
        done = subprocess.run(
            [str(FEEDS), "sync"],
            env=sync_environ(seeds, database),
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=SYNC_TIMEOUT,
            check=False,
        )
    output = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, f"feeds sync exited {done.returncode}\n{output}\n{tail(log)}"
    table = {}
    for line in output.splitlines():
        match = re.fullmatch(r"(\D+?)\s+(\d+)", line.strip())
        if match:
            table[match[1]] = int(match[2])
    return table


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return f"--- {path} ---\n" + path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return f"(no {path})"


def rchar(pid: int) -> int:
    """Bytes the process has read through read-like system calls so far."""
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return -1
    match = re.search(r"^rchar: (\d+)$", text, re.M)
    return int(match[1]) if match else -1


def file_mark(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of ``path``, None if it does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass(frozen=True, slots=True)
class Moment:
    """When to kill: a condition polled every couple of milliseconds."""

    name: str
    what: str
    make: Callable[[int, Path, int], Callable[[], bool]]
    """(pid, database, bytes of new seed files) -> the condition."""
    must_be: str | None
    """The only state allowed after the kill, if the moment implies one."""


def reading(pid: int, database: Path, new_bytes: int) -> Callable[[], bool]:
    """Half the new seed bytes read since the store was opened (its WAL file appeared)."""
    wal = database.with_name(database.name + "-wal")
    start: list[int] = []

    def check() -> bool:
        if not start:
            if wal.exists():
                start.append(rchar(pid))
            return False
        return rchar(pid) >= start[0] + new_bytes // 2

    return check


def writing(pid: int, database: Path, new_bytes: int) -> Callable[[], bool]:
    """The write-ahead log holds 2 MiB of the sync's transaction; the database file is untouched."""
    wal = database.with_name(database.name + "-wal")
    main = file_mark(database)

    def check() -> bool:
        mark = file_mark(wal)
        return mark is not None and mark[0] >= 2 * MIB and file_mark(database) == main

    return check


def checkpointing(pid: int, database: Path, new_bytes: int) -> Callable[[], bool]:
    """The database file itself changed: in WAL mode only a checkpoint of a commit writes it."""
    main = file_mark(database)

    def check() -> bool:
        return file_mark(database) != main

    return check


MOMENTS = (
    Moment("reading", "while reading the seed files", reading, None),
    Moment("writing", "while writing its transaction", writing, None),
    Moment("checkpointing", "while checkpointing its commit", checkpointing, "after"),
)


def kill_when(
    process: subprocess.Popen[bytes], condition: Callable[[], bool], timeout: float
) -> bool:
    """SIGKILL ``process`` as soon as ``condition`` holds; False if it ended before that."""
    deadline = time.monotonic() + timeout
    killed = False
    try:
        while process.poll() is None:
            if condition():
                process.send_signal(signal.SIGKILL)
                killed = True
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the condition did not hold within {timeout:.0f} s")
            time.sleep(0.001)
    finally:
        if process.poll() is None and not killed:
            process.kill()
        process.wait(timeout=15)
    return killed and process.returncode == -signal.SIGKILL


# -- fixtures ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    """A large seed directory and a store that has synced only its first part."""

    seeds: Path
    first_database: Path
    """A copy of the store after syncing the first FIRST files (closed, no WAL)."""
    first_keys: list[Key]
    keys: list[Key]
    new_bytes: int


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    if not Path("/proc/self/io").exists():
        pytest.skip("needs /proc/<pid>/io (Linux) to time the kills")
    root = tmp_path_factory.mktemp("corpus")
    seeds = root / "seeds"
    seeds.mkdir()
    database = root / "db" / "feeds.sqlite3"
    first_keys = write_seeds(seeds, range(FIRST))
    table = run_sync(seeds, database, root / "first-sync.log")
    assert table.get("releases new") == len(first_keys), table
    assert not database.with_name(database.name + "-wal").exists(), "feeds sync left a WAL"
    keys = first_keys + write_seeds(seeds, range(FIRST, FILES))
    new_bytes = sum((seeds / f"dump-{n:03d}.txt").stat().st_size for n in range(FIRST, FILES))
    return Corpus(seeds, database, first_keys, keys, new_bytes)


# -- tests -------------------------------------------------------------------------


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.name for m in MOMENTS])
def test_killed_sync_loses_nothing(corpus: Corpus, tmp_path: Path, moment: Moment) -> None:
    database = tmp_path / "db" / "feeds.sqlite3"
    database.parent.mkdir()
    before = read_state(corpus.first_database)
    assert set(before.releases) == set(corpus.first_keys)
    log = tmp_path / "sync.log"

    # Catching a short moment may take a second try; each try starts from the first part.
    attempts = 0
    killed = False
    while not killed and attempts < 3:
        attempts += 1
        for suffix in ("", "-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(corpus.first_database, database)
        with open(log, "ab") as err:
            process = subprocess.Popen(
                [str(FEEDS), "sync"],
                env=sync_environ(corpus.seeds, database),
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        condition = moment.make(process.pid, database, corpus.new_bytes)
        killed = kill_when(process, condition, SYNC_TIMEOUT)
        if not killed:
            assert process.returncode == 0, f"feeds sync exited {process.returncode}\n{tail(log)}"
    assert killed, f"{attempts} syncs ended before they could be killed {moment.what}"

    state = read_state_of_copy(database, tmp_path / "copy")
    found = classify(state, before, corpus.keys)
    print(f"killed {moment.what} on attempt {attempts}: the store held the state {found} it")
    if found == "before":
        assert state.last_sync == before.last_sync, "the killed sync logged itself"
    if moment.must_be is not None:
        assert found == moment.must_be, (
            f"killed {moment.what} (attempt {attempts}), the store holds the state {found} "
            f"the sync, expected {moment.must_be}"
        )

    # The next sync recovers the files the killed one left and finishes its work once.
    table = run_sync(corpus.seeds, database, log)
    new = len(corpus.keys) - len(corpus.first_keys)
    assert table.get("releases new") == (new if found == "before" else 0), table
    assert table.get("releases changed") == 0 and table.get("releases gone") == 0, table
    final = read_state(database)
    assert after_problems(final, before, corpus.keys) == []
    if found == "after":
        assert final.releases == state.releases, "a completed sync was applied twice"


def test_classify_rejects_an_altered_or_partial_store(corpus: Corpus, tmp_path: Path) -> None:
    """The check itself: a store that is neither before nor after a sync is caught."""
    database = tmp_path / "feeds.sqlite3"
    shutil.copyfile(corpus.first_database, database)
    before = read_state(database)
    assert classify(read_state(database), before, corpus.keys) == "before"
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("UPDATE releases SET first_seen = first_seen - 1 WHERE seq = 1")
    with pytest.raises(AssertionError, match="earlier releases changed"):
        classify(read_state(database), before, corpus.first_keys)
    shutil.copyfile(corpus.first_database, database)
    with closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DELETE FROM releases WHERE seq = (SELECT MAX(seq) FROM releases)")
    with pytest.raises(AssertionError, match="1 releases missing"):
        classify(read_state(database), before, corpus.first_keys)


def test_server_killed_mid_sync_loses_nothing(
    corpus: Corpus, tmp_path: Path, pool: Servers
) -> None:
    # Two versions of the seed directory (hard links: the same files, the same fingerprints),
    # swapped by one atomic rename of a symlink, so that every sync sees one or the other.
    versions = tmp_path / "versions"
    for name, count in (("first", FIRST), ("all", SERVED)):
        (versions / name).mkdir(parents=True)
        for number in range(count):
            file = f"dump-{number:03d}.txt"
            os.link(corpus.seeds / file, versions / name / file)
    seeds = tmp_path / "seeds"
    seeds.symlink_to(versions / "first")
    database = tmp_path / "db" / "feeds.sqlite3"
    wal = database.with_name(database.name + "-wal")
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(database),
        "FEEDS_SYNC_INTERVAL": "1",
        "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
        "FEEDS_WORKERS": "2",
    }
    server = pool.feeds_serve(settings, name="first run")
    assert server.healthz()["counts"]["releases"] == len(corpus.first_keys)
    before = read_state(database)
    assert set(before.releases) == set(corpus.first_keys)
    keys = corpus.keys[: SERVED * RELEASES]
    high_water = file_mark(wal)
    assert high_water is not None, "no WAL beside a database in use"

    swap = tmp_path / "seeds.new"
    swap.symlink_to(versions / "all")
    os.replace(swap, seeds)

    def mid_sync() -> bool | None:
        assert server.process.poll() is None, f"the server died\n{server.log()}"
        mark = file_mark(wal)
        return True if mark is not None and mark[0] >= high_water[0] + 2 * MIB else None

    wait_until(mid_sync, "a sync writing the new files", timeout=60, interval=0.002)
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=15)
    wait_until(lambda: None if group_alive(server.process.pid) else True, "the group to end")
    server.stop()

    state = read_state_of_copy(database, tmp_path / "copy")
    found = classify(state, before, keys)
    print(f"killed the server mid-sync: the store held the state {found} the sync")

    restarted = pool.feeds_serve(settings, name="restart after the kill")
    health = restarted.wait_for_sync_after(datetime.now(UTC), timeout=60)
    assert health["status"] == "ok", health
    assert health["counts"]["releases"] == len(keys), (found, health["counts"])
    assert health["problems"] == {}, health["problems"]
    final = read_state(database)
    assert after_problems(final, before, keys) == [], f"killed with the state {found}"

    served = served_releases(restarted, len(keys))
    assert sorted(served) == sorted(keys)
    wrong = [k for k, rid in served.items() if final.releases[k].id != rid]
    assert wrong == [], f"served IDs differ from the stored ones: {wrong[:5]}"
    assert restarted.stop() == 0, restarted.log()
    log = restarted.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and "level=ERROR" not in log, restarted.log()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def served_releases(server: Server, total: int) -> dict[Key, str]:
    """Every release the combined feed serves, by (slug, title), with its entry ID.

    Reads the archive pages (JSON Feed, cheap to parse) and checks the subscription
    document (Atom, read with feedparser) against them. Each release must be on
    exactly one archive page.
    """
    pages = total // PAGE_SIZE
    assert total % PAGE_SIZE == 0, "the test expects full archive pages only"
    found: dict[Key, str] = {}
    seen: Counter[Key] = Counter()
    for page in range(1, pages + 1):
        reply = server.get(f"/feeds/all/archive/{page}.json", timeout=60)
        assert reply.status == 200, f"archive page {page} answered {reply.status}"
        items = json.loads(reply.body)["items"]
        assert len(items) == PAGE_SIZE, f"archive page {page} has {len(items)} items"
        for item in items:
            key = (item["tags"][0], item["title"])
            seen[key] += 1
            found[key] = item["id"]
    assert [k for k, n in seen.items() if n > 1] == [], "a release is on two archive pages"
    assert server.get(f"/feeds/all/archive/{pages + 1}.json").status == 404

    reply = server.get("/feeds/all.atom", timeout=60)
    assert reply.status == 200, reply.status
    feed = feedparser.parse(reply.body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert len(feed.entries) == PAGE_SIZE
    ids = {e.id for e in feed.entries}
    assert len(ids) == PAGE_SIZE and ids <= set(found.values())
    return found


def small_seeds(seeds: Path) -> None:
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    for number in (900, 901):
        text, _ = seed_file(number)
        (seeds / f"dump-{number}.txt").write_text(text, encoding="utf-8")


def atom_ids(server: Server) -> dict[str, str]:
    """Title -> entry ID of every entry in ``/feeds/all.atom``."""
    reply = server.get("/feeds/all.atom")
    assert reply.status == 200, reply.status
    feed = feedparser.parse(reply.body)
    assert feed.bozo == 0, feed.get("bozo_exception")
    result = {e.title: e.id for e in feed.entries}
    assert len(result) == len(feed.entries) == 10 + 2 * RELEASES
    return result


def delete(database: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def garbage(database: Path) -> None:
    size = database.stat().st_size
    database.write_bytes((b"not a database \x00\xff" * (size // 17 + 1))[:size])


def damaged_pages(database: Path) -> None:
    """Page 1 (header and schema) intact, every other page garbage."""
    data = bytearray(database.read_bytes())
    data[4096:] = (b"\xde\xad\xbe\xef" * (len(data) // 4))[: len(data) - 4096]
    database.write_bytes(bytes(data))


def test_lost_or_damaged_database_is_rebuilt_with_the_same_ids(
    tmp_path: Path, pool: Servers
) -> None:
    seeds = tmp_path / "seeds"
    small_seeds(seeds)
    database = tmp_path / "db" / "feeds.sqlite3"
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(database),
        "FEEDS_SYNC_INTERVAL": "3600",
        "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
        "FEEDS_WORKERS": "2",
    }
    first = pool.feeds_serve(settings, name="first run")
    ids = atom_ids(first)
    assert first.stop() == 0, first.log()

    damages: list[tuple[Callable[[Path], None], str]] = [
        (delete, "store created"),
        (garbage, "rebuilding from the seeds"),
        (damaged_pages, "rebuilding from the seeds"),
    ]
    for damage, message in damages:
        assert not database.with_name(database.name + "-wal").exists(), "a clean stop left a WAL"
        damage(database)
        server = pool.feeds_serve(settings, name=f"restart after {damage.__name__}")
        again = atom_ids(server)
        assert server.stop() == 0, server.log()
        assert again == ids, f"entry IDs changed after {damage.__name__}"
        log = server.log_path.read_text(encoding="utf-8", errors="replace")
        lines = [line for line in log.splitlines() if message in line]
        assert lines, f"no log line with {message!r} after {damage.__name__}\n{server.log()}"
        if damage is delete:
            assert "rebuilding" not in log, server.log()
        assert "Traceback" not in log, server.log()
        assert read_state(database).duplicates == []


#: One process starting like a gunicorn worker: waits for the go file, opens the store,
#: then reports errors and which files its connection really has open.
STARTER = r"""
import json, os, sys, time
from pathlib import Path
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import utcnow

database, ready, go, out = sys.argv[1:]
store = Store(Path(database))
Path(ready).touch()
deadline = time.monotonic() + 20
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal within 20 s")
    time.sleep(0.0005)
result = {}
try:
    store.initialize(utcnow())
    result["counts"] = store.counts()
except Exception as exc:
    result["error"] = f"{type(exc).__name__}: {exc}"
links = []
for fd in os.listdir("/proc/self/fd"):
    try:
        links.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass  # the listing's own descriptor, closed by now
result["open"] = sorted(link for link in links if Path(database).name in link)
Path(out).write_text(json.dumps(result))
"""


def test_workers_starting_together_on_a_damaged_store_share_one_new_store(
    corpus: Corpus, tmp_path: Path
) -> None:
    """gunicorn boots its workers at once; each opens the store, which may be damaged."""
    database = tmp_path / "db" / "feeds.sqlite3"
    database.parent.mkdir()
    shutil.copyfile(corpus.first_database, database)
    # Damage where opening looks: the schema, on the first page after the header. (The
    # check at start costs the same at any size; deeper damage is reported by the query
    # that meets it.)
    data = bytearray(database.read_bytes())
    data[100:4096] = b"\xde\xad\xbe\xef" * 999
    database.write_bytes(bytes(data))
    damaged = database.read_bytes()
    count = 4
    ready = [tmp_path / f"ready-{i}" for i in range(count)]
    outputs = [tmp_path / f"out-{i}.json" for i in range(count)]
    go = tmp_path / "go"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", STARTER, str(database)]
                    + [str(ready[i]), str(go), str(outputs[i])],
                    cwd=tmp_path,
                    env=clean_environ({}),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        def all_ready() -> bool | None:
            assert all(p.poll() is None for p in processes), "a starter exited early"
            return True if all(r.exists() for r in ready) else None

        wait_until(all_ready, "the starters to be ready")
        go.touch()
        for process in processes:
            process.wait(timeout=60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert [p.returncode for p in processes] == [0] * count
    results = [json.loads(out.read_text()) for out in outputs]

    problems = [f"process {i}: {r['error']}" for i, r in enumerate(results) if "error" in r]
    # A connection on a renamed or deleted file: that process serves and syncs alone.
    for i, result in enumerate(results):
        wrong = [f for f in result["open"] if ".corrupt-" in f or f.endswith("(deleted)")]
        if wrong or ("error" not in result and str(database) not in result["open"]):
            problems.append(f"process {i} has open: {[Path(f).name for f in result['open']]}")
    kept = [
        p.name
        for p in database.parent.iterdir()
        if ".corrupt-" in p.name and p.read_bytes() == damaged
    ]
    if len(kept) != 1:
        problems.append(f"the damaged file is not kept aside exactly once: {kept}")
    assert problems == [], (
        f"{count} processes opening one damaged store at once do not end up sharing one "
        f"new store at {database.name}:\n" + "\n".join(problems)
    )
