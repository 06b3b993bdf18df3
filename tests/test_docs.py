"""The README and ``docs/`` stand alone: every link stays in the repository and leads
somewhere, and every setting they name exists.

A clone of this repository is all a reader has: a link to ``../shared/DESIGN.md``
or to a file that was renamed is a dead end. That every ``FEEDS_*`` setting is
documented in the README's table is checked by ``test_config.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from feeds.config import SETTINGS

from .conftest import ROOT

DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
#: Fewer documents than this means docs/ went missing.
MIN_DOCUMENTS = 3

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(document: Path) -> str:
    """The document without code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", document.read_text(encoding="utf-8")))


def links(document: Path) -> list[str]:
    text = prose(document)
    return [
        *INLINE_LINK.findall(text),
        *REFERENCE_DEFINITION.findall(text),
        *AUTOLINK.findall(text),
    ]


def anchors(document: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in HEADING.findall(text)
    }


def test_the_documents_are_there() -> None:
    assert len(DOCUMENTS) >= MIN_DOCUMENTS, DOCUMENTS
    readme_links = links(ROOT / "README.md")
    for name in ("docs/design.md", "docs/seed-format.md"):
        assert any(link.split("#")[0] == name for link in readme_links), name


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_stays_in_the_repository_and_exists(document: Path) -> None:
    found = links(document)
    for link in found:
        parts = urlsplit(link)
        if parts.scheme in ("http", "https", "mailto"):
            continue  # a web address, not a file of this repository
        assert not parts.scheme and not parts.netloc, f"{link}: not a repository path"
        assert not parts.path.startswith("/"), f"{link}: absolute path"
        target = (document.parent / unquote(parts.path)).resolve() if parts.path else document
        assert target.is_relative_to(ROOT), f"{link}: leaves the repository"
        assert target.exists(), f"{link}: no such file"
        if parts.fragment and target.suffix == ".md":
            assert parts.fragment in anchors(target), f"{link}: no such heading"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_outside_the_repository(document: Path) -> None:
    """Not even as plain text: a path like ``../shared/DESIGN.md`` means nothing in a clone."""
    text = document.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "DESIGN.md" not in text


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_setting_named_exists(document: Path) -> None:
    known = {setting.variable for setting in SETTINGS}
    named = set(re.findall(r"\bFEEDS_[A-Z_]+\b", document.read_text(encoding="utf-8")))
    assert named <= known, f"not settings: {sorted(named - known)}"
