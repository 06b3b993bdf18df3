"""End to end: a real ``feeds serve`` on 127.0.0.1, read with feedparser like a feed reader.

Covers the promises of DESIGN.md "Identity" as a subscriber sees them through
the running service:

- the scheduler follows the seed directory without a restart: a new file adds
  exactly its releases; a rename, a reorder and a whitespace-only edit change
  no ID and no ``updated``; a corrected body keeps its ID, shows the new text
  and gets a strictly newer ``updated`` (and a poller's old ETag stops
  matching); a removed file's releases leave the feeds and come back with the
  same IDs and ``updated``; an agency whose releases all left still answers
  200, with an ``updated`` that moved; every worker serves the same bytes;
- a restart on the same database serves byte-identical documents with the
  same ``ETag`` and ``Last-Modified`` (a poller gets 304); a rebuilt database
  gives the same entry and feed IDs; another base URL changes only links;
- stopping the service, however it is run, logs no errors.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feeds.pages import breakable

from .servers import (
    REAL_SEED,
    REAL_SEED_RELEASES,
    ROOT,
    Reply,
    Server,
    Servers,
    wait_until,
)

pytestmark = pytest.mark.e2e

REAL_AGENCIES = {slug for slug, _ in REAL_SEED_RELEASES}

#: A release to write into a seed file: title, Source agency, date line, body paragraphs.
Release = tuple[str, str, str | None, list[str]]

FRONTEX_A: Release = (
    "Frontex supports return operation from Cyprus",
    "Frontex",
    "12 March 2024",
    [
        "Frontex coordinated a return operation from Larnaca with officers from three "
        "Member States.",
        "The operation was monitored by an independent observer.",
    ],
)
FRONTEX_B: Release = (
    "Border guards train on document fraud detection",
    "Frontex",
    None,
    [
        "On Tuesday (5 March 2024), forty border guards finished a week of training "
        "on detecting forged travel documents.",
    ],
)
NEW_1: Release = (
    "Europol coordinates takedown of phishing-as-a-service platform",
    "Europol",
    "4 April 2024",
    [
        "Law enforcement from nine countries took down a platform that sold phishing kits.",
        "  • 37 arrests\n  • 120 servers seized",
    ],
)
NEW_2: Release = (
    "Joint action day targets trafficking in cultural goods",
    "Europol",
    None,
    ["More than 3 000 objects were seized during the action day."],
)

#: The correction: one phrase in the first body paragraph of a real release.
CORRECTED_TITLE = (
    "Operation Narsil disrupts network of child abuse websites designed to generate "
    "profits from advertising"
)
OLD_PHRASE = "INTERPOL has concluded a two-year global operation"
NEW_PHRASE = "INTERPOL has concluded a two-year worldwide operation"
#: The whitespace-only edit: a body paragraph of another real release.
WHITESPACE_LINE_START = "The investigation started after suspicions of forgery"


def release_text(release: Release) -> str:
    """One release in the seed grammar, without a trailing newline."""
    title, agency, date_line, paragraphs = release
    parts = [title, f"Source: {agency}", *([date_line] if date_line else []), *paragraphs]
    return "\n\n".join(parts)


def seed_text(*releases: Release) -> str:
    return "\n\n".join(release_text(r) for r in releases) + "\n"


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` as careful tools do (a hidden temporary file, then rename), so no
    sync can catch it half-written: these tests are about what a finished edit does."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


@dataclass(frozen=True, slots=True)
class Entry:
    """What a feed reader keeps of an entry."""

    id: str
    title: str
    updated: str
    agency: str
    content: str = field(repr=False)


def read_feed(server: Server, name: str = "all") -> feedparser.FeedParserDict:
    """Fetch ``/feeds/<name>.atom``; it must be well-formed Atom with unique entry IDs.

    Fetched three times: whichever worker answers, the bytes and the ETag are the same.
    """
    replies = [server.get(f"/feeds/{name}.atom") for _ in range(3)]
    reply = replies[0]
    assert reply.status == 200, f"/feeds/{name}.atom answered {reply.status}: {reply.body[:200]!r}"
    assert reply.headers["Content-Type"].startswith("application/atom+xml")
    assert {(r.status, r.body, r.headers.get("ETag")) for r in replies} == {
        (200, reply.body, reply.headers.get("ETag"))
    }, f"/feeds/{name}.atom differs between requests"
    feed = feedparser.parse(reply.body)
    assert feed.bozo == 0, f"/feeds/{name}.atom is not well-formed: {feed.get('bozo_exception')}"
    ids = [entry.id for entry in feed.entries]
    assert len(ids) == len(set(ids)), f"duplicate entry IDs in /feeds/{name}.atom"
    return feed


def entries(feed: feedparser.FeedParserDict) -> dict[str, Entry]:
    """The feed's entries by ID."""
    return {
        e.id: Entry(
            e.id,
            e.title,
            e.updated,
            e.tags[0].term,
            "".join(c.value for c in e.get("content", [])),
        )
        for e in feed.entries
    }


