"""Conditional GET as a poller sees it, through a real gunicorn server on 127.0.0.1.

DESIGN.md "HTTP for pollers": a strong ``ETag`` and ``Last-Modified`` on every
feed and page; ``If-None-Match`` (weak comparison, lists, ``*``) and
``If-Modified-Since`` answer ``304`` with no body and the same validators,
``If-None-Match`` winning; ``Cache-Control: public, max-age=<sync interval>``
(archive pages a day), never ``Expires: 0``; gzip when asked with its own
ETag and ``Vary: Accept-Encoding``; ``HEAD`` works, other methods ``405``.
The conditional cases are one table, run against every kind of document.
Requests go through :mod:`http.client` (no decompression, exact headers) and,
where "no body" must be proven, a raw socket.

Every test runs twice: against gunicorn, and against the app in this process
through Flask's test client, where the hot path's counter (feeds/hotpath.py)
proves that a repeated request was answered in front of Flask, so the table
holds for the hot path as well as for the Flask views.
"""

from __future__ import annotations

import gzip
import http.client
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import pytest
from flask import Flask
from lxml import etree

from feeds.app import create_app
from feeds.hotpath import HotPath

from .servers import GUNICORN, REAL_SEED, ROOT, Server, free_port, start

pytestmark = pytest.mark.e2e

ATOM = "{http://www.w3.org/2005/Atom}"
SYNC_INTERVAL = 30
ARCHIVE_MAX_AGE = 86400
PAGE_SIZE = 3
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
#: A strong entity tag: quoted, no ``W/`` prefix.
STRONG_ETAG = re.compile(r'"[\x21\x23-\x7e]+"')
#: Validators and caching headers a 304 must repeat from the 200.
VALIDATORS = ("ETag", "Last-Modified", "Cache-Control", "Vary")
NEW_NATO_RELEASE = (
    "NATO Allies open new training centre for maritime security\n\n"
    "Source: NATO\n\n"
    "5 May 2025\n\n"
    "NATO Allies opened a new training centre for maritime security on Monday.\n"
)


@dataclass(frozen=True, slots=True)
class Doc:
    """A document to test: where it is, what it is, how long caches may keep it."""

    path: str
    kind: str
    max_age: int = SYNC_INTERVAL


