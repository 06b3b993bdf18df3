"""Every URL path the service answers, and the formats its feeds come in. Built here only.

Pages, feeds, OPML, WebSub, the static export and the web layer's routes ask
this module, so a path is spelled once (datasette's ``url_builder`` is the
model). Functions return paths (``/feeds/all.atom``); callers prefix the
configured base URL, never the client's Host header. Contains no I/O and
imports nothing of ours: any module may use it.

New kinds of document (topics, say) add their builders here, beside the
agency ones, and :func:`static_file` learns their file names.
"""

from __future__ import annotations

from urllib.parse import urlencode

#: Feed formats by URL extension, in the order pages offer them.
FORMATS = ("atom", "rss", "json")
#: What a person calls each format.
FORMAT_LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
#: Media types for ``<link rel="alternate">`` autodiscovery.
FORMAT_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
INDEX = "/"
#: Every feed and archive path starts with this.
FEEDS = "/feeds/"
OPML = "/feeds.opml"
CHOOSE = "/feeds/choose"
SEARCH = "/search"
ROBOTS = "/robots.txt"
HEALTH = "/healthz"
TOPICS = "/topics"
TOPICS_OPML = "/topics.opml"


def feed(name: str, extension: str, query: str = "") -> str:
    """A feed's subscription document (``query``: a canonical filter string, no ``?``)."""
    path = f"{FEEDS}{name}.{extension}"
    return f"{path}?{query}" if query else path


def archive(name: str, page: int, extension: str) -> str:
    """Archive page ``page`` (1 = oldest) of a feed."""
    return f"{FEEDS}{name}/archive/{page}.{extension}"


def agency(slug: str, page: int = 1) -> str:
    """An agency's page; page 1 has no number in its URL."""
    return f"/agencies/{slug}" if page == 1 else f"/agencies/{slug}/page/{page}"


def release(uuid: str) -> str:
    """A release's page, by the UUID part of its ID."""
    return f"/releases/{uuid}"


def topic(key: str, page: int = 1) -> str:
    """A topic's page (``key`` is ``kind/slug``); page 1 has no number in its URL."""
    return f"{TOPICS}/{key}" if page == 1 else f"{TOPICS}/{key}/page/{page}"


def topic_kind(kind: str) -> str:
    """The page listing one kind's topics: every topic category's ``scheme``."""
    return f"{TOPICS}/{kind}"


def topic_feed_name(key: str) -> str:
    """The feed name of a topic (``topics/kind/slug``), for :func:`feed` and :func:`archive`."""
    return f"topics/{key}"


def search(q: str = "", agencies: tuple[str, ...] = (), page: int = 1) -> str:
    """A search results page: words, the agencies it is narrowed to, the page number."""
    pairs: list[tuple[str, str]] = []
    if q:
        pairs.append(("q", q))
    pairs += [("agency", slug) for slug in agencies]
    if page > 1:
        pairs.append(("page", str(page)))
    return f"{SEARCH}?{urlencode(pairs)}" if pairs else SEARCH


def static_file(path: str) -> str:
    """The file a path is exported to (relative, no leading slash).

    Pages get ``.html`` so that a static server can give them a type; nginx's
    ``try_files $uri $uri.html`` maps the URL back. Feeds keep their names.
    """
    if path == INDEX:
        return "index.html"
    relative = path.lstrip("/")
    if path == TOPICS or path.startswith(("/agencies/", "/releases/", f"{TOPICS}/")):
        return relative + ".html"
    return relative
