"""Sync benchmark: first-sync memory, parse speed and unchanged re-sync, each against a floor.

Generates a deterministic corpus (``seedgen.write_corpus``) in a temporary
directory, laid out twice with the same releases: *large* files (100
releases, about 100 KB each) and *small* files (10 releases each). At
``--scale 1`` that is 100,000 releases, about 100 MB, in 1,000 and in
10,000 files. Then it measures, each number next to a floor measured in the
same run:

1. **First sync memory**, in fresh child processes (``python -c``): the
   growth of resident memory during ``feeds.sync.sync`` (after imports and
   ``Store.initialize``), and in another child the ``tracemalloc`` peak of the
   sync; both as a ratio to the largest seed file (target: at most 6×).
   The peak RSS is ``ru_maxrss`` and, since a child's ``ru_maxrss`` starts at
   its parent's peak on Linux, also ``VmHWM`` after a reset just before the
   sync. A what-if child shows the tracemalloc peak when ``read_seed`` reads
   by file size rather than by its cap. The floor child reads, decodes and
   splits every file, with no store. Wall time and releases/s are printed too.
2. **Parse speed** over the large layout's bytes: per file, read + UTF-8
   decode + ``re.split(r"\\n\\s*\\n")`` (floor) against read +
   ``feeds.scan.decode`` + ``feeds.parse.parse`` (ours), interleaved, median
   of 3 rounds (target: ours/floor at most 2.0). A third job, *shape*, does no
   grammar at all: read + decode + ``str.split`` + one ``Draft`` (and its
   paragraph tuple) per release, the least any parser returning drafts does.
3. **Unchanged re-sync** of the small layout after its first sync:
   ``feeds.sync.sync`` against a bare ``os.scandir`` + ``entry.stat()`` of the
   directory, interleaved, median of 5 rounds (target: at most 1.5), and
   a check that the re-sync opened no seed file.

It ends with a summary table (measure, ours, floor, ratio, target, met?).
Everything stays in one temporary directory, removed at the end (also on
Ctrl-C and SIGTERM) unless ``--keep``; every child process has a timeout.

    .venv/bin/python bench/sync.py                 # scale 1: 100,000 releases, ~100 MB
    .venv/bin/python bench/sync.py --scale 0.1     # 10,000 releases: a quick run
    .venv/bin/python bench/sync.py --scale 0.05 --profile   # plus cProfile of a first sync
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import seedgen
from workspace import workspace

import feeds
from feeds import scan
from feeds.model import Draft, SyncReport
from feeds.parse import parse
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync

#: Releases at ``--scale 1``, and releases per file of the two layouts.
RELEASES = 100_000
LARGE_PER_FILE = 100
SMALL_PER_FILE = 10
AGENCIES = 8
#: The floor's paragraph split, exactly as the issue states it.
FLOOR_SPLIT = r"\n\s*\n"

MEMORY_TARGET = 6.0
PARSE_TARGET = 2.0
RESYNC_TARGET = 1.5

#: Runs in a fresh interpreter: argv is ``mode kind seed_dir database split root
#: [sized-read]``, where ``mode`` is ``rss``, ``tracemalloc`` or ``profile``, ``kind`` is
#: ``sync`` or ``floor`` and ``root`` the directory holding the parent's ``feeds``;
#: ``sized-read`` makes ``feeds.scan.read_seed`` read at most the listed size of
#: each file instead of its cap (a what-if). Prints one JSON line last (after the
#: profile's text, in ``profile`` mode).
CHILD = r"""
import json, os, re, resource, sys, time
from pathlib import Path

mode, kind, seed_dir, database, split_pattern, root = sys.argv[1:7]
seed_dir = Path(seed_dir)
sys.path.insert(0, root)  # the parent's feeds, whatever the working directory holds

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # KiB
    raise RuntimeError(field)

from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync, utcnow

import feeds

if kind == "sync" and sys.argv[7:] == ["sized-read"]:
    # What-if: read_seed as if it sized its read by the file (as listed), not by the cap.
    from feeds import scan
    read_seed = scan.read_seed
    scan.read_seed = lambda seed, cap: read_seed(seed, min(cap, seed.fingerprint.size))