def moment(text: str) -> datetime:
    """An Atom date (RFC 3339) as an aware datetime."""
    return datetime.fromisoformat(text)


def by_title(found: dict[str, Entry], title: str) -> Entry:
    matches = [e for e in found.values() if e.title == title]
    assert len(matches) == 1, f"{len(matches)} entries titled {title!r}"
    return matches[0]


def sync_now(server: Server) -> None:
    """Wait for the scheduler to run a sync that saw every change made so far."""
    health = server.wait_for_sync_after(datetime.now(UTC))
    assert health["status"] == "ok", health
    assert health["last_sync"]["ok"], health


def same_updated(before: dict[str, Entry], after: dict[str, Entry], ids: set[str]) -> list[str]:
    """Titles of the entries among ``ids`` whose ``updated`` moved."""
    return [
        f"{before[i].title}: {before[i].updated} -> {after[i].updated}"
        for i in sorted(ids)
        if before[i].updated != after[i].updated
    ]


def test_scheduler_follows_seed_directory(tmp_path: Path, pool: Servers) -> None:
    """Edits to the seed directory reach subscribers as DESIGN.md "Identity" promises."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    real = seeds / REAL_SEED.name
    shutil.copy(REAL_SEED, real)
    frontex = seeds / "frontex.txt"
    frontex.write_text(seed_text(FRONTEX_A, FRONTEX_B), encoding="utf-8")
    server = pool.feeds_serve(
        {
            "FEEDS_SEED_DIR": str(seeds),
            "FEEDS_DATABASE": str(tmp_path / "db" / "feeds.sqlite3"),
            "FEEDS_SYNC_INTERVAL": "1",
            "FEEDS_WORKERS": "2",
        }
    )

    start = entries(read_feed(server))
    assert sorted((e.agency, e.title) for e in start.values()) == sorted(
        [*REAL_SEED_RELEASES, ("frontex", FRONTEX_A[0]), ("frontex", FRONTEX_B[0])]
    )
    corrected = by_title(start, CORRECTED_TITLE)
    assert OLD_PHRASE in corrected.content
    old_etag = server.get("/feeds/all.atom").headers["ETag"]
    unchanged = server.get("/feeds/all.atom", headers={"If-None-Match": old_etag})
    assert unchanged.status == 304
    # `updated` has whole seconds: let the clock pass one before anything changes.
    time.sleep(1.1)

    # One step: a new file, a rename, a reorder and a correction.
    (seeds / "europol-april.txt").write_text(seed_text(NEW_1, NEW_2), encoding="utf-8")
    renamed = seeds / "2023-08-dump.txt"
    real.rename(renamed)
    text = renamed.read_text(encoding="utf-8")
    assert text.count(OLD_PHRASE) == 1
    replace_file(renamed, text.replace(OLD_PHRASE, NEW_PHRASE))
    replace_file(frontex, seed_text(FRONTEX_B, FRONTEX_A))
    sync_now(server)

    after = entries(read_feed(server))
    new_ids = set(after) - set(start)
    assert sorted(after[i].title for i in new_ids) == sorted([NEW_1[0], NEW_2[0]])
    assert set(start) <= set(after), "an old entry changed its ID or disappeared"
    assert len(after) == 14
    fixed = after[corrected.id]
    assert fixed.title == CORRECTED_TITLE
    assert NEW_PHRASE in fixed.content and OLD_PHRASE not in fixed.content
    assert moment(fixed.updated) > moment(corrected.updated), (
        f"corrected entry's updated did not move forward: {corrected.updated} -> {fixed.updated}"
    )
    assert same_updated(start, after, set(start) - {corrected.id}) == []
    # A poller holding the old ETag now gets the new document, then 304 again.
    changed = server.get("/feeds/all.atom", headers={"If-None-Match": old_etag})
    assert changed.status == 200
    new_etag = changed.headers["ETag"]
    assert server.get("/feeds/all.atom", headers={"If-None-Match": new_etag}).status == 304

    # A whitespace-only edit is not a change.
    text = renamed.read_text(encoding="utf-8")
    lines = text.split("\n")
    (index,) = [i for i, line in enumerate(lines) if line.startswith(WHITESPACE_LINE_START)]
    lines[index] = lines[index].replace(" ", "  ") + " \t "
    lines.insert(index + 1, "   ")
    replace_file(renamed, "\n".join(lines))
    sync_now(server)
    spaced = entries(read_feed(server))
    assert set(spaced) == set(after)
    assert same_updated(after, spaced, set(after)) == []

    # A file that leaves takes its releases along; its agency's feed still answers.
    frontex_ids = {i for i, e in spaced.items() if e.agency == "frontex"}
    assert len(frontex_ids) == 2
    frontex_updated = read_feed(server, "frontex").feed.updated
    stash = tmp_path / "frontex.txt.away"
    time.sleep(1.1)  # the departure gets its own second
    frontex.rename(stash)
    sync_now(server)
    without_feed = read_feed(server)
    without = entries(without_feed)
    assert set(without) == set(spaced) - frontex_ids
    assert same_updated(spaced, without, set(without)) == []
    empty = read_feed(server, "frontex")
    assert empty.entries == []
    # The feeds it left say when: their `updated` is the departure, not an older entry's.
    assert moment(empty.feed.updated) > moment(frontex_updated)
    assert moment(without_feed.feed.updated) > max(moment(e.updated) for e in spaced.values())

    # ... and brings them back with the same IDs and `updated` when it returns.
    stash.rename(frontex)
    sync_now(server)
    back = entries(read_feed(server))
    assert set(back) == set(spaced)
    assert same_updated(spaced, back, set(spaced)) == []
    assert set(entries(read_feed(server, "frontex"))) == frontex_ids

    health = server.healthz()
    assert health["problems"] == {}, health["problems"]
    assert server.errors() == [], server.log()


def documents(server: Server) -> dict[str, bytes]:
    """Every document a subscriber of this seed data reads: feeds, index and pages."""
    return {path: reply.body for path, reply in replies(server).items()}


def replies(server: Server) -> dict[str, Reply]:
    """The replies to :func:`documents`' requests, by path."""
    feed = read_feed(server)
    found = entries(feed)
    slugs = {e.agency for e in found.values()}
    assert slugs == REAL_AGENCIES
    paths = ["/feeds/all.atom", "/"]
    for slug in sorted(slugs):
        paths += [f"/feeds/{slug}.atom", f"/agencies/{slug}"]
    paths += [f"/releases/{i.removeprefix('urn:uuid:')}" for i in sorted(found)]
    result: dict[str, Reply] = {}
    for path in paths:
        reply = server.get(path)
        assert reply.status == 200, f"{path} answered {reply.status}"
        result[path] = reply
    return result


