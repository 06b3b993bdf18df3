"""Scale benchmark: what one sync and one request cost as the archive grows (issue 9).

For each size (releases) it writes a generated corpus (``seedgen.release_text``,
about 780 bytes a release, 100 a file, 8 agencies, a rare word in exactly 10
releases and a common word in 30 %), then, black-box, through the real command
and the real server only:

1. ``feeds sync`` into an empty store: releases/s; then store bytes / seed bytes;
2. ``gunicorn -w 2 wsgi:app`` on 127.0.0.1 (``FEEDS_SCHEDULER=off``), warmed with
   a few requests to each worker: resident memory (``VmRSS``) per worker;
3. one new file with one new release, ``feeds sync``: its wall and reported time;
4. the first 4 requests for ``/feeds/all.atom`` after that sync;
5. uncached filters (a rare word, a common word with ``limit=50``), uncached
   agency feeds and archive pages.

It prints one table, sizes as columns, with the growth (largest / smallest size)
and the issue's target beside each measure, and ``--json`` saves the raw numbers.
Nothing here imports ``feeds``: settings go through ``FEEDS_*`` variables, so
the same script measures the store of today and its rewrite.

    .venv/bin/python bench/scale.py [--sizes 2000,10000,100000] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import seedgen
from workspace import workspace

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
FEEDS = BIN / "feeds"
GUNICORN = BIN / "gunicorn"

AGENCIES = 8
PER_FILE = 100
WORKERS = 2
#: Planted words: letters only, and neither is a prefix or part of any other word of the
#: corpus, so substring, whole-word and prefix matching all find the same releases.
RARE_WORD = "quokkaberry"
RARE_COUNT = 10
COMMON_WORD = "marmalade"
COMMON_PERCENT = 30
COMMON_LIMIT = 50
#: Requests for ``/feeds/all.atom`` timed right after the add-one sync, two at a time.
FIRST_REQUESTS = 4
FILTER_ROUNDS = 5
#: Distinct agency feeds / archive pages requested once each (first, so uncached).
UNCACHED_URLS = 3
WARM_ROUNDS = 3
STOP_SECONDS = 10.0
MILLION = 1_000_000


class OutOfTime(Exception):
    """The run's ``--timeout`` passed."""


@dataclass
class Deadline:
    """The whole run's time budget; every wait asks it for what is left."""

    end: float

    def left(self, cap: float) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise OutOfTime
        return min(cap, remaining)


def say(message: str) -> None:
    print(f"# {message}", flush=True)


# -- corpus ----------------------------------------------------------------------------


