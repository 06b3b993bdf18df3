"""Shared fixtures: each test gets its own seed directory, SQLite file and app.

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
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync

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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh store in a real SQLite file."""
    from feeds.sync import utcnow

    result = Store(tmp_path / "db" / "feeds.sqlite3")
    result.initialize(utcnow())
    return result


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    """Build an app on a temporary database; keyword arguments override settings."""

    def build(seed_dir: Path, **overrides: Any) -> Flask:
        settings: dict[str, Any] = {
            "seed_dir": seed_dir,
            "database": tmp_path / "db" / "feeds.sqlite3",
            "base_url": BASE_URL,
            "scheduler": False,
        }
        settings.update(overrides)
        app = create_app(settings, environ={})
        app.testing = True
        return app

    return build


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
