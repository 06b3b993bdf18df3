"""The hot path (feeds/hotpath.py) answers exactly as Flask would, and only when it may.

For every kind of cached document and every conditional case, the same WSGI
environ goes once to the Flask app alone (its ``wsgi_app`` before wrapping, the
reference) and once to the hot path: status line, every header in order and
the body must be identical, the status must be the one HTTP asks for, and the
hot path's counter says whether it answered itself or fell through (a ``Host``
outside ``FEEDS_TRUSTED_HOSTS``, weighted ``Accept-Encoding``, other methods).
A last test does the same through two real gunicorn servers on one store.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from lxml import etree
from werkzeug.test import EnvironBuilder

from feeds.app import create_app
from feeds.hotpath import HotPath
from feeds.sync import sync

from .conftest import REAL_SEED
from .servers import GUNICORN, ROOT, Server, free_port, start

ATOM = "{http://www.w3.org/2005/Atom}"
HOST = "feeds.test"
#: Nothing listens there: the pings after each sync fail at once, on 127.0.0.1.
HUB = "http://127.0.0.1:9"
PAGE_SIZE = 3

#: Every kind of cached document; ``{release}`` is filled in from the combined feed.
KINDS = {
    "atom": "/feeds/all.atom",
    "rss": "/feeds/interpol.rss",
    "json": "/feeds/europol+nato.json",
    "filtered": "/feeds/all.atom?q=interpol&limit=2",
    "archive": "/feeds/all/archive/1.atom",
    "index": "/",
    "agency page": "/agencies/nato",
    "release page": "/releases/{release}",
    "opml": "/feeds.opml",
    "topic feed": "/feeds/topics/countries/fr.atom",
    "topics": "/topics",
    "topic page": "/topics/countries/fr",
    "topics opml": "/topics.opml",
}


@dataclass(frozen=True, slots=True)
class Raw:
    """A WSGI response as the server gets it."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(found) == 1, f"{name}: {found}"
        return found[0]


