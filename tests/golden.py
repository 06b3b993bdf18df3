"""Golden output: deterministic stores, and every document they serve, captured over HTTP.

A safety net for rewrites of the store and the read path: each corpus is synced
step by step under a fixed clock, served by ``create_app`` through Flask's test
client, and every document's status, validators and bytes are kept under
``tests/data/golden/<corpus>/`` (``index.json`` maps each URL to its file).
Only public URLs are used, so the goldens stay valid whatever the internals
become. ``tests/test_golden.py`` serves the same URLs again and compares bytes.

Corpora:

- ``real``: the repository's ``seeds/`` as it is, one sync.
- ``varied``: ``tests/data/golden/varied/seeds/step1``, ``step2``, ``step3``, each
  the complete seed directory at that time, synced in turn (see the README there).

Regenerate, only when a change of output is intended (then review the diff)::

    python -m tests.golden --regenerate

``--out DIR`` writes a capture elsewhere instead (no ``--regenerate`` needed), to
compare two runs. ``--fixture`` also writes ``tests/data/golden/varied-v<N>.sqlite3``,
the ``varied`` store as this code (schema N) leaves it, for the tests of the next
schema's migration (``tests/test_migration.py`` migrates ``varied-v1``,
``tests/test_migration_v2.py`` ``varied-v2``, ``tests/test_migration_v3.py``
``varied-v3``). Run it before bumping the schema: a fixture made by newer code would
test no migration.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feeds import ids, parse, sqlite_store
from feeds.app import create_app
from feeds.backends import open_store
from feeds.errors import StoreError
from feeds.sqlite_store import SCHEMA_VERSION, SQLiteStore
from feeds.sync import sync

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
BASE_URL = "http://feeds.test"
FORMATS = ("atom", "rss", "json")
#: Response headers kept and compared (when the response has them).
HEADERS = ("Content-Type", "ETag", "Last-Modified", "Location")
#: The store is created at this moment; step ``n`` syncs ``n`` hours later.
CREATED = datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)


#: The ``varied`` store after its last step as the code of schema N made it.
def fixture(schema: int) -> Path:
    return GOLDEN / f"varied-v{schema}.sqlite3"


V1_FIXTURE = fixture(1)
V2_FIXTURE = fixture(2)
V3_FIXTURE = fixture(3)


def read_only(path: Path) -> sqlite3.Connection:
    """A store file read as it is: ``immutable`` creates no -wal or -shm beside it."""
    return sqlite3.connect(f"file:{path}?immutable=1", uri=True)


def copy_fixture(schema: int, tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of ``fixture(schema)`` and the ``varied`` seeds it was synced from."""
    database = tmp_path / "db" / "feeds.sqlite3"
    database.parent.mkdir()
    shutil.copyfile(fixture(schema), database)
    seed_dir = tmp_path / "seeds"
    replace_seeds(CORPORA["varied"].final_seeds, seed_dir)
    return database, seed_dir


def assert_interrupted_migration_keeps(
    schema: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    still_old: Callable[[sqlite3.Connection], object],
) -> None:
    """A failure right after migration ``step`` (a ``feeds.sqlite_store`` function) has run
    leaves a copy of ``fixture(schema)`` byte for byte as it was, still at ``schema``.

    ``still_old(conn)`` asserts what only the old schema has.
    """
    database, _ = copy_fixture(schema, tmp_path)
    before = database.read_bytes()
    real = getattr(sqlite_store, step)

    def cut(conn: sqlite3.Connection) -> None:
        real(conn)
        raise OSError("power cut")

    monkeypatch.setattr(sqlite_store, step, cut)
    with pytest.raises(StoreError, match="power cut"):
        SQLiteStore(database).initialize(datetime.now(UTC))
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema
        still_old(conn)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    assert database.read_bytes() == before


ATOM = "{http://www.w3.org/2005/Atom}"
#: Most lines of diff a failure shows.
DIFF_LINES = 40


@dataclass(frozen=True, slots=True)
class Corpus:
    """A seed history and the URLs beyond the discoverable ones worth capturing."""

    name: str
    steps: tuple[Path, ...]
    """Seed directories, in sync order; each is the complete directory at that step."""
    page_size: int
    multi: tuple[str, ...]
    """Multi-agency feed names (canonical, so they answer 200)."""
    extra: tuple[str, ...]
    """Filtered feeds, redirects and errors: URLs no link leads to."""

    @property
    def directory(self) -> Path:
        return GOLDEN / self.name

    @property
    def final_seeds(self) -> Path:
        return self.steps[-1]


VARIED_SEEDS = GOLDEN / "varied" / "seeds"

CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in (
        Corpus(
            "real",
            (ROOT / "seeds",),
            page_size=3,
            multi=("europol+interpol", "eurojust+nato"),
            extra=(
                "/feeds/all.atom?q=operation",
                "/feeds/interpol.rss?exclude=children",
                "/feeds/all.json?limit=2",
                "/feeds/all.atom?since=2024-01-01T10:59:59Z",
                "/feeds/all.atom?since=2024-01-01T11:00:00Z",
                "/feeds/europol+interpol.atom?q=operation&exclude=narsil&limit=2"
                "&since=2024-01-01T10:00:00Z",
                "/feeds/interpol+europol.atom",
            ),
        ),
        Corpus(
            "varied",
            tuple(VARIED_SEEDS / f"step{n}" for n in (1, 2, 3)),
            page_size=3,
            multi=("interpol+nato", "eurojust+frontex"),
            extra=(
                "/feeds/all.atom?q=operation",
                "/feeds/all.rss?exclude=bulletin",
                "/feeds/europol.json?limit=2",
                "/feeds/all.atom?since=2024-01-01T12:30:00Z",
                "/feeds/all.json?since=2024-01-01T11:30:00Z&exclude=bulletin",
                "/feeds/interpol.atom?q=Z%C3%BCrich",
                "/feeds/interpol+nato.atom?q=operation&exclude=narsil&limit=2"
                "&since=2024-01-01T10:30:00Z",
                "/feeds/frontex.atom?limit=5",
                "/feeds/nato+interpol.atom",
                "/feeds/nato+interpol/archive/1.rss",
                "/feeds/all.atom?limit=0",
            ),
        ),
    )
}


def step_time(step: int) -> datetime:
    """The fixed clock of sync number ``step`` (1-based)."""
    return CREATED + timedelta(hours=step)


def settings(corpus: Corpus, seed_dir: Path, database: Any) -> dict[str, Any]:
    """``create_app`` overrides for a corpus (the same in every test that serves it)."""
    return {
        "seed_dir": seed_dir,
        "database": database,
        "base_url": BASE_URL,
        "scheduler": False,
        "page_size": corpus.page_size,
    }


def replace_seeds(source: Path, seed_dir: Path) -> None:
    """Make ``seed_dir`` hold exactly the ``*.txt`` files of ``source``."""
    seed_dir.mkdir(parents=True, exist_ok=True)
    for old in seed_dir.iterdir():
        old.unlink()
    for new in sorted(source.glob("*.txt")):
        shutil.copyfile(new, seed_dir / new.name)


def build_store(corpus: Corpus, workdir: Path, database: Any = None) -> tuple[Path, Any]:
    """Sync every step of ``corpus`` into a new store; returns (seed dir, database).

    ``database`` is what ``FEEDS_DATABASE`` would name (an empty PostgreSQL database's
    URL, say); by default a SQLite file under ``workdir``.
    """
    seed_dir = workdir / "seeds"
    if database is None:
        database = workdir / "db" / "feeds.sqlite3"
    store = open_store(database)
    store.initialize(CREATED)
    for number, step in enumerate(corpus.steps, start=1):
        replace_seeds(step, seed_dir)
        report = sync(store, seed_dir, clock=partial(step_time, number))
        if not report.ok:
            raise RuntimeError(f"{corpus.name} step {number}: sync failed: {report.error}")
    store.close()
    return seed_dir, database


def generation(database: Any) -> int:
    store = open_store(database)
    try:
        return store.generation()
    finally:
        store.close()


def serve(corpus: Corpus, seed_dir: Path, database: Any) -> Flask:
    """The app over a built store. Its start-up sync must find nothing to change."""
    before = generation(database)
    app = create_app(settings(corpus, seed_dir, database), environ={})
    app.testing = True
    after = generation(database)
    if after != before:
        raise RuntimeError(
            f"{corpus.name}: the start-up sync changed the store ({before} → {after})"
        )
    return app


def build_app(corpus: Corpus, workdir: Path, database: Any = None) -> Flask:
    """The ``corpus`` served as the goldens were captured (on ``database``, if given)."""
    return serve(corpus, *build_store(corpus, workdir, database))


# -- capture -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Captured:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(client: FlaskClient, url: str) -> Captured:
    response = client.get(url)
    headers = {name: response.headers[name] for name in HEADERS if name in response.headers}
    return Captured(url, response.status_code, headers, response.get_data())


def _agency_slugs(client: FlaskClient) -> list[str]:
    """Every agency ever seen, from the OPML list (it names gone agencies' feeds too)."""
    opml = etree.fromstring(client.get("/feeds.opml").get_data())
    slugs = []
    for outline in opml.iter("outline"):
        url = outline.get("xmlUrl")
        if url:
            match = re.fullmatch(re.escape(BASE_URL) + r"/feeds/([a-z0-9-]+)\.atom", url)
            if match is None:
                raise RuntimeError(f"unexpected OPML feed URL {url!r}")
            slugs.append(match[1])
    return slugs


