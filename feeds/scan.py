"""Find the seed files in the seed directory and read each one into text.

Owns everything about files: which names count, symlink rules, fingerprints
and the listing's bucket sums for incremental syncs, the size cap, and
decoding bytes (BOM, UTF-16, invalid UTF-8) into text. Every problem names
the file; nothing here raises for bad input.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from feeds.model import Fingerprint, Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeedFile:
    """A seed file found by :func:`list_seeds`; ``name`` is relative to the seed directory."""

    name: str
    path: str
    """A plain string: a ``Path`` per file interns its parts, growing memory for good."""
    fingerprint: Fingerprint


@dataclass(frozen=True, slots=True)
class Content:
    """The bytes of one seed file as read, with their hash and the fingerprint seen."""

    data: bytes
    sha256: str
    fingerprint: Fingerprint


def _fingerprint(st: os.stat_result) -> Fingerprint:
    return Fingerprint(st.st_size, st.st_mtime_ns, st.st_ino)


def is_seed_name(name: str) -> bool:
    """Names that count: ``*.txt``, not hidden."""
    return name.endswith(".txt") and not name.startswith(".")


#: Buckets the listing is summed in, by a hash of each name: a sync that finds one
#: bucket changed walks the files of that bucket only. A power of two.
BUCKETS = 256
_MASK64 = (1 << 64) - 1


def bucket_of(name: str) -> int:
    """The listing bucket of a seed file name (stable across processes and versions)."""
    return zlib.crc32(name.encode("utf-8", "surrogateescape")) & (BUCKETS - 1)


@dataclass(frozen=True, slots=True)
class Listing:
    """What one walk of the seed directory saw: a sum per bucket, the count, the problems.

    Each seed file adds a 64-bit hash of its name and fingerprint (size, mtime, inode,
    through symlinks) to its bucket, so a bucket's sum changes when a file of it is
    added, removed, renamed or touched, whatever order the directory lists in.
    """

    root: str
    """The resolved seed directory: another directory is another listing."""
    sums: tuple[int, ...]
    count: int
    """Seed files seen (regular files, directly or through a symlink inside)."""
    problems: tuple[Problem, ...]
    """What the listing itself found wrong (symlinks, non-files), in directory order."""

    def _root_key(self) -> str:
        return hashlib.sha256(self.root.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def digest(self) -> str:
        """The listing as one string: equal strings mean identical listings."""
        return f"{self._root_key()}:" + "".join(f"{value:016x}" for value in self.sums)

    def changed_buckets(self, previous: str | None) -> frozenset[int] | None:
        """The buckets whose files differ from a listing kept as ``previous``.

        None when ``previous`` cannot be compared bucket by bucket (none kept, another
        directory or another form): then every file counts as changed.
        """
        if previous is None:
            return None
        root, _, sums = previous.partition(":")
        if root != self._root_key() or len(sums) != 16 * BUCKETS:
            return None
        try:
            before = [int(sums[at : at + 16], 16) for at in range(0, len(sums), 16)]
        except ValueError:
            return None
        return frozenset(b for b, value in enumerate(self.sums) if value != before[b])


def _examine(entry: os.DirEntry[str], root: Path) -> os.stat_result | Problem:
    """The stat of a seed file entry (through a symlink inside ``root``), or why it is none."""
    name = entry.name
    try:
        if entry.is_symlink():
            target = Path(os.path.realpath(entry.path))
            if not target.is_relative_to(root):
                return Problem(name, 0, "symlink leads outside the seed directory; refused")
        st = os.stat(entry.path)  # follows a symlink inside the directory
    except FileNotFoundError:
        return Problem(name, 0, "dangling symlink or file vanished; skipped")
    except OSError as exc:
        return Problem(name, 0, f"cannot stat: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return Problem(name, 0, "not a regular file; ignored")
    return st


def take_listing(seed_dir: Path) -> Listing:
    """One walk of the directory: everything :func:`iter_seeds` would find, summed.

    This is the whole cost of an unchanged sync, so it stays close to a bare scandir:
    a stat per entry, two checksums of its name and one tuple hash, nothing held per
    file.
    """
    sums = [0] * BUCKETS
    count = 0
    problems: list[Problem] = []
    try:
        root = seed_dir.resolve(strict=True)
        entries = os.scandir(root)
    except OSError as exc:
        problem = Problem(str(seed_dir), 0, f"cannot list seed directory: {exc.strerror}")
        return Listing(str(seed_dir), tuple(sums), 0, (problem,))
    crc32, adler32, mask = zlib.crc32, zlib.adler32, BUCKETS - 1
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(".txt") or name.startswith("."):  # is_seed_name, inlined
                continue
            found: os.stat_result | Problem
            try:
                # The common case inline: a plain file (DirEntry.stat is one syscall).
                found = _examine(entry, root) if entry.is_symlink() else entry.stat()
            except OSError:
                found = _examine(entry, root)  # vanished or unreadable: it says which
            if not isinstance(found, Problem) and not stat.S_ISREG(found.st_mode):
                found = _examine(entry, root)  # not a regular file: it says so
            if isinstance(found, Problem):
                problems.append(found)
                continue
            count += 1
            raw = name.encode("utf-8", "surrogateescape")
            check = crc32(raw)
            # A tuple of ints hashes the same in every process (str hashes do not), and
            # two checksums of the name make two names alike only by a 2**-64 chance.
            mixed = hash((check, adler32(raw), found.st_size, found.st_mtime_ns, found.st_ino))
            sums[check & mask] = (sums[check & mask] + mixed) & _MASK64
    return Listing(str(root), tuple(sums), count, tuple(problems))


def iter_seeds(
    seed_dir: Path, buckets: frozenset[int] | None = None
) -> Iterator[SeedFile | Problem]:
    """The seed files directly inside ``seed_dir``, and listing problems, one at a time.

    In directory order, never held all at once: a sync of 10,000 files keeps one
    entry in memory, not the listing. A symlink counts only when it leads to a regular
    file inside the directory. With ``buckets``, only names in those buckets (see
    :func:`bucket_of`) are looked at: the others cost no stat.
    """
    try:
        root = seed_dir.resolve(strict=True)
        entries = os.scandir(root)
    except OSError as exc:
        yield Problem(str(seed_dir), 0, f"cannot list seed directory: {exc.strerror}")
        return
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(".txt") or name.startswith("."):  # is_seed_name, inlined
                continue
            if buckets is not None and bucket_of(name) not in buckets:
                continue
            found = _examine(entry, root)
            if isinstance(found, Problem):
                yield found
            else:
                yield SeedFile(name, entry.path, _fingerprint(found))


def seed_at(root: str, name: str, fingerprint: Fingerprint) -> SeedFile:
    """The seed file ``name`` as listed under ``root`` (the resolved seed directory)."""
    return SeedFile(name, os.path.join(root, name), fingerprint)


def list_seeds(seed_dir: Path) -> tuple[list[SeedFile], list[Problem]]:
    """:func:`iter_seeds` as lists sorted by name, for ``feeds check`` and tests."""
    seeds: list[SeedFile] = []
    problems: list[Problem] = []
    for found in iter_seeds(seed_dir):
        if isinstance(found, Problem):
            problems.append(found)
        else:
            seeds.append(found)
    seeds.sort(key=lambda seed: seed.name)
    problems.sort(key=lambda problem: problem.path)
    return seeds, problems


def read_seed(seed: SeedFile, max_bytes: int) -> tuple[Content | None, list[Problem]]:
    """Read one seed file whole; ``None`` with a problem if it cannot be read consistently.

    A file that changes while being read (its fingerprint differs before and after)
    is not used: the next sync reads it again once the writer is done.
    """
    try:
        # O_NONBLOCK: a file swapped for a named pipe after listing must not hang the sync.
        fd = os.open(seed.path, os.O_RDONLY | os.O_NONBLOCK)
        # Unbuffered: a buffered read of a whole file copies it once more on the way.
        with open(fd, "rb", buffering=0) as handle:
            st = os.fstat(handle.fileno())
            before = _fingerprint(st)
            if not stat.S_ISREG(st.st_mode):
                return None, [Problem(seed.name, 0, "not a regular file; ignored")]
            if before != seed.fingerprint:
                # Truncated, rewritten or replaced since it was listed: a writer is busy.
                return None, [Problem(seed.name, 0, "file changed while being read; will retry")]
            if before.size > max_bytes:
                return None, [
                    Problem(
                        seed.name,
                        0,
                        f"file is {before.size} bytes, over the limit of {max_bytes} "
                        "(FEEDS_MAX_FILE_BYTES); skipped",
                    )
                ]
            # Ask for what stat said: read(max_bytes + 1) would allocate the whole cap first.
            data = handle.read(before.size + 1)
            while 0 < len(data) <= before.size:  # a short read (a signal, a file over 2 GB)
                more = handle.read(before.size + 1 - len(data))
                if not more:
                    break
                data += more
            after = _fingerprint(os.fstat(handle.fileno()))
    except FileNotFoundError:
        return None, [Problem(seed.name, 0, "file vanished before it could be read")]
    except OSError as exc:
        return None, [Problem(seed.name, 0, f"cannot read: {exc.strerror}")]
    if before != after or len(data) != after.size:
        return None, [Problem(seed.name, 0, "file changed while being read; will retry")]
    return Content(data, hashlib.sha256(data).hexdigest(), after), []


#: Most undecodable-line problems reported per file: a binary file must not flood /healthz.
MAX_DECODE_PROBLEMS = 20


def _bad_lines(data: bytes, encoding: str, unit: int) -> list[int]:
    """1-based numbers of the lines holding undecodable bytes, by decoding line by line.

    ``unit`` is the code unit size: 1 for UTF-8, 2 for UTF-16 (whose newline is 2 bytes).
    """
    newline = "\n".encode(encoding)
    lines: list[int] = []
    start = 0
    number = 1
    while start <= len(data):
        end = data.find(newline, start)
        while end != -1 and (end - start) % unit:  # a match straddling two code units
            end = data.find(newline, end + 1)
        chunk = data[start:] if end == -1 else data[start:end]
        try:
            chunk.decode(encoding)
        except UnicodeDecodeError:
            lines.append(number)
        if end == -1:
            break
        start, number = end + len(newline), number + 1
    return lines


def decode(data: bytes, name: str) -> tuple[str, list[Problem]]:
    """Bytes to text: UTF-8 (BOM removed), UTF-16 with a BOM; invalid bytes replaced.

    Each line holding undecodable bytes is reported (up to :data:`MAX_DECODE_PROBLEMS`);
    the rest of the text is kept.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16-le" if data.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"
        data, unit = data[2:], 2
    else:
        encoding, unit = "utf-8", 1
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode(encoding), []
    except UnicodeDecodeError:
        text = data.decode(encoding, errors="replace")
    label = "UTF-16" if unit == 2 else "UTF-8"
    bad = _bad_lines(data, encoding, unit) or [0]
    problems = [
        Problem(name, line, f"invalid {label} replaced with U+FFFD")
        for line in bad[:MAX_DECODE_PROBLEMS]
    ]
    if len(bad) > MAX_DECODE_PROBLEMS:
        problems.append(
            Problem(name, bad[MAX_DECODE_PROBLEMS], f"... and {len(bad) - MAX_DECODE_PROBLEMS} "
                    "more lines with invalid bytes")
        )  # fmt: skip
    return text, problems