def identities(docs: dict[str, bytes]) -> dict[str, tuple[str, frozenset[str]]]:
    """Per feed document: the feed ID and the set of its entry IDs."""
    result: dict[str, tuple[str, frozenset[str]]] = {}
    for path, body in docs.items():
        if path.startswith("/feeds/"):
            feed = feedparser.parse(body)
            assert feed.bozo == 0
            result[path] = (feed.feed.id, frozenset(e.id for e in feed.entries))
    return result


def next_second() -> None:
    """Sleep into the next wall-clock second, so that a "now" sneaking into output shows."""
    time.sleep(1.05 - time.time() % 1)


def test_restart_and_rebuild_keep_documents_and_ids(tmp_path: Path, pool: Servers) -> None:
    """Restarts, a lost database and a new base URL cost subscribers nothing."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    database = tmp_path / "db" / "feeds.sqlite3"
    base = "http://feeds.example.test"
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(database),
        "FEEDS_BASE_URL": base,
        "FEEDS_SYNC_INTERVAL": "3600",
        "FEEDS_WORKERS": "1",
    }

    first = pool.feeds_serve(settings, name="first run")
    first_replies = replies(first)
    before = {path: reply.body for path, reply in first_replies.items()}
    assert first.stop() == 0, first.log()
    next_second()

    second = pool.feeds_serve(settings, name="restart")
    second_replies = replies(second)
    again = {path: reply.body for path, reply in second_replies.items()}
    assert sorted(again) == sorted(before)
    changed = [path for path in before if again[path] != before[path]]
    assert changed == [], f"documents changed across a restart: {changed}"
    # A poller that fetched before the restart is told nothing changed.
    for path, reply in first_replies.items():
        validators = {k: reply.headers.get(k) for k in ("ETag", "Last-Modified")}
        assert validators == {
            k: second_replies[path].headers.get(k) for k in ("ETag", "Last-Modified")
        }, path
        assert None not in validators.values(), f"{path} has no ETag or Last-Modified"
        for condition in (
            {"If-None-Match": validators["ETag"]},
            {"If-Modified-Since": validators["Last-Modified"]},
        ):
            revisit = second.get(path, headers=condition)
            assert (revisit.status, revisit.body) == (304, b""), (path, condition)
    assert second.stop() == 0, second.log()

    # Rebuild from nothing: the same IDs (updated times may differ: first seen is now).
    for stored in database.parent.iterdir():
        stored.unlink()
    rebuilt_server = pool.feeds_serve(settings, name="rebuilt database")
    rebuilt = documents(rebuilt_server)
    assert rebuilt_server.stop() == 0, rebuilt_server.log()
    assert identities(rebuilt) == identities(before)

    # Another base URL on the same database: only links differ.
    other = "https://mirror.example.org/news"
    moved_server = pool.feeds_serve({**settings, "FEEDS_BASE_URL": other}, name="moved")
    moved = documents(moved_server)
    assert identities(moved) == identities(rebuilt)
    feed = feedparser.parse(moved["/feeds/all.atom"])
    assert {link.href for link in feed.feed.links if link.rel == "self"} == {
        f"{other}/feeds/all.atom"
    }
    assert all(e.link.startswith(f"{other}/releases/") for e in feed.entries)
    # Pages show feed addresses with line-break hints (<wbr>): the shown form moves too.
    shown = (str(breakable(base)).encode(), str(breakable(other)).encode())
    differing = [
        path
        for path in rebuilt
        if moved[path] != rebuilt[path].replace(*shown).replace(base.encode(), other.encode())
    ]
    assert differing == [], f"more than the links changed with the base URL: {differing}"


#: Workers in the shutdown test: each one is another chance to catch a sync due mid-exit.
WORKERS = 4
DEPLOY_CONF = ROOT / "deploy" / "gunicorn.conf.py"
#: The ways to run the service: DESIGN.md "Running it" and README "Deploying".
LAUNCHES = {
    "feeds serve": (),
    "gunicorn -c deploy/gunicorn.conf.py wsgi:app": ("-c", str(DEPLOY_CONF)),
    "gunicorn wsgi:app": ("-w", str(WORKERS), "-k", "gthread"),
}


@pytest.mark.parametrize("launch", LAUNCHES)
def test_stopping_the_service_logs_no_errors(launch: str, tmp_path: Path, pool: Servers) -> None:
    """A deploy stops the service: that must not log errors (operators alert on them).

    With a sync due every 2 ms, each worker's scheduler is sure to fire while the
    worker is shutting down; it must be stopped before the interpreter refuses work.
    """
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(tmp_path / "db" / "feeds.sqlite3"),
        "FEEDS_SYNC_INTERVAL": "0.002",
        "FEEDS_WORKERS": str(WORKERS),
    }
    if launch == "feeds serve":
        server = pool.feeds_serve(settings)
    else:
        server = pool.gunicorn(settings, *LAUNCHES[launch], name=launch)
    assert len(read_feed(server).entries) == 10

    def all_workers_ready() -> bool | None:
        # feeds.app logs "app ready" once per worker, after its scheduler started.
        return True if server.log(limit=10**7).count("app ready") >= WORKERS else None

    wait_until(all_workers_ready, f"{WORKERS} workers to be ready", details=server.log)
    time.sleep(0.3)  # every worker's scheduler is running now
    assert server.errors() == [], server.log()
    assert server.stop() == 0, server.log()
    assert server.errors() == [], f"errors logged while stopping:\n{server.log()}"
