"""A sync holds one file at a time: its Python memory peaks at a few times that file.

The scale goal (issue "Never falls over", DESIGN.md "Bad input") is a first sync
whose peak memory is at most 6x the largest seed file, whatever the corpus. The
peak is what ``tracemalloc`` sees the sync allocate: deterministic for a given
input and Python, unlike time, so it can be asserted. SQLite's own page cache is
outside it (a fixed few MB, see bench/README.md). ``bench/sync.py`` measures the
100 MB corpus; these cases are the shapes that once broke the bound: a CRLF file
(every line ends in whitespace), one huge line, and ten times more files.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync

#: The goal: peak Python memory of a sync over the largest seed file.
MAX_RATIO = 6.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def release(n: int, newline: str = "\n") -> str:
    body = "Investigators from “several” countries seized assets – and documents. " * 12
    lines = [f"Operation {n} dismantles a network", "", "Source: Europol", "", "3 May 2024"]
    lines += ["", body, "", f"  • item {n}", f"  • item {n + 1}", "", ""]
    return newline.join(lines)


def peak_of_sync(seed_dir: Path, workdir: Path) -> tuple[int, int]:
    """(tracemalloc peak of a first sync of ``seed_dir``, new releases)."""
    store = Store(workdir / "feeds.sqlite3")
    store.initialize(T0)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        report = sync(store, seed_dir, clock=lambda: T0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        store.close()
    assert report.ok, report.error
    return peak, report.count("new")


def crlf_file(seed_dir: Path) -> int:
    (seed_dir / "crlf.txt").write_bytes(
        "".join(release(n, "\r\n") for n in range(4000)).encode("utf-8")
    )
    return 4000


def one_long_line(seed_dir: Path) -> int:
    words = "wórd " * 1_000_000
    (seed_dir / "line.txt").write_text(f"Title\n\nSource: NATO\n\n{words}\n", encoding="utf-8")
    return 1


def write_files(seed_dir: Path, count: int) -> None:
    for number in range(count):
        text = "".join(release(number * 10 + n) for n in range(10))
        (seed_dir / f"{number:05d}.txt").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("write", [crlf_file, one_long_line])
def test_a_first_sync_peaks_at_a_few_times_the_largest_file(
    write: Callable[[Path], int], tmp_path: Path
) -> None:
    seed_dir = tmp_path / "seeds"
    seed_dir.mkdir()
    releases = write(seed_dir)
    largest = max(path.stat().st_size for path in seed_dir.iterdir())
    peak, new = peak_of_sync(seed_dir, tmp_path)
    assert new == releases
    assert peak <= MAX_RATIO * largest, f"peak {peak:,} B = {peak / largest:.1f}x {largest:,} B"


def test_memory_does_not_grow_with_the_number_of_files(tmp_path: Path) -> None:
    # Files of 10 KB: the sync's fixed few tens of KB (freelists, caches, 100 sample IDs)
    # weigh as much as a file here, so the assertion is on growth, not on the ratio.
    peaks = {}
    for count in (100, 1000):
        seed_dir = tmp_path / f"seeds-{count}"
        seed_dir.mkdir()
        write_files(seed_dir, count)
        largest = max(path.stat().st_size for path in seed_dir.iterdir())
        peaks[count], new = peak_of_sync(seed_dir, tmp_path / f"db-{count}")
        assert new == count * 10
    # Ten times the files, ten times the text: at most two more files' worth of memory.
    assert peaks[1000] <= peaks[100] + 2 * largest, peaks
