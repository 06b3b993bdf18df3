"""What the service publishes, by URL: representations rendered once per store state.

Each request asks the store one cheap question (its generation); only when it
moved is a new snapshot read. A representation (bytes, gzip bytes, strong ETag,
Last-Modified) is made once per generation and kept in a bounded cache, so an
unchanged document is never rendered or compressed twice, and a request whose
validators match renders nothing. The web layer and the static export both
take their bytes from here.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from feeds import catalog, pages, query, render
from feeds.config import Config
from feeds.model import Snapshot
from feeds.store import Store

#: Representations kept per generation (filtered feeds make the key space open-ended).
CACHE_ENTRIES = 2048
#: Archive pages keep their entry set forever; let caches keep them a day.
ARCHIVE_MAX_AGE = 86400
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
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


class Site:
    """Representations of one store, cached per generation."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._cache: OrderedDict[tuple[str, ...], Representation] = OrderedDict()

    def snapshot(self) -> Snapshot:
        """The store's current state; re-read only when its generation moved."""
        generation = self.store.generation()
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self.store.snapshot()
                self._cache.clear()
            return self._snapshot

    def _cached(
        self, key: tuple[str, ...], make: Callable[[Snapshot], Representation | None]
    ) -> Representation | None:
        snapshot = self.snapshot()
        with self._lock:
            if snapshot is self._snapshot and key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        made = make(snapshot)
        # Misses are not kept: any number of unknown names must not grow the cache.
        if made is not None:
            with self._lock:
                if snapshot is self._snapshot:
                    self._cache[key] = made
                    while len(self._cache) > CACHE_ENTRIES:
                        self._cache.popitem(last=False)
        return made

    def hit(self, key: tuple[str, ...]) -> tuple[Snapshot, Representation | None]:
        """The current snapshot and, if made already, the representation cached under ``key``.

        The hot path of every request: one generation question, one dict lookup. Web
        keys raw URLs here, so a repeated request does not even parse its URL again.
        """
        snapshot = self.snapshot()
        with self._lock:
            made = self._cache.get(key) if snapshot is self._snapshot else None
            if made is not None:
                self._cache.move_to_end(key)
        return snapshot, made

    def remember(self, key: tuple[str, ...], snapshot: Snapshot, made: Representation) -> None:
        """Cache ``made`` under ``key`` if it was made from the current snapshot."""
        with self._lock:
            if snapshot is self._snapshot:
                self._cache[key] = made
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)

    def selection(self, raw: str, snapshot: Snapshot | None = None) -> query.Selection:
        """The feed a URL names; :class:`~feeds.errors.NotFoundError` if none."""
        agencies = (snapshot or self.snapshot()).agencies
        return query.select(raw, [a.slug for a in agencies])

    def _feed(self, doc: catalog.FeedDoc, extension: str, max_age: int) -> Representation:
        body = render.render(doc, extension, self.config.base_url, self.config.websub_hub or None)
        return Representation.of(body, CONTENT_TYPES[extension], doc.updated, max_age)

    def feed(
        self, selection: query.Selection, extension: str, filters: query.Filters
    ) -> Representation:
        """The subscription document, or the filtered feed when ``filters`` is not empty."""
        page_size = self.config.page_size

        def make(snapshot: Snapshot) -> Representation:
            if filters:
                doc = catalog.filtered(snapshot, selection, filters, page_size)
            else:
                doc = catalog.current(snapshot, selection, page_size)
            return self._feed(doc, extension, self.config.max_age)

        made = self._cached(("feed", selection.name, extension, filters.canonical()), make)
        assert made is not None
        return made

    def archive(
        self, selection: query.Selection, page: int, extension: str
    ) -> Representation | None:
        """Archive page ``page`` of a feed; None if that page is not full (yet)."""

        def make(snapshot: Snapshot) -> Representation | None:
            doc = catalog.archive(snapshot, selection, page, self.config.page_size)
            return None if doc is None else self._feed(doc, extension, ARCHIVE_MAX_AGE)

        return self._cached(("archive", selection.name, extension, str(page)), make)

    def _page(
        self, key: tuple[str, ...], make: Callable[[Snapshot], bytes | None]
    ) -> Representation | None:
        def represent(snapshot: Snapshot) -> Representation | None:
            body = make(snapshot)
            if body is None:
                return None
            return Representation.of(
                body, CONTENT_TYPES["html"], latest_change(snapshot), self.config.max_age
            )

        return self._cached(key, represent)

    def index_page(self) -> Representation:
        made = self._page(("page", "index"), lambda s: pages.index(s, self.config.base_url))
        assert made is not None
        return made

    def agency_page(self, slug: str, page: int = 1) -> Representation | None:
        return self._page(
            ("page", "agency", slug, str(page)),
            lambda s: pages.agency(s, slug, self.config.base_url, page),
        )

    def opml(self) -> Representation:
        def make(snapshot: Snapshot) -> Representation:
            body = pages.opml(snapshot, self.config.base_url)
            return Representation.of(
                body, CONTENT_TYPES["opml"], latest_change(snapshot), self.config.max_age
            )

        made = self._cached(("opml",), make)
        assert made is not None
        return made

    def release_page(self, uuid: str) -> Representation | None:
        return self._page(
            ("page", "release", uuid), lambda s: pages.release(s, uuid, self.config.base_url)
        )


def latest_change(snapshot: Snapshot) -> datetime:
    """When anything readers see last changed (pages' ``Last-Modified``)."""
    return catalog.updated_of(list(snapshot.releases), snapshot.created)
