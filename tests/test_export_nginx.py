"""The static export served by real nginx with ``deploy/nginx-static.conf``.

DESIGN.md "Running it": the export holds every feed and page "as static files
with identical bytes". This builds an app on the real seed plus 120 generated
releases (so archive pages and a second agency page exist at page size 50),
runs ``feeds export DIR``, starts nginx on 127.0.0.1 with the sample config
(only root, listen and server_name substituted) and checks, for every exported
URL, that nginx answers what the app answers: the same bytes, Content-Type,
Last-Modified, Cache-Control and security headers; gzip when asked (the same
gzip bytes); ``304`` for its own ETag; feeds that parse cleanly; and no link in
any exported document leading to a page nginx cannot serve.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from werkzeug.test import TestResponse

from feeds import cli
from feeds.app import create_app
from feeds.pages import SCRIPT_CSP

from .servers import REAL_SEED, Reply, Server, fetch, free_port, servers, wait_until

pytestmark = pytest.mark.e2e

NGINX = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
SAMPLE_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nginx-static.conf"
PAGE_SIZE = 50
#: Generated releases: (agency, how many). With the real seed's 10 releases the
#: combined feed has 130 (2 full archive pages) and Frontex 100 (2 pages, and an
#: agency page 2); Europol 22 (no full page).
GENERATED = (("Frontex", 100), ("Europol", 20))
FORMATS = ("atom", "rss", "json")
HTML = "text/html; charset=utf-8"
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")
#: Headers nginx must send exactly as the app does (validators aside).
SAME_HEADERS = ("Content-Type", "Last-Modified", "Cache-Control", *SECURITY_HEADERS)
MONTHS = ("January", "March", "May", "July", "September", "November")


def generated_seed() -> str:
    """Releases in the seed grammar: dated and undated, with bullets and wrapped lines."""
    parts: list[str] = []
    number = 0
    for agency, count in GENERATED:
        for i in range(count):
            number += 1
            parts.append(f"{agency} release {number:03d}: joint operation in region {i % 7}")
            parts.append(f"Source: {agency} (newsroom)")
            if number % 3:
                parts.append(f"{1 + number % 28} {MONTHS[number % 6]} {2020 + number % 5}")
            parts.append(
                f"Officers from {2 + number % 9} countries took part in operation {number}.\n"
                "The operation continued over several days."
            )
            if number % 4 == 0:
                parts.append("  • 12 arrests\n  • 3 laboratories dismantled\n  • €1 million seized")
            parts.append(f"Closing paragraph of release {number} with “curly quotes” & ampersands.")
    return "\n\n".join(parts) + "\n"


def url_path(relative: str) -> str:
    """The URL path an exported file answers at (what deploy/nginx-static.conf maps)."""
    if relative == "index.html":
        return "/"
    if relative == "topics.html":
        return "/topics"
    if relative.startswith(("agencies/", "releases/", "topics/")):
        assert relative.endswith(".html"), relative
        return "/" + relative.removesuffix(".html")
    return "/" + relative


def header(headers: dict[str, str], name: str) -> str | None:
    """A header's value from a urllib reply, whatever case the server wrote it in."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


@dataclass
class Exported:
    """The app, its export on disk and nginx serving that export."""

    app: Flask
    root: Path
    nginx: Server
    base: str
    paths: list[str]
    """URL path of every exported document, sorted."""

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def app_get(self, path: str, **headers: str) -> TestResponse:
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200, f"app: {path} answered {response.status_code}"
        return response

    def get(self, path: str, **headers: str) -> Reply:
        return self.nginx.get(path, headers=headers)


def nginx_conf(tmp: Path, root: Path, port: int, app_port: int) -> Path:
    """The sample config with root, listen, server_name and the app substituted."""
    sample = SAMPLE_CONF.read_text(encoding="utf-8")
    substitutions = (
        (r"^(\s*)listen\s+[^;]+;", f"listen 127.0.0.1:{port};"),
        (r"^(\s*)server_name\s+[^;]+;", "server_name 127.0.0.1;"),
        (r"^(\s*)root\s+[^;]+;", f"root {root};"),
        (r"^(\s*)server\s+127\.0\.0\.1:\d+;", f"server 127.0.0.1:{app_port};"),
    )
    for pattern, replacement in substitutions:
        escaped = replacement.replace("\\", "\\\\")
        sample, count = re.subn(pattern, r"\g<1>" + escaped, sample, flags=re.MULTILINE)
        assert count == 1, f"{SAMPLE_CONF} should have exactly one {pattern!r}, found {count}"
    server_conf = tmp / "server.conf"
    server_conf.write_text(sample, encoding="utf-8")
    temp = tmp / "temp"
    temp.mkdir()
    # As root, workers would run as "nobody" and could not read the test's private directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = tmp / "nginx.conf"
    main.write_text(
        f"""{user}worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {server_conf};
}}
""",
        encoding="utf-8",
    )
    return main


