"""Bad input never stops the service and costs only itself (DESIGN.md, "Bad input").

Runs the corpus in ``tests/data/bad/``: one case per kind of hostile input, each
described by ``<case>.expected.json``. A case is put next to a copy of the real
seed document in a fresh seed directory, the app is built on it (one real sync
into a real SQLite file), and the test checks what readers and operators see:

- every other release is still served: the 10 real releases and the case's
  surviving releases (by title) are in ``/feeds/all.atom`` (or, when the case
  adds more releases than one subscription document holds, in it or its RFC 5005
  archive pages), and nothing else from the case is;
- every feed (``all`` and each agency in the OPML list) is well-formed for lxml
  with its default limits, is valid Atom for the RELAX NG schema of RFC 4287,
  parses with feedparser without ``bozo``, and its RSS and JSON Feed versions
  parse and carry the same entry IDs;
- the HTML pages (``/``, each agency page, each release page) answer 200, show
  titles escaped exactly once and contain no markup from the input
  (``<script>alert`` and friends), and neither does the entries' HTML content;
- ``/healthz`` lists each expected problem under its file with the right line,
  and no problem for any other file;
- ``feeds check DIR`` prints ``path:line: message`` for each of them and exits 1
  (0 when the case has no problem), and ``path:line: warning: message`` for each
  expected warning.

Spec keys of ``<case>.expected.json``:

``setup``
    steps run in order inside the seed directory (``../`` reaches outside it):
    ``{"path", "data"}`` copies a byte file stored beside the spec;
    ``{"path", "text"}`` writes UTF-8 text; ``{"path", "parts": [[text, times], ...]}``
    and ``{"path", "bulk": {count, total_bytes, agency[, control_in]}}`` write big
    files generated at test time (once per module, then hard-linked);
    ``{"path", "symlink_to"}``; ``{"path", "mkfifo": true}``.
``after_listing``
    ``{"delete": name}``, ``{"truncate": name, "to_bytes": n}`` or
    ``{"replace_with_fifo": name}``: done right after the file is listed
    (``feeds.scan.iter_seeds`` is wrapped), so the read meets a changed file.
``settings``
    app settings (``max_file_bytes`` also goes to ``feeds check`` as
    ``FEEDS_MAX_FILE_BYTES``).
``releases``
    titles (or ``{"title", "agency"}``) of the case's releases that must be served;
    with ``releases_count`` they are a sample of that many.
``absent``
    titles that must not be served.
``problems``
    ``{"file", "line", "message_contains" | "message_regex"}``; with
    ``problems_exhaustive: false`` more problems may be reported for a file, at
    most ``max_problems_per_file``.
``warnings``
    the same for near-misses (``feeds check`` prints them as ``path:line: warning:
    message``; they never make it fail); default none.
``html_must_not_contain``
    raw strings that no page and no entry's HTML content may hold
    (default ``["<script>alert"]``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from markupsafe import escape

from feeds import scan
from feeds.cli import main

from .conftest import ATOM_RNG, BASE_URL, DATA, REAL_SEED

CASES_DIR = DATA / "bad"
EXPECTED_SUFFIX = ".expected.json"
CASES = sorted(p.name.removesuffix(EXPECTED_SUFFIX) for p in CASES_DIR.glob(f"*{EXPECTED_SUFFIX}"))
#: The real seed document's titles, as the parser corpus states them (same bytes, checked below).
REAL_DOCUMENT = DATA / "seeds" / "real_document"
REAL_TITLES: list[str] = [
    r["title"]
    for r in json.loads(REAL_DOCUMENT.with_suffix(EXPECTED_SUFFIX).read_text())["releases"]
]
#: Releases one subscription document surely holds (FEEDS_PAGE_SIZE default).
PAGE_SIZE = 50
ATOM = "{http://www.w3.org/2005/Atom}"
#: After this long, a sync blocked opening a named pipe is released (so the test fails, not hangs).
FIFO_WATCHDOG_SECONDS = 3.0
#: The whole corpus must stay small: big inputs are generated at test time.
MAX_CORPUS_BYTES = 200 * 1024


# --- Loading and setting up a case --------------------------------------------------------


def load_case(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((CASES_DIR / f"{name}{EXPECTED_SUFFIX}").read_text("utf-8"))
    return spec


def bulk_releases(
    count: int, total_bytes: int, agency: str, control_in: int | None = None
) -> bytes:
    """``count`` releases of 6 lines each, exactly ``total_bytes`` long.

    Release ``i`` is titled ``Bulk release {i:05d}``; its one body line is line
    ``6 * (i - 1) + 5``. ``control_in`` puts a U+0001 at the start of that release's body.
    """
    heads = [f"Bulk release {i:05d}\n\nSource: {agency}\n\n".encode() for i in range(1, count + 1)]
    room = total_bytes - sum(len(h) for h in heads) - 2 * count
    size, extra = divmod(room, count)
    filler = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
    longest = (filler * ((size + extra) // len(filler) + 1))[: size + extra]
    parts: list[bytes] = []
    for number, head in enumerate(heads, start=1):
        text = longest if number == count else longest[:size]
        if number == control_in:
            text = b"\x01" + text[1:]
        parts += [head, text, b"\n\n"]
    data = b"".join(parts)
    assert len(data) == total_bytes
    return data


def repeated_parts(parts: list[list[Any]]) -> bytes:
    return "".join(text * times for text, times in parts).encode("utf-8")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Path]:
    """Big seed files, generated once per module from their spec and reused by path."""
    folder = tmp_path_factory.mktemp("generated")
    made: dict[str, Path] = {}

    def get(step: dict[str, Any]) -> Path:
        key = json.dumps({k: step[k] for k in ("bulk", "parts") if k in step}, sort_keys=True)
        if key not in made:
            path = folder / f"{len(made)}.txt"
            if "bulk" in step:
                path.write_bytes(bulk_releases(**step["bulk"]))
            else:
                path.write_bytes(repeated_parts(step["parts"]))
            made[key] = path
        return made[key]

    return get


def materialize(seed_dir: Path, step: dict[str, Any], generated: Callable[..., Path]) -> None:
    """Run one ``setup`` step of a case inside (or, with ``../``, beside) the seed directory."""
    path = seed_dir / step["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if "data" in step:
        shutil.copyfile(CASES_DIR / step["data"], path)
    elif "text" in step:
        path.write_bytes(step["text"].encode("utf-8"))
    elif "bulk" in step or "parts" in step:
        source = generated(step)
        try:
            os.link(source, path)  # 50 MB: don't copy it for every test
        except OSError:
            shutil.copyfile(source, path)
    elif "symlink_to" in step:
        path.symlink_to(step["symlink_to"])
    elif step.get("mkfifo"):
        os.mkfifo(path)
    else:
        raise AssertionError(f"unknown setup step {step!r}")


#: Pipes a sync was found blocked on (the watchdog had to release it): must stay empty.
BLOCKED_ON: list[str] = []
WATCHDOGS: list[threading.Thread] = []


def _release_fifo_reader(path: Path) -> None:
    """Open the pipe for writing once, so a reader blocked in ``open()`` gets EOF.

    If that succeeds, someone was blocked reading the pipe: the sync. The test then
    fails on :data:`BLOCKED_ON`, with no timing involved.
    """
    time.sleep(FIFO_WATCHDOG_SECONDS)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader waiting: nobody was blocked
    BLOCKED_ON.append(str(path))
    os.close(fd)


def change_after_listing(
    monkeypatch: pytest.MonkeyPatch, seed_dir: Path, action: dict[str, Any]
) -> None:
    """Wrap ``feeds.scan.iter_seeds`` so that listing the file is followed by ``action``.

    The action runs right after the file is listed (and its stat taken), before anyone
    reads it. Before each listing the file is put back as the case wrote it, so the sync
    and ``feeds check`` both meet the same race.
    """
    name = action.get("delete") or action.get("truncate") or action["replace_with_fifo"]
    target = seed_dir / name
    original = target.read_bytes()
    real_iter_seeds = scan.iter_seeds

    def change(found: Any) -> None:
        if not (isinstance(found, scan.SeedFile) and found.name == name):
            return
        if "delete" in action:
            target.unlink()
        elif "truncate" in action:
            with open(target, "r+b") as handle:
                handle.truncate(action["to_bytes"])
        else:
            target.unlink()
            os.mkfifo(target)
            watchdog = threading.Thread(target=_release_fifo_reader, args=(target,), daemon=True)
            watchdog.start()
            WATCHDOGS.append(watchdog)

    def list_then_change(directory: Path, *args: Any) -> Iterator[Any]:
        if target.exists() or target.is_symlink():
            target.unlink()
        target.write_bytes(original)
        for found in real_iter_seeds(directory, *args):
            change(found)
            yield found

    monkeypatch.setattr(scan, "iter_seeds", list_then_change)


@pytest.fixture(scope="module")
def schema() -> etree.RelaxNG:
    """RFC 4287's RELAX NG schema of Atom."""
    return etree.RelaxNG(etree.parse(str(ATOM_RNG)))


