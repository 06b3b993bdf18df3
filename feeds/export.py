"""Static export: every feed, archive page, HTML page and the OPML as files.

The bytes are the site's own representations, so a file is byte-identical to
what the server sends for its URL; each gets a pre-compressed ``.gz`` beside it
(identical to the server's gzip bytes) and the document's ``Last-Modified`` as
its mtime. The export is written to a new directory and swapped in, so a
server reading the old one never sees a half-written tree. Multi-agency and
filtered feeds and search pages are open-ended and not exported.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from feeds import catalog, pages, query, topics, urls
from feeds.site import Representation, Site

log = logging.getLogger(__name__)

#: How often to start over when a sync lands mid-export.
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ExportReport:
    files: int
    bytes: int
    generation: int


def documents(site: Site) -> Iterator[tuple[str, Representation]]:
    """Every exportable URL path (relative file path) with its representation.

    Walks the store in one read transaction, so every file comes from one sync state;
    releases are listed a batch at a time, never all held at once.
    """
    with site.store.read() as reader:
        state = reader.state()
        for selection in catalog.selections(state):
            name = selection.name
            full_pages = catalog.full_pages(state, selection, site.config.page_size)
            for extension in urls.FORMATS:
                feed = site.feed(selection, extension, query.Filters())
                yield urls.static_file(urls.feed(name, extension)), feed
                for page in range(1, full_pages + 1):
                    archived = site.archive(selection, page, extension)
                    assert archived is not None
                    yield urls.static_file(urls.archive(name, page, extension)), archived
        yield urls.static_file(urls.OPML), site.opml()
        yield urls.static_file(urls.ROBOTS), site.robots()
        yield urls.static_file(urls.INDEX), site.index_page()
        for agency in state.agencies:
            for page in range(1, pages.agency_pages(state, agency.slug) + 1):
                rep = site.agency_page(agency.slug, page)
                assert rep is not None
                yield urls.static_file(urls.agency(agency.slug, page)), rep
        for kind in (None, *topics.KINDS):
            made = site.topics_page(kind)
            assert made is not None
            yield urls.static_file(urls.TOPICS if kind is None else urls.topic_kind(kind)), made
        yield urls.static_file(urls.TOPICS_OPML), site.topics_opml()
        for found in state.topics:
            for page in range(1, pages.topic_pages(found) + 1):
                rep = site.topic_page(found.key, page)
                assert rep is not None
                yield urls.static_file(urls.topic(found.key, page)), rep
        for uuid in reader.uuids():
            rep = site.release_page(uuid)
            assert rep is not None
            yield urls.static_file(urls.release(uuid)), rep


def _write(root: Path, relative: str, rep: Representation) -> int:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    stamp = rep.last_modified.timestamp()
    for path, data in ((target, rep.body), (target.with_name(target.name + ".gz"), rep.gzipped)):
        path.write_bytes(data)
        os.utime(path, (stamp, stamp))
    return len(rep.body) + len(rep.gzipped)


def export(site: Site, out: Path) -> ExportReport:
    """Write the whole site under ``out``, replacing what was there."""
    out = out.resolve()
    for _ in range(ATTEMPTS):
        generation = site.state().generation
        staging = out.with_name(f".{out.name}.new-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        files = size = 0
        for relative, rep in documents(site):
            size += _write(staging, relative, rep)
            files += 2
        if site.state().generation != generation:
            log.info("export restarted: a sync landed meanwhile")
            shutil.rmtree(staging, ignore_errors=True)
            continue
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        log.info("export done dir=%s files=%d bytes=%d", out, files, size)
        return ExportReport(files, size, generation)
    raise RuntimeError(f"the store kept changing; export to {out} gave up after {ATTEMPTS} tries")
