"""Golden output: every public document of two corpora, byte for byte.

Each corpus (``tests/golden.py``) is synced step by step under a fixed clock and
served again; every URL in its ``tests/data/golden/<corpus>/index.json`` must
answer with the same status, the same ``Content-Type``, ``ETag``,
``Last-Modified`` and ``Location``, and the same bytes. Regenerate with
``python -m tests.golden --regenerate`` only when a change of output is intended.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from . import golden


@pytest.mark.parametrize("name", sorted(golden.CORPORA))
def test_every_golden_url_is_served_byte_identical(
    name: str, tmp_path: Path, database: Any
) -> None:
    corpus = golden.CORPORA[name]
    app = golden.build_app(corpus, tmp_path, database)
    golden.assert_matches_goldens(app.test_client(), corpus.directory)


@pytest.mark.parametrize("name", sorted(golden.CORPORA))
def test_goldens_cover_every_discoverable_url(name: str, tmp_path: Path, database: Any) -> None:
    """A page, feed or archive page that appears (or vanishes) is not missed by the goldens."""
    corpus = golden.CORPORA[name]
    app = golden.build_app(corpus, tmp_path, database)
    discovered = {captured.url for captured in golden.capture(corpus, app.test_client())}
    assert discovered == set(golden.load_index(corpus.directory))


def test_a_changed_byte_is_reported_with_its_url(tmp_path: Path) -> None:
    """The comparison itself can fail: one byte changed in a copy of the goldens."""
    corpus = golden.CORPORA["real"]
    copy = tmp_path / "golden"
    shutil.copytree(corpus.directory, copy)
    index = golden.load_index(copy)
    url = "/feeds/all.atom"
    target = copy / index[url]["file"]
    body = target.read_bytes()
    target.write_bytes(body.replace(b"<title>", b"<titlE>", 1))
    app = golden.build_app(corpus, tmp_path / "work")
    with pytest.raises(AssertionError) as failure:
        golden.assert_matches_goldens(app.test_client(), copy)
    message = str(failure.value)
    assert message.startswith(f"1 URL(s) differ from {copy}: {url}\n")
    assert "-  <titlE>" in message and "+  <title>" in message