def start_nginx(tmp: Path, conf: Path, port: int) -> Server:
    assert NGINX is not None
    argv = [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    checked = subprocess.run(
        [*argv, "-t"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
    )
    assert checked.returncode == 0, f"nginx -t refused the config:\n{checked.stderr}"
    log_path = tmp / "nginx-output.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [*argv, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server("nginx", process, port, log_path)

    def details() -> str:
        error_log = tmp / "error.log"
        errors = error_log.read_text(errors="replace") if error_log.exists() else ""
        return server.log() + "\n--- error.log ---\n" + errors[-4000:]

    def ready() -> bool | None:
        code = process.poll()
        if code is not None:
            raise AssertionError(f"nginx exited with {code}\n{details()}")
        try:
            fetch(server.url("/"), timeout=2)
        except OSError:
            return None
        return True

    try:
        wait_until(ready, "nginx to answer", details=details)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx); .ci/run installs it")
    tmp = tmp_path_factory.mktemp("export-nginx")
    seeds = tmp / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    (seeds / "generated.txt").write_text(generated_seed(), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {
        "FEEDS_SEED_DIR": str(seeds),
        "FEEDS_DATABASE": str(tmp / "db" / "feeds.sqlite3"),
        "FEEDS_BASE_URL": base,
        "FEEDS_PAGE_SIZE": str(PAGE_SIZE),
        "FEEDS_SCHEDULER": "off",
    }
    # The app syncs the seeds into the store; `feeds export` then reads the same store.
    app = create_app(environ=settings)
    app.testing = True
    root = tmp / "export"
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("FEEDS_")]:
            patch.delenv(name)
        for name, value in settings.items():
            patch.setenv(name, value)
        assert cli.main(["export", str(root)]) == 0
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    plain = [f for f in files if not f.endswith(".gz")]
    assert sorted(f + ".gz" for f in plain) == [f for f in files if f.endswith(".gz")], (
        "every exported file needs exactly one .gz beside it"
    )
    paths = sorted(url_path(f) for f in plain)
    # The app behind nginx, for what a static tree cannot answer (status, chooser, ...).
    with servers(tmp) as pool:
        backend = pool.gunicorn(settings, "-w", "1", "-k", "gthread", "--threads", "4")
        nginx = start_nginx(tmp, nginx_conf(tmp, root, port, backend.port), port)
        try:
            yield Exported(app, root, nginx, base, paths)
        finally:
            nginx.stop()


def feed_items(exported: Exported, path: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(exported.app_get(path).data)["items"]
    return items


def test_export_holds_every_document(exported: Exported) -> None:
    client = exported.client
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok", health
    slugs = ["eurojust", "europol", "frontex", "interpol", "nato"]
    expected = {"/", "/feeds.opml", "/robots.txt"}
    for name in ["all", *slugs]:
        expected |= {f"/feeds/{name}.{ext}" for ext in FORMATS}
    for name in ["all", "frontex"]:
        expected |= {f"/feeds/{name}/archive/{n}.{ext}" for n in (1, 2) for ext in FORMATS}
    expected |= {f"/agencies/{slug}" for slug in slugs} | {"/agencies/frontex/page/2"}
    # Every release, found through the combined feed's subscription document and archives.
    releases = set()
    for path in ["/feeds/all.json", "/feeds/all/archive/1.json", "/feeds/all/archive/2.json"]:
        items = feed_items(exported, path)
        releases |= {str(item["url"]).removeprefix(exported.base) for item in items}
    assert len(releases) == 10 + sum(count for _, count in GENERATED)
    expected |= releases
    # Every topic ever found: its page and its feeds (archives where a page is full).
    expected |= {"/topics", "/topics.opml"}
    expected |= {f"/topics/{kind}" for kind in ("countries", "operations", "crime-areas")}
    opml = etree.fromstring(exported.app_get("/topics.opml").data)
    topics = [
        str(o.get("xmlUrl")).removeprefix(exported.base + "/feeds/topics/").removesuffix(".atom")
        for o in opml.iter("outline")
        if o.get("xmlUrl")
    ]
    assert topics, "the generated seeds name no topic"
    for topic in topics:
        expected |= {f"/topics/{topic}"} | {f"/feeds/topics/{topic}.{ext}" for ext in FORMATS}
        number = 1
        while client.get(f"/feeds/topics/{topic}/archive/{number}.atom").status_code == 200:
            expected |= {f"/feeds/topics/{topic}/archive/{number}.{ext}" for ext in FORMATS}
            number += 1
        pages = 2
        while client.get(f"/topics/{topic}/page/{pages}").status_code == 200:
            expected.add(f"/topics/{topic}/page/{pages}")
            pages += 1
    assert set(exported.paths) == expected, (
        f"missing: {sorted(expected - set(exported.paths))[:10]}, "
        f"unexpected: {sorted(set(exported.paths) - expected)[:10]}"
    )
    assert client.get("/feeds/all/archive/3.atom").status_code == 404  # not full: not exported


def test_nginx_sends_the_apps_bytes_and_headers(exported: Exported) -> None:
    failures: list[str] = []
    for path in exported.paths:
        expected = exported.app_get(path)
        reply = exported.get(path)
        if reply.status != 200:
            failures.append(f"{path}: nginx answered {reply.status}")
            continue
        if reply.body != expected.data:
            failures.append(
                f"{path}: body differs ({len(reply.body)} bytes, app {len(expected.data)})"
            )
        for name in SAME_HEADERS:
            if header(reply.headers, name) != expected.headers.get(name):
                failures.append(
                    f"{path}: {name} is {header(reply.headers, name)!r}, "
                    f"app sends {expected.headers.get(name)!r}"
                )
        if header(reply.headers, "Content-Encoding") is not None:
            failures.append(f"{path}: compressed although the client did not ask for it")
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures[:40])


def test_html_pages_carry_the_apps_security_headers(exported: Exported) -> None:
    html = [
        p
        for p in exported.paths
        if p in ("/", "/topics") or p.startswith(("/agencies/", "/releases/", "/topics/"))
    ]
    assert len(html) > 100
    failures: list[str] = []
    for path in html:
        expected = exported.app_get(path)
        assert expected.headers["Content-Type"] == HTML, path
        assert expected.headers["Content-Security-Policy"] == SCRIPT_CSP, path
        for encoding in ("identity", "gzip"):
            reply = exported.get(path, **{"Accept-Encoding": encoding})
            found = {name: header(reply.headers, name) for name in SECURITY_HEADERS}
            wanted = {name: expected.headers.get(name) for name in SECURITY_HEADERS}
            if found != wanted:
                failures.append(f"{path} ({encoding}): nginx {found}, app {wanted}")
    assert not failures, "\n".join(failures[:20])


def test_gzip_when_asked(exported: Exported) -> None:
    failures: list[str] = []
    for path in exported.paths:
        expected = exported.app_get(path, **{"Accept-Encoding": "gzip"})
        assert expected.headers.get("Content-Encoding") == "gzip", path
        reply = exported.get(path, **{"Accept-Encoding": "gzip"})
        if reply.status != 200 or header(reply.headers, "Content-Encoding") != "gzip":
            failures.append(
                f"{path}: {reply.status}, Content-Encoding "
                f"{header(reply.headers, 'Content-Encoding')!r}"
            )
            continue
        if gzip.decompress(reply.body) != gzip.decompress(expected.data):
            failures.append(f"{path}: gunzipped body differs from the app's")
        if reply.body != expected.data:
            failures.append(f"{path}: gzip bytes differ from the app's")
        if "accept-encoding" not in (header(reply.headers, "Vary") or "").lower():
            failures.append(f"{path}: no Vary: Accept-Encoding")
        if header(reply.headers, "Content-Type") != expected.headers["Content-Type"]:
            failures.append(f"{path}: gzip Content-Type {header(reply.headers, 'Content-Type')}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])


def test_conditional_get_with_nginx_etag(exported: Exported) -> None:
    failures: list[str] = []
    for path in exported.paths:
        for encoding in ("identity", "gzip"):
            first = exported.get(path, **{"Accept-Encoding": encoding})
            etag = header(first.headers, "ETag")
            if first.status != 200 or not etag:
                failures.append(f"{path} ({encoding}): {first.status}, ETag {etag!r}")
                continue
            again = exported.get(path, **{"Accept-Encoding": encoding, "If-None-Match": etag})
            if again.status != 304 or again.body:
                failures.append(f"{path} ({encoding}): If-None-Match {etag} -> {again.status}")
            other = exported.get(path, **{"Accept-Encoding": encoding, "If-None-Match": '"x"'})
            if other.status != 200 or other.body != first.body:
                failures.append(f"{path} ({encoding}): a foreign ETag -> {other.status}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])


def json_feed_ids(path: str, body: bytes) -> list[str]:
    """The item IDs of a JSON Feed 1.1 (feedparser 6 does not read JSON Feed)."""
    document = json.loads(body)
    assert document["version"] == "https://jsonfeed.org/version/1.1", path
    assert document.get("title"), f"{path}: JSON Feed without title"
    ids = []
    for item in document["items"]:
        assert isinstance(item.get("id"), str) and item["id"], f"{path}: item without id"
        assert item.get("content_html") or item.get("content_text"), f"{path}: {item['id']}"
        ids.append(item["id"])
    return ids


def test_every_feed_parses(exported: Exported) -> None:
    feeds = [p for p in exported.paths if p.startswith("/feeds/") and p.endswith(FORMATS)]
    agency_feeds = [p for p in feeds if not p.startswith("/feeds/topics/")]
    assert len(agency_feeds) == 6 * 3 + 2 * 2 * 3
    assert len(feeds) > len(agency_feeds), "no topic feed was exported"
    for path in feeds:
        reply = exported.get(path)
        assert reply.status == 200, path
        if path.endswith(".json"):
            ids = json_feed_ids(path, reply.body)
        else:
            parsed = feedparser.parse(reply.body)
            assert parsed.bozo == 0, f"{path}: {parsed.get('bozo_exception')}"
            ids = [entry.id for entry in parsed.entries]
        if "/archive/" in path:
            assert len(ids) == PAGE_SIZE, path
        else:
            assert ids, f"{path} has no entries"
        assert len(ids) == len(set(ids)), f"duplicate entry IDs in {path}"


def test_every_link_in_the_export_answers_on_nginx(exported: Exported) -> None:
    """A person browsing the static site, or a reader following a feed's links, finds no 404."""
    link = re.compile(re.escape(exported.base) + r"(/[^\"'<>\s?#]*)?")
    linked_from: dict[str, str] = {}
    for path in exported.paths:
        text = exported.get(path).body.decode("utf-8")
        for match in link.finditer(text):
            linked_from.setdefault(match.group(1) or "/", path)
    assert "/feeds/all/archive/1.atom" in linked_from  # the prev-archive chain is there
    dead = []
    for target, source in sorted(linked_from.items()):
        reply = exported.get(target)
        if target == "/feeds/choose":  # the chooser's form action, submitted with nothing ticked
            assert reply.status == 400, reply.status
            assert b"Tick at least one agency" in reply.body, "the chooser says what to correct"
            continue
        if reply.status != 200:
            dead.append(f"{target} answers {reply.status} on nginx (linked from {source})")
    assert not dead, "dead links in the static export:\n" + "\n".join(dead)


def test_dynamic_urls_reach_the_app_through_nginx(exported: Exported) -> None:
    """What the static tree cannot hold is proxied: status, the chooser, combos, filters."""
    assert exported.get("/healthz").status == 200
    chosen = exported.get("/feeds/choose?agency=nato&agency=europol&format=rss")
    assert chosen.status == 303
    assert chosen.headers["Location"] == f"{exported.base}/feeds/europol+nato.rss"
    combo = exported.get("/feeds/europol+nato.rss")
    assert combo.status == 200
    assert combo.body == exported.app_get("/feeds/europol+nato.rss").data
    filtered = exported.get("/feeds/all.atom?q=interpol&limit=2")
    assert filtered.status == 200
    assert filtered.body == exported.app_get("/feeds/all.atom?q=interpol&limit=2").data
    assert exported.get("/feeds/all.atom?limit=0").status == 400
