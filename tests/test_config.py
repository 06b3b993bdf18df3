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


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("page_size", 0, "FEEDS_PAGE_SIZE"),
        ("page_size", 1.5, "FEEDS_PAGE_SIZE"),
        ("port", 70000, "FEEDS_PORT"),
        ("sync_interval", -1, "FEEDS_SYNC_INTERVAL"),
        ("scheduler", 2, "FEEDS_SCHEDULER"),
        ("database", Path(""), "FEEDS_DATABASE"),
        ("trusted_hosts", [1, 2], "FEEDS_TRUSTED_HOSTS"),
    ],
)
def test_ready_override_values_pass_the_same_checks(
    name: str, value: object, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load(environ={}, overrides={name: value})


def test_ready_override_values_that_are_valid_are_kept() -> None:
    config = load(
        environ={},
        overrides={
            "page_size": 7,
            "sync_interval": 0.5,
            "scheduler": False,
            "seed_dir": Path("somewhere"),
            "trusted_hosts": ("a.example", ".b.example"),
        },
    )
    assert config.page_size == 7 and config.sync_interval == 0.5 and not config.scheduler
    assert config.seed_dir == Path("somewhere")
    assert config.trusted_hosts == ("a.example", ".b.example")


def test_create_app_validates_overrides(tmp_path: Path) -> None:
    from feeds.app import create_app

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with pytest.raises(ConfigError, match="FEEDS_PAGE_SIZE=0 is invalid"):
        create_app({"page_size": 0, "seed_dir": seeds, "scheduler": False}, environ={})


def test_an_existing_directory_is_no_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FEEDS_DATABASE=.* is a directory"):
        load(environ={"FEEDS_DATABASE": str(tmp_path)})
