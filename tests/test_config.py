"""Settings: defaults that work, invalid values named at start, every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feeds.config import SETTINGS, Setting, load
from feeds.errors import ConfigError

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_work_from_a_fresh_clone() -> None:
    config = load(environ={})
    assert config.seed_dir == Path("seeds")
    assert config.database == Path("instance/feeds.sqlite3")
    assert config.sync_interval == 60
    assert config.page_size == 50
    assert config.base_url == "http://127.0.0.1:8000"
    assert config.scheduler is True


def test_base_url_default_follows_the_port() -> None:
    assert load(environ={"FEEDS_PORT": "9123"}).base_url == "http://127.0.0.1:9123"


def test_base_url_trailing_slash_is_dropped() -> None:
    assert load(environ={"FEEDS_BASE_URL": "https://f.example/x/"}).base_url == (
        "https://f.example/x"
    )


@pytest.mark.parametrize("value", ["1", "0.5", "3600"])
def test_any_positive_sync_interval(value: str) -> None:
    assert load(environ={"FEEDS_SYNC_INTERVAL": value}).sync_interval == float(value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FEEDS_SYNC_INTERVAL", "0"),
        ("FEEDS_SYNC_INTERVAL", "-5"),
        ("FEEDS_SYNC_INTERVAL", "soon"),
        ("FEEDS_SYNC_INTERVAL", "nan"),
        ("FEEDS_SYNC_INTERVAL", "inf"),
        ("FEEDS_PAGE_SIZE", "0"),
        ("FEEDS_PAGE_SIZE", "1001"),
        ("FEEDS_PAGE_SIZE", "ten"),
        ("FEEDS_PORT", "70000"),
        ("FEEDS_BASE_URL", "feeds.example.org"),
        ("FEEDS_BASE_URL", "ftp://feeds.example.org"),
        ("FEEDS_BASE_URL", "https://feeds.example.org/?x=1"),
        ("FEEDS_SCHEDULER", "maybe"),
        ("FEEDS_LOG_LEVEL", "LOUD"),
        ("FEEDS_MAX_FILE_BYTES", "0"),
        ("FEEDS_SEED_DIR", ""),
    ],
)
def test_invalid_value_fails_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(environ={variable: value})
    assert variable in str(raised.value)
    assert repr(value) in str(raised.value)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        load(environ={}, overrides={"page_sise": 3})


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.variable)
def test_every_setting_is_documented_in_the_readme(setting: Setting) -> None:
    variable = setting.variable
    table_rows = re.findall(r"^\| `(FEEDS_[A-Z_]+)` \|", README.read_text(encoding="utf-8"), re.M)
    assert variable in table_rows