def _atom_ids(body: bytes) -> list[str]:
    return [e.findtext(f"{ATOM}id") or "" for e in etree.fromstring(body).iter(f"{ATOM}entry")]


def _seed_ids(corpus: Corpus) -> set[str]:
    """Release IDs of every step's seeds: a release gone from every feed keeps its page."""
    found: set[str] = set()
    for step in corpus.steps:
        for path in sorted(step.glob("*.txt")):
            text = path.read_bytes().decode("utf-8")
            drafts, _ = parse.parse(text, path.name)
            found.update(ids.release_id(d.agency_slug, d.title, d.date_line) for d in drafts)
    return found


def _paged(client: FlaskClient, prefix: str, suffix: str = "") -> Iterator[Captured]:
    """Pages ``<prefix>1<suffix>``, ``<prefix>2<suffix>``, ... while they answer 200, then
    the first that does not (so a page that appears or vanishes shows)."""
    number = 1
    while True:
        captured = fetch(client, f"{prefix}{number}{suffix}")
        yield captured
        if captured.status != 200:
            return
        number += 1


def _topic_keys(opml: bytes) -> list[str]:
    """Every topic ever found (``kind/slug``), from the topics' OPML list."""
    prefix = f"{BASE_URL}/feeds/topics/"
    keys = []
    for outline in etree.fromstring(opml).iter("outline"):
        url = outline.get("xmlUrl") or ""
        if url.startswith(prefix):
            keys.append(url.removeprefix(prefix).removesuffix(".atom"))
    return keys


def capture(corpus: Corpus, client: FlaskClient) -> list[Captured]:
    """Every document the corpus's app serves at a public URL, in a fixed order."""
    slugs = _agency_slugs(client)
    done: dict[str, Captured] = {}

    def take(url: str) -> Captured:
        if url not in done:
            done[url] = fetch(client, url)
        return done[url]

    take("/")
    take("/feeds.opml")
    release_ids: set[str] = set()
    for name in ["all", *slugs, *corpus.multi]:
        for extension in FORMATS:
            current = take(f"/feeds/{name}.{extension}")
            if current.status != 200:
                raise RuntimeError(f"{current.url} answered {current.status}")
            for page in _paged(client, f"/feeds/{name}/archive/", f".{extension}"):
                done[page.url] = page
                if extension == "atom" and page.status == 200:
                    release_ids.update(_atom_ids(page.body))
            if extension == "atom":
                release_ids.update(_atom_ids(current.body))
    for slug in slugs:
        take(f"/agencies/{slug}")
        for page in _paged(client, f"/agencies/{slug}/page/"):
            done[page.url] = page
    take("/topics")
    for kind in ("countries", "operations", "crime-areas"):
        take(f"/topics/{kind}")
    for topic in _topic_keys(take("/topics.opml").body):
        for extension in FORMATS:
            take(f"/feeds/topics/{topic}.{extension}")
            for page in _paged(client, f"/feeds/topics/{topic}/archive/", f".{extension}"):
                done[page.url] = page
        take(f"/topics/{topic}")
        for page in _paged(client, f"/topics/{topic}/page/"):
            done[page.url] = page
    release_ids |= _seed_ids(corpus)
    for release_id in sorted(release_ids):
        take("/releases/" + release_id.removeprefix("urn:uuid:"))
    for url in corpus.extra:
        take(url)
    return list(done.values())


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


def file_name(captured: Captured) -> str:
    """A readable relative file name for a URL: its path, then its query, then a type.

    ``/feeds/all/archive/2.atom`` → ``feeds/all/archive/2.atom``;
    ``/agencies/nato`` → ``agencies/nato.html``; ``/`` → ``index.html``;
    ``/feeds/all.atom?limit=2`` → ``feeds/all--limit=2.atom``; any answer but 200
    gets its status and ``.txt``: ``feeds/all/archive/9.atom.404.txt``.
    """
    path, _, query = captured.url.partition("?")
    parts = path.strip("/").split("/") if path.strip("/") else ["index"]
    stem, dot, extension = parts[-1].rpartition(".")
    if not dot:
        stem, extension = parts[-1], "html"
    if query:
        stem += "--" + _UNSAFE.sub("_", unquote(query))
    name = f"{stem}.{extension}"
    if captured.status != 200:
        name += f".{captured.status}.txt"
    return "/".join([*parts[:-1], name])


