"""Identity: the promise that a release keeps its entry ID, and the store keeps its times.

Property tests (Hypothesis) for every "does not change when" clause of DESIGN.md
"Identity", run through the real ``feeds.sync.sync`` on a temporary seed directory
and a real SQLite :class:`~feeds.store.Store` (or through :mod:`feeds.ids` where the
clause is about the key itself):

- IDs do not change when files are renamed or releases move between files, when
  releases are reordered, when other releases are added or removed, when a body is
  corrected, when the database is deleted and rebuilt, when the base URL changes,
  for whitespace/case/NFKC variants of a title, or when a date appears in the body
  (only the date line is part of the key);
- the agency's spelling and channel do not enter the key (its slug does), and the IDs
  of the real document are pinned: a change of key, normalization or namespace fails;
- the same release in two files is one release, and which copy wins does not depend
  on file names or order; the same title from two agencies, or with two different
  date lines, is two releases;
- the store's ``first_seen`` and ``updated`` survive a restart; a whitespace-only
  edit is not a change; a real edit moves ``updated`` strictly forward and keeps the
  ID; a release removed and restored keeps its ID, ``first_seen`` and ``updated``.

Time is controlled with the injectable ``clock`` of ``sync``, never by sleeping.
Each example works in its own ``tempfile.TemporaryDirectory()``: function-scoped
pytest fixtures are not reset between Hypothesis examples. The module runs once
per store backend: on PostgreSQL each example starts from an emptied database
(its schema dropped and created again), which is what a new file is for SQLite.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import feedparser
import psycopg
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from feeds import ids
from feeds.app import create_app
from feeds.backends import open_store
from feeds.config import DatabaseURL
from feeds.model import Release, SyncReport
from feeds.store import Store
from feeds.sync import sync

from .conftest import REAL_SEED
from .postgres import Cluster, empty_store
from .records import all_releases

#: This module run's PostgreSQL database (None: SQLite), set by ``_backend``.
_PG: dict[str, str] = {}


@pytest.fixture(autouse=True, scope="module")
def _backend(backend: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here runs on both stores (see tests/conftest.py)."""
    if backend == "sqlite":
        yield
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    _PG["url"] = cluster.database()
    try:
        yield
    finally:
        cluster.drop(_PG.pop("url"))


#: On PostgreSQL each example costs a round trip per statement and an emptied database:
#: the properties run a fifth as many examples there (at least the dev profile's 100),
#: which is what kept CI's suite under an hour. The rules they check live above the
#: store (feeds/decide.py) and run in full on SQLite.
PG_EXAMPLES_DIVISOR = 5


