"""What the service publishes, by URL: representations rendered once per store state.

Each request asks the store one cheap question (its generation); only when it
moved is the store's small :class:`~feeds.model.State` read again. A
representation (bytes, gzip bytes, strong ETag, Last-Modified) is made from a
few indexed queries in one read transaction and kept in a cache bounded in
bytes, stamped with the generations of the agencies it shows: a sync that
changes one agency's releases leaves every other agency's representations
valid, so an unchanged document is never rendered or compressed twice, and a
request whose validators match renders nothing. The web layer and the static
export both take their bytes from here.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime

from feeds import catalog, pages, query, render, topics
from feeds.config import Config
from feeds.errors import NotFoundError
from feeds.model import State
from feeds.store import Reader, Store

#: Bytes of representations (plain and gzip) kept per process: filtered feeds make the
#: key space open-ended, and memory must not grow with the archive.
CACHE_BYTES = 32 * 1024 * 1024
#: Archive pages keep their entry set forever; let caches keep them a day.
ARCHIVE_MAX_AGE = 86400
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Representation:
    """One document's bytes with everything HTTP needs, computed once."""

    body: bytes
    gzipped: bytes
    etag: str
    """Strong ETag value (unquoted) of ``body``; the gzip bytes have ``etag + "-gz"``."""
    content_type: str
    last_modified: datetime
    max_age: int
    http_date: str
    """``last_modified`` as an HTTP date, formatted once rather than per request."""

    @classmethod
    def of(
        cls, body: bytes, content_type: str, last_modified: datetime, max_age: int
    ) -> Representation:
        digest = hashlib.sha256(body).hexdigest()[:32]
        moment = last_modified.astimezone(UTC).replace(microsecond=0)
        # mtime=0: the same bytes always compress to the same bytes.
        return cls(
            body, gzip.compress(body, 6, mtime=0), digest, content_type, moment, max_age,
            email.utils.format_datetime(moment, usegmt=True),
        )  # fmt: skip