#: Every kind of document a poller or reader fetches. ``{release}`` is filled in at start.
DOCS = {
    "all.atom": Doc("/feeds/all.atom", "atom"),
    "nato.rss": Doc("/feeds/nato.rss", "rss"),
    "europol+nato.json": Doc("/feeds/europol+nato.json", "json"),
    "archive": Doc("/feeds/all/archive/1.atom", "atom", ARCHIVE_MAX_AGE),
    "index": Doc("/", "html"),
    "agency page": Doc("/agencies/nato", "html"),
    "release page": Doc("/releases/{release}", "html"),
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One response as it came over the wire: status, every header line, raw body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        """The one value of ``name``, or None; two lines of one header fail the test."""
        values = self.all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def __getitem__(self, name: str) -> str:
        value = self.header(name)
        assert value is not None, f"no {name} header in {self.headers}"
        return value


def ask(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> Reply:
    """One request on a fresh connection; the body is read whole and the connection closed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        with connection.getresponse() as response:
            body = response.read()
            return Reply(response.status, tuple(response.getheaders()), body)
    finally:
        connection.close()


def raw_after_headers(port: int, method: str, path: str, headers: dict[str, str]) -> bytes:
    """Bytes the server sends after the header block (``Connection: close``; read to EOF).

    :mod:`http.client` never reads a body for HEAD or 304; this proves none was sent.
    """
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, separator, rest = b"".join(chunks).partition(b"\r\n\r\n")
    assert separator, f"no complete header block from {method} {path}: {head[:300]!r}"
    return rest


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@dataclass
class Live:
    """The running server and the resolved path of each document."""

    server: Server | None
    paths: dict[str, str]

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def get(self, name: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
        return ask(self.port, method, self.paths[name], headers)

    def after_headers(self, method: str, name: str, headers: dict[str, str]) -> bytes:
        return raw_after_headers(self.port, method, self.paths[name], headers)

    def answered_by_hot_path(self) -> int | None:
        """How many requests the hot path answered so far; None where it cannot be seen."""
        return None


@dataclass
class InProcess(Live):
    """The same app in this process, through Flask's test client (and so the hot path)."""

    app: Flask | None = None

    @property
    def hot(self) -> HotPath:
        assert self.app is not None
        hot: HotPath = self.app.extensions["feeds.hotpath"]
        return hot

    def get(self, name: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
        assert self.app is not None
        path, _, query = self.paths[name].partition("?")
        response = self.app.test_client().open(
            path, method=method, query_string=query, headers=headers or {}
        )
        return Reply(response.status_code, tuple(response.headers.to_wsgi_list()), response.data)

    def after_headers(self, method: str, name: str, headers: dict[str, str]) -> bytes:
        return self.get(name, headers, method).body

    def answered_by_hot_path(self) -> int | None:
        return self.hot.answered


def in_process(workdir: Path) -> InProcess:
    """The app of :func:`start_gunicorn`'s settings, built here."""
    settings = {
        "seed_dir": real_seeds(workdir),
        "database": workdir / "db" / "feeds.sqlite3",
        "base_url": "http://127.0.0.1:8000",
        "sync_interval": SYNC_INTERVAL,
        "page_size": PAGE_SIZE,
        "scheduler": False,
    }
    live = InProcess(None, {"all.atom": DOCS["all.atom"].path}, create_app(settings, environ={}))
    live.paths = paths_from(live.get("all.atom").body)
    return live


def expect_hot(live: Live, before: int | None, requests: int = 1) -> None:
    """The last ``requests`` requests (of a cached document) were answered by the hot path."""
    now = live.answered_by_hot_path()
    if before is not None:
        assert now == before + requests, "a repeated request for a cached document went to Flask"


def start_gunicorn(workdir: Path, seeds: Path, name: str, **settings: str) -> Server:
    """``gunicorn -w 2 -k gthread --threads 4 wsgi:app`` on a free port, its base URL matching."""
    port = free_port()
    argv = [str(GUNICORN), "--chdir", str(ROOT), "-w", "2", "-k", "gthread", "--threads", "4"]
    argv += ["-b", f"127.0.0.1:{port}", "wsgi:app"]
    environ = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(workdir / "db" / "feeds.sqlite3"),
        "FEEDS_BASE_URL": f"http://127.0.0.1:{port}",
        "FEEDS_SYNC_INTERVAL": str(SYNC_INTERVAL),
        "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
        **settings,
    }
    return start(
        name, argv, settings=environ, cwd=workdir, port=port, log_path=workdir / "server.log"
    )


def real_seeds(workdir: Path) -> Path:
    seeds = workdir / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    return seeds


def resolve_paths(server: Server) -> dict[str, str]:
    """Each document's path, with ``{release}`` set to the newest entry of the combined feed."""
    feed = ask(server.port, "GET", "/feeds/all.atom")
    assert feed.status == 200, server.log()
    return paths_from(feed.body)


def paths_from(feed: bytes) -> dict[str, str]:
    entry_id = etree.fromstring(feed).findtext(f"{ATOM}entry/{ATOM}id")
    assert entry_id and entry_id.startswith("urn:uuid:"), entry_id
    release = entry_id.removeprefix("urn:uuid:")
    return {name: doc.path.format(release=release) for name, doc in DOCS.items()}


@pytest.fixture(scope="module", params=["gunicorn", "in process"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("http-caching")
    if request.param == "in process":
        yield in_process(workdir)
        return
    server = start_gunicorn(workdir, real_seeds(workdir), "gunicorn (interval 30)")
    try:
        yield Live(server, resolve_paths(server))
    finally:
        server.stop()
        print(server.log(limit=4000))  # shown by pytest only when a test failed


def assert_not_modified(reply: Reply, reference: Reply) -> None:
    """A 304: no body, and the validators and caching headers of the 200 it stands for."""
    assert reply.status == 304
    assert reply.body == b""
    differing = {
        header: (reply.header(header), reference[header])
        for header in VALIDATORS
        if reply.header(header) != reference[header]
    }
    assert differing == {}, f"the 304 changed or dropped (got, expected): {differing}"
    assert reply.header("Content-Encoding") is None


def plain(live: Live, name: str) -> Reply:
    """A plain GET, which must succeed."""
    reply = live.get(name)
    assert reply.status == 200, f"GET {live.paths[name]}: {reply.status} {reply.body[:200]!r}"
    return reply


# --- plain GET -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCS)
def test_plain_get_has_validators_and_caching_headers(live: Live, name: str) -> None:
    doc = DOCS[name]
    reply = plain(live, name)
    assert STRONG_ETAG.fullmatch(reply["ETag"]), f"not a strong quoted ETag: {reply['ETag']!r}"
    last_modified = parsedate_to_datetime(reply["Last-Modified"])
    assert reply["Last-Modified"].endswith(" GMT")
    assert last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert reply["Cache-Control"] == f"public, max-age={doc.max_age}"
    assert reply["Vary"] == "Accept-Encoding"
    assert reply["Content-Type"] == CONTENT_TYPES[doc.kind]
    assert reply.header("Content-Encoding") in (None, "identity")
    assert int(reply["Content-Length"]) == len(reply.body) > 0
    expires = reply.header("Expires")
    if expires is not None:
        assert expires.strip() != "0", "Expires: 0 tells caches never to reuse the document"
        assert parsedate_to_datetime(expires) > datetime.now(UTC), f"Expires: {expires} is past"


def test_last_modified_is_the_feeds_updated(live: Live) -> None:
    reply = plain(live, "all.atom")
    updated = etree.fromstring(reply.body).findtext(f"{ATOM}updated")
    assert updated is not None
    expected = datetime.fromisoformat(updated).replace(microsecond=0)
    assert parsedate_to_datetime(reply["Last-Modified"]) == expected


@pytest.mark.parametrize("name", DOCS)
def test_repeated_requests_get_the_same_bytes(live: Live, name: str) -> None:
    """Two workers, several threads: every answer is the same document with the same tag."""
    replies = [live.get(name) for _ in range(8)]
    before = live.answered_by_hot_path()
    gzipped = [live.get(name, {"Accept-Encoding": "gzip"}) for _ in range(4)]
    expect_hot(live, before, 4)
    for group in (replies, gzipped):
        assert {r.status for r in group} == {200}
        assert len({r.body for r in group}) == 1, "the same document came in different bytes"
        assert len({(r["ETag"], r["Last-Modified"]) for r in group}) == 1


# --- the conditional GET table ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A conditional request built from the plain 200's validators, and the status it must get."""

    name: str
    headers: Callable[[Reply], dict[str, str]]
    status: int


def _lm(reply: Reply, shift: float = 0) -> str:
    moment = parsedate_to_datetime(reply["Last-Modified"]) + timedelta(seconds=shift)
    return http_date(moment)


def _other_tag(reply: Reply) -> str:
    """A tag that differs from the current one only in its last character."""
    tag = reply["ETag"]
    return tag[:-2] + ("0" if tag[-2] != "0" else "1") + '"'


CASES = [
    Case("INM exact strong tag", lambda r: {"If-None-Match": r["ETag"]}, 304),
    Case("INM weak form", lambda r: {"If-None-Match": "W/" + r["ETag"]}, 304),
    Case("INM list containing it", lambda r: {"If-None-Match": f'"x1", {r["ETag"]}, "y2"'}, 304),
    Case("INM list of weak tags", lambda r: {"If-None-Match": f'W/"x1", W/{r["ETag"]}'}, 304),
    Case("INM star", lambda r: {"If-None-Match": "*"}, 304),
    Case("INM another tag", lambda r: {"If-None-Match": '"not-this-version"'}, 200),
    Case("INM tag one char off", lambda r: {"If-None-Match": _other_tag(r)}, 200),
    Case("INM list without it", lambda r: {"If-None-Match": f'"a", W/{_other_tag(r)}'}, 200),
    Case("IMS echoed Last-Modified", lambda r: {"If-Modified-Since": r["Last-Modified"]}, 304),
    Case("IMS later date", lambda r: {"If-Modified-Since": _lm(r, 60)}, 304),
    Case("IMS one second earlier", lambda r: {"If-Modified-Since": _lm(r, -1)}, 200),
    Case("IMS a day earlier", lambda r: {"If-Modified-Since": _lm(r, -86400)}, 200),
    Case("IMS not a date", lambda r: {"If-Modified-Since": "yesterday"}, 200),
    Case(
        "INM other tag wins over matching IMS",
        lambda r: {"If-None-Match": '"not-this-version"', "If-Modified-Since": r["Last-Modified"]},
        200,
    ),
    Case(
        "INM match wins over earlier IMS",
        lambda r: {"If-None-Match": r["ETag"], "If-Modified-Since": _lm(r, -86400)},
        304,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("name", DOCS)
def test_conditional_get(live: Live, name: str, case: Case) -> None:
    first = plain(live, name)
    headers = case.headers(first)
    before = live.answered_by_hot_path()
    reply = live.get(name, headers)
    expect_hot(live, before)
    assert reply.status == case.status, f"{headers} -> {reply.status}, expected {case.status}"
    if case.status == 304:
        assert_not_modified(reply, first)
    else:
        assert reply.body == first.body
        assert reply["ETag"] == first["ETag"]
        assert reply["Last-Modified"] == first["Last-Modified"]


@pytest.mark.parametrize("name", ["all.atom", "index"])
def test_not_modified_sends_no_body_on_the_wire(live: Live, name: str) -> None:
    tag = plain(live, name)["ETag"]
    assert live.after_headers("GET", name, {"If-None-Match": tag}) == b""


# --- gzip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCS)
def test_gzip_when_asked_with_its_own_validator(live: Live, name: str) -> None:
    identity = plain(live, name)
    zipped = live.get(name, {"Accept-Encoding": "gzip"})
    assert zipped.status == 200
    assert zipped["Content-Encoding"] == "gzip"
    assert zipped["Vary"] == "Accept-Encoding"
    assert zipped["Content-Type"] == identity["Content-Type"]
    assert zipped["Cache-Control"] == identity["Cache-Control"]
    assert zipped["Last-Modified"] == identity["Last-Modified"]
    assert int(zipped["Content-Length"]) == len(zipped.body)
    assert gzip.decompress(zipped.body) == identity.body
    assert STRONG_ETAG.fullmatch(zipped["ETag"]), zipped["ETag"]
    assert zipped["ETag"] != identity["ETag"], "gzip and identity bytes share one strong ETag"

    before = live.answered_by_hot_path()
    other = live.get(name, {"Accept-Encoding": "gzip, deflate, br"})
    expect_hot(live, before)
    assert (other.status, other.body, other["ETag"]) == (200, zipped.body, zipped["ETag"])

    again = live.get(name, {"Accept-Encoding": "gzip", "If-None-Match": zipped["ETag"]})
    assert again.status == 304
    assert_not_modified(again, zipped)


@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "br"])
def test_no_gzip_unless_acceptable(live: Live, accept: str) -> None:
    identity = plain(live, "all.atom")
    reply = live.get("all.atom", {"Accept-Encoding": accept})
    assert reply.status == 200
    assert reply.header("Content-Encoding") in (None, "identity")
    assert (reply.body, reply["ETag"]) == (identity.body, identity["ETag"])


# --- HEAD and other methods ------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCS)
def test_head_has_the_get_headers_and_no_body(live: Live, name: str) -> None:
    get = plain(live, name)
    before = live.answered_by_hot_path()
    head = live.get(name, method="HEAD")
    expect_hot(live, before)
    assert head.status == 200
    for header in (*VALIDATORS, "Content-Type", "Content-Length"):
        assert head.header(header) == get[header], f"HEAD differs from GET in {header}"
    assert live.after_headers("HEAD", name, {}) == b""
    conditional = live.get(name, {"If-None-Match": get["ETag"]}, method="HEAD")
    assert conditional.status == 304


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("name", DOCS)
def test_other_methods_are_405_with_allow(live: Live, name: str, method: str) -> None:
    before = live.answered_by_hot_path()
    reply = live.get(name, method=method)
    assert live.answered_by_hot_path() == before, "the hot path answered a method it must not"
    assert reply.status == 405
    allowed = {m.strip() for m in reply["Allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed and not allowed & {"POST", "PUT", "DELETE"}, allowed
    assert reply["Content-Type"].startswith("text/plain")
    text = reply.body.decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, f"not one line: {text!r}"
    assert "Traceback" not in text


# --- a change on disk ------------------------------------------------------------------------


def test_a_sync_that_changes_a_feed_changes_its_validators(tmp_path: Path) -> None:
    seeds = real_seeds(tmp_path)
    server = start_gunicorn(tmp_path, seeds, "gunicorn (interval 1)", FEEDS_SYNC_INTERVAL="1")
    try:
        paths = resolve_paths(server)
        changing = ["all.atom", "nato.rss", "europol+nato.json", "index", "agency page"]
        before = {name: ask(server.port, "GET", paths[name]) for name in [*changing, "archive"]}
        for name, reply in before.items():
            assert reply.status == 200, name
        assert before["all.atom"]["Cache-Control"] == "public, max-age=1"
        # Stored times have whole seconds: let one pass so the change has a later Last-Modified.
        newest = max(parsedate_to_datetime(r["Last-Modified"]) for r in before.values())
        time.sleep(max(0.0, (newest - datetime.now(UTC)).total_seconds() + 1.1))

        mark = datetime.now(UTC)
        (seeds / "nato-may.txt").write_text(NEW_NATO_RELEASE, encoding="utf-8")
        health = server.wait_for_sync_after(mark)
        assert health["status"] == "ok", health

        for name in changing:
            old = before[name]
            reply = ask(server.port, "GET", paths[name], {"If-None-Match": old["ETag"]})
            assert reply.status == 200, f"{name}: the old ETag still answers {reply.status}"
            assert reply["ETag"] != old["ETag"]
            assert b"maritime security" in reply.body, name
            assert parsedate_to_datetime(reply["Last-Modified"]) > parsedate_to_datetime(
                old["Last-Modified"]
            ), name
            since = ask(
                server.port, "GET", paths[name], {"If-Modified-Since": old["Last-Modified"]}
            )
            assert since.status == 200, (
                f"{name}: the old Last-Modified still answers {since.status}"
            )
            current = ask(server.port, "GET", paths[name], {"If-None-Match": reply["ETag"]})
            assert current.status == 304, name

        # The new release comes after every full archive page: page 1 is the same document.
        archived = before["archive"]
        kept = ask(server.port, "GET", paths["archive"], {"If-None-Match": archived["ETag"]})
        assert kept.status == 304, "a full archive page changed when a new release arrived"
    finally:
        server.stop()
        print(server.log(limit=4000))  # shown by pytest only when the test failed