if kind == "sync":
    store = Store(Path(database))
    store.initialize(utcnow())

    def work():
        report = sync(store, seed_dir)
        if not report.ok:
            raise SystemExit(f"sync failed: {report.summary()}")
        return {"new": report.count("new"), "files_read": report.files_read,
                "problems": len(report.problems)}
else:
    split = re.compile(split_pattern)
    names = sorted(e.name for e in os.scandir(seed_dir) if e.name.endswith(".txt"))

    def work():
        paragraphs = 0
        for name in names:
            paragraphs += len(split.split((seed_dir / name).read_bytes().decode("utf-8")))
        return {"paragraphs": paragraphs}

result = {"ru_maxrss_start_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          "hwm_start_kib": status("VmHWM"), "feeds": feeds.__file__}
if mode == "tracemalloc":
    import tracemalloc
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
elif mode == "profile":
    import cProfile
    profiler = cProfile.Profile()
# Reset this process's peak-RSS mark (VmHWM), so that it covers the work alone.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
result["rss_before_kib"] = status("VmRSS")
wall, cpu = time.perf_counter(), time.process_time()
if mode == "profile":
    profiler.enable()
result.update(work())
if mode == "profile":
    profiler.disable()
result["seconds"] = time.perf_counter() - wall
result["cpu_seconds"] = time.process_time() - cpu
result["ru_maxrss_end_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result["hwm_end_kib"] = status("VmHWM")
result["rss_after_kib"] = status("VmRSS")
if mode == "tracemalloc":
    current, peak = tracemalloc.get_traced_memory()
    result["tracemalloc_peak"] = peak - base
    result["tracemalloc_end"] = current - base
if mode == "profile":
    import pstats
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print("--- by own time ---")
    stats.sort_stats("tottime").print_stats(22)
    print("--- by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(22)
print(json.dumps(result))
"""


@dataclass
class Row:
    """One line of the summary table."""

    measure: str
    ours: str
    floor: str
    ratio: float | None
    target: float | None

    @property
    def met(self) -> str:
        if self.ratio is None or self.target is None:
            return "(info)"
        return "yes" if self.ratio <= self.target else "NO"


def say(message: str) -> None:
    print(message, flush=True)


def kib(n: float) -> str:
    return f"{n:,.0f} KiB"


def run_child(
    mode: str, kind: str, seed_dir: Path, database: Path, timeout: float, *extra: str
) -> tuple[dict[str, Any], str]:
    """Run :data:`CHILD`; its JSON result and anything it printed before it."""
    root = str(Path(feeds.__file__).parent.parent)
    argv = [sys.executable, "-c", CHILD, mode, kind, str(seed_dir), str(database), FLOOR_SPLIT]
    argv += [root, *extra]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"child {mode}/{kind} took over {timeout:.0f} s; stopped") from exc
    if done.returncode != 0:
        raise SystemExit(f"child {mode}/{kind} failed ({done.returncode}):\n{done.stderr}")
    text, _, last = done.stdout.rstrip("\n").rpartition("\n")
    result: dict[str, Any] = json.loads(last)
    if result["feeds"] != feeds.__file__:
        raise SystemExit(f"child imported {result['feeds']}, not {feeds.__file__}")
    return result, text


def rss_growth(result: dict[str, Any]) -> tuple[int, int, bool]:
    """(ru_maxrss − RSS before, VmHWM since the reset − RSS before, ru_maxrss inherited?).

    On Linux a child's ``ru_maxrss`` starts at its parent's peak (it survives ``exec``), so
    when the child never grows past that, ``ru_maxrss`` says nothing about the child: the
    peak-RSS mark reset just before the work (``VmHWM``) is then the one to read.
    """
    before = result["rss_before_kib"]
    own_peak = max(result["hwm_start_kib"], result["hwm_end_kib"])
    inherited = result["ru_maxrss_end_kib"] > own_peak
    return (
        result["ru_maxrss_end_kib"] - before,
        result["hwm_end_kib"] - before,
        inherited,
    )


def largest_file(seed_dir: Path) -> int:
    return max(entry.stat().st_size for entry in os.scandir(seed_dir))


def tree_bytes(seed_dir: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(seed_dir))


# -- 1. corpus ---------------------------------------------------------------------------


def generate(workdir: Path, releases: int, seed: int) -> tuple[Path, Path, Row]:
    large, small = workdir / "seeds-large", workdir / "seeds-small"
    started = time.perf_counter()
    written = seedgen.write_corpus(
        {large: LARGE_PER_FILE, small: SMALL_PER_FILE}, releases, agencies=AGENCIES, seed=seed
    )
    seconds = time.perf_counter() - started
    size = tree_bytes(large)
    assert size == tree_bytes(small), "both layouts must hold the same bytes"
    say(
        f"# corpus: {releases:,} releases, {size / 1e6:,.1f} MB, {AGENCIES} agencies, "
        f"seed {seed}; large: {len(written[large]):,} files (largest "
        f"{largest_file(large):,} B); small: {len(written[small]):,} files (largest "
        f"{largest_file(small):,} B); generated in {seconds:.1f} s"
    )
    row = Row("corpus generation (both layouts)", f"{seconds:.1f} s", "-", None, None)
    return large, small, row


# -- 2. first sync memory ----------------------------------------------------------------


def first_sync_memory(
    label: str, seed_dir: Path, database: Path, releases: int, args: argparse.Namespace
) -> list[Row]:
    """RSS and tracemalloc of a first sync of ``seed_dir`` (leaving ``database`` synced)."""
    biggest = largest_file(seed_dir)
    files = sum(1 for _ in os.scandir(seed_dir))
    say(f"\n## first sync, {label}: {files:,} files, largest {biggest:,} B")
    synced, _ = run_child("rss", "sync", seed_dir, database, args.timeout)
    if synced["new"] != releases:
        raise SystemExit(f"first sync found {synced['new']} new releases, not {releases}")
    floor, _ = run_child("rss", "floor", seed_dir, database, args.timeout)
    rows: list[Row] = []
    for who, result in (("sync", synced), ("floor", floor)):
        by_ru, by_hwm, inherited = rss_growth(result)
        note = (
            " (ru_maxrss is the parent's, inherited across exec: read VmHWM)" if inherited else ""
        )
        say(
            f"# {who:5}: RSS before {kib(result['rss_before_kib'])}; growth to peak: "
            f"ru_maxrss {kib(by_ru)}{note}, VmHWM {kib(by_hwm)} = "
            f"{by_hwm * 1024 / biggest:.1f}x largest file; RSS after "
            f"{kib(result['rss_after_kib'])}; {result['seconds']:.2f} s wall, "
            f"{result['cpu_seconds']:.2f} s CPU"
        )
    by_ru, by_hwm, inherited = rss_growth(synced)
    growth = by_hwm if inherited else by_ru
    floor_growth = rss_growth(floor)[1]
    say(
        f"# sync: {synced['new']:,} new releases, {synced['files_read']:,} files read, "
        f"{synced['problems']} problems, {synced['seconds']:.2f} s wall = "
        f"{releases / synced['seconds']:,.0f} releases/s, "
        f"{tree_bytes(seed_dir) / 1e6 / synced['seconds']:.1f} MB/s"
    )
    rows.append(
        Row(
            f"first sync peak RSS growth, {label}",
            kib(growth),
            f"{biggest / 1024:,.0f} KiB file",
            growth * 1024 / biggest,
            MEMORY_TARGET,
        )
    )
    rows.append(
        Row(
            f"  read+decode+split floor RSS growth, {label}",
            kib(floor_growth),
            f"{biggest / 1024:,.0f} KiB file",
            floor_growth * 1024 / biggest,
            None,
        )
    )
    rows.append(
        Row(
            f"first sync wall time, {label}",
            f"{synced['seconds']:.1f} s",
            f"{floor['seconds']:.2f} s read+split",
            None,
            None,
        )
    )
    rows.append(
        Row(
            f"first sync releases/s, {label}",
            f"{releases / synced['seconds']:,.0f}",
            "-",
            None,
            None,
        )
    )
    if not args.no_tracemalloc:
        children: dict[str, tuple[str, Path, tuple[str, ...]]] = {
            "sync": ("sync", database.with_suffix(".tm1"), ()),
            "sync, sized read (what-if)": ("sync", database.with_suffix(".tm2"), ("sized-read",)),
            "floor": ("floor", database, ()),
        }
        traced: dict[str, dict[str, Any]] = {}
        for who, (kind, db, extra) in children.items():
            if extra and args.no_what_if:
                continue
            traced[who], _ = run_child("tracemalloc", kind, seed_dir, db, args.timeout, *extra)
            peak = traced[who]["tracemalloc_peak"]
            say(
                f"# tracemalloc, {who}: peak {peak:,} B = {peak / biggest:.1f}x largest file, "
                f"still held at the end {traced[who]['tracemalloc_end']:,} B; "
                f"{traced[who]['seconds']:.1f} s wall under tracemalloc"
            )
        for who, result in traced.items():
            peak = result["tracemalloc_peak"]
            own = who.startswith("sync")
            rows.append(
                Row(
                    f"first sync tracemalloc peak, {label}"
                    if who == "sync"
                    else f"  tracemalloc peak, {who}, {label}",
                    kib(peak / 1024),
                    f"{biggest / 1024:,.0f} KiB file",
                    peak / biggest,
                    MEMORY_TARGET if own else None,
                )
            )
    return rows


# -- 3. parse speed ----------------------------------------------------------------------


@dataclass
class Timings:
    """Wall and CPU seconds of each run of one job."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def timed_run(job: Callable[[], object], into: Timings) -> object:
    wall, cpu = time.perf_counter(), time.process_time()
    result = job()
    into.cpu.append(time.process_time() - cpu)
    into.wall.append(time.perf_counter() - wall)
    return result


def parse_speed(seed_dir: Path, rounds: int) -> list[Row]:
    paths = sorted(p for p in seed_dir.iterdir() if p.suffix == ".txt")
    size = sum(p.stat().st_size for p in paths)

    def floor() -> str:
        count = 0
        for path in paths:
            count += len(re.split(FLOOR_SPLIT, path.read_bytes().decode("utf-8")))
        return f"{count:,} paragraphs"

    def ours() -> str:
        count = 0
        for path in paths:
            text, _ = scan.decode(path.read_bytes(), path.name)
            drafts, _ = parse(text, path.name)
            count += len(drafts)
        return f"{count:,} drafts"

    def shape() -> str:
        # No grammar at all: only what any parser returning drafts must do besides the
        # split, namely one Draft and one paragraph tuple per release.
        count = 0
        for path in paths:
            text = path.read_bytes().decode("utf-8")
            paragraphs = text.split("\n\n")
            releases = text.count("\n\nSource: ") + text.startswith("Source: ")
            for release in range(releases):
                first = release * len(paragraphs) // releases  # spread over the file
                Draft(
                    agency="Agency",
                    agency_slug="agency",
                    channel=None,
                    title=paragraphs[first],
                    date_line=None,
                    published=None,
                    paragraphs=tuple(paragraphs[first + 2 : first + 6]),
                    line=first,
                )
                count += 1
        return f"{count:,} drafts"

    say(f"\n## parse speed: {len(paths):,} files, {size / 1e6:,.1f} MB, {rounds} rounds")
    jobs = {"floor": floor, "shape": shape, "ours": ours}
    times = {name: Timings() for name in jobs}
    for number in range(1, rounds + 1):
        for name, job in jobs.items():
            what = timed_run(job, times[name])
            say(
                f"# round {number} {name:5}: {times[name].wall[-1]:.3f} s wall, "
                f"{times[name].cpu[-1]:.3f} s CPU ({what})"
            )
    floor_t, ours_t, shape_t = times["floor"], times["ours"], times["shape"]
    say(
        f"# median wall: shape (split + a Draft per release, no grammar) {shape_t.median:.3f} s"
        f" = {shape_t.median / floor_t.median:.2f}x the floor"
    )
    say(
        f"# median wall: floor {floor_t.median:.3f} s ({size / 1e6 / floor_t.median:.0f} MB/s), "
        f"ours {ours_t.median:.3f} s ({size / 1e6 / ours_t.median:.1f} MB/s), "
        f"ours/floor {ours_t.median / floor_t.median:.2f}; median CPU: ours/floor "
        f"{ours_t.median_cpu / floor_t.median_cpu:.2f}"
    )
    return [
        Row(
            "parse: read+decode+parse vs read+decode+re.split",
            f"{ours_t.median:.2f} s",
            f"{floor_t.median:.3f} s",
            ours_t.median / floor_t.median,
            PARSE_TARGET,
        ),
        Row(
            "  no grammar, split + a Draft per release",
            f"{shape_t.median:.2f} s",
            f"{floor_t.median:.3f} s",
            shape_t.median / floor_t.median,
            None,
        ),
    ]


# -- 4. unchanged re-sync ----------------------------------------------------------------


def scandir_stat(seed_dir: Path) -> int:
    """The floor: list the directory and stat every entry."""
    count = 0
    with os.scandir(seed_dir) as entries:
        for entry in entries:
            entry.stat()
            count += 1
    return count


@contextmanager
def counting_reads() -> Iterator[list[int]]:
    """Count calls of ``feeds.scan.read_seed`` (the only way a sync opens a seed file)."""
    calls = [0]
    original = scan.read_seed

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    scan.read_seed = counted
    try:
        yield calls
    finally:
        scan.read_seed = original


def unchanged_resync(seed_dir: Path, database: Path, rounds: int) -> list[Row]:
    """Time re-syncs of an already synced ``seed_dir`` against :func:`scandir_stat`."""
    files = sum(1 for _ in os.scandir(seed_dir))
    say(f"\n## unchanged re-sync: {files:,} files, {rounds} rounds (after one warm-up each)")
    store = Store(database)
    opened: list[str] = []
    reports: list[SyncReport] = []
    with counting_reads() as calls:
        jobs: dict[str, Callable[[], object]] = {
            "floor": lambda: scandir_stat(seed_dir),
            "ours": lambda: reports.append(sync(store, seed_dir)),
        }
        for job in jobs.values():
            job()  # warm-up: the store's connection, the directory's inodes
        times = {name: Timings() for name in jobs}
        for number in range(1, rounds + 1):
            for name, job in jobs.items():
                timed_run(job, times[name])
            say(
                f"# round {number}: floor {times['floor'].wall[-1] * 1e3:.1f} ms, "
                f"ours {times['ours'].wall[-1] * 1e3:.1f} ms"
            )
        # One more re-sync, watched by an audit hook for any open() under the seed directory.
        root = str(seed_dir.resolve())
        watching = [True]

        def hook(event: str, hook_args: tuple[Any, ...]) -> None:
            if watching[0] and event == "open" and str(hook_args[0]).startswith(root):
                opened.append(str(hook_args[0]))

        sys.addaudithook(hook)  # cannot be removed: turned off below
        reports.append(sync(store, seed_dir))
        watching[0] = False
        reads = calls[0]
    store.close()
    read_by_reports = sum(r.files_read for r in reports)
    bad = [r.summary() for r in reports if not r.ok or r.files_skipped != files]
    if bad:
        raise SystemExit(f"a re-sync was not an unchanged one: {bad[0]}")
    floor_s, ours_s = times["floor"].median, times["ours"].median
    say(
        f"# median wall: floor {floor_s * 1e3:.1f} ms, ours {ours_s * 1e3:.1f} ms, "
        f"ours/floor {ours_s / floor_s:.2f}; median CPU: floor "
        f"{times['floor'].median_cpu * 1e3:.1f} ms, ours {times['ours'].median_cpu * 1e3:.1f} ms,"
        f" ours/floor {times['ours'].median_cpu / times['floor'].median_cpu:.2f}"
    )
    say(
        f"# files opened by {len(reports)} re-syncs: read_seed calls {reads}, "
        f"report.files_read total {read_by_reports}, open() audit events under the seed "
        f"directory (last re-sync) {len(opened)}"
    )
    return [
        Row(
            "unchanged re-sync vs scandir+stat",
            f"{ours_s * 1e3:.1f} ms",
            f"{floor_s * 1e3:.1f} ms",
            ours_s / floor_s,
            RESYNC_TARGET,
        ),
        Row(
            "files opened by unchanged re-syncs",
            str(reads + read_by_reports + len(opened)),
            "0",
            float(reads + read_by_reports + len(opened)),
            0.0,
        ),
    ]


# -- driver ------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = ["measure", "ours", "floor", "ratio", "target", "met?"]
    lines = [
        [
            r.measure,
            r.ours,
            r.floor,
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            "-" if r.target is None else f"<= {r.target:g}",
            r.met,
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *lines]:
        cells = [line[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def code_state() -> str:
    """Where ``feeds`` is, its commit, and a digest of the ``feeds`` modules a sync loads.

    The digest (of those files as they are on disk now) tells whether the code changed
    during a run: children import it anew.
    """
    package = Path(scan.__file__).parent
    loaded = sorted(
        Path(file)
        for name, module in sys.modules.items()
        if name.startswith("feeds") and (file := getattr(module, "__file__", None))
    )
    digest = hashlib.sha256()
    for path in loaded:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    try:
        head = subprocess.run(
            ["git", "-C", str(package.parent), "log", "-1", "--format=%h %s"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(package.parent), "status", "--porcelain", "--", "feeds"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        head, dirty = "not in a git work tree", ""
    changes = " + uncommitted changes in feeds/" if dirty else ""
    names = ", ".join(p.stem for p in loaded if p.stem != "__init__")
    return f"{package}: {head}{changes}; digest of {names}: {digest.hexdigest()[:12]}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 100,000 releases (1.0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (1)")
    parser.add_argument("--parse-rounds", type=int, default=3, help="parse rounds (3)")
    parser.add_argument("--resync-rounds", type=int, default=5, help="re-sync rounds (5)")
    parser.add_argument(
        "--no-tracemalloc", action="store_true", help="skip the (slow) tracemalloc children"
    )
    parser.add_argument(
        "--no-what-if",
        action="store_true",
        help="skip the tracemalloc child whose read_seed reads by file size",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a first sync of the large layout"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds allowed each child (900)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    releases = round(RELEASES * args.scale)
    if not 0 < args.scale <= 2 or releases < LARGE_PER_FILE:
        parser.error(f"--scale in ({LARGE_PER_FILE / RELEASES:g}, 2]")
    if not 1 <= args.parse_rounds <= 20 or not 1 <= args.resync_rounds <= 50:
        parser.error("--parse-rounds from 1 to 20, --resync-rounds from 1 to 50")
    if not 0 < args.timeout <= 3600:
        parser.error("--timeout in (0, 3600]")
    args.releases = releases
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    one, five, _ = os.getloadavg()
    say(
        f"# bench/sync.py --scale {args.scale:g}: {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, load average {one:.1f} / {five:.1f}"
    )
    state = code_state()
    say(f"# code: {state}")
    rows: list[Row] = []
    with workspace(args.keep, "feeds-bench-sync-") as workdir:
        say(f"# working in {workdir}")
        large, small, generated = generate(workdir, args.releases, args.seed)
        rows.append(generated)
        rows += first_sync_memory(
            f"{LARGE_PER_FILE}/file", large, workdir / "large.sqlite3", args.releases, args
        )
        rows += first_sync_memory(
            f"{SMALL_PER_FILE}/file", small, workdir / "small.sqlite3", args.releases, args
        )
        rows += parse_speed(large, args.parse_rounds)
        rows += unchanged_resync(small, workdir / "small.sqlite3", args.resync_rounds)
        if args.profile:
            _, text = run_child("profile", "sync", large, workdir / "profile.sqlite3", args.timeout)
            say(f"\n## cProfile of a first sync, {LARGE_PER_FILE}/file\n{text}")
    say(f"\n## summary (--scale {args.scale:g}, {args.releases:,} releases)")
    print_table(rows)
    if code_state().rpartition(": ")[2] != state.rpartition(": ")[2]:  # the digests
        say(f"\n# WARNING: feeds/ changed during the run (now {code_state()}): numbers mix code")
    one, five, _ = os.getloadavg()
    say(f"\n# done in {time.perf_counter() - started:.0f} s; load average {one:.1f} / {five:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
