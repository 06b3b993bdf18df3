"""Two service nodes on one PostgreSQL database (DESIGN.md "Running it", README "Several nodes").

Two gunicorn instances, each with two workers running the scheduler every
0.3 s, share one database and one seed directory while seed files keep
arriving and clients keep reading both. Every response is 200 and whole (its
strong ETag is the hash of the bytes received); after the last sync both nodes
answer every document with the same bytes; the store holds each release once,
numbered without gaps. Then one node is SIGKILLed, workers and all, and the
other keeps syncing alone.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feeds.pg_store import PgStore

from .postgres import Cluster
from .records import all_releases
from .servers import REAL_SEED, REAL_SEED_RELEASES, Server, Servers, _kill_group
from .test_multiprocess import load_file, real_releases, write_load_files

pytestmark = pytest.mark.e2e

PATHS = ("/feeds/all.atom", "/feeds/europol.atom", "/", "/feeds/all.json", "/healthz")
#: Documents compared byte for byte across the nodes.
COMPARED = ("/feeds/all.atom", "/feeds/all.rss", "/feeds/europol.atom", "/feeds.opml", "/")


class Readers:
    """Threads reading every node in turn; they keep every failure and every torn body."""

    def __init__(self, nodes: list[Server], threads: int) -> None:
        self.nodes = nodes
        self.ok = 0
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def _run(self, offset: int) -> None:
        number = offset
        while not self._stop.is_set():
            node = self.nodes[number % len(self.nodes)]
            path = PATHS[number // len(self.nodes) % len(PATHS)]
            number += 1
            try:
                reply = node.get(path, timeout=10)
                problem = self._check(path, reply.status, reply.headers, reply.body)
            except OSError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if problem:
                    self.failures[f"{node.name} {path}: {problem}"] += 1
                else:
                    self.ok += 1

    @staticmethod
    def _check(path: str, status: int, headers: dict[str, str], body: bytes) -> str:
        if status != 200:
            return f"status {status}"
        if path != "/healthz":
            etag = headers.get("ETag", "").strip('"')
            if etag != hashlib.sha256(body).hexdigest()[:32]:
                return "torn: the body is not the one its ETag names"
        return ""

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        assert not any(t.is_alive() for t in self._threads), "a reader thread hung"


def node(pool: Servers, name: str, seeds: Path, url: str) -> Server:
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": url,
        "FEEDS_SYNC_INTERVAL": "0.3",
        "FEEDS_PAGE_SIZE": "1000",  # the subscription document holds every release
        "FEEDS_BASE_URL": "http://feeds.test",  # one public name in front of both nodes
    }
    return pool.gunicorn(settings, "-w", "2", "-k", "gthread", "--threads", "4", name=name)


def same_bytes(nodes: list[Server]) -> dict[str, set[bytes]]:
    """Documents whose bytes differ between the nodes (empty when all agree)."""
    differ = {}
    for path in COMPARED:
        bodies = {n.get(path).body for n in nodes}
        if len(bodies) != 1:
            differ[path] = bodies
    return differ


def test_two_nodes_share_one_database(tmp_path: Path, pool: Servers, pg_cluster: Cluster) -> None:
    url = pg_cluster.database()
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    nodes = [node(pool, "node-a", seeds, url), node(pool, "node-b", seeds, url)]
    expected = list(REAL_SEED_RELEASES)

    with Readers(nodes, threads=4) as readers:
        expected += write_load_files(seeds, count=20, every=0.1)
        mark = datetime.now(UTC)
        for each in nodes:
            each.wait_for_sync_after(mark)
        time.sleep(0.5)  # more reads of every document after the last sync
    assert readers.failures == Counter(), dict(readers.failures)
    assert readers.ok > 50
    assert same_bytes(nodes) == {}
    for each in nodes:
        assert Counter(real_releases(each)) == Counter(expected)
        assert each.healthz()["status"] == "ok"

    store = PgStore(url)
    try:
        stored = all_releases(store)
        assert [r.seq for r in stored] == list(range(1, len(expected) + 1))
        assert Counter((r.draft.agency_slug, r.draft.title) for r in stored) == Counter(expected)
        syncs = store.last_syncs(1000)
    finally:
        store.close()
    assert [s for s in syncs if not s["ok"]] == []

    # One node dies without a word (SIGKILL to gunicorn and its workers): the other syncs.
    killed, alive = nodes
    _kill_group(killed.process.pid)
    killed.process.wait(timeout=10)
    killed.stopped = True
    for number in range(100, 103):
        text, releases = load_file(number)
        (seeds / f"late-{number}.txt").write_text(text, encoding="utf-8")
        expected += releases
    health = alive.wait_for_sync_after(datetime.now(UTC))
    assert health["status"] == "ok"
    assert health["counts"]["releases"] == len(expected)
    assert Counter(real_releases(alive)) == Counter(expected)
    assert alive.errors() == []