@pytest.fixture(autouse=True)
def _fewer_examples_on_postgresql(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = request.function
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if backend == "sqlite" or current is None:
        return
    examples = max(100, current.max_examples // PG_EXAMPLES_DIVISOR)
    # Where Hypothesis reads a test's settings when it runs (hypothesis.core).
    monkeypatch.setattr(
        test, "_hypothesis_internal_use_settings", settings(current, max_examples=examples)
    )


def fresh_database(root: Path, created: datetime) -> Path | DatabaseURL:
    """An empty store location for one example: a new SQLite file, or the emptied database.

    The PostgreSQL database is emptied in place (its rows deleted, what a new store
    starts with written again): creating the schema anew for hundreds of examples
    would cost minutes.
    """
    if "url" not in _PG:
        return root / "db" / "feeds.sqlite3"
    empty_store(_PG["url"], created)
    return DatabaseURL(_PG["url"])


def destroy(db: Path | DatabaseURL) -> None:
    """Delete the database: the SQLite file and its companions, or every PostgreSQL table."""
    if isinstance(db, DatabaseURL):
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return
    for path in db.parent.iterdir():  # the file and its -wal / -shm companions
        path.unlink()


# -- generated releases ------------------------------------------------------------

#: Titles: ASCII letters and digits, so no title is ever a Source line.
TITLE_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#: Bodies: lowercase only, so a body paragraph can never spell a month name (no date
#: line, no date in text) nor start with "Source: ".
BODY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
AGENCIES = ("Europol", "Interpol", "NATO", "Eurojust", "Agência Nacional")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
#: Hundreds of examples each create a SQLite file; on a RAM disk, where there is one,
#: they do not wait for the disk to flush. Still a real file and a real store.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@dataclass(frozen=True)
class Rel:
    """One release as written in a seed file."""

    agency: str
    title: str
    date_line: date | None
    body: tuple[str, ...]

    @property
    def slug(self) -> str:
        return ids.agency_slug(self.agency)

    @property
    def key(self) -> tuple[str, str, date | None]:
        return (self.slug, ids.normalize_text(self.title), self.date_line)

    @property
    def expected_id(self) -> str:
        return ids.release_id(self.slug, self.title, self.date_line)


def date_text(value: date) -> str:
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def release_text(rel: Rel, title: str | None = None) -> str:
    """``Title\\n\\nSource: Agency\\n\\n[date line\\n\\n]Body paragraph\\n\\n...``."""
    parts = [rel.title if title is None else title, f"Source: {rel.agency}"]
    if rel.date_line is not None:
        parts.append(date_text(rel.date_line))
    parts.extend(rel.body)
    return "".join(part + "\n\n" for part in parts)


def seed_text(rels: Sequence[Rel]) -> str:
    return "".join(release_text(rel) for rel in rels)


words = st.text(alphabet=BODY_ALPHABET, min_size=1, max_size=8)
title_words = st.text(alphabet=TITLE_ALPHABET, min_size=1, max_size=8)
titles = st.lists(title_words, min_size=1, max_size=5).map(" ".join)
paragraphs = st.lists(words, min_size=1, max_size=6).map(" ".join)
bodies = st.lists(paragraphs, min_size=1, max_size=3).map(tuple)
date_lines = st.none() | st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31))
rels = st.builds(Rel, st.sampled_from(AGENCIES), titles, date_lines, bodies)
release_lists = st.lists(rels, min_size=1, max_size=6, unique_by=lambda r: r.key)
file_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=10
).map(lambda stem: stem + ".txt")
clock_steps = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))


def body_text(body: Sequence[str]) -> str:
    """What a reader sees of a body once whitespace is normalized (the content hash's view)."""
    return " ".join(" ".join(body).split())


# -- a seed directory and a store per example ----------------------------------------

#: Distinct modification times for every write, so no rewrite can look unchanged to the
#: fingerprint check merely because the file system clock is coarse.
_MTIMES = itertools.count(1_600_000_000 * 10**9, 10**6)


def write_seeds(seed_dir: Path, files: Mapping[str, str | bytes]) -> None:
    """Make ``seed_dir`` hold exactly ``files``."""
    for old in seed_dir.iterdir():
        old.unlink()
    for name, content in files.items():
        path = seed_dir / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        tick = next(_MTIMES)
        os.utime(path, ns=(tick, tick))


@dataclass
class World:
    """A seed directory and a store in one temporary directory."""

    root: Path
    seed_dir: Path
    db: Path | DatabaseURL
    store: Store

    def sync(self, at: datetime) -> SyncReport:
        report = sync(self.store, self.seed_dir, clock=lambda: at)
        assert report.ok, report.error
        return report

    def write(self, files: Mapping[str, str | bytes]) -> None:
        write_seeds(self.seed_dir, files)

    def present(self) -> dict[str, Release]:
        return {r.id: r for r in all_releases(self.store) if r.present}

    def all_releases(self) -> dict[str, Release]:
        return {r.id: r for r in all_releases(self.store)}

    def reopen(self, at: datetime) -> None:
        """A restart: a new Store object on the same file."""
        self.store.close()
        self.store = open_store(self.db)
        self.store.initialize(at)


@contextmanager
def world(created: datetime = T0) -> Iterator[World]:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        root = Path(tmp)
        seed_dir = root / "seeds"
        seed_dir.mkdir()
        db = fresh_database(root, created)
        store = open_store(db)
        store.initialize(created)
        w = World(root, seed_dir, db, store)
        try:
            yield w
        finally:
            w.store.close()


def synced(files: Mapping[str, str], at: datetime = T0) -> dict[str, Release]:
    """Present releases after one sync of ``files`` into a fresh store."""
    with world(at) as w:
        w.write(files)
        w.sync(at)
        return w.present()


def essence(release: Release) -> Release:
    """A release without the title's line number, which moving text around may change."""
    return replace(release, draft=replace(release.draft, line=0))


def assert_nothing_happened(report: SyncReport) -> None:
    """What a poller notices: nothing new, changed, gone or returned."""
    assert report.new == ()
    assert report.changed == ()
    assert report.gone == ()
    assert report.returned == ()


