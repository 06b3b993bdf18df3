"""Which store backend a configuration names, opened but not yet initialized.

The only module that knows every backend: everything above it holds a
:class:`~feeds.store.Store` and asks it the contract's questions.
"""

from __future__ import annotations

from pathlib import Path

from feeds.sqlite_store import SQLiteStore
from feeds.store import Store


def open_store(database: Path) -> Store:
    """The store at ``database``: a SQLite file path (the embedded default)."""
    return SQLiteStore(database)