#: What a representation depends on: some agencies' documents, or (None) everything.
Deps = tuple[str, ...] | None
Key = tuple[Hashable, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    rep: Representation
    deps: Deps
    stamp: tuple[int, ...]
    """The generations of ``deps`` when it was made (the store's, for everything)."""

    @property
    def size(self) -> int:
        return len(self.rep.body) + len(self.rep.gzipped) + 200


def _stamp(state: State, deps: Deps) -> tuple[int, ...] | None:
    if deps is None:
        return (state.generation,)
    generations = state.generations()
    if any(dep not in generations for dep in deps):
        return None
    return tuple(generations[dep] for dep in deps)


#: What a document maker returns: the representation (None: no such document) and what
#: it depends on (agency slugs and topic keys; None: everything).
Made = tuple[Representation | None, Deps]


class Site:
    """Representations of one store, cached by what they depend on.

    Every document method takes an ``alias``: another key (the request's raw URL,
    :func:`feeds.wire.url_key`) to find the same representation under, so that a
    repeated request is answered by :meth:`hit` alone.
    """

    def __init__(self, store: Store, config: Config, cache_bytes: int = CACHE_BYTES) -> None:
        self.store = store
        self.config = config
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._state: State | None = None
        self._gens: dict[str, int] = {}
        self._cache: OrderedDict[Key, _Entry] = OrderedDict()
        self._bytes = 0

    # -- state and cache ---------------------------------------------------------

    def state(self) -> State:
        """The store's current state; re-read only when its generation moved."""
        generation = self.store.generation()
        known = self._state
        if known is not None and known.generation == generation:
            return known
        with self.store.read() as reader:
            fresh = reader.state()
        self._adopt(fresh)
        return fresh

    def _adopt(self, state: State) -> None:
        with self._lock:
            if self._state is not None and self._state.generation >= state.generation:
                return
            self._state = state
            self._gens = state.generations()
            # Drop what this state made stale, so memory holds only servable bytes.
            for key in [k for k, e in self._cache.items() if not self._valid(e)]:
                self._bytes -= self._cache.pop(key).size

    def _valid(self, entry: _Entry) -> bool:
        state = self._state
        if state is None:
            return False
        if entry.deps is None:
            return entry.stamp == (state.generation,)
        return entry.stamp == tuple(self._gens.get(dep, -1) for dep in entry.deps)

    def hit(self, key: Key) -> Representation | None:
        """The representation cached under ``key``, if still valid.

        The hot path of every request: one generation question, one dict lookup. Web
        files every document under its raw URL too (``alias``), so a repeated request
        is answered by :mod:`feeds.hotpath` without parsing its URL or entering Flask.
        """
        self.state()
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or not self._valid(entry):
                return None
            self._cache.move_to_end(key)
            return entry.rep

    def _keep(self, keys: tuple[Key, ...], entry: _Entry) -> None:
        if entry.size > self.cache_bytes // 4:
            return  # one huge document must not empty the cache
        with self._lock:
            for key in keys:
                old = self._cache.pop(key, None)
                if old is not None:
                    self._bytes -= old.size
                self._cache[key] = entry
                self._bytes += entry.size
            while self._bytes > self.cache_bytes and self._cache:
                self._bytes -= self._cache.popitem(last=False)[1].size

    def _cached(
        self, key: Key, make: Callable[[Reader, State], Made], alias: Key | None = None
    ) -> Representation | None:
        made = self.hit(key)
        if made is not None:
            if alias is not None:
                self._alias(alias, key)
            return made
        with self.store.read() as reader:
            known = self._state
            # The state is a few rows per agency and topic: read again only if it moved.
            if known is not None and known.generation == reader.generation():
                state = known
            else:
                state = reader.state()
            made, deps = make(reader, state)
        self._adopt(state)
        stamp = _stamp(state, deps)
        # Misses are not kept: any number of unknown names must not grow the cache.
        if made is not None and stamp is not None:
            entry = _Entry(made, deps, stamp)
            self._keep((key,) if alias is None else (key, alias), entry)
        return made

    def _alias(self, alias: Key, key: Key) -> None:
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None:
            self._keep((alias,), entry)

    @property
    def cached_bytes(self) -> int:
        """Bytes the cache holds now (for tests and stats)."""
        return self._bytes

    # -- documents ---------------------------------------------------------------

    def selection(self, raw: str, state: State | None = None) -> query.Selection:
        """The feed a URL names; :class:`~feeds.errors.NotFoundError` if none."""
        agencies = (state or self.state()).agencies
        return query.select(raw, [a.slug for a in agencies])

    def topic_key(self, kind: str, raw: str, state: State | None = None) -> str:
        """The key (``kind/slug``) of the topic a URL names, its slug made canonical.

        :class:`~feeds.errors.NotFoundError` for an unknown kind or a topic never found.
        """
        if not topics.is_kind(kind):
            raise NotFoundError(f"no kind of topic {kind!r}")
        key = f"{kind}/{topics.resolve(kind, raw) or raw}"
        if (state or self.state()).topic(key) is None:
            raise NotFoundError(f"no release has ever been about {kind}/{raw}")
        return key

    def _feed(self, doc: catalog.FeedDoc, extension: str, max_age: int) -> Made:
        body = render.render(doc, extension, self.config.base_url, self.config.websub_hub or None)
        made = Representation.of(body, CONTENT_TYPES[extension], doc.updated, max_age)
        deps = doc.deps
        return made, deps

    def feed(
        self,
        selection: query.Selection,
        extension: str,
        filters: query.Filters,
        alias: Key | None = None,
    ) -> Representation:
        """The subscription document, or the filtered feed when ``filters`` is not empty.

        ``alias`` is another key (a raw URL) to find the same representation under.
        """
        page_size = self.config.page_size

        def make(reader: Reader, state: State) -> Made:
            if filters:
                doc = catalog.filtered(reader, state, selection, filters, page_size)
            else:
                doc = catalog.current(reader, state, selection, page_size)
            return self._feed(doc, extension, self.config.max_age)

        key = ("feed", selection.name, extension, filters.canonical())
        made = self._cached(key, make, alias)
        assert made is not None
        return made

    def archive(
        self, selection: query.Selection, page: int, extension: str, alias: Key | None = None
    ) -> Representation | None:
        """Archive page ``page`` of a feed; None if that page is not full (yet)."""

        def make(reader: Reader, state: State) -> Made:
            doc = catalog.archive(reader, state, selection, page, self.config.page_size)
            if doc is None:
                return None, selection.deps
            return self._feed(doc, extension, ARCHIVE_MAX_AGE)

        key = ("archive", selection.name, extension, page)
        return self._cached(key, make, alias)

    def _html(self, body: bytes | None, modified: datetime, deps: Deps) -> Made:
        if body is None:
            return None, deps
        return Representation.of(body, CONTENT_TYPES["html"], modified, self.config.max_age), deps

    def index_page(self, alias: Key | None = None) -> Representation:
        base_url = self.config.base_url
        made = self._cached(
            ("page", "index"),
            lambda r, s: self._html(pages.index(r, s, base_url), s.updated, None),
            alias,
        )
        assert made is not None
        return made

    def agency_page(
        self, slug: str, page: int = 1, alias: Key | None = None
    ) -> Representation | None:
        base_url = self.config.base_url

        def make(reader: Reader, state: State) -> Made:
            found = state.agency(slug)
            if found is None:
                return None, (slug,)
            body = pages.agency(reader, state, slug, base_url, page)
            return self._html(body, found.feed_updated, (slug,))

        return self._cached(("page", "agency", slug, page), make, alias)

    def topics_page(
        self, kind: str | None = None, alias: Key | None = None
    ) -> Representation | None:
        """Every topic (of one kind, or all) with its release count; None for no such kind."""
        if kind is not None and not topics.is_kind(kind):
            return None
        base_url = self.config.base_url
        return self._cached(
            ("page", "topics", kind or ""),
            lambda r, s: self._html(pages.topics(s, base_url, kind), s.updated, None),
            alias,
        )

    def topic_page(
        self, key: str, page: int = 1, alias: Key | None = None
    ) -> Representation | None:
        """One topic's releases, newest change first, paged like agency pages."""
        base_url = self.config.base_url

        def make(reader: Reader, state: State) -> Made:
            found = state.topic(key)
            if found is None:
                return None, (key,)
            body = pages.topic(reader, state, found, base_url, page)
            # Its list names agencies: a renamed agency changes it too.
            return self._html(body, found.feed_updated, (key, *(a.slug for a in state.agencies)))

        return self._cached(("page", "topic", key, page), make, alias)

    def opml(self, alias: Key | None = None) -> Representation:
        base_url = self.config.base_url

        def make(reader: Reader, state: State) -> Made:
            body = pages.opml(state, base_url)
            return Representation.of(
                body, CONTENT_TYPES["opml"], state.updated, self.config.max_age
            ), None

        made = self._cached(("opml",), make, alias)
        assert made is not None
        return made

    def topics_opml(self, alias: Key | None = None) -> Representation:
        base_url = self.config.base_url

        def make(reader: Reader, state: State) -> Made:
            body = pages.topics_opml(state, base_url)
            return Representation.of(
                body, CONTENT_TYPES["opml"], state.updated, self.config.max_age
            ), None

        made = self._cached(("topics-opml",), make, alias)
        assert made is not None
        return made

    def release_page(self, uuid: str, alias: Key | None = None) -> Representation | None:
        """One release's page; it changes only with its agency's documents."""
        base_url = self.config.base_url

        def make(reader: Reader, state: State) -> Made:
            found = reader.release(uuid)
            agency = state.agency(found.draft.agency_slug) if found else None
            if found is None or agency is None:
                return None, None
            body = pages.release(found, state, base_url)
            return self._html(body, agency.feed_updated, (agency.slug,))

        return self._cached(("page", "release", uuid), make, alias)

    def robots(self, alias: Key | None = None) -> Representation:
        """``robots.txt``; it changes with nothing the store holds."""

        def make(reader: Reader, state: State) -> Made:
            body = pages.robots()
            return Representation.of(
                body, CONTENT_TYPES["txt"], state.created, self.config.max_age
            ), None

        made = self._cached(("robots",), make, alias)
        assert made is not None
        return made

    def search_page(self, wanted: pages.SearchRequest) -> Representation:
        """One page of a search's results; it changes with the agencies it searches."""
        base_url = self.config.base_url
        selection = wanted.selection

        def make(reader: Reader, state: State) -> Made:
            body = pages.search(reader, state, wanted, base_url)
            return self._html(body, catalog.feed_updated(state, selection), selection.deps)

        key = ("page", "search", selection.name, wanted.filters.canonical(), wanted.page)
        made = self._cached(key, make)
        assert made is not None
        return made
