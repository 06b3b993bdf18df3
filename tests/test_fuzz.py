"""Property tests of the whole flow: seed bytes → scan → parse → sync → store → render → HTTP.

Hypothesis writes any text (control characters, U+FFFE, NBSP, lone ``\\r``, CRLF,
``Source: `` fragments, markup) or any bytes as seed files, syncs them into a real
SQLite store with :func:`feeds.sync.sync`, builds the app on that store and reads
every document through the Flask test client, as readers would:

- the sync never raises and reports ``ok``;
- every Atom and RSS document is well-formed for lxml (default limits), valid Atom
  for RFC 4287's RELAX NG schema, and parses with feedparser without ``bozo``;
  every JSON Feed parses;
- no page and no entry's HTML holds markup from the input unescaped, and each
  release page shows its title escaped exactly once;
- entry IDs (and what each entry says) do not depend on how the same releases are
  spread over files: their names, their order, the order inside them, their
  encoding or line endings.

Each example runs in its own ``tempfile.TemporaryDirectory()``: function-scoped
fixtures are not reset between Hypothesis examples.
"""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from markupsafe import escape

from feeds.app import create_app
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync, utcnow

from .conftest import ATOM_RNG, BASE_URL

ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA = etree.RelaxNG(etree.parse(str(ATOM_RNG)))
#: Markup the input may hold; none of it may ever reach a page or an entry's HTML raw.
MARKUP = ["<b>x</b>", "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
#: Pieces that make the grammar and the encoders work hard.
FRAGMENTS = [
    "Source: ",
    "Source: Europol",
    "Source: NATO (news and events)",
    "Source: Интерпол",
    "Sources: many",
    "Source code",
    "3 August 2023",
    "On Wednesday (16 October 2024), ",
    "  • ",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "\r\n\r\n",
    "\u00a0",
    "\n\u00a0\n",
    " ",
    "\t",
    "\x00",
    "\x01",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "]]>",
    "&amp;",
    "&",
    "<",
    ">",
    "\"'",
    *MARKUP,
]
#: Characters Python can write as UTF-8: anything but surrogates.
CHARS = st.characters(exclude_categories=["Cs"])
#: Characters that keep a line one line: no ``\n`` and no ``\r``.
LINE_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\n\r")
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

texts = st.lists(
    st.one_of(st.text(CHARS, max_size=12), st.sampled_from(FRAGMENTS)), max_size=30
).map("".join)
lines = st.lists(
    st.one_of(
        st.text(LINE_CHARS, max_size=12),
        st.sampled_from([f for f in FRAGMENTS if "\n" not in f and "\r" not in f]),
    ),
    min_size=1,
    max_size=6,
).map("".join)
agencies = st.one_of(
    st.sampled_from(["Europol", "NATO", "Interpol (news and events)", "国际刑警组织", "<b>x</b>"]),
    lines,
)


def _release(title: str, agency: str, body: list[str]) -> str:
    return "\n\n".join([title, f"Source: {agency}", *body])


releases = st.builds(_release, lines, agencies, st.lists(lines, max_size=3))
#: Seed text: releases (so that there is something to render) mixed with anything at all.
documents = st.lists(st.one_of(releases, texts), max_size=5).flatmap(
    lambda parts: st.sampled_from(["\n\n", "\r\n\r\n", "\n \n", "\n\u00a0\n\n"]).map(
        lambda separator: separator.join(parts)
    )
)


@dataclass(frozen=True, slots=True)
class Served:
    """What readers got from one seed directory."""

    items: dict[str, dict[str, Any]]
    """The combined JSON Feed's items by entry ID."""
    documents: int


def get_ok(client: FlaskClient, path: str) -> bytes:
    response = client.get(path)
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    body: bytes = response.data
    return body


def assert_no_raw_markup(text: str, where: str) -> None:
    for raw in MARKUP:
        assert raw not in text, f"{where} holds unescaped {raw!r}"


def check_xml_feed(client: FlaskClient, path: str) -> Any:
    """Well-formed for lxml, parsed by feedparser without bozo; the root element."""
    body = get_ok(client, path)
    root = etree.fromstring(body)  # raises on anything not well-formed
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, f"{path}: {parsed.get('bozo_exception')}"
    return root


def read_everything(client: FlaskClient) -> Served:
    """Fetch every feed in every format and every page; check each as its reader would."""
    opml = etree.fromstring(get_ok(client, "/feeds.opml"))
    prefix = f"{BASE_URL}/feeds/"
    slugs = [o.get("xmlUrl", "")[len(prefix) : -len(".atom")] for o in opml.iter("outline")]
    documents = 1
    pages = ["/", *(f"/agencies/{slug}" for slug in slugs)]
    items: dict[str, dict[str, Any]] = {}
    for name in ["all", *slugs]:
        atom = check_xml_feed(client, f"/feeds/{name}.atom")
        assert SCHEMA.validate(atom), f"/feeds/{name}.atom: {SCHEMA.error_log}"
        for content in atom.iter(f"{ATOM}content"):
            assert_no_raw_markup(content.text or "", f"/feeds/{name}.atom content")
        rss = check_xml_feed(client, f"/feeds/{name}.rss")
        for item in rss.iter("item"):
            assert_no_raw_markup(item.findtext("description", ""), f"/feeds/{name}.rss")
        feed = json.loads(get_ok(client, f"/feeds/{name}.json"))
        for item in feed["items"]:
            assert_no_raw_markup(item["content_html"], f"/feeds/{name}.json")
        if name == "all":
            items = {item["id"]: item for item in feed["items"]}
        documents += 3
    for item in items.values():
        path = item["url"].removeprefix(BASE_URL)
        page = get_ok(client, path).decode("utf-8")
        assert str(escape(item["title"])) in page, f"{path} lacks its title, escaped once"
        pages.append(path)
    for path in pages:
        assert_no_raw_markup(get_ok(client, path).decode("utf-8"), path)
        documents += 1
    return Served(items, documents)


def read_combined_json(client: FlaskClient) -> Served:
    """Only the combined JSON Feed: enough to compare what two seed layouts publish."""
    feed = json.loads(get_ok(client, "/feeds/all.json"))
    return Served({item["id"]: item for item in feed["items"]}, 1)


def publish(
    files: dict[str, bytes], read: Callable[[FlaskClient], Served] = read_everything
) -> Served:
    """Write ``files`` as seeds, sync them into a new store, serve them and ``read`` them."""
    with tempfile.TemporaryDirectory() as tmp:
        seed_dir = Path(tmp) / "seeds"
        seed_dir.mkdir()
        for name, data in files.items():
            (seed_dir / name).write_bytes(data)
        database = Path(tmp) / "db" / "feeds.sqlite3"
        store = Store(database)
        store.initialize(utcnow())
        report = sync(store, seed_dir)
        store.close()
        assert report.ok, report.error
        app = create_app(
            {"seed_dir": seed_dir, "database": database, "base_url": BASE_URL, "scheduler": False},
            environ={},
        )
        try:
            return read(app.test_client())
        finally:
            app.extensions["feeds.site"].store.close()


@given(documents)
def test_any_text_is_served_as_valid_escaped_feeds_and_pages(text: str) -> None:
    publish({"seed.txt": text.encode("utf-8")})


@given(
    st.one_of(
        st.binary(max_size=400),
        st.tuples(documents, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be"])).map(
            lambda pair: pair[0].encode(pair[1])
        ),
        st.tuples(documents, st.binary(min_size=1, max_size=4), st.integers(0, 10_000)).map(
            lambda t: t[0].encode()[: t[2]] + t[1] + t[0].encode()[t[2] :]
        ),
    )
)
def test_any_bytes_are_served_as_valid_escaped_feeds_and_pages(data: bytes) -> None:
    publish({"seed.txt": data})


# --- Identity does not depend on files ----------------------------------------------------


def _one_line_paragraph(text: str) -> bool:
    """A line that stays one non-blank paragraph and is not a Source line, once cleaned."""
    cleaned = _XML_INVALID.sub("", text)
    return (
        any(c.isalnum() for c in cleaned)
        and not cleaned.startswith("Source:")
        # At the start of a file, a leading U+FEFF is a byte order mark, not text.
        and not text.startswith("\ufeff")
    )


titles = lines.filter(_one_line_paragraph)
bodies = st.lists(lines.filter(_one_line_paragraph), min_size=1, max_size=2)
file_names = st.text(
    st.characters(categories=("L", "N"), include_characters=" _-é"), min_size=1, max_size=10
).map(lambda stem: f"{stem}.txt")


@dataclass(frozen=True, slots=True)
class Release:
    title: str
    agency: str
    body: tuple[str, ...]

    def text(self) -> str:
        return _release(self.title, self.agency, list(self.body))


release_lists = st.lists(
    st.builds(
        Release,
        # Few distinct titles, so that the same release often comes in several copies.
        st.one_of(titles, st.sampled_from(["Same title", "same  TITLE", "Ｓａｍｅ title"])),
        st.sampled_from(["Europol", "NATO", "Interpol (news and events)", "Интерпол"]),
        bodies.map(tuple),
    ),
    min_size=1,
    max_size=8,
)


@st.composite
def layouts(draw: st.DrawFn, items: list[Release]) -> dict[str, bytes]:
    """The same releases spread over files: any names, order, encoding and line endings."""
    count = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            file_names,
            min_size=count,
            max_size=count,
            # Distinct on case-insensitive, normalizing file systems (macOS) too.
            unique_by=lambda name: unicodedata.normalize("NFD", name).casefold(),
        )
    )
    where = draw(st.lists(st.integers(0, count - 1), min_size=len(items), max_size=len(items)))
    order = draw(st.permutations(range(len(items))))
    files: dict[str, bytes] = {}
    for index, name in enumerate(names):
        mine = [items[i].text() for i in order if where[i] == index]
        if not mine:
            continue
        text = "\n\n".join(mine) + "\n"
        if draw(st.booleans()):
            text = text.replace("\n", "\r\n")
        files[name] = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])))
    return files


def what_readers_see(served: Served) -> dict[str, tuple[Any, ...]]:
    """Per entry ID, what the entry says (times aside: two stores sync at different moments)."""
    return {
        rid: (
            item["title"],
            item["content_html"],
            item.get("summary"),
            item.get("date_published"),
            item["authors"][0]["name"],
            item["url"],
        )
        for rid, item in served.items.items()
    }


@given(st.data(), release_lists)
def test_ids_do_not_depend_on_file_names_order_or_encoding(
    data: st.DataObject, items: list[Release]
) -> None:
    first = publish(data.draw(layouts(items), label="first layout"), read_combined_json)
    second = publish(data.draw(layouts(items), label="second layout"), read_combined_json)
    assert first.items, "releases went missing"
    assert what_readers_see(first) == what_readers_see(second)