def write(corpus_dir: Path, captures: list[Captured]) -> None:
    """Replace ``served/`` and ``index.json`` in ``corpus_dir`` with ``captures``."""
    served = corpus_dir / "served"
    if served.exists():
        shutil.rmtree(served)
    index: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for captured in captures:
        name = file_name(captured)
        if name.casefold() in names:
            raise RuntimeError(f"{captured.url} and {names[name.casefold()]} share file {name}")
        names[name.casefold()] = captured.url
        target = served / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(captured.body)
        index[captured.url] = {
            "file": "served/" + name,
            "status": captured.status,
            "headers": captured.headers,
        }
    text = json.dumps(index, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (corpus_dir / "index.json").write_text(text, encoding="utf-8")


def load_index(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = json.loads(
        (corpus_dir / "index.json").read_text(encoding="utf-8")
    )
    return index


def _diff(url: str, expected: bytes, actual: bytes) -> str:
    """A short unified diff of two bodies, from just before their first difference."""
    old = expected.decode("utf-8", "replace").splitlines(keepends=True)
    new = actual.decode("utf-8", "replace").splitlines(keepends=True)
    lines = list(difflib.unified_diff(old, new, f"golden {url}", f"served {url}", n=2))
    if not lines:  # the difference hides in bytes that both decode to U+FFFD
        return f"bodies differ in bytes that are not UTF-8 ({len(expected)} vs {len(actual)})\n"
    shown = "".join(lines[:DIFF_LINES])
    if len(lines) > DIFF_LINES:
        shown += f"... ({len(lines) - DIFF_LINES} more diff lines)\n"
    return shown


def mismatches(client: FlaskClient, corpus_dir: Path) -> list[str]:
    """Every golden URL of ``corpus_dir`` served again; one message per URL that differs."""
    found = []
    for url, golden in load_index(corpus_dir).items():
        served = fetch(client, url)
        expected = (corpus_dir / golden["file"]).read_bytes()
        if served.status != golden["status"]:
            found.append(f"{url}: status {served.status}, golden {golden['status']}")
        elif served.headers != golden["headers"]:
            found.append(f"{url}: headers {served.headers}, golden {golden['headers']}")
        elif served.body != expected:
            found.append(f"{url}: body differs\n" + _diff(url, expected, served.body))
    return found


def assert_matches_goldens(client: FlaskClient, corpus_dir: Path) -> None:
    """Fail naming the URLs that differ from the goldens, with the first one's diff."""
    __tracebackhide__ = True  # the message says it all; pytest need not show this helper
    found = mismatches(client, corpus_dir)
    if found:
        names = ", ".join(m.split(":", 1)[0] for m in found[:10])
        raise AssertionError(
            f"{len(found)} URL(s) differ from {corpus_dir}: {names}"
            f"{' ...' if len(found) > 10 else ''}\n\nfirst: {found[0]}\n"
            "If the change is intended: python -m tests.golden --regenerate, review the diff."
        )


def checkpointed_copy(database: Path, target: Path) -> None:
    """Copy a store as one self-contained file: its WAL folded in first."""
    conn = sqlite3.connect(database)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise RuntimeError(f"{database}: checkpoint blocked by another connection")
    finally:
        conn.close()
    shutil.copyfile(database, target)


def regenerate(names: list[str], out: Path, write_fixture: bool) -> None:
    for name in names:
        corpus = CORPORA[name]
        with tempfile.TemporaryDirectory(prefix=f"golden-{name}-") as work:
            seed_dir, database = build_store(corpus, Path(work))
            if write_fixture and name == "varied":
                checkpointed_copy(database, out / fixture(SCHEMA_VERSION).name)
            app = serve(corpus, seed_dir, database)
            captures = capture(corpus, app.test_client())
            app.extensions["feeds.site"].store.close()
        (out / name).mkdir(parents=True, exist_ok=True)
        write(out / name, captures)
        print(f"{name}: {len(captures)} URLs → {out / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.golden", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="overwrite the goldens in tests/data/golden"
    )
    parser.add_argument("--out", type=Path, help="write the capture here instead")
    parser.add_argument(
        "--fixture",
        action="store_true",
        help=f"also write {fixture(SCHEMA_VERSION).name}, this schema's store fixture",
    )
    parser.add_argument("corpus", nargs="*", help=f"some of {', '.join(CORPORA)} (default all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.corpus) - set(CORPORA))
    if unknown:
        parser.error(f"unknown corpus {unknown[0]!r}; known: {', '.join(CORPORA)}")
    if args.out is None and not args.regenerate:
        parser.error("refusing to overwrite the goldens without --regenerate (or give --out DIR)")
    out = args.out if args.out is not None else GOLDEN
    regenerate(args.corpus or list(CORPORA), out, args.fixture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
