"""What topic extraction costs a first sync: µs per release, and its share of the sync.

Run from the repository root::

    .venv/bin/python bench/topics.py                 # 10,000 generated releases, 5 rounds
    .venv/bin/python bench/topics.py --count 20000 --rounds 7

Two corpora, each held in memory as seed files of 100 releases:

- *generated*: ``seedgen.corpus_release`` 0 … N−1, the corpus of ``bench/sync.py``
  (about 1 KB a release, few capitalised words, no country);
- *labelled*: the releases of ``seeds/`` and ``tests/data/topics/`` (real agency
  text, many countries, operations and crime areas), repeated up to N.

For each, alternating for ``--rounds`` rounds (medians printed):

- *parse + to_copy*: ``feeds.parse.parse`` of every file and ``feeds.sync.to_copy``
  of every draft, the per-release work of a first sync before the store;
- *topics*: ``feeds.topics.extract(title, paragraphs)`` of every draft.

It prints µs per release of each and ``topics / (parse + to_copy)``. Then, unless
``--no-sync``, one real first sync (``feeds.sync.sync`` into a new SQLite store in a
temporary directory) of the generated corpus gives the µs per release of a whole
first sync, and ``topics / first sync``: the issue's target is under 15%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import seedgen
from workspace import workspace

from feeds import topics
from feeds.model import Draft
from feeds.parse import parse
from feeds.sqlite_store import SQLiteStore
from feeds.sync import sync, to_copy, utcnow

ROOT = Path(__file__).resolve().parent.parent
LABELLED = [
    ROOT / "seeds" / "000_cd6cbdc3db3c9078.txt",
    ROOT / "tests" / "data" / "topics" / "dev.txt",
    ROOT / "tests" / "data" / "topics" / "holdout.txt",
]


def generated(count: int) -> list[str]:
    """The generated corpus as seed files of 100 releases."""
    releases = [seedgen.corpus_release(n) for n in range(count)]
    return ["".join(releases[i : i + 100]) for i in range(0, count, 100)]


def labelled(count: int) -> list[str]:
    """The labelled releases, repeated up to ``count``, as seed files of 100 releases."""
    drafts = [d for path in LABELLED for d in parse(path.read_text("utf-8"), path.name)[0]]
    texts = [release_text(d) for d in drafts]
    releases = [texts[n % len(texts)] for n in range(count)]
    return ["".join(releases[i : i + 100]) for i in range(0, count, 100)]


def release_text(draft: Draft) -> str:
    return "\n\n".join([draft.title, f"Source: {draft.agency}", *draft.paragraphs]) + "\n\n"


def median_seconds(
    job: Callable[[], object], rounds: int, other: Callable[[], object]
) -> tuple[float, float]:
    """Median CPU seconds of ``job`` and of ``other``, run alternately (after one warm-up)."""
    job(), other()
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        for fn, into in ((other, theirs), (job, mine)):
            start = time.process_time()
            fn()
            into.append(time.process_time() - start)
    return statistics.median(mine), statistics.median(theirs)


def measure(name: str, files: list[str], rounds: int) -> float:
    """Print µs per release of parse + to_copy and of topics over ``files``; return topics µs."""
    drafts = [d for i, text in enumerate(files) for d in parse(text, f"f{i}")[0]]
    count = len(drafts)
    size = sum(len(t.encode("utf-8")) for t in files) / count

    def parse_and_copy() -> None:
        # The sync tags inside to_copy now: leave tagging out of the baseline it is
        # compared with, so the ratio is tagging against everything else.
        real = topics.extract
        topics.extract = lambda title, paragraphs: ()  # type: ignore[assignment]
        try:
            for i, text in enumerate(files):
                for draft in parse(text, f"f{i}")[0]:
                    to_copy(draft)
        finally:
            topics.extract = real

    def tag() -> None:
        for draft in drafts:
            topics.extract(draft.title, draft.paragraphs)

    tagged, parsed = median_seconds(tag, rounds, parse_and_copy)
    found = sum(len(topics.extract(d.title, d.paragraphs)) for d in drafts[:1000])
    us_tag, us_parse = tagged / count * 1e6, parsed / count * 1e6
    print(
        f"{name:10} {count:>7,} releases, {size:,.0f} B each, {found / min(count, 1000):.1f} "
        f"topics each | parse+to_copy {us_parse:6.1f} µs | topics {us_tag:6.1f} µs | "
        f"topics/(parse+to_copy) {us_tag / us_parse:.2f}"
    )
    return us_tag


def first_sync(files: list[str], count: int, keep: bool) -> float:
    """µs per release of one real first sync of ``files`` into a new SQLite store."""
    with workspace(keep, "feeds-bench-topics-") as root:
        seeds = root / "seeds"
        seeds.mkdir()
        for i, text in enumerate(files):
            (seeds / f"corpus_{i:05d}.txt").write_text(text, encoding="utf-8")
        store = SQLiteStore(root / "feeds.db")
        store.initialize(utcnow())
        start = time.process_time()
        report = sync(store, seeds)
        seconds = time.process_time() - start
        assert report.ok, report.error
        assert report.count("new") == count, report.counts
        return seconds / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="releases per corpus")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--no-sync", action="store_true", help="skip the real first sync")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    print(
        f"# feeds.topics RULES_VERSION={topics.RULES_VERSION}, CPU time, medians of {args.rounds}"
    )
    topics.extract("warm-up", ["Load the country table once."])
    corpus = generated(args.count)
    us_generated = measure("generated", corpus, args.rounds)
    us_labelled = measure("labelled", labelled(args.count), args.rounds)
    if not args.no_sync:
        us_sync = first_sync(corpus, args.count, args.keep)
        print(
            f"first sync {us_sync:6.1f} µs a release (generated corpus, SQLite): topics add "
            f"{us_generated / us_sync:.1%} (generated), {us_labelled / us_sync:.1%} "
            f"(labelled text at the generated corpus's sync cost); target < 15%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
