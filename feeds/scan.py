"""Find the seed files in the seed directory and read each one into text.

Owns everything about files: which names count, symlink rules, fingerprints
for incremental syncs, the size cap, and decoding bytes (BOM, UTF-16, invalid
UTF-8) into text. Every problem names the file; nothing here raises for bad
input.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from feeds.model import Fingerprint, Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SeedFile:
    """A seed file found by :func:`list_seeds`; ``name`` is relative to the seed directory."""

    name: str
    path: Path
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


def listing_digest(seed_dir: Path) -> str:
    """A digest of everything :func:`list_seeds` depends on, computed as cheaply as possible.

    Names, the stat of each ``*.txt`` entry (through symlinks) and where symlinks lead:
    equal digests mean an identical listing, so a sync can stop before building it.
    This is the whole cost of an unchanged sync: it stays close to a bare scandir.
    """
    parts: list[str] = []
    try:
        with os.scandir(seed_dir) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(".txt") or name.startswith("."):
                    continue
                if entry.is_symlink():
                    parts.append(f"{name}\0->{os.path.realpath(entry.path)}")
                try:
                    st = entry.stat()
                except OSError as exc:
                    parts.append(f"{name}\0!{exc.errno}")
                    continue
                parts.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_mode}")
    except OSError as exc:
        parts.append(f"!{exc.errno}")
    parts.sort()
    return hashlib.sha256(f"{seed_dir.resolve()}\n".encode() + "\n".join(parts).encode(
        "utf-8", "surrogateescape")).hexdigest()  # fmt: skip


def list_seeds(seed_dir: Path) -> tuple[list[SeedFile], list[Problem]]:
    """The seed files directly inside ``seed_dir``, sorted by name, and listing problems.

    A symlink counts only when it leads to a regular file inside the directory.
    """
    problems: list[Problem] = []
    try:
        root = seed_dir.resolve(strict=True)
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        return [], [Problem(str(seed_dir), 0, f"cannot list seed directory: {exc.strerror}")]
    found: list[SeedFile] = []
    for entry in entries:
        if not is_seed_name(entry.name):
            continue
        try:
            if entry.is_symlink():
                target = Path(os.path.realpath(entry.path))
                if not target.is_relative_to(root):
                    problems.append(
                        Problem(entry.name, 0, "symlink leads outside the seed directory; refused")
                    )
                    continue
            st = os.stat(entry.path)  # follows a symlink inside the directory
        except FileNotFoundError:
            problems.append(Problem(entry.name, 0, "dangling symlink or file vanished; skipped"))
            continue
        except OSError as exc:
            problems.append(Problem(entry.name, 0, f"cannot stat: {exc.strerror}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(Problem(entry.name, 0, "not a regular file; ignored"))
            continue
        found.append(SeedFile(entry.name, Path(entry.path), _fingerprint(st)))
    return found, problems


def read_seed(seed: SeedFile, max_bytes: int) -> tuple[Content | None, list[Problem]]:
    """Read one seed file whole; ``None`` with a problem if it cannot be read consistently.

    A file that changes while being read (its fingerprint differs before and after)
    is not used: the next sync reads it again once the writer is done.
    """
    try:
        # O_NONBLOCK: a file swapped for a named pipe after listing must not hang the sync.
        fd = os.open(seed.path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as handle:
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