# --- Reading what the service serves ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """What a feed reader takes from one Atom entry."""

    id: str
    title: str
    author: str
    category: str
    link: str
    content: str


def get_ok(client: FlaskClient, path: str) -> bytes:
    response = client.get(path)
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    assert b"Traceback" not in response.data
    body: bytes = response.data
    return body


def parse_xml(body: bytes, label: str) -> Any:
    """Parse as a libxml2-based feed reader would: default limits, no huge-tree option."""
    try:
        return etree.fromstring(body)
    except etree.XMLSyntaxError as exc:
        raise AssertionError(f"{label} is not well-formed for lxml/libxml2: {exc}") from None


def atom_entries(
    client: FlaskClient, path: str, schema: etree.RelaxNG
) -> tuple[list[Entry], dict[str, str]]:
    """Entries of an Atom document after checking it as readers would; also its links."""
    body = get_ok(client, path)
    root = parse_xml(body, path)
    assert schema.validate(root), f"{path} is not valid Atom: {schema.error_log}"
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, f"{path}: feedparser: {parsed.get('bozo_exception')}"
    entries = []
    for element in root.iterfind(f"{ATOM}entry"):
        link = element.find(f"{ATOM}link")  # the entry's one link: its page (rel alternate)
        category = element.find(f"{ATOM}category")
        entries.append(
            Entry(
                id=element.findtext(f"{ATOM}id", ""),
                title=element.findtext(f"{ATOM}title", ""),
                author=element.findtext(f"{ATOM}author/{ATOM}name", ""),
                category=category.get("term", "") if category is not None else "",
                link=link.get("href", "") if link is not None else "",
                content=element.findtext(f"{ATOM}content", ""),
            )
        )
    links = {link.get("rel", ""): link.get("href", "") for link in root.iterfind(f"{ATOM}link")}
    return entries, links


