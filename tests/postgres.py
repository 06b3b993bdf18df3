"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl on a Unix socket.

Started once per test session in a temporary directory, listening on no TCP
port, with durability off (a crash loses nothing the tests need). Each test
gets a fresh, empty database of its own. As root, the server runs as the
``postgres`` user through ``runuser`` (initdb and postgres refuse root).
Where no server binaries exist, :func:`bindir` is None and the PostgreSQL
variants of the tests skip with that reason.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import psycopg

#: Why PostgreSQL tests skip here, if they do.
MISSING = "no PostgreSQL server binaries (initdb, pg_ctl); .ci/run installs Debian's postgresql"
USER = "postgres"


def bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: ``pg_config --bindir``, else Debian's."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(found.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


class Cluster:
    """One running server; :meth:`database` makes a fresh database and returns its URL."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="feeds-pg-"))
        self.data = self.root / "data"
        self.socket = self.root  # short: a socket path must fit in 107 bytes
        self._names = itertools.count(1)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, USER, USER)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust",
                  "--locale=C.UTF-8", "-E", "UTF8", "--no-sync")  # fmt: skip
        self._admin: psycopg.Connection[object] | None = None
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.root)

    def start(self) -> None:
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket}'"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "log"), "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def admin(self, statement: str) -> None:
        """Run ``statement`` on the maintenance database (reconnecting after a restart)."""
        for attempt in (1, 2):
            if self._admin is None:
                self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
            try:
                self._admin.execute(statement)
                return
            except psycopg.OperationalError:
                self._admin.close()
                self._admin = None
                if attempt == 2:
                    raise

    def url(self, name: str) -> str:
        return f"postgresql://{USER}@/{name}?host={self.socket}"

    def database(self) -> str:
        """A new empty database's URL."""
        name = f"feeds_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        return self.url(name)

    def drop(self, url: str) -> None:
        forget(url)
        name = url.split("?")[0].rsplit("/", 1)[1]
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        for url in list(_emptiers):
            forget(url)
        if self._admin is not None:
            self._admin.close()
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


#: One connection per database that :func:`empty_store` empties, kept between calls.
_emptiers: dict[str, psycopg.Connection[object]] = {}


def forget(url: str) -> None:
    """Close :func:`empty_store`'s connection to ``url`` (before the database is dropped)."""
    conn = _emptiers.pop(url, None)
    if conn is not None:
        conn.close()


def empty_store(url: str, created: datetime) -> bool:
    """Empty an initialized feeds database in place, as if just created at ``created``.

    Much faster than dropping and creating the schema (DDL costs about 100 ms), which
    matters to property tests that need a new store for each of hundreds of examples.
    Every table loses its rows and the ``meta`` rows :meth:`PgStore.initialize` writes
    into a new database are written again (``tests/test_postgresql.py`` checks that
    the result equals a new store). False if there was no store to empty.
    """
    from feeds.pg_store import SCHEMA_VERSION, TABLES

    conn = _emptiers.get(url)
    if conn is None or conn.closed or conn.broken:
        conn = _emptiers[url] = psycopg.connect(url, autocommit=True)
    if conn.execute("SELECT to_regclass('meta')").fetchone() == (None,):
        return False
    with conn.transaction():  # emptied whole or not at all
        for table in TABLES:
            conn.execute(f"DELETE FROM {table}")
        conn.execute(
            "INSERT INTO meta VALUES ('schema', %s), ('created', %s), ('generation', %s)",
            (
                str(SCHEMA_VERSION),
                str(int(created.timestamp())),
                str(int(created.timestamp() * 1000)),
            ),
        )
    return True
