"""Which store backend a configuration names, opened but not yet initialized.

The only module that knows every backend: everything above it holds a
:class:`~feeds.store.Store` and asks it the contract's questions. It also moves
a store from one backend to another (``feeds migrate-store``).
"""

from __future__ import annotations

from pathlib import Path

from feeds.config import DatabaseURL
from feeds.sqlite_store import SQLiteStore, dump
from feeds.store import Store

# feeds.pg_store is imported where a PostgreSQL URL is named: psycopg takes about a
# third of every command's start-up, and a SQLite store never needs it.


def open_store(database: Path | DatabaseURL, *, serving: bool = False) -> Store:
    """The store ``database`` names: a SQLite file path (the embedded default) or a
    PostgreSQL URL.

    ``serving``: the store answers a web service's generation question on every
    request. PostgreSQL then learns new generations by LISTEN/NOTIFY (plus a read of
    the row every second) instead of a round trip per request; SQLite's answer is a
    local read already.
    """
    if isinstance(database, DatabaseURL):
        from feeds.pg_store import PgStore

        return PgStore(database.url, listen=serving)
    return SQLiteStore(database)


def migrate(source: Path, target: DatabaseURL) -> None:
    """Copy the SQLite store at ``source`` into the empty PostgreSQL database ``target``.

    Every row keeps its IDs, numbers, first-seen, ``updated``, files, contents and
    copies, so the target renders the same bytes and its next sync finds nothing new.
    One read snapshot of the source, one transaction on the target: a failure leaves
    the target empty. :class:`~feeds.errors.StoreError` if the target is not empty.
    """
    from feeds.pg_store import PgStore

    reading = SQLiteStore(source)
    writing = PgStore(target.url)
    try:
        writing.load(dump(reading))
    finally:
        reading.close()
        writing.close()