def assert_no_raw_markup(text: str, forbidden: list[str], where: str) -> None:
    for raw in forbidden:
        assert raw not in text, f"{where} holds unescaped {raw!r} from the input"


def check_other_formats(
    client: FlaskClient, name: str, ids: set[str], forbidden: list[str]
) -> None:
    """The RSS and JSON Feed versions parse and carry the same entries as the Atom one."""
    path = f"/feeds/{name}.rss"
    body = get_ok(client, path)
    root = parse_xml(body, path)
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, f"{path}: feedparser: {parsed.get('bozo_exception')}"
    assert {item.findtext("guid") for item in root.iter("item")} == ids, path
    for item in root.iter("item"):
        assert_no_raw_markup(item.findtext("description", ""), forbidden, f"{path} description")

    path = f"/feeds/{name}.json"
    feed = json.loads(get_ok(client, path))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert {item["id"] for item in feed["items"]} == ids, path
    for item in feed["items"]:
        assert_no_raw_markup(item["content_html"], forbidden, f"{path} content_html")


def agency_slugs(client: FlaskClient) -> list[str]:
    """Every agency feed, as a person subscribing to all of them finds them (OPML)."""
    root = parse_xml(get_ok(client, "/feeds.opml"), "/feeds.opml")
    prefix, suffix = f"{BASE_URL}/feeds/", ".atom"
    urls = [outline.get("xmlUrl", "") for outline in root.iter("outline")]
    assert all(url.startswith(prefix) and url.endswith(suffix) for url in urls), urls
    return [url[len(prefix) : -len(suffix)] for url in urls]


