"""What the service publishes, by name: feed and page bytes, rendered once per store state.

Each request asks the store one cheap question (its generation); only when that
changed is a new snapshot read. Rendered bytes are kept per generation, so a
document is rendered once per version, not once per request. Used by the web
layer and by anything else that needs the exact served bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from feeds import catalog, pages, render
from feeds.config import Config
from feeds.model import Snapshot
from feeds.store import Store


class Site:
    """Rendered documents of one store, cached per generation."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._rendered: dict[tuple[str, ...], bytes | None] = {}

    def snapshot(self) -> Snapshot:
        """The store's current state; re-read only when its generation moved."""
        generation = self.store.generation()
        with self._lock:
            if self._snapshot is None or self._snapshot.generation != generation:
                self._snapshot = self.store.snapshot()
                self._rendered = {}
            return self._snapshot

    def _cached(
        self, key: tuple[str, ...], make: Callable[[Snapshot], bytes | None]
    ) -> bytes | None:
        snapshot = self.snapshot()
        with self._lock:
            if snapshot is self._snapshot and key in self._rendered:
                return self._rendered[key]
        body = make(snapshot)
        # Misses are not kept: any number of unknown names must not grow the cache.
        if body is not None:
            with self._lock:
                if snapshot is self._snapshot:
                    self._rendered[key] = body
        return body

    def atom(self, name: str) -> bytes | None:
        """Atom subscription document of feed ``name``; None if no such feed."""

        def make(snapshot: Snapshot) -> bytes | None:
            doc = catalog.feed_doc(snapshot, name, self.config.page_size)
            return None if doc is None else render.atom(doc, self.config.base_url)

        return self._cached(("atom", name), make)

    def index_page(self) -> bytes:
        body = self._cached(("page", "index"), lambda s: pages.index(s, self.config.base_url))
        assert body is not None
        return body

    def agency_page(self, slug: str) -> bytes | None:
        return self._cached(
            ("page", "agency", slug), lambda s: pages.agency(s, slug, self.config.base_url)
        )

    def release_page(self, uuid: str) -> bytes | None:
        return self._cached(
            ("page", "release", uuid), lambda s: pages.release(s, uuid, self.config.base_url)
        )
