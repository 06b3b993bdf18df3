"""Filters with a common word: walking the newest releases against sorting every match.

A ``q`` word found in a large share of the releases used to be answered by
taking every match from the full-text index and sorting them all by "newest
change"; the store now walks the "newest" index a few hundred releases at a
time and checks each step in the full-text index (``SQLiteStore`` reader's
``_walk_newest``). This generates a corpus, syncs it once, and times both
plans on the same store for a few common words, printing the ratio. The
baseline is the real sorting plan, forced by raising the threshold
(``feeds.sqlite_store._COMMON``).

    .venv/bin/python bench/filters.py --releases 200000

Bounded: the corpus and store live in a temporary directory removed at the
end; nothing listens on the network.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seedgen  # noqa: E402
from workspace import workspace  # noqa: E402

from feeds import sqlite_store  # noqa: E402
from feeds.query import filters  # noqa: E402
from feeds.sqlite_store import SQLiteStore  # noqa: E402
from feeds.sync import sync  # noqa: E402

WORDS = ("seized", "investigation", "seized cash")


def best_ms(store: SQLiteStore, words: str, rounds: int) -> tuple[float, int]:
    """Fastest of ``rounds`` searches for ``words`` with ``limit=50``, in ms; and the hits."""
    best, hits = float("inf"), 0
    for _ in range(rounds):
        with store.read() as reader:
            started = time.perf_counter()
            found = reader.search(None, filters({"q": [words], "limit": ["50"]}), 50)
            best = min(best, time.perf_counter() - started)
        hits = len(found)
    return best * 1000, hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with workspace(False, "feeds-filters-") as root:
        seeds = root / "seeds"
        seeds.mkdir()
        seedgen.write_corpus({seeds: 100}, args.releases)
        store = SQLiteStore(root / "feeds.sqlite3")
        store.initialize(datetime.now(UTC))
        started = time.perf_counter()
        report = sync(store, seeds)
        print(f"# {report.count('new'):,} releases synced in {time.perf_counter() - started:.1f} s")
        common = sqlite_store._COMMON
        print(f"{'words':<16}{'sorted ms':>11}{'walked ms':>11}{'ratio':>8}")
        for words in WORDS:
            sqlite_store._COMMON = 2**62  # the baseline: sort every match
            sorted_ms, sorted_hits = best_ms(store, words, args.rounds)
            sqlite_store._COMMON = common
            walked_ms, walked_hits = best_ms(store, words, args.rounds)
            assert sorted_hits == walked_hits == 50, (sorted_hits, walked_hits)
            print(f"{words:<16}{sorted_ms:>11.1f}{walked_ms:>11.1f}{sorted_ms / walked_ms:>8.1f}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