def archived_entries(
    client: FlaskClient, schema: etree.RelaxNG, wanted: set[str]
) -> Iterator[Entry]:
    """Entries of the combined feed's archive pages, oldest page first, until ``wanted`` is seen."""
    path: str | None = "/feeds/all/archive/1.atom"
    missing = set(wanted)
    while path and missing:
        entries, links = atom_entries(client, path, schema)
        yield from entries
        missing -= {e.title for e in entries}
        following = links.get("next-archive")
        path = following.removeprefix(BASE_URL) if following else None


# --- Checks ---------------------------------------------------------------------------------


def problem_matches(problem: dict[str, Any], expected: dict[str, Any]) -> bool:
    if problem["line"] != expected["line"]:
        return False
    if "message_contains" in expected:
        return str(expected["message_contains"]) in problem["message"]
    return re.search(expected["message_regex"], problem["message"]) is not None


def check_problems(
    reported: dict[str, list[dict[str, Any]]],
    spec: dict[str, Any],
    kinds: tuple[str, ...] = ("problems",),
) -> None:
    """The problems (or warnings) by file, as ``/healthz`` or ``feeds check`` list them.

    ``kinds`` names the spec lists expected in ``reported``: ``problems``, ``warnings``
    or both.
    """
    expected: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        for problem in spec.get(kind, []):
            expected.setdefault(problem["file"], []).append(problem)
    assert set(reported) == set(expected), f"files with {' and '.join(kinds)}: {sorted(reported)}"
    for name, wanted in expected.items():
        got = reported[name]
        for problem in wanted:
            assert any(problem_matches(p, problem) for p in got), f"{name}: {problem} not in {got}"
        if spec.get("problems_exhaustive", True):
            assert len(got) == len(wanted), f"{name}: {got}"
        assert len(got) <= spec.get("max_problems_per_file", len(got))


def check_health(health: dict[str, Any], spec: dict[str, Any]) -> None:
    """``/healthz`` lists every problem and warning by file and line.

    Problems and warnings are checked together: which list ``/healthz`` puts each in
    depends on the store keeping severities, tested in ``test_web.py``.
    """
    reported: dict[str, list[dict[str, Any]]] = {}
    for kind in ("problems", "warnings"):
        for name, listed in health.get(kind, {}).items():
            reported.setdefault(name, []).extend(listed)
    check_problems(reported, spec, ("problems", "warnings"))


