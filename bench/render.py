"""Render benchmark: ``feeds.render.atom`` against bare feedgen, per entry.

Builds a real store (a temporary SQLite file synced from generated seeds of
one agency), takes ``feeds.catalog.current`` of a snapshot with
``page_size = N`` (so the document holds exactly N entries), and times

- **ours**: ``feeds.render.atom(doc, base_url)``: the agency feed, and the
  combined ``all`` feed (same entries, plus ``atom:source`` in each);
- **bare**: a plain feedgen ``FeedGenerator`` given the same entries with
  what a minimal Atom feed needs (id, title, updated, author, content, link,
  summary) and serialized the same way (``atom_str(pretty=True)``); the
  content is built with a minimal ``<p>``-per-paragraph escape.

``feeds.markup.body_html`` alone (ours' content HTML) is timed too, as
the part of ours that the bare build does with a plain escape.

Runs alternate (ours, bare, ours, bare, ...) for a bounded time per size;
the median run's CPU time is reported as µs per entry, with ours/bare
(target ≤ 1.2).

    .venv/bin/python bench/render.py [--entries 50 500] [--seconds 2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from html import escape
from pathlib import Path

import seedgen
from feedgen.feed import FeedGenerator

from feeds import catalog, markup, query, render
from feeds.catalog import FeedDoc
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import locked_sync, utcnow

BASE_URL = "http://127.0.0.1:8000"
#: ``Agency 0``'s slug, the one agency of the generated seeds.
SLUG = "agency-0"


def bare_atom(doc: FeedDoc, base_url: str) -> bytes:
    """The same entries (the same elements) through plain feedgen calls.

    Every element ours writes for an agency feed's entry is written here too
    (id, title, updated, published when known, author, category, content, link,
    summary), straight from the records with the simplest markup: the baseline is
    what feedgen itself costs for this document.
    """
    fg = FeedGenerator()
    fg.id(doc.id)
    fg.title(doc.title)
    fg.updated(doc.updated)
    fg.link(href=base_url + doc.path("atom"), rel="self")
    fg.link(href=base_url + doc.html_path, rel="alternate")
    for release in doc.entries:
        draft = release.draft
        fe = fg.add_entry(order="append")
        fe.id(release.id)
        fe.title(draft.title)
        fe.updated(release.updated)
        if draft.published is not None:
            fe.published(render.date_to_datetime(draft.published))
        fe.author({"name": draft.agency, "uri": f"{base_url}/agencies/{draft.agency_slug}"})
        fe.category({"term": draft.agency_slug, "label": draft.agency})
        fe.content("\n".join(f"<p>{escape(p)}</p>" for p in draft.paragraphs), type="html")
        fe.link({"href": f"{base_url}/releases/{release.uuid}", "rel": "alternate"})
        fe.summary(draft.summary)
    result: bytes = fg.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    return result


def contents(doc: FeedDoc) -> bytes:
    """What ``feeds.markup`` alone costs ours: every entry's content HTML."""
    return "".join(markup.body_html(r.draft.paragraphs) for r in doc.entries).encode()


def documents(count: int, workdir: Path) -> tuple[FeedDoc, FeedDoc]:
    """The agency feed and the ``all`` feed of a store holding ``count`` releases."""
    seed_dir = workdir / f"seeds-{count}"
    seedgen.write_seeds(seed_dir, count, agencies=1)
    database = workdir / f"render-{count}.sqlite3"
    store = Store(database)
    store.initialize(utcnow())
    report = locked_sync(store, seed_dir)
    if not report.ok or len(report.new) != count:
        raise SystemExit(f"sync of {count} releases failed: {report.summary()}")
    snapshot = store.snapshot()
    store.close()
    slugs = [a.slug for a in snapshot.agencies]
    agency = catalog.current(snapshot, query.select(SLUG, slugs), count)
    combined = catalog.current(snapshot, query.select(query.ALL, slugs), count)
    assert len(agency.entries) == len(combined.entries) == count, len(agency.entries)
    return agency, combined


def timed(makers: Sequence[Callable[[], bytes]], seconds: float, min_runs: int = 5) -> list[float]:
    """Median CPU seconds per call of each maker, calls alternating, for about ``seconds``.

    CPU time of this process (not wall time), so other load on the machine
    disturbs the numbers less.
    """
    runs: list[list[float]] = [[] for _ in makers]
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(runs[0]) < min_runs:
        for index, make in enumerate(makers):
            start = time.process_time()
            make()
            runs[index].append(time.process_time() - start)
    return [statistics.median(r) for r in runs]


def profile(make: Callable[[], bytes], label: str, limit: int = 18) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(20):
        make()
    profiler.disable()
    print(f"\n--- cProfile of {label} (20 calls), by own time ---")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(limit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="µs per entry: feeds.render.atom vs feedgen.")
    parser.add_argument(
        "--entries", type=int, nargs="+", default=[50, 500], help="document sizes (50 500)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="time per size (2)")
    parser.add_argument("--profile", action="store_true", help="cProfile ours and bare")
    args = parser.parse_args(argv)
    if not all(1 <= n <= 5000 for n in args.entries) or not 0 < args.seconds <= 60:
        parser.error("--entries from 1 to 5000, --seconds in (0, 60]")

    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="feeds-bench-render-") as tmp:
        for count in args.entries:
            agency, combined = documents(count, Path(tmp))
            ours_atom = partial(render.atom, agency, BASE_URL)
            all_atom = partial(render.atom, combined, BASE_URL)
            bare = partial(bare_atom, agency, BASE_URL)
            sizes = f"{len(ours_atom()) / count:,.0f} / {len(bare()) / count:,.0f}"
            times = timed([ours_atom, all_atom, bare, partial(contents, agency)], args.seconds)
            ours_s, all_s, bare_s, markup_s = times
            per = 1e6 / count
            rows.append(
                [
                    str(count),
                    f"{ours_s * per:.1f}",
                    f"{all_s * per:.1f}",
                    f"{bare_s * per:.1f}",
                    f"{ours_s / bare_s:.2f}",
                    f"{all_s / bare_s:.2f}",
                    f"{markup_s * per:.1f}",
                    sizes,
                ]
            )
            if args.profile:
                profile(ours_atom, f"ours, {count} entries")
                profile(bare, f"bare, {count} entries")

    header = [
        "entries",
        "ours µs/entry",
        "ours(all) µs/entry",
        "bare µs/entry",
        "ours/bare",
        "ours(all)/bare",
        "of ours: markup µs/entry",
        "bytes/entry ours / bare",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("feeds.render.atom vs bare feedgen (median run; target ours/bare <= 1.2):")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(f"{c:>{w}}" for c, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