# -- the key itself ------------------------------------------------------------------


@given(release_lists)
def test_ids_are_derived_from_the_identity_key_only(releases: list[Rel]) -> None:
    present = synced({"seed.txt": seed_text(releases)})
    assert set(present) == {rel.expected_id for rel in releases}
    for rel in releases:
        assert rel.expected_id.startswith("urn:uuid:")
        draft = present[rel.expected_id].draft
        assert (draft.agency_slug, draft.title, draft.date_line) == (
            rel.slug,
            rel.title,
            rel.date_line,
        )
        assert draft.paragraphs == rel.body


@given(st.lists(st.tuples(st.sampled_from(AGENCIES), titles, date_lines), min_size=2))
def test_different_keys_never_share_an_id(keys: list[tuple[str, str, date | None]]) -> None:
    normalized = {(ids.agency_slug(a), ids.normalize_text(t), d) for a, t, d in keys}
    derived = {ids.release_id(ids.agency_slug(a), t, d) for a, t, d in keys}
    assert len(derived) == len(normalized)


#: IDs subscribers of the real document already hold. If one of these changes, every
#: reader sees the release again as new: the key, its normalization or the namespace moved.
PINNED_RELEASE_IDS = {
    "Secretary General praises Latvia for its contributions to NATO": (
        "urn:uuid:e0dcf1ca-a880-5d1a-a597-955975687576"
    ),
    "Operation Narsil disrupts network of child abuse websites designed to generate profits "
    "from advertising": "urn:uuid:978505cf-3863-59dd-b9a2-c1bb0bcfca04",
}
PINNED_FEED_IDS = {
    "all": "urn:uuid:da36b8f1-1078-56b6-a3aa-bac7b375fa6e",
    "nato": "urn:uuid:4993de8c-b1e2-53dd-914f-027caa547f2b",
}
#: Content hashes the store already holds for the same releases. If one changes, the next
#: sync after an upgrade sees every release as changed and moves every ``updated``.
PINNED_CONTENT_HASHES = {
    "Secretary General praises Latvia for its contributions to NATO": (
        "cf2389b918be83952866a19ceaf5abd899e56e1d2f239c4d3fdfe76e9e5f8d7d"
    ),
    "Operation Narsil disrupts network of child abuse websites designed to generate profits "
    "from advertising": "f9833e077ec6bc38a49fbf92da975a3ff19d27f06b6e23d3312c96edd8a29c26",
}


def test_ids_of_the_real_document_never_change() -> None:
    with world() as w:
        w.write({REAL_SEED.name: REAL_SEED.read_bytes()})
        w.sync(T0)
        by_title = {r.draft.title: r.id for r in w.present().values()}
    for title, pinned in PINNED_RELEASE_IDS.items():
        assert by_title[title] == pinned
        assert uuid.UUID(pinned.removeprefix("urn:uuid:")).version == 5
    for name, pinned in PINNED_FEED_IDS.items():
        assert ids.feed_id(name) == pinned


def test_content_hashes_of_the_real_document_never_change() -> None:
    with world() as w:
        w.write({REAL_SEED.name: REAL_SEED.read_bytes()})
        w.sync(T0)
        by_title = {r.draft.title: r.content_hash for r in w.present().values()}
    for title, pinned in PINNED_CONTENT_HASHES.items():
        assert by_title[title] == pinned


#: Whitespace as str.split() knows it, a few non-whitespace look-alikes, and text.
SQUASH_ALPHABET = " \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u2000\u2028\u2029\u3000\u200b\ufeffaé"