def check_cli(
    seed_dir: Path,
    spec: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``feeds check DIR`` prints each problem like a compiler and exits 1 if there are any;
    warnings are printed as ``path:line: warning: message`` and do not change the status."""
    for variable in [v for v in os.environ if v.startswith("FEEDS_")]:
        monkeypatch.delenv(variable)
    if "max_file_bytes" in spec.get("settings", {}):
        monkeypatch.setenv("FEEDS_MAX_FILE_BYTES", str(spec["settings"]["max_file_bytes"]))
    capsys.readouterr()
    status = main(["check", str(seed_dir)])
    printed = capsys.readouterr().out.splitlines()
    assert status == (1 if spec["problems"] else 0), printed
    reported: dict[str, dict[str, list[dict[str, Any]]]] = {"problems": {}, "warnings": {}}
    for line in printed:
        match = re.fullmatch(r"(.*):([0-9]+): (warning: )?(.*)", line)
        assert match, f"not path:line: message: {line!r}"
        path = Path(match[1])
        assert path.parent == seed_dir, line
        kind = "warnings" if match[3] else "problems"
        reported[kind].setdefault(path.name, []).append(
            {"line": int(match[2]), "message": match[4]}
        )
    check_problems(reported["problems"], spec, ("problems",))
    check_problems(reported["warnings"], spec, ("warnings",))


def expected_releases(spec: dict[str, Any]) -> list[dict[str, str]]:
    return [r if isinstance(r, dict) else {"title": r} for r in spec["releases"]]


def check_feeds(
    client: FlaskClient, schema: etree.RelaxNG, forbidden: list[str]
) -> tuple[list[str], dict[str, list[Entry]]]:
    """Every feed (combined and per agency) is valid and parses, in every format.

    Returns the agency slugs and each feed's Atom entries by feed name.
    """
    slugs = agency_slugs(client)
    feeds: dict[str, list[Entry]] = {}
    for name in ["all", *slugs]:
        entries, _ = atom_entries(client, f"/feeds/{name}.atom", schema)
        for entry in entries:
            assert_no_raw_markup(entry.content, forbidden, f"/feeds/{name}.atom content")
        check_other_formats(client, name, {e.id for e in entries}, forbidden)
        feeds[name] = entries
    return slugs, feeds


def check_releases_served(
    client: FlaskClient,
    schema: etree.RelaxNG,
    spec: dict[str, Any],
    health: dict[str, Any],
    feeds: dict[str, list[Entry]],
) -> dict[str, Entry]:
    """The real releases and the case's survivors are served, nothing else; entries by title."""
    wanted = expected_releases(spec)
    served = {e.title: e for e in feeds["all"]}
    if "releases_count" in spec:
        # More releases than a subscription document holds: the older ones are archived.
        assert health["counts"]["releases"] == len(REAL_TITLES) + spec["releases_count"]
        must = set(REAL_TITLES) | {r["title"] for r in wanted}
        for entry in archived_entries(client, schema, must - set(served)):
            served.setdefault(entry.title, entry)
        assert must <= set(served), f"not served: {sorted(must - set(served))}"
    else:
        titles = [e.title for e in feeds["all"]]
        assert Counter(titles) == Counter(REAL_TITLES + [r["title"] for r in wanted]), titles
    for title in spec.get("absent", []):
        assert title not in served
    for release in wanted:
        entry = served[release["title"]]
        if "agency" in release:
            assert entry.author == release["agency"]
            assert entry.id in {e.id for e in feeds[entry.category]}
    return served


def check_pages(
    client: FlaskClient,
    spec: dict[str, Any],
    slugs: list[str],
    feeds: dict[str, list[Entry]],
    served: dict[str, Entry],
    forbidden: list[str],
) -> None:
    """Every page answers, shows titles escaped exactly once and no markup from the input."""
    pages = ["/", *(f"/agencies/{slug}" for slug in slugs)]
    pages += [e.link.removeprefix(BASE_URL) for e in feeds["all"]]
    for path in pages:
        assert_no_raw_markup(get_ok(client, path).decode("utf-8"), forbidden, path)
    for title in REAL_TITLES + [r["title"] for r in expected_releases(spec)]:
        page = get_ok(client, served[title].link.removeprefix(BASE_URL)).decode("utf-8")
        assert str(escape(title)) in page, f"release page of {title[:60]!r} lacks its title"


def test_corpus_is_complete_and_small() -> None:
    assert len(CASES) >= 25, CASES
    assert REAL_DOCUMENT.with_suffix(".txt").read_bytes() == REAL_SEED.read_bytes()
    size = sum(p.stat().st_size for p in CASES_DIR.iterdir())
    assert size < MAX_CORPUS_BYTES, f"{size} bytes: generate big inputs at test time"


@pytest.mark.parametrize("case", CASES)
def test_bad_input_costs_only_itself(
    case: str,
    seed_dir: Path,
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    generated: Callable[[dict[str, Any]], Path],
    schema: etree.RelaxNG,
) -> None:
    spec = load_case(case)
    needs_fifo = any(s.get("mkfifo") for s in spec["setup"]) or "replace_with_fifo" in spec.get(
        "after_listing", {}
    )
    if needs_fifo and not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need a POSIX system")
    forbidden = spec.get("html_must_not_contain", ["<script>alert"])

    shutil.copy(REAL_SEED, seed_dir / REAL_SEED.name)
    for step in spec["setup"]:
        materialize(seed_dir, step, generated)
    if "after_listing" in spec:
        change_after_listing(monkeypatch, seed_dir, spec["after_listing"])

    app = make_app(seed_dir, **spec.get("settings", {}))
    while WATCHDOGS:
        WATCHDOGS.pop().join()
    assert not BLOCKED_ON, f"the sync blocked reading a named pipe: {BLOCKED_ON}"
    client = app.test_client()

    # Operators: /healthz names every problem by file and line; the sync itself went fine.
    health = json.loads(get_ok(client, "/healthz"))
    assert health["status"] == "ok", health["last_sync"]
    check_health(health, spec)

    slugs, feeds = check_feeds(client, schema, forbidden)
    served = check_releases_served(client, schema, spec, health, feeds)
    check_pages(client, spec, slugs, feeds, served, forbidden)

    # The command line says the same, like a compiler.
    check_cli(seed_dir, spec, monkeypatch, capsys)