def call(wsgi: Callable[..., Any], path: str, method: str = "GET", **headers: str) -> Raw:
    """One request to a WSGI callable, with a fresh environ; the body read whole."""
    got: dict[str, Any] = {}

    def start_response(
        status: str, response_headers: list[tuple[str, str]], exc: Any = None
    ) -> None:
        got["status"], got["headers"] = status, list(response_headers)

    path, _, query = path.partition("?")
    environ = EnvironBuilder(
        path=path,
        query_string=query,
        method=method,
        base_url=f"http://{HOST}",
        headers={"Host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}},
    ).get_environ()
    iterable = wsgi(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return Raw(got["status"], got["headers"], body)


@dataclass
class Site:
    app: Flask
    hot: HotPath
    paths: dict[str, str]

    @property
    def flask(self) -> Callable[..., Any]:
        """The Flask app alone: the reference."""
        return self.hot.app


def build(tmp: Path, hub: str) -> Site:
    seeds = tmp / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    settings = {
        "seed_dir": seeds,
        "database": tmp / "feeds.sqlite3",
        "base_url": "http://feeds.test",
        "scheduler": False,
        "page_size": PAGE_SIZE,
        "websub_hub": hub,
        "trusted_hosts": f"{HOST},.example.org",
    }
    app = create_app(settings, environ={})
    hot = app.extensions["feeds.hotpath"]
    assert app.wsgi_app is hot
    feed = call(hot.app, "/feeds/all.atom")
    release = etree.fromstring(feed.body).findtext(f"{ATOM}entry/{ATOM}id")
    assert release is not None
    paths = {k: p.format(release=release.removeprefix("urn:uuid:")) for k, p in KINDS.items()}
    return Site(app, hot, paths)


@pytest.fixture(scope="module", params=["", HUB], ids=["no hub", "websub hub"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build(tmp_path_factory.mktemp("hotpath"), request.param)


def _lm(plain: Raw, shift: float) -> str:
    moment = parsedate_to_datetime(plain.header("Last-Modified")) + timedelta(seconds=shift)
    return format_datetime(moment, usegmt=True)


def _off(tag: str) -> str:
    return tag[:-2] + ("0" if tag[-2] != "0" else "1") + '"'


@dataclass(frozen=True, slots=True)
class Case:
    """A request built from the plain and gzip 200s, its status, and who must answer it."""

    name: str
    request: Callable[[Raw, Raw], dict[str, str]]
    status: int
    method: str = "GET"
    hot: bool = True


def _h(**headers: str) -> Callable[[Raw, Raw], dict[str, str]]:
    return lambda plain, zipped: headers


CASES = [
    Case("plain", _h(), 200),
    Case("INM exact", lambda p, z: {"If-None-Match": p.header("ETag")}, 304),
    Case("INM other", _h(If_None_Match='"not-this-version"'), 200),
    Case("INM one char off", lambda p, z: {"If-None-Match": _off(p.header("ETag"))}, 200),
    Case("INM weak", lambda p, z: {"If-None-Match": "W/" + p.header("ETag")}, 304),
    Case("INM list with it", lambda p, z: {"If-None-Match": f'"a" , {p.header("ETag")},"b"'}, 304),
    Case("INM weak list", lambda p, z: {"If-None-Match": f'W/"a", W/{p.header("ETag")}'}, 304),
    Case(
        "INM list without", lambda p, z: {"If-None-Match": f'"a", W/{_off(p.header("ETag"))}'}, 200
    ),
    Case("INM star", _h(If_None_Match="*"), 304),
    Case("INM unquoted (werkzeug's)", _h(If_None_Match="abc, *x"), 200, hot=False),
    Case("IMS echoed", lambda p, z: {"If-Modified-Since": p.header("Last-Modified")}, 304),
    Case("IMS later", lambda p, z: {"If-Modified-Since": _lm(p, 3600)}, 304),
    Case("IMS a second before", lambda p, z: {"If-Modified-Since": _lm(p, -1)}, 200),
    Case("IMS a day before", lambda p, z: {"If-Modified-Since": _lm(p, -86400)}, 200),
    Case("IMS not a date", _h(If_Modified_Since="yesterday"), 200),
    Case(
        "INM other beats IMS match",
        lambda p, z: {"If-None-Match": '"x"', "If-Modified-Since": p.header("Last-Modified")},
        200,
    ),
    Case(
        "INM match beats IMS before",
        lambda p, z: {"If-None-Match": p.header("ETag"), "If-Modified-Since": _lm(p, -86400)},
        304,
    ),
    Case("gzip", _h(Accept_Encoding="gzip"), 200),
    Case("gzip among others", _h(Accept_Encoding="gzip, deflate, br"), 200),
    Case(
        "gzip INM gzip tag",
        lambda p, z: {"Accept-Encoding": "gzip", "If-None-Match": z.header("ETag")},
        304,
    ),
    Case(
        "gzip INM identity tag",
        lambda p, z: {"Accept-Encoding": "gzip", "If-None-Match": p.header("ETag")},
        304,
    ),
    Case(
        "identity INM gzip tag",
        lambda p, z: {"If-None-Match": z.header("ETag")},
        200,  # the identity bytes were not what the client has
    ),
    Case("identity asked", _h(Accept_Encoding="identity"), 200),
    Case("gzip;q=0", _h(Accept_Encoding="gzip;q=0"), 200, hot=False),
    Case("gzip;q=0.5", _h(Accept_Encoding="gzip;q=0.5"), 200, hot=False),
    Case("HEAD", _h(), 200, method="HEAD"),
    Case("HEAD INM", lambda p, z: {"If-None-Match": p.header("ETag")}, 304, method="HEAD"),
    Case("HEAD gzip", _h(Accept_Encoding="gzip"), 200, method="HEAD"),
    Case("trusted host with port", _h(Host=f"{HOST}:8080"), 200),
    Case("host outside FEEDS_TRUSTED_HOSTS", _h(Host="evil.example"), 400, hot=False),
    Case("trusted subdomain (werkzeug's)", _h(Host="a.example.org"), 200, hot=False),
    Case("POST", _h(), 405, method="POST", hot=False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("kind", KINDS)
def test_hot_path_answers_byte_for_byte_as_flask(site: Site, kind: str, case: Case) -> None:
    path = site.paths[kind]
    call(site.hot, path)  # through Flask once: the document is now cached under its URL
    plain = call(site.flask, path)
    zipped = call(site.flask, path, Accept_Encoding="gzip")
    headers = {k.replace("-", "_"): v for k, v in case.request(plain, zipped).items()}

    expected = call(site.flask, path, case.method, **headers)
    before = site.hot.answered
    got = call(site.hot, path, case.method, **headers)

    assert int(expected.status.split()[0]) == case.status, expected
    assert site.hot.answered - before == (1 if case.hot else 0), "answered by the wrong layer"
    assert got.status == expected.status
    assert got.headers == expected.headers
    assert got.body == expected.body
    if case.method == "HEAD" or case.status == 304:
        assert got.body == b""


def test_links_name_the_hub_and_this_url(tmp_path: Path) -> None:
    """With a hub, a feed's Link headers come from the hot path as from Flask."""
    site = build(tmp_path, HUB)
    call(site.hot, "/feeds/nato.atom")
    before = site.hot.answered
    got = call(site.hot, "/feeds/nato.atom")
    assert site.hot.answered == before + 1
    links = [v for k, v in got.headers if k == "Link"]
    assert links == [f'<{HUB}>; rel="hub"', '<http://feeds.test/feeds/nato.atom>; rel="self"']


NEW_NATO = "NATO opens a maritime centre\n\nSource: NATO\n\n5 May 2025\n\nNATO opened it.\n"


def test_after_a_sync_no_stale_document_is_answered(tmp_path: Path) -> None:
    """Once a sync has ended, every request sees its result: the old ETag no longer matches."""
    site = build(tmp_path, "")
    paths = ["/feeds/all.atom", "/feeds/nato.rss", "/", "/agencies/nato"]
    old = {p: call(site.hot, p) for p in paths}
    for path in paths:  # cached: answered by the hot path
        before = site.hot.answered
        assert call(site.hot, path, If_None_Match=old[path].header("ETag")).status.startswith("304")
        assert site.hot.answered == before + 1

    settings = site.app.extensions["feeds.site"]
    (settings.config.seed_dir / "new.txt").write_text(NEW_NATO, encoding="utf-8")
    report = sync(settings.store, settings.config.seed_dir)
    assert report.ok

    for path in paths:
        fresh = call(site.hot, path, If_None_Match=old[path].header("ETag"))
        assert fresh.status.startswith("200"), path
        assert b"maritime centre" in fresh.body, path
        assert fresh.header("ETag") != old[path].header("ETag")
        before = site.hot.answered
        again = call(site.hot, path)
        assert site.hot.answered == before + 1, f"{path}: second request not answered hot"
        assert again.body == call(site.flask, path).body


def test_europol_documents_stay_hot_when_only_nato_changes(tmp_path: Path) -> None:
    """Per-agency invalidation reaches the hot path: other agencies' feeds stay cached."""
    site = build(tmp_path, "")
    call(site.hot, "/feeds/europol.atom")
    settings = site.app.extensions["feeds.site"]
    (settings.config.seed_dir / "new.txt").write_text(NEW_NATO, encoding="utf-8")
    assert sync(settings.store, settings.config.seed_dir).ok
    before = site.hot.answered
    call(site.hot, "/feeds/europol.atom")
    call(site.hot, "/feeds/nato.atom")
    assert site.hot.answered == before + 1  # europol's; nato's was rendered again by Flask


def test_misses_and_errors_fall_through(site: Site) -> None:
    before = site.hot.answered
    # Pages under invented query strings are not filed in the cache (it would let
    # anyone evict real documents); they are answered by Flask, every time.
    for path in ["/feeds/fbi.atom", "/feeds/nato+europol.atom", "/healthz", "/nope", "/?x=1"]:
        first, second = call(site.hot, path), call(site.hot, path)
        assert first.status == second.status and first.status[:3] in {"404", "301", "200"}
    assert site.hot.answered == before


# --- real gunicorn ---------------------------------------------------------------------------

#: The same app with the hot path taken off again: gunicorn's reference.
FLASK_ONLY = (
    "from feeds.app import create_app\napp = create_app()\napp.wsgi_app = app.wsgi_app.app\n"
)


def raw_response(port: int, method: str, path: str, headers: dict[str, str]) -> bytes:
    """Everything the server sends, ``Date`` line removed (it is the only line that may differ)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    (tmp_path / "flask_only.py").write_text(FLASK_ONLY, encoding="utf-8")
    started: list[Server] = []
    try:
        base_port = free_port()
        for name, target in [("hot", "wsgi:app"), ("flask", "flask_only:app")]:
            port = free_port()
            argv = [str(GUNICORN), "--chdir", str(ROOT), "--pythonpath", str(tmp_path)]
            argv += ["-w", "1", "-k", "gthread", "--threads", "2", "-b", f"127.0.0.1:{port}"]
            settings = {
                "FEEDS_SEED_DIR": str(seeds),
                "FEEDS_DATABASE": str(tmp_path / "feeds.sqlite3"),
                # One base URL for both: the bytes must not differ by port.
                "FEEDS_BASE_URL": f"http://127.0.0.1:{base_port}",
                "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
                "FEEDS_SCHEDULER": "off",
                "FEEDS_WEBSUB_HUB": HUB,
            }
            log = tmp_path / f"{name}.log"
            started.append(
                start(
                    name, [*argv, target], settings=settings, cwd=tmp_path, port=port, log_path=log
                )
            )
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
            print(server.log(limit=3000))


@pytest.mark.e2e
def test_gunicorn_sends_the_same_bytes_with_and_without_the_hot_path(
    two_servers: tuple[Server, Server],
) -> None:
    hot, flask = two_servers
    feed = raw_response(flask.port, "GET", "/feeds/all.atom", {})
    release = etree.fromstring(feed.partition(b"\r\n\r\n")[2]).findtext(f"{ATOM}entry/{ATOM}id")
    assert release is not None
    paths = [p.format(release=release.removeprefix("urn:uuid:")) for p in KINDS.values()]
    for path in paths:
        first = raw_response(hot.port, "GET", path, {})  # through Flask: now cached
        assert first.startswith(b"HTTP/1.1 200 "), first[:200]
        etag = next(
            line.split(b": ", 1)[1].decode()
            for line in first.split(b"\r\n")
            if line.lower().startswith(b"etag:")
        )
        for method, headers in [
            ("GET", {}),
            ("GET", {"Accept-Encoding": "gzip"}),
            ("GET", {"If-None-Match": etag}),
            ("GET", {"If-None-Match": f'"a", W/{etag}'}),
            ("HEAD", {}),
            ("HEAD", {"If-None-Match": etag}),
        ]:
            expected = raw_response(flask.port, method, path, headers)
            got = raw_response(hot.port, method, path, headers)
            assert got == expected, f"{method} {path} {headers}"
