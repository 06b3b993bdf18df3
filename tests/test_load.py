"""Bounded concurrent load while the seed directory keeps changing under the syncs.

Covers the issue "Never falls over, never loses a release" against DESIGN.md
"Running it" and the README's deployment promise (several gunicorn workers,
each syncing; readers see the state before or after a sync, never a mix):

- ``gunicorn -w 3 -k gthread --threads 4 wsgi:app`` on 127.0.0.1, every worker
  syncing every 0.3 s, while eight client threads (``http.client``, a new
  connection per request) keep fetching ``/feeds/all.atom``,
  ``/feeds/frontex.atom``, ``/feeds/all.json`` and ``/`` for a bounded time and
  a writer thread changes the seed directory every 150 ms: each step k
  rewrites one marker file (atomic ``os.replace``) so that it holds "State k"
  and k % 4 companion releases instead of the previous state's, and adds,
  corrects (body edit), removes or brings back a whole seed file;
- every response is 200 (no 5xx, no connection error); every Atom body parses
  with feedparser (bozo 0); no response mixes two sync states: it holds one
  State marker with exactly its companions, every seed file's releases show
  one revision and are there all together or not at all, and a title always
  has the same entry ID;
- once the writer stopped and a sync read the final directory, the combined
  feed (Atom and JSON) holds exactly the releases in the seed files, each once,
  at their last revision, under the IDs derived from their identity keys; the
  server logs no traceback or error;
- the mixing check itself catches hand-made documents no single sync produces.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import feedparser
import pytest

from feeds import ids

from .servers import REAL_SEED, REAL_SEED_RELEASES, Servers

pytestmark = pytest.mark.e2e

#: How long the clients and the writer run.
LOAD_SECONDS = 8.0
CLIENTS = 8
WRITER_EVERY = 0.15
PATHS = ("/feeds/all.atom", "/feeds/frontex.atom", "/feeds/all.json", "/")
#: Slugs each feed path covers (None: every agency).
SCOPES: dict[str, frozenset[str] | None] = {
    "/feeds/all.atom": None,
    "/feeds/frontex.atom": frozenset({"frontex"}),
    "/feeds/all.json": None,
}
CHURN_AGENCIES = ("Europol", "Interpol", "NATO", "Frontex")
CHURN_RELEASES = 4
INITIAL_CHURN_FILES = 10
MARKER_FILE = "000-state.txt"
MARKER_DATE = date(2024, 6, 1)
CHURN_DATE = date(2024, 5, 3)
#: Enough for every release ever stored to be in the subscription document.
PAGE_SIZE = 1000

MARKER = re.compile(r"State (\d+)(?: part (\d+))?")
CHURN = re.compile(r"Churn (\d{3}) release (\d)")
REVISION = re.compile(r"Revision (\d+) of churn file (\d{3})")


def marker_text(state: int) -> str:
    """The marker file in state ``state``: "State k" and its k % 4 companions."""
    parts: list[str] = []
    for title in marker_titles(state):
        parts += [
            title,
            "Source: Frontex",
            "1 June 2024",
            f"This release marks state {state} of the seed directory.",
        ]
    return "\n\n".join(parts) + "\n"


def marker_titles(state: int) -> list[str]:
    return [f"State {state}"] + [f"State {state} part {j}" for j in range(1, state % 4 + 1)]


def churn_title(number: int, index: int) -> str:
    return f"Churn {number:03d} release {index}"


def churn_agency(number: int, index: int) -> str:
    return CHURN_AGENCIES[(number + index) % len(CHURN_AGENCIES)]


def churn_text(number: int, revision: int) -> str:
    """Seed file ``number`` at ``revision``: the same titles, a corrected body each time."""
    parts: list[str] = []
    for index in range(CHURN_RELEASES):
        parts += [
            churn_title(number, index),
            f"Source: {churn_agency(number, index)}",
            "3 May 2024",
            f"Revision {revision} of churn file {number:03d}: officers from "
            f"{index + revision % 7 + 2} countries took part in the operation.",
            "  • 5 arrests\n  • 2 searches",
        ]
    return "\n\n".join(parts) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write beside ``path`` under a hidden name (ignored by the scan), then rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class Writer(threading.Thread):
    """Changes the seed directory every :data:`WRITER_EVERY` seconds and keeps a model of it."""

    def __init__(self, seeds: Path) -> None:
        super().__init__(daemon=True)
        self.seeds = seeds
        self.state = 0
        self.present: dict[int, int] = {}  # churn file -> revision
        self.removed: dict[int, int] = {}
        self.next_file = 0
        self.random = random.Random(20240603)
        self.actions: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def path(self, number: int) -> Path:
        return self.seeds / f"churn-{number:03d}.txt"

    def setup(self) -> None:
        write_atomically(self.seeds / MARKER_FILE, marker_text(self.state))
        for _ in range(INITIAL_CHURN_FILES):
            self.add()

    def add(self) -> None:
        number = self.next_file
        self.next_file += 1
        write_atomically(self.path(number), churn_text(number, 0))
        self.present[number] = 0

    def step(self) -> None:
        self.state += 1
        # The marker's releases of state k-1 leave in the same rename that brings state k.
        write_atomically(self.seeds / MARKER_FILE, marker_text(self.state))
        action = ("add", "correct", "remove", "bring back")[self.state % 4]
        if action == "remove" and len(self.present) <= 4:
            action = "correct"
        if action == "bring back" and not self.removed:
            action = "add"
        if action == "add":
            self.add()
        elif action == "correct":
            number = self.random.choice(sorted(self.present))
            self.present[number] += 1
            write_atomically(self.path(number), churn_text(number, self.present[number]))
        elif action == "remove":
            number = self.random.choice(sorted(self.present))
            self.path(number).unlink()
            self.removed[number] = self.present.pop(number)
        else:
            # Back as it was when it left: same IDs, same content.
            number = self.random.choice(sorted(self.removed))
            self.present[number] = self.removed.pop(number)
            write_atomically(self.path(number), churn_text(number, self.present[number]))
        self.actions[action] += 1

    def run(self) -> None:
        try:
            while not self._halt.wait(WRITER_EVERY):
                self.step()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        assert not self.is_alive(), "the writer hung"
        assert self.error is None, f"the writer failed: {self.error!r}"

    def expected(self) -> dict[tuple[str, str], tuple[str, int | None]]:
        """(slug, title) -> (entry ID, churn revision) of every release now in the seeds."""
        result: dict[tuple[str, str], tuple[str, int | None]] = {}
        for title in marker_titles(self.state):
            result[("frontex", title)] = (ids.release_id("frontex", title, MARKER_DATE), None)
        for number, revision in self.present.items():
            for index in range(CHURN_RELEASES):
                slug = churn_agency(number, index).lower()
                title = churn_title(number, index)
                result[(slug, title)] = (ids.release_id(slug, title, CHURN_DATE), revision)
        return result


@dataclass(frozen=True, slots=True)
class Entry:
    """What the checks need of one feed entry."""

    slug: str
    title: str
    id: str
    text: str


@dataclass
class Clients:
    """Threads that keep fetching :data:`PATHS` and keep each distinct body once."""

    port: int
    statuses: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    bodies: dict[tuple[str, str], bytes] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def fetch(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            with conn.getresponse() as response:
                return response.status, response.read()
        finally:
            conn.close()

    def _run(self, offset: int) -> None:
        number = offset
        while not self._stop.is_set():
            path = PATHS[number % len(PATHS)]
            number += 1
            try:
                status, body = self.fetch(path)
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.statuses[(path, f"{type(exc).__name__}: {exc}")] += 1
                continue
            digest = hashlib.sha256(body).hexdigest()
            with self._lock:
                self.statuses[(path, status)] += 1
                if status == 200:
                    self.bodies.setdefault((path, digest), body)

    def __enter__(self) -> Clients:
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)
        assert not any(t.is_alive() for t in self._threads), "a client thread hung"


def atom_entries(body: bytes) -> list[Entry]:
    feed = feedparser.parse(body)
    assert feed.bozo == 0, f"not well-formed Atom: {feed.get('bozo_exception')}"
    return [
        Entry(e.tags[0].term, e.title, e.id, "".join(c.value for c in e.get("content", [])))
        for e in feed.entries
    ]


def json_entries(body: bytes) -> list[Entry]:
    items = json.loads(body)["items"]
    return [Entry(i["tags"][0], i["title"], i["id"], i["content_html"]) for i in items]


def in_scope(agency: str, scope: frozenset[str] | None) -> bool:
    return scope is None or agency.lower() in scope


def mixes(entries: list[Entry], scope: frozenset[str] | None) -> list[str]:
    """How one feed document mixes sync states or holds what no state held."""
    found: list[str] = []
    titles = Counter((e.slug, e.title) for e in entries)
    found += [f"{key} twice" for key, n in titles.items() if n > 1]
    states: dict[int, set[int]] = {}
    churn: dict[int, list[tuple[int, set[int]]]] = {}
    real = set(REAL_SEED_RELEASES)
    for entry in entries:
        marker = MARKER.fullmatch(entry.title)
        churned = CHURN.fullmatch(entry.title)
        if marker and entry.slug == "frontex":
            states.setdefault(int(marker[1]), set()).add(int(marker[2] or 0))
        elif churned:
            number = int(churned[1])
            revisions = {int(r) for r, n in REVISION.findall(entry.text) if int(n) == number}
            churn.setdefault(number, []).append((int(churned[2]), revisions))
        elif (entry.slug, entry.title) not in real:
            found.append(f"unknown entry {entry.slug}/{entry.title!r}")
    if scope is None or "frontex" in scope:
        if len(states) != 1:
            found.append(f"State markers {sorted(states)} (exactly one expected)")
        for state, parts in states.items():
            if parts != set(range(state % 4 + 1)):
                found.append(f"State {state} with parts {sorted(parts)}")
    for number, releases in churn.items():
        wanted = [i for i in range(CHURN_RELEASES) if in_scope(churn_agency(number, i), scope)]
        indexes = [i for i, _ in releases]
        if sorted(indexes) != sorted(wanted):
            found.append(f"churn file {number}: releases {sorted(indexes)}, expected {wanted}")
        revisions = set().union(*(r for _, r in releases))
        if len(revisions) != 1 or any(len(r) != 1 for _, r in releases):
            found.append(f"churn file {number}: revisions {sorted(revisions)} in one document")
    if scope is None:
        missing = real - set(titles)
        if missing:
            found.append(f"real releases missing: {sorted(missing)}")
    return found


def test_load_while_seeds_change(tmp_path: Path, pool: Servers) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    writer = Writer(seeds)
    writer.setup()
    server = pool.gunicorn(
        {
            "FEEDS_SEED_DIR": str(seeds),
            "FEEDS_DATABASE": str(tmp_path / "db" / "feeds.sqlite3"),
            "FEEDS_SYNC_INTERVAL": "0.3",
            "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
        },
        "-w",
        "3",
        "-k",
        "gthread",
        "--threads",
        "4",
    )

    with Clients(server.port) as clients:
        writer.start()
        try:
            time.sleep(LOAD_SECONDS)
        finally:
            writer.stop()
    assert min(writer.actions.values(), default=0) >= 3, writer.actions

    failures = {k: n for k, n in clients.statuses.items() if k[1] != 200}
    assert failures == {}, f"responses other than 200 under load: {failures}\n{server.log()}"
    served = Counter(path for path, _ in clients.statuses.elements())
    assert all(served[p] >= 10 for p in PATHS), served

    # Each distinct document is one store state: check each once.
    problems: list[str] = []
    identity: dict[tuple[str, str], set[str]] = {}
    states_seen: set[int] = set()
    for (path, digest), body in sorted(clients.bodies.items()):
        if path == "/":
            shown = set(re.findall(r"State (\d+)", body.decode("utf-8", "replace")))
            if len(shown) > 1:
                problems.append(f"/ ({digest[:12]}): State markers {sorted(shown)}")
            continue
        entries = atom_entries(body) if path.endswith(".atom") else json_entries(body)
        problems += [f"{path} ({digest[:12]}): {m}" for m in mixes(entries, SCOPES[path])]
        for entry in entries:
            identity.setdefault((entry.slug, entry.title), set()).add(entry.id)
            marker = MARKER.fullmatch(entry.title)
            if marker:
                states_seen.add(int(marker[1]))
    assert problems == [], "\n".join(problems[:20])
    unstable = {k: v for k, v in identity.items() if len(v) > 1}
    assert unstable == {}, f"entry IDs changed under load: {unstable}"
    # The clients did see the directory change under them.
    assert len(states_seen) >= 5, sorted(states_seen)

    # The final state: a sync that started after the last change.
    health = server.wait_for_sync_after(datetime.now(UTC))
    assert health["status"] == "ok", health
    expected = writer.expected()
    for path in ("/feeds/all.atom", "/feeds/all.json"):
        reply = server.get(path)
        assert reply.status == 200, (path, reply.status)
        entries = atom_entries(reply.body) if path.endswith(".atom") else json_entries(reply.body)
        assert mixes(entries, None) == []
        final = {(e.slug, e.title): e for e in entries}
        assert len(final) == len(entries)
        generated = {k: e for k, e in final.items() if k not in set(REAL_SEED_RELEASES)}
        assert sorted(generated) == sorted(expected), (
            f"{path}: missing {sorted(set(expected) - set(generated))[:5]}, "
            f"unexpected {sorted(set(generated) - set(expected))[:5]}"
        )
        wrong_ids = [k for k, e in generated.items() if e.id != expected[k][0]]
        assert wrong_ids == [], f"{path}: IDs not derived from the identity key: {wrong_ids[:5]}"
        stale = [
            k
            for k, e in generated.items()
            if expected[k][1] is not None
            and {int(r) for r, _ in REVISION.findall(e.text)} != {expected[k][1]}
        ]
        assert stale == [], f"{path}: not at the last revision: {stale[:5]}"
    assert health["counts"]["releases"] == len(expected) + len(REAL_SEED_RELEASES), health

    assert server.stop() == 0, server.log()
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and "level=ERROR" not in log, server.log()


def test_mixes_finds_a_mixed_document() -> None:
    """The checker itself: documents that no single sync could produce are caught."""
    real = [Entry(slug, title, "x", "") for slug, title in REAL_SEED_RELEASES]

    def marker(state: int, part: int = 0) -> Entry:
        title = f"State {state}" + (f" part {part}" if part else "")
        return Entry("frontex", title, title, "")

    def churn(number: int, revision: int, indexes: range = range(CHURN_RELEASES)) -> list[Entry]:
        return [
            Entry(
                churn_agency(number, i).lower(),
                churn_title(number, i),
                f"{number}-{i}",
                f"Revision {revision} of churn file {number:03d}: ...",
            )
            for i in indexes
        ]

    good = [*real, marker(6), marker(6, 1), marker(6, 2), *churn(1, 3), *churn(2, 0)]
    assert mixes(good, None) == []
    assert mixes([e for e in good if e.slug == "frontex"], frozenset({"frontex"})) == []
    assert mixes([*good, marker(5)], None) != []  # two states
    assert mixes([*real, marker(6), marker(6, 1), *churn(1, 3)], None) != []  # a part missing
    assert mixes([*real, marker(6), marker(6, 1), marker(6, 2), *churn(1, 3, range(3))], None)
    mixed = churn(1, 3)[:2] + churn(1, 4)[2:]
    assert mixes([*real, marker(4), *mixed], None) != []  # two revisions of one file
    assert mixes([*real, marker(4), *churn(1, 0), *churn(1, 0)], None) != []  # twice
    assert mixes([*real[1:], marker(4)], None) != []  # a real release missing