def planted(n: int, count: int) -> list[str]:
    """The words planted in release ``n`` of ``count``: exact, known match counts."""
    words = []
    if n % (count // RARE_COUNT) == 0 and n // (count // RARE_COUNT) < RARE_COUNT:
        words.append(RARE_WORD)
    if n % 100 < COMMON_PERCENT:
        words.append(COMMON_WORD)
    return words


def release(n: int, count: int) -> str:
    """``seedgen.release_text`` with the planted words as one more body paragraph."""
    text = seedgen.release_text(n, AGENCIES)
    words = planted(n, count)
    if words:
        text += f"Case notes mention {' and '.join(words)}.\n\n"
    return text


def write_corpus(directory: Path, count: int) -> int:
    """Write releases ``0 .. count-1``, :data:`PER_FILE` a file; return the bytes written."""
    directory.mkdir(parents=True)
    total = 0
    step = max(count // 10, PER_FILE)
    for start in range(0, count, PER_FILE):
        data = "".join(release(n, count) for n in range(start, min(start + PER_FILE, count)))
        raw = data.encode("utf-8")
        (directory / f"gen_{start // PER_FILE:05d}.txt").write_bytes(raw)
        total += len(raw)
        if count >= 100_000 and (start + PER_FILE) % step == 0:
            say(f"generated {start + PER_FILE:,} of {count:,} releases")
    return total


def add_one(directory: Path, count: int) -> str:
    """One new file holding one new release (number ``count``); its agency slug."""
    (directory / "added_00000.txt").write_text(seedgen.release_text(count, AGENCIES), "utf-8")
    return f"agency-{count % AGENCIES}"


# -- processes -------------------------------------------------------------------------


def environ(settings: Mapping[str, str], home: Path) -> dict[str, str]:
    """This environment without ``FEEDS_*`` and proxies, plus ``settings``.

    ``HOME`` is the run's directory: gunicorn 23+ keeps a control socket under it.
    """
    drop = ("FEEDS_", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(settings)
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(frozen=True, slots=True)
class SyncRun:
    wall: float
    seconds: float | None
    """What the CLI's table printed as ``seconds`` (None if it printed none)."""
    table: dict[str, str]


def feeds_sync(
    env: Mapping[str, str], workdir: Path, deadline: Deadline, label: str, progress: bool
) -> SyncRun:
    """Run ``feeds sync`` to the end (bounded), printing elapsed time now and then."""
    log_path = workdir / f"{label}.stderr"
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(FEEDS), "sync"],
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
        try:
            out = b""
            while True:
                try:
                    out, _ = process.communicate(timeout=deadline.left(15.0))
                    break
                except subprocess.TimeoutExpired:
                    if progress:
                        tail = log_path.read_bytes()[-300:].decode("utf-8", "replace")
                        last = tail.replace("\r", "\n").strip().rsplit("\n", 1)[-1]
                        say(f"{label}: {time.perf_counter() - started:.0f} s  {last[:120]}")
            wall = time.perf_counter() - started
        finally:
            if process.poll() is None:
                kill_group(process.pid)
                process.wait(timeout=STOP_SECONDS)
    text = out.decode("utf-8", "replace")
    if process.returncode != 0:
        errors = log_path.read_text("utf-8", "replace")[-2000:]
        raise SystemExit(f"feeds sync ({label}) exited with {process.returncode}\n{text}{errors}")
    table = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(.*?)\s+(\S+)", line.strip())
        if match:
            table[match[1]] = match[2]
    seconds = float(table["seconds"]) if "seconds" in table else None
    return SyncRun(wall, seconds, table)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Reply:
    status: int | None
    """None: no answer within the timeout (or the connection failed)."""
    ms: float
    body: bytes = b""
    error: str = ""

    @property
    def entries(self) -> int:
        return self.body.count(b"<entry")


def get(port: int, path: str, timeout: float) -> Reply:
    """One timed GET on a new connection: connect to the last byte of the body."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, (time.perf_counter() - started) * 1000, body)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, (time.perf_counter() - started) * 1000, error=type(exc).__name__)
    finally:
        conn.close()


def get_many(port: int, paths: Sequence[str], timeout: float) -> list[Reply]:
    """The GETs at once, one thread each (so sync workers take one each)."""
    replies: list[Reply | None] = [None] * len(paths)

    def one(index: int) -> None:
        replies[index] = get(port, paths[index], timeout)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r if r is not None else Reply(None, 0.0, error="thread") for r in replies]


@dataclass
class Server:
    """``gunicorn -w 2 wsgi:app``, leader of its own process group."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stopped: bool = field(default=False)

    def log(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")[-limit:]
        except OSError:
            return ""

    def workers(self) -> list[int]:
        """PIDs of the master's children, from ``/proc/<pid>/stat``."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == self.process.pid:
                found.append(int(entry.name))
        return sorted(found)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole group after :data:`STOP_SECONDS`."""
        if self.stopped:
            return
        self.stopped = True
        pgid = self.process.pid
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            kill_group(pgid)
            self.process.wait(timeout=STOP_SECONDS)
        finally:
            deadline = time.monotonic() + 2
            while group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            kill_group(pgid)


#: gunicorn settings file: each worker, once it has loaded the app (so after its start-up
#: sync), leaves a file named by its PID. Readiness is known without asking the app.
GUNICORN_CONF = """\
import os
import pathlib


def post_worker_init(worker):
    pathlib.Path(os.environ["BENCH_READY_DIR"], str(os.getpid())).touch()
"""


def start_server(
    env: Mapping[str, str],
    workdir: Path,
    port: int,
    args: argparse.Namespace,
    deadline: Deadline,
    stack: ExitStack,
) -> tuple[Server, float]:
    """Start gunicorn; wait (bounded) until both workers have loaded the app.

    Returns the server and the seconds that took (each worker's start-up sync included).
    """
    log_path = workdir / f"gunicorn-{port}.log"
    ready_dir = workdir / f"ready-{port}"
    ready_dir.mkdir()
    conf = workdir / "gunicorn_conf.py"
    conf.write_text(GUNICORN_CONF, "utf-8")
    # Sync workers, as the issue measured; a worker timeout longer than any request we
    # allow, so a slow request is measured rather than killed.
    argv = [str(GUNICORN), "-c", str(conf), "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"]
    argv += [
        "--timeout",
        str(int(args.request_timeout) + 60),
        "--pythonpath",
        str(ROOT),
        "wsgi:app",
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env={**env, "BENCH_READY_DIR": str(ready_dir)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log_path)
    stack.callback(server.stop)
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}\n{server.log()}")
        workers = server.workers()
        ready = {int(p.name) for p in ready_dir.iterdir()}
        if len(workers) == WORKERS and ready.issuperset(workers):
            seconds = time.monotonic() - started
            reply = get(port, "/healthz", timeout=deadline.left(args.request_timeout))
            if reply.status != 200:
                raise SystemExit(f"/healthz answered {reply.status or reply.error}")
            say(f"gunicorn: both workers ready in {seconds:.1f} s")
            return server, seconds
        if time.monotonic() - started > deadline.left(args.request_timeout * 5):
            raise SystemExit(f"gunicorn's workers did not start\n{server.log()}")
        time.sleep(0.1)


def vmrss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match[1]) / 1024 if match else None


# -- one size --------------------------------------------------------------------------


def database_for(template: str, size: int, workdir: Path) -> tuple[str, Path | None]:
    """``FEEDS_DATABASE`` for ``size``, and the file to measure (None for a URL)."""
    value = template.format(size=size)
    if "://" in value:
        return value, None
    path = Path(value) if Path(value).is_absolute() else workdir / value
    if path.exists():
        raise SystemExit(f"--database: {path} exists; the first sync needs an empty store")
    return str(path), path


def store_bytes(path: Path) -> tuple[int, str]:
    """Database + WAL after ``wal_checkpoint(TRUNCATE)``, or as they are if that fails."""
    note, checkpointed = "after PRAGMA wal_checkpoint(TRUNCATE)", True
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.close()
        if busy:
            note, checkpointed = "checkpoint busy: files as they are, -shm included", False
    except sqlite3.Error as exc:
        note, checkpointed = f"files as they are, -shm included ({exc})", False
    # After a checkpoint the -shm file is only the WAL index's fixed 32 KB: left out then.
    suffixes = ("", "-wal") if checkpointed else ("", "-wal", "-shm")
    total = 0
    for suffix in suffixes:
        part = path.with_name(path.name + suffix)
        if part.exists():
            total += part.stat().st_size
    return total, note


def database_bytes(url: str) -> int | None:
    """``pg_database_size`` of the PostgreSQL database at ``url`` (None without psycopg)."""
    try:
        import psycopg
    except ImportError:
        return None
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else None


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def timed(replies: Sequence[Reply], expect: str, notes: list[str]) -> list[float | None]:
    """The replies' milliseconds; a failed one is None and noted."""
    values: list[float | None] = []
    for reply in replies:
        if reply.status == 200:
            values.append(reply.ms)
        else:
            values.append(None)
            notes.append(f"{expect}: {reply.status or reply.error} after {reply.ms:.0f} ms")
    return values


def measure(
    size: int, workdir: Path, args: argparse.Namespace, deadline: Deadline
) -> dict[str, Any]:
    """Every measure for one size, as a dict of plain values (also what ``--json`` saves)."""
    big = size >= 100_000
    result: dict[str, Any] = {"size": size, "notes": []}
    notes: list[str] = result["notes"]
    seed_dir = workdir / f"seeds-{size}"
    say(f"size {size:,}: generating")
    result["seed_bytes"] = write_corpus(seed_dir, size)
    database, db_path = database_for(args.database, size, workdir)
    port = free_port()
    env = environ(
        {
            "FEEDS_SEED_DIR": str(seed_dir),
            "FEEDS_DATABASE": database,
            "FEEDS_PORT": str(port),
            "FEEDS_SCHEDULER": "off",
            "FEEDS_PAGE_SIZE": str(args.page_size),
            "FEEDS_LOG_LEVEL": "WARNING",
        },
        workdir,
    )

    say(f"size {size:,}: first sync")
    empty = database_bytes(database) if db_path is None else None
    first = feeds_sync(env, workdir, deadline, f"sync-{size}", progress=big)
    if first.table.get("releases new") != str(size):
        notes.append(f"first sync reported {first.table.get('releases new')} new, not {size}")
    result["first_sync_wall"] = first.wall
    result["first_sync_seconds"] = first.seconds
    result["first_sync_rate"] = size / (first.seconds or first.wall)
    if db_path is None:
        after = database_bytes(database)
        result["store_bytes"] = None if after is None or empty is None else after - empty
        result["store_note"] = "pg_database_size after the first sync minus before it"
    else:
        result["store_bytes"], result["store_note"] = store_bytes(db_path)
    say(f"size {size:,}: first sync {first.wall:.1f} s, starting gunicorn")

    timeout = args.request_timeout
    with ExitStack() as stack:
        server, result["server_start"] = start_server(env, workdir, port, args, deadline, stack)
        warm = ["/feeds/all.atom", "/", "/healthz"]
        for _ in range(WARM_ROUNDS):
            for path in warm:
                get_many(port, [path] * WORKERS, deadline.left(timeout))
        pids = server.workers()
        rss = [vmrss_mb(pid) for pid in pids]
        result["rss_mb"] = rss

        say(f"size {size:,}: add-one sync")
        agency = add_one(seed_dir, size)
        one = feeds_sync(env, workdir, deadline, f"add-one-{size}", progress=big)
        if one.table.get("releases new") != "1":
            notes.append(f"add-one sync reported {one.table.get('releases new')} new, not 1")
        result["add_one_wall"] = one.wall
        result["add_one_seconds"] = one.seconds

        # Two at a time, so each of the two sync workers takes one of each pair.
        first_ms: list[float | None] = []
        for _ in range(FIRST_REQUESTS // WORKERS):
            replies = get_many(port, ["/feeds/all.atom"] * WORKERS, deadline.left(timeout))
            first_ms += timed(replies, "all.atom after sync", notes)
        result["first_requests_ms"] = first_ms

        say(f"size {size:,}: filters")
        rare, common = [], []
        for _ in range(FILTER_ROUNDS):
            # A fresh word nobody's text holds: a new URL and a new filter, never cached.
            unique = "zz" + uuid.uuid4().hex[:12].translate(
                str.maketrans("0123456789", "ghijklmnop")
            )
            reply = get(
                port, f"/feeds/all.atom?q={RARE_WORD}&exclude={unique}", deadline.left(timeout)
            )
            rare += timed([reply], "rare filter", notes)
            if reply.status == 200 and reply.entries != RARE_COUNT:
                notes.append(f"rare filter: {reply.entries} entries, expected {RARE_COUNT}")
            path = f"/feeds/all.atom?q={COMMON_WORD}&limit={COMMON_LIMIT}&exclude={unique}"
            reply = get(port, path, deadline.left(timeout))
            common += timed([reply], "common filter", notes)
            if reply.status == 200 and reply.entries != COMMON_LIMIT:
                notes.append(f"common filter: {reply.entries} entries, expected {COMMON_LIMIT}")
        result["rare_ms"], result["common_ms"] = rare, common

        # Never requested before: uncached whatever the cache keeps across a sync. The
        # changed agency first, then others.
        slugs = [agency] + [f"agency-{k}" for k in range(AGENCIES) if f"agency-{k}" != agency]
        agency_paths = [f"/feeds/{slug}.atom" for slug in slugs[:UNCACHED_URLS]]
        result["agency_ms"] = timed(
            [get(port, p, deadline.left(timeout)) for p in agency_paths], "agency feed", notes
        )
        full_pages = size // args.page_size
        pages = sorted({1, max(1, full_pages // 2), max(1, full_pages)})
        archive_paths = [f"/feeds/all/archive/{page}.atom" for page in pages]
        result["archive_ms"] = timed(
            [get(port, p, deadline.left(timeout)) for p in archive_paths], "archive page", notes
        )
        result["rss_end_mb"] = [vmrss_mb(pid) for pid in pids]
        if server.workers() != pids:
            notes.append(f"workers changed during the run: {pids} -> {server.workers()}")
    for note in notes:
        say(f"size {size:,}: NOTE {note}")
    return result


# -- table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A bound from the issue: growth, a value at 1,000,000, and/or a bound at every size."""

    text: str
    growth: float | None = None
    at_million: float | None = None
    """Upper bound at 1,000,000 releases."""
    every: Callable[[float], bool] | None = None


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    value: Callable[[dict[str, Any]], float | None]
    unit: str
    target: Target | None = None


def _max(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known and len(known) == len(values) else None


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known and len(known) == len(values) else None


def _ratio(r: dict[str, Any]) -> float | None:
    return r["store_bytes"] / r["seed_bytes"] if r.get("store_bytes") else None


ROWS = (
    Row(
        "first sync, releases/s",
        lambda r: r["first_sync_rate"],
        "/s",
        Target(">= 10,000/s", every=lambda v: v >= 10_000),
    ),
    Row("first sync, wall s", lambda r: r["first_sync_wall"], "s"),
    Row("store / seed bytes", _ratio, "x", Target("<= 2.5x", every=lambda v: v <= 2.5)),
    Row("seed MB", lambda r: r["seed_bytes"] / 1e6, "MB"),
    Row(
        "worker RSS, max MB",
        lambda r: _max(r["rss_mb"]),
        "MB",
        Target("growth <= 1.5x, < 100 MB at 1M", growth=1.5, at_million=100),
    ),
    Row("worker RSS, mean MB", lambda r: _mean(r["rss_mb"]), "MB"),
    Row(
        "add-one sync, wall s",
        lambda r: r["add_one_wall"],
        "s",
        Target("growth <= 2x, < 0.5 s at 1M", growth=2.0, at_million=0.5),
    ),
    Row(
        "add-one sync, CLI seconds",
        lambda r: r["add_one_seconds"],
        "s",
        Target("growth <= 2x, < 0.5 s at 1M", growth=2.0, at_million=0.5),
    ),
    Row(
        "first 4 all.atom after it, slowest ms",
        lambda r: _max(r["first_requests_ms"]),
        "ms",
        Target("growth <= 3x, < 100 ms at 1M", growth=3.0, at_million=100),
    ),
    Row(
        "rare filter (10 hits), median ms",
        lambda r: median(r["rare_ms"]),
        "ms",
        Target("growth <= 3x", growth=3.0),
    ),
    Row(
        "common filter limit=50, median ms",
        lambda r: median(r["common_ms"]),
        "ms",
        Target("< 300 ms at 1M", at_million=300),
    ),
    Row("agency feed, uncached, median ms", lambda r: median(r["agency_ms"]), "ms"),
    Row("archive page, uncached, median ms", lambda r: median(r["archive_ms"]), "ms"),
    Row("worker RSS at the end, max MB", lambda r: _max(r["rss_end_mb"]), "MB"),
)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def judge(target: Target, values: Sequence[float | None], sizes: Sequence[int]) -> str:
    """``met``, ``NOT met``, ``met so far``, or ``?`` (a value is missing).

    The issue's targets hold from 2,000 to 1,000,000 releases: over any other range a
    target that holds is only ``met so far``. A bound at 1M fails early when a smaller
    size already exceeds it (nothing here gets cheaper as the archive grows).
    """
    if any(v is None for v in values):
        return "?"
    known = [v for v in values if v is not None]
    ok = True
    if target.every is not None:
        ok = all(target.every(v) for v in known)
    if target.growth is not None and len(known) > 1:
        ok = ok and known[-1] / known[0] <= target.growth
    if target.at_million is not None:
        ok = ok and known[-1] < target.at_million
    if not ok:
        return "NOT met"
    full_range = sizes[0] <= 2000 and sizes[-1] >= MILLION
    return "met" if full_range else "met so far"


def table(results: Sequence[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The table as text, and its numbers as a dict for ``--json``."""
    sizes = [r["size"] for r in results]
    header = ["measure", *[f"{s:,}" for s in sizes], "growth", "target", "met?"]
    lines = [header]
    numbers: dict[str, Any] = {}
    for row in ROWS:
        values = [row.value(r) for r in results]
        first, last = values[0], values[-1]
        growth = last / first if len(values) > 1 and first and last is not None else None
        cells = [fmt(v) for v in values]
        target = row.target
        verdict = judge(target, values, sizes) if target else ""
        lines.append(
            [
                row.name,
                *cells,
                f"{growth:.2f}x" if growth else "-",
                target.text if target else "",
                verdict,
            ]
        )
        numbers[row.name] = {
            "values": values,
            "growth": growth,
            "unit": row.unit,
            "target": target.text if target else None,
            "verdict": verdict,
        }
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = []
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(line[1:-2], widths[1:-2], strict=True)]
        cells += [line[-2].ljust(widths[-2]), line[-1]]
        text.append("  ".join(cells).rstrip())
    return "\n".join(text), numbers


# -- main ------------------------------------------------------------------------------


def code_state() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "feeds"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown commit"
    return f"commit {commit or '?'}{' (feeds/ modified)' if dirty else ''}"


def parse_sizes(value: str) -> list[int]:
    try:
        sizes = sorted({int(part.replace("_", "")) for part in value.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated numbers, e.g. 2000,10000") from None
    if not sizes or sizes[0] < 1000 or sizes[-1] > MILLION:
        raise argparse.ArgumentTypeError(f"sizes from 1000 to {MILLION:,}")
    return sizes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=parse_sizes("2000,10000,100000"),
        help="releases per corpus, comma-separated (default 2000,10000,100000)",
    )
    parser.add_argument(
        "--database",
        default="feeds-{size}.sqlite3",
        help="FEEDS_DATABASE per size; {size} is replaced; a relative path is "
        "in the temporary directory; a URL (postgresql://...) is passed as is "
        "and each size's database must be empty (default %(default)s)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=50,
        help="FEEDS_PAGE_SIZE of the servers (default %(default)s)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=300.0,
        help="seconds allowed each request (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds allowed the whole run (default %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if len(args.sizes) > 1 and "{size}" not in args.database:
        parser.error("--database needs {size}: each size starts from an empty store")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = Deadline(time.monotonic() + args.timeout)
    say(
        f"{code_state()}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results: list[dict[str, Any]] = []
    failed = ""
    with workspace(args.keep, "feeds-scale-") as workdir:
        try:
            for size in args.sizes:
                results.append(measure(size, workdir, args, deadline))
                if not args.keep:  # the next, larger size needs the disk more
                    for path in workdir.glob(f"*-{size}*"):
                        if path.is_dir():
                            subprocess.run(["rm", "-rf", str(path)], check=False, timeout=600)
                        else:
                            path.unlink()
        except OutOfTime:
            failed = f"--timeout {args.timeout:.0f} s passed; sizes done: {len(results)}"
    if not results:
        print(failed or "nothing measured", file=sys.stderr)
        return 1
    text, numbers = table(results)
    print()
    print(
        f"feeds scale benchmark, {code_state()}, gunicorn -w {WORKERS}, "
        f"{AGENCIES} agencies, {PER_FILE} releases a file"
    )
    print(
        "growth = largest / smallest size measured; the issue's targets are for 2,000 -> 1,000,000"
    )
    print(text)
    for r in results:
        for note in r["notes"]:
            print(f"note ({r['size']:,}): {note}")
    store_notes = {r["store_note"] for r in results if r.get("store_note")}
    if store_notes:
        print(f"store bytes: database + WAL, {' / '.join(sorted(store_notes))}")
    say(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(
            json.dumps({"code": code_state(), "results": results, "table": numbers}, indent=2),
            "utf-8",
        )
    if failed:
        print(failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