@given(st.text(SQUASH_ALPHABET, min_size=1, max_size=60))
def test_squash_is_split_and_join_at_any_length(piece: str) -> None:
    # Texts over a couple of KB take another path (a regex, to bound memory): same result.
    for text in (piece, piece * (30000 // len(piece) + 1)):
        assert ids.squash(text) == " ".join(text.split())


# -- "does not change when" ----------------------------------------------------------


@given(
    release_lists,
    st.data(),
)
def test_renaming_files_and_moving_releases_between_them_keeps_ids(
    releases: list[Rel], data: st.DataObject
) -> None:
    def layout() -> dict[str, str]:
        names = data.draw(st.lists(file_names, min_size=1, max_size=3, unique=True))
        homes = data.draw(
            st.lists(st.sampled_from(names), min_size=len(releases), max_size=len(releases))
        )
        return {
            name: seed_text([r for r, home in zip(releases, homes, strict=True) if home == name])
            for name in names
        }

    first, second = layout(), layout()
    with world() as w:
        w.write(first)
        w.sync(T0)
        before = w.present()
        w.write(second)
        report = w.sync(T0 + timedelta(hours=1))
        after = w.present()
    assert_nothing_happened(report)
    assert set(after) == set(before) == {rel.expected_id for rel in releases}
    for rid, release in after.items():
        assert (release.first_seen, release.updated) == (T0, T0)
        assert release.seq == before[rid].seq
    assert set(synced(second)) == set(before)


@given(release_lists, file_names, file_names)
def test_renaming_a_file_on_disk_keeps_ids_and_times(
    releases: list[Rel], old: str, new: str
) -> None:
    assume(old != new)
    with world() as w:
        w.write({old: seed_text(releases)})
        w.sync(T0)
        before = w.present()
        os.rename(w.seed_dir / old, w.seed_dir / new)
        report = w.sync(T0 + timedelta(minutes=5))
        after = w.present()
    assert_nothing_happened(report)
    assert after == before


@given(release_lists.flatmap(lambda rs: st.tuples(st.just(rs), st.permutations(rs))))
def test_reordering_releases_keeps_ids(pair: tuple[list[Rel], list[Rel]]) -> None:
    releases, reordered = pair
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": seed_text(reordered)})
        report = w.sync(T0 + timedelta(hours=2))
        after = w.present()
    assert_nothing_happened(report)
    assert after.keys() == before.keys()
    assert {rid: (r.first_seen, r.updated) for rid, r in after.items()} == {
        rid: (r.first_seen, r.updated) for rid, r in before.items()
    }
    assert set(synced({"seed.txt": seed_text(reordered)})) == set(before)


@given(
    st.lists(rels, min_size=2, max_size=8, unique_by=lambda r: r.key),
    st.data(),
    clock_steps,
)
def test_adding_and_removing_other_releases_keeps_ids(
    everything: list[Rel], data: st.DataObject, step: timedelta
) -> None:
    split = data.draw(st.integers(1, len(everything) - 1))
    initial, extra = everything[:split], everything[split:]
    keep = data.draw(st.lists(st.booleans(), min_size=len(initial), max_size=len(initial)))
    kept = [r for r, k in zip(initial, keep, strict=True) if k]
    removed = [r for r, k in zip(initial, keep, strict=True) if not k]
    later = T0 + step
    with world() as w:
        w.write({"seed.txt": seed_text(initial)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": seed_text(kept + extra)})
        report = w.sync(later)
        after = w.present()
    assert set(report.new) == {r.expected_id for r in extra}
    assert set(report.gone) == {r.expected_id for r in removed}
    assert report.changed == ()
    assert set(after) == {r.expected_id for r in kept + extra}
    for rel in kept:
        assert essence(after[rel.expected_id]) == essence(before[rel.expected_id])


@given(release_lists, st.data(), clock_steps)
def test_correcting_a_body_keeps_the_id(
    releases: list[Rel], data: st.DataObject, step: timedelta
) -> None:
    corrected = [
        replace(rel, body=data.draw(bodies)) if data.draw(st.booleans()) else rel
        for rel in releases
    ]
    changed = {
        new.expected_id
        for old, new in zip(releases, corrected, strict=True)
        if body_text(old.body) != body_text(new.body)
    }
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        w.write({"seed.txt": seed_text(corrected)})
        report = w.sync(T0 + step)
        after = w.present()
    assert report.new == () and report.gone == ()
    assert set(report.changed) == changed
    assert set(after) == {rel.expected_id for rel in releases}
    for rel in corrected:
        assert after[rel.expected_id].draft.paragraphs == rel.body


@given(release_lists, clock_steps)
def test_deleting_and_rebuilding_the_database_keeps_ids(
    releases: list[Rel], step: timedelta
) -> None:
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.store.close()
        destroy(w.db)
        rebuilt = T0 + step + timedelta(seconds=1)
        w.store = open_store(w.db)
        w.store.initialize(rebuilt)
        report = w.sync(rebuilt)
        after = w.present()
    assert set(report.new) == set(before)
    assert set(after) == set(before)
    for rid, release in after.items():
        assert release.draft == before[rid].draft


def self_href(feed: feedparser.FeedParserDict) -> str:
    hrefs = [link.href for link in feed.feed.links if link.rel == "self"]
    assert len(hrefs) == 1
    return str(hrefs[0])


hosts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
base_urls = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}.example{port}{path}",
    st.sampled_from(["http", "https"]),
    hosts,
    st.sampled_from(["", ":8080", ":443"]),
    st.sampled_from(["", "/feeds-mirror", "/a/b"]),
)


@given(release_lists, base_urls, base_urls)
def test_changing_the_base_url_keeps_feed_and_entry_ids(
    releases: list[Rel], first_url: str, second_url: str
) -> None:
    assume(first_url != second_url)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        root = Path(tmp)
        seed_dir = root / "seeds"
        seed_dir.mkdir()
        write_seeds(seed_dir, {"seed.txt": seed_text(releases)})
        database = fresh_database(root, T0)

        def served(base_url: str) -> dict[str, feedparser.FeedParserDict]:
            settings = {
                "seed_dir": seed_dir,
                "database": database,
                "base_url": base_url,
                "scheduler": False,
            }
            client = create_app(settings, environ={}).test_client()
            names = ["all", *sorted({rel.slug for rel in releases})]
            return {
                name: feedparser.parse(client.get(f"/feeds/{name}.atom").data) for name in names
            }

        first, second = served(first_url), served(second_url)
    for name, feed in first.items():
        other = second[name]
        assert feed.feed.id == other.feed.id
        assert [e.id for e in feed.entries] == [e.id for e in other.entries]
        # The links did move: the test would notice if the base URL were ignored.
        assert self_href(feed).startswith(first_url + "/feeds/")
        assert self_href(other).startswith(second_url + "/feeds/")
    assert {e.id for e in first["all"].entries} == {rel.expected_id for rel in releases}


#: Separators that normalize to one space: NFKC turns the odd spaces into U+0020 and
#: whitespace is collapsed. A newline wraps the title over two lines of its paragraph.
TITLE_SEPARATORS = (" ", "  ", "\t", " \t ", "\u00a0", "\u2003", "\u3000", "\n")


@st.composite
def title_variants(draw: st.DrawFn, title: str) -> str:
    """The same title as typed differently: case, spacing, wrapping, compatibility forms."""
    out: list[str] = [draw(st.sampled_from(["", " ", "\t", "\u00a0"]))]
    for index, word in enumerate(title.split()):
        if index:
            out.append(draw(st.sampled_from(TITLE_SEPARATORS)))
        chars: list[str] = []
        for char in word:
            form = draw(st.sampled_from(["same", "swap", "fullwidth"]))
            if form == "swap":
                char = char.swapcase()
            elif form == "fullwidth":  # NFKC maps U+FF01..U+FF5E back to ASCII
                char = chr(ord(char) + 0xFEE0)
            chars.append(char)
        spelled = "".join(chars)
        if draw(st.booleans()):
            spelled = spelled.replace("fi", "\ufb01")  # the "fi" ligature, NFKC → "fi"
        out.append(spelled)
    out.append(draw(st.sampled_from(["", " ", "\t", "\u00a0"])))
    return "".join(out)


@given(titles.flatmap(lambda t: st.tuples(st.just(t), title_variants(t))), date_lines)
def test_title_variants_share_one_id(pair: tuple[str, str], day: date | None) -> None:
    title, variant = pair
    for agency in AGENCIES:
        slug = ids.agency_slug(agency)
        assert ids.release_id(slug, variant, day) == ids.release_id(slug, title, day)


@given(titles, date_lines)
def test_casefold_variants_share_one_id(title: str, day: date | None) -> None:
    # Case folding, not lower(): "ß" folds to "ss", so "STRASSE" and "straße" are one title.
    upper = ids.release_id("nato", f"{title.upper()} STRASSE", day)
    assert upper == ids.release_id("nato", f"{title.lower()} straße", day)


@given(
    release_lists.flatmap(
        lambda rs: st.tuples(
            st.just(rs),
            st.tuples(*(title_variants(r.title.replace("\n", " ")) for r in rs)),
        )
    ),
    clock_steps,
)
def test_retyping_titles_in_the_seed_keeps_ids(
    pair: tuple[list[Rel], tuple[str, ...]], step: timedelta
) -> None:
    releases, variants = pair
    retyped = "".join(
        release_text(rel, title=variant) for rel, variant in zip(releases, variants, strict=True)
    )
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": retyped})
        report = w.sync(T0 + step)
        after = w.present()
    assert report.new == () and report.gone == ()
    assert set(after) == set(before) == {rel.expected_id for rel in releases}
    for rid, release in after.items():
        assert release.first_seen == T0
        assert release.seq == before[rid].seq


@given(release_lists, st.data())
def test_the_agencys_spelling_and_channel_do_not_change_ids(
    releases: list[Rel], data: st.DataObject
) -> None:
    # The key holds the agency's slug, not its spelling: "NATO", "Nato (news)" are one agency.
    respelled = [
        replace(
            rel,
            agency=data.draw(st.sampled_from([rel.agency.upper(), rel.agency.lower()]))
            + data.draw(st.sampled_from(["", " (news and events)", " (press)"])),
        )
        for rel in releases
    ]
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": seed_text(respelled)})
        report = w.sync(T0 + timedelta(hours=1))
        after = w.present()
    assert report.new == () and report.gone == ()
    assert set(after) == set(before) == {rel.expected_id for rel in releases}


@given(
    st.lists(
        st.builds(Rel, st.sampled_from(AGENCIES), titles, st.none(), bodies),
        min_size=1,
        max_size=5,
        unique_by=lambda r: r.key,
    ),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
)
def test_a_date_found_in_the_body_does_not_enter_the_key(releases: list[Rel], day: date) -> None:
    dated = [
        replace(rel, body=(f"On Wednesday ({date_text(day)}), {rel.body[0]}", *rel.body[1:]))
        for rel in releases
    ]
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": seed_text(dated)})
        report = w.sync(T0 + timedelta(days=1))
        after = w.present()
    assert report.new == () and report.gone == ()
    assert set(after) == set(before) == {rel.expected_id for rel in releases}
    for rel in releases:
        assert before[rel.expected_id].draft.published is None
        # The parser did find the date: it is published, yet the ID stayed.
        assert after[rel.expected_id].draft.published == day
        assert after[rel.expected_id].draft.date_line is None


# -- one release, two releases ---------------------------------------------------------


def feed_entry_ids(w: World) -> list[str]:
    """Entry IDs in ``/feeds/all.atom`` as a reader gets it from an app on this world."""
    settings = {
        "seed_dir": w.seed_dir,
        "database": w.db,
        "base_url": "http://feeds.test",
        "scheduler": False,
    }
    response = create_app(settings, environ={}).test_client().get("/feeds/all.atom")
    assert response.status_code == 200
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    return [entry.id for entry in feed.entries]


@given(release_lists, st.data())
def test_the_same_release_in_two_files_is_one_release(
    releases: list[Rel], data: st.DataObject
) -> None:
    copied = data.draw(st.lists(st.sampled_from(releases), min_size=1, unique_by=lambda r: r.key))
    copied = data.draw(st.permutations(copied))
    with world() as w:
        w.write({"one.txt": seed_text(releases), "two.txt": seed_text(copied)})
        w.sync(T0)
        entries = feed_entry_ids(w)
    assert sorted(entries) == sorted(rel.expected_id for rel in releases)


@given(
    rels,
    bodies,
    st.lists(rels, max_size=3),
    st.lists(rels, max_size=3),
    st.data(),
)
def test_which_copy_wins_depends_on_content_only(
    rel: Rel,
    other_body: tuple[str, ...],
    company_a: list[Rel],
    company_b: list[Rel],
    data: st.DataObject,
) -> None:
    keys = [r.key for r in company_a + company_b]
    assume(rel.key not in keys and len(set(keys)) == len(keys))
    assume(body_text(rel.body) != body_text(other_body))
    copy_a, copy_b = rel, replace(rel, body=other_body)
    at_a = data.draw(st.integers(0, len(company_a)))
    at_b = data.draw(st.integers(0, len(company_b)))
    text_a = company_a[:at_a] + [copy_a] + company_a[at_a:]
    text_b = company_b[:at_b] + [copy_b] + company_b[at_b:]
    names = data.draw(st.lists(file_names, min_size=2, max_size=2, unique=True))

    layouts = [
        {names[0]: seed_text(text_a), names[1]: seed_text(text_b)},
        {names[1]: seed_text(text_a), names[0]: seed_text(text_b)},
        {names[0]: seed_text(text_b[::-1]), names[1]: seed_text(text_a[::-1])},
    ]
    winners = [synced(layout)[rel.expected_id].draft.paragraphs for layout in layouts]
    assert winners[0] in (copy_a.body, copy_b.body)
    assert winners[1] == winners[0]
    assert winners[2] == winners[0]

    # And in one store: swapping the file names is no change a reader could see.
    with world() as w:
        w.write(layouts[0])
        w.sync(T0)
        w.write(layouts[1])
        assert_nothing_happened(w.sync(T0 + timedelta(hours=1)))


@given(titles, bodies, date_lines, st.lists(st.sampled_from(AGENCIES), min_size=2, unique=True))
def test_the_same_title_from_different_agencies_is_different_releases(
    title: str, body: tuple[str, ...], day: date | None, agencies: list[str]
) -> None:
    releases = [Rel(agency, title, day, body) for agency in agencies]
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        entries = feed_entry_ids(w)
    assert len(entries) == len(agencies)
    assert set(entries) == {rel.expected_id for rel in releases}


@given(
    st.sampled_from(AGENCIES),
    titles,
    bodies,
    st.lists(
        st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
        min_size=2,
        max_size=4,
        unique=True,
    ),
)
def test_the_same_title_with_different_date_lines_is_different_releases(
    agency: str, title: str, body: tuple[str, ...], days: list[date]
) -> None:
    releases = [Rel(agency, title, day, body) for day in days]
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        entries = feed_entry_ids(w)
        present = w.present()
    assert len(entries) == len(days)
    assert {present[rel.expected_id].draft.published for rel in releases} == set(days)


#: Runs of spaces a date line may have between its parts: tabs and Unicode space
#: separators, as text copied from web pages has them (U+00A0, U+202F, U+2009, U+3000).
DATE_SPACES = (" ", "\u00a0", "\u202f", "\t", "  ", " \u00a0", "\u2009", "\u3000")


@given(
    st.builds(
        Rel,
        st.sampled_from(AGENCIES),
        titles,
        st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
        bodies,
    ),
    st.sampled_from(DATE_SPACES),
    st.sampled_from(DATE_SPACES),
)
def test_a_date_line_with_any_spaces_is_the_same_release(
    rel: Rel, before_month: str, after_month: str
) -> None:
    """``7\u00a0November\u00a02024`` is the date line ``7 November 2024``: same date, same ID."""
    assert rel.date_line is not None
    spaced = date_text(rel.date_line).split(" ")
    text = release_text(rel).replace(
        date_text(rel.date_line), f"{spaced[0]}{before_month}{spaced[1]}{after_month}{spaced[2]}"
    )
    present = synced({"seed.txt": text})
    assert set(present) == {rel.expected_id}
    draft = present[rel.expected_id].draft
    assert (draft.date_line, draft.published, draft.paragraphs) == (
        rel.date_line,
        rel.date_line,
        rel.body,
    )


# -- what the store keeps --------------------------------------------------------------


@given(release_lists, clock_steps)
def test_first_seen_and_updated_survive_a_restart(releases: list[Rel], step: timedelta) -> None:
    text = seed_text(releases)
    restarted = T0 + step + timedelta(seconds=1)
    with world() as w:
        w.write({"seed.txt": text})
        w.sync(T0)
        before = w.present()
        w.reopen(restarted)
        w.write({"seed.txt": text})  # same bytes, new mtime: the file is read again
        report = w.sync(restarted)
        after = w.present()
    assert_nothing_happened(report)
    assert after == before
    for release in after.values():
        assert (release.first_seen, release.updated) == (T0, T0)


#: Whitespace a person might add or remove while editing, none of it a change of content.
INNER_SPACES = (" ", "  ", "\t", " \t", "\u00a0")
TRAILING = ("", " ", "\t", "\u00a0", "  ")
GAPS = ("\n\n", "\n\n\n", "\n \n", "\n\u00a0\n", "\n\t\n\n")


@st.composite
def whitespace_edit(draw: st.DrawFn, releases: list[Rel]) -> str:
    """The same releases with different spacing, wrapping, blank lines and line endings."""

    def line(text: str) -> str:
        spaced = "".join(
            draw(st.sampled_from(INNER_SPACES)) if char == " " else char for char in text
        )
        return spaced + draw(st.sampled_from(TRAILING))

    def body_paragraph(text: str) -> str:
        # Wrap at some spaces: a multi-line paragraph reads as the same text.
        wrapped = "".join("\n" if c == " " and draw(st.booleans()) else c for c in text)
        return "\n".join(line(part) for part in wrapped.split("\n"))

    out: list[str] = []
    for rel in releases:
        parts = [line(rel.title), "Source: " + rel.agency + draw(st.sampled_from(TRAILING))]
        if rel.date_line is not None:
            parts.append(line(date_text(rel.date_line)))
        parts.extend(body_paragraph(p) for p in rel.body)
        for part in parts:
            out.append(part + draw(st.sampled_from(GAPS)))
    text = "".join(out)
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text


@given(release_lists.flatmap(lambda rs: st.tuples(st.just(rs), whitespace_edit(rs))), clock_steps)
def test_a_whitespace_only_edit_is_not_a_change(
    pair: tuple[list[Rel], str], step: timedelta
) -> None:
    releases, edited = pair
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        w.write({"seed.txt": edited})
        report = w.sync(T0 + step + timedelta(seconds=1))
        after = w.present()
    assert_nothing_happened(report)
    assert set(after) == {rel.expected_id for rel in releases}
    for release in after.values():
        assert release.updated == T0


@given(
    release_lists,
    st.data(),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
def test_a_real_edit_moves_updated_strictly_forward_and_keeps_the_id(
    releases: list[Rel], data: st.DataObject, step: timedelta
) -> None:
    target = data.draw(st.sampled_from(releases))
    new_body = data.draw(bodies.filter(lambda b: body_text(b) != body_text(target.body)))
    edited = [replace(r, body=new_body) if r is target else r for r in releases]
    edit_time = T0 + step
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        w.write({"seed.txt": seed_text(edited)})
        report = w.sync(edit_time)
        after = w.present()
    assert report.changed == (target.expected_id,)
    assert report.new == () and report.gone == ()
    changed = after[target.expected_id]
    assert changed.first_seen == T0
    assert changed.updated > T0
    if edit_time.replace(microsecond=0) > T0:
        # Truthful: the moment the sync saw the change (stored to the second).
        assert changed.updated == edit_time.replace(microsecond=0)
    assert changed.draft.paragraphs == new_body
    for rel in releases:
        if rel is not target:
            assert after[rel.expected_id].updated == T0


@given(
    st.lists(rels, min_size=2, max_size=6, unique_by=lambda r: r.key),
    st.data(),
    clock_steps,
    clock_steps,
)
def test_a_removed_release_comes_back_with_its_id_and_times(
    releases: list[Rel], data: st.DataObject, gap: timedelta, absence: timedelta
) -> None:
    out = data.draw(
        st.lists(
            st.sampled_from(releases),
            min_size=1,
            max_size=len(releases) - 1,
            unique_by=lambda r: r.key,
        )
    )
    gone_ids = {rel.expected_id for rel in out}
    edit_on_return = data.draw(st.booleans())
    returned = [
        replace(r, body=(*r.body, "corrected on return"))
        if edit_on_return and r.expected_id in gone_ids
        else r
        for r in releases
    ]
    left_at = T0 + gap + timedelta(seconds=1)
    back_at = left_at + absence + timedelta(seconds=1)
    with world() as w:
        w.write({"seed.txt": seed_text(releases)})
        w.sync(T0)
        before = w.present()
        w.write({"seed.txt": seed_text([r for r in releases if r.expected_id not in gone_ids])})
        leaving = w.sync(left_at)
        while_away = w.present()
        kept_records = w.all_releases()
        w.write({"seed.txt": seed_text(returned)})
        coming_back = w.sync(back_at)
        after = w.present()
    assert set(leaving.gone) == gone_ids
    assert gone_ids.isdisjoint(while_away)
    assert gone_ids <= set(kept_records)  # the store keeps the record
    assert set(coming_back.returned) == gone_ids
    assert coming_back.new == ()
    assert set(after) == set(before)
    for rid in gone_ids:
        assert after[rid].first_seen == T0
        assert after[rid].seq == before[rid].seq
        expected_updated = back_at.replace(microsecond=0) if edit_on_return else T0
        assert after[rid].updated == expected_updated
