"""Shared fixtures: each test gets its own seed directory, store and app.

The ``store``, ``database`` and ``make_app`` fixtures run each test that uses
them on both backends: a SQLite file, and a fresh database in a throwaway
PostgreSQL cluster (tests/postgres.py) started once per session. A test about
SQLite itself is marked ``sqlite_only``. Where no PostgreSQL server binaries
exist, the PostgreSQL variants skip with the reason.

The scheduler is off unless a test turns it on; tests call sync directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from feeds.app import create_app
from feeds.backends import open_store
from feeds.config import DatabaseURL
from feeds.store import Store
from feeds.sync import sync

from .postgres import MISSING, Cluster, bindir
from .servers import Servers, servers

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
REAL_SEED = ROOT / "seeds" / "000_cd6cbdc3db3c9078.txt"
#: RFC 4287's RELAX NG schema (a copy of ../shared/schema/atom.rng, kept here so that a
#: clone of this repository runs its tests wherever it is).
ATOM_RNG = DATA / "schema" / "atom.rng"
BASE_URL = "http://feeds.test"

# Property tests run longer in CI (.ci/run sets HYPOTHESIS_PROFILE=ci) than locally.
hypothesis_settings.register_profile("dev", max_examples=100, deadline=None)
hypothesis_settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """An empty seed directory."""
    path = tmp_path / "seeds"
    path.mkdir()
    return path


@pytest.fixture
def real_seed_dir(seed_dir: Path) -> Path:
    """A seed directory holding the real seed document."""
    shutil.copy(REAL_SEED, seed_dir / REAL_SEED.name)
    return seed_dir


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a store runs once per backend, unless it is about SQLite."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        # Module scope, so that module-scoped fixtures (make_store) can follow it too.
        metafunc.parametrize("backend", BACKENDS[:1] if only else BACKENDS, scope="module")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster (skips the test where there is none)."""
    found = bindir()
    if found is None:
        pytest.skip(MISSING)
    cluster = Cluster(found)
    yield cluster
    cluster.close()


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """What ``FEEDS_DATABASE`` names for this test: a SQLite path or a fresh database URL."""
    if backend == "sqlite":
        yield tmp_path / "db" / "feeds.sqlite3"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    url = cluster.database()
    yield DatabaseURL(url)
    cluster.drop(url)


@pytest.fixture(scope="module")
def make_store(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Store]]:
    """Make fresh, initialized stores on this backend (for tests that need several)."""
    from feeds.sync import utcnow

    made: list[Store] = []
    urls: list[str] = []
    cluster: Cluster | None = None
    if backend == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")

    def make() -> Store:
        if cluster is None:
            where: Any = tmp_path_factory.mktemp("store") / "feeds.sqlite3"
        else:
            urls.append(cluster.database())
            where = DatabaseURL(urls[-1])
        result = open_store(where)
        result.initialize(utcnow())
        made.append(result)
        return result

    yield make
    for result in made:
        result.close()
    if cluster is not None:
        for url in urls:
            cluster.drop(url)


@pytest.fixture
def store(database: Any) -> Iterator[Store]:
    """A fresh store on this test's backend."""
    from feeds.sync import utcnow

    result = open_store(database)
    result.initialize(utcnow())
    yield result
    result.close()


@pytest.fixture
def make_app(database: Any) -> Iterator[Callable[..., Flask]]:
    """Build an app on this test's database; keyword arguments override settings."""
    built: list[Flask] = []

    def build(seed_dir: Path, **overrides: Any) -> Flask:
        settings: dict[str, Any] = {
            "seed_dir": seed_dir,
            "database": database,
            "base_url": BASE_URL,
            "scheduler": False,
        }
        settings.update(overrides)
        app = create_app(settings, environ={})
        app.testing = True
        built.append(app)
        return app

    yield build
    for app in built:
        scheduler = app.extensions.get("feeds.scheduler")
        if scheduler is not None:
            from feeds import schedule

            schedule.stop(scheduler)
        app.extensions["feeds.site"].store.close()


@pytest.fixture
def app(make_app: Callable[..., Flask], real_seed_dir: Path) -> Flask:
    """An app serving the real seed document."""
    return make_app(real_seed_dir)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def resync(app: Flask) -> Callable[[], Any]:
    """Run one sync of the app's store and seed directory now."""

    def run() -> Any:
        site = app.extensions["feeds.site"]
        return sync(site.store, site.config.seed_dir)

    return run


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[Servers]:
    """Real servers for one test (see tests/servers.py), all stopped at its end."""
    with servers(tmp_path) as started:
        yield started
