"""Identity: entry and feed IDs, agency slugs and content hashes.

This module is the written-down promise to readers (DESIGN.md, "Identity"). An
ID depends only on the release's identity key: agency slug, normalized title
and the ISO date of its date line. Nothing here looks at file names, order,
bodies, URLs or time. Changing anything in this module changes IDs that
subscribers already hold: don't.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable
from datetime import date

#: Fixed namespace for every UUIDv5 this service derives. Never change it.
NAMESPACE = uuid.UUID("6f1d7a52-3c1e-5b8e-9a57-0d5c2f4e8b11")

_FEED_PREFIX = "feed\x1f"
_NON_SLUG = re.compile(r"[^a-z0-9]+")


#: Longest text :func:`squash` splits into words at once; longer ones go slice by slice.
_SPLIT_AT_MOST = 8192
_WHITESPACE = re.compile(r"\s")  # str.isspace() whitespace, as str.split() knows it


def squash(text: str) -> str:
    """Every run of whitespace as one space, trimmed: ``" ".join(text.split())``.

    ``split()`` holds every word at once, about ten times the text: fine for a
    paragraph, not for a 10 MB line. Long texts are squashed a slice at a time, each
    slice ending at whitespace so that no word is cut in two.
    """
    if len(text) <= _SPLIT_AT_MOST:
        return " ".join(text.split())
    pieces = []
    start = 0
    while start < len(text):
        boundary = _WHITESPACE.search(text, start + _SPLIT_AT_MOST)
        end = boundary.start() if boundary else len(text)
        piece = " ".join(text[start:end].split())
        if piece:
            pieces.append(piece)
        start = end
    return " ".join(pieces)


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed to single spaces and trimmed."""
    return squash(unicodedata.normalize("NFKC", text).casefold())


@functools.lru_cache(maxsize=256)  # a handful of agencies, named on every release
def agency_slug(name: str) -> str:
    """Lowercase ASCII letters, digits and hyphens for an agency name.

    Accents are folded (``Agência`` → ``agencia``). A name with nothing usable
    (``Интерпол``) gets a stable fallback slug derived from its normalized form.
    """
    ascii_form = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    )
    slug = _NON_SLUG.sub("-", ascii_form).strip("-")
    if slug:
        return slug
    digest = hashlib.sha256(normalize_text(name).encode("utf-8")).hexdigest()
    return f"agency-{digest[:12]}"


def identity_key(slug: str, title: str, date_line: date | None) -> str:
    """The key an entry ID is derived from; see DESIGN.md "Identity"."""
    iso = date_line.isoformat() if date_line else ""
    return f"release\x1f{slug}\x1f{normalize_text(title)}\x1f{iso}"


def release_id(slug: str, title: str, date_line: date | None) -> str:
    """``urn:uuid:`` + UUIDv5 of the identity key under :data:`NAMESPACE`."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, identity_key(slug, title, date_line))}"


def feed_id(name: str) -> str:
    """Stable ID of a feed from its canonical name (``all``, ``nato``, ``all?q=fraud``)."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, _FEED_PREFIX + name)}"


def content_hash(squashed: Iterable[str]) -> str:
    """SHA-256 over whitespace-normalized text, so a whitespace-only edit is not a change.

    ``squashed`` are the fields, each already through :func:`squash` (all runs of
    whitespace, blank lines included, count as one space); they are kept apart with a
    unit separator so moving text between fields is a change. Encoded a slice at a
    time: a whole 10 MB body at once would take UTF-8's worst case, 30 MB.
    """
    digest = hashlib.sha256()
    for number, field in enumerate(squashed):
        if number:
            digest.update(b"\x1f")
        for start in range(0, len(field), _SPLIT_AT_MOST):
            digest.update(field[start : start + _SPLIT_AT_MOST].encode("utf-8"))
    return digest.hexdigest()
