"""Settings: one table of ``FEEDS_*`` environment variables, validated at start.

Each setting has a name, a default that works from a fresh clone, a parser
and a help text; the README documents every one (a test checks). An invalid
value fails at start with a message naming the variable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feeds.errors import ConfigError

PREFIX = "FEEDS_"
MAX_PAGE_SIZE = 1000


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a positive number of seconds") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return number


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return number

    return parse


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL such as https://feeds.example.org")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value.rstrip("/")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _path(value: str) -> Path:
    if not value.strip():
        raise ValueError("must not be empty")
    return Path(value)


#: ``scheme://``: a URL, never a file name (even a relative path cannot start like this).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def mask_url(text: str) -> str:
    """``text`` with any password in it (``user:secret@``, ``?password=``) shown as ``***``.

    Anything that is not a URL comes back as it is.
    """
    if not _URL.match(text):
        return text
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostport}"
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = parts.query
        if any(key == "password" for key, _ in pairs):
            shown = [(k, "***" if k == "password" else v) for k, v in pairs]
            query = urlencode(shown, safe="/*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # unparsable (a bad port, say): show the scheme alone
        return text.split("://", 1)[0] + "://***"


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A PostgreSQL connection URL whose password never shows in ``str``, ``repr`` or logs."""

    url: str

    def __str__(self) -> str:
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseURL({mask_url(self.url)!r})"


def parse_database(value: str) -> Path | DatabaseURL:
    """A SQLite file path, or a ``postgresql://`` (``postgres://``) URL for PostgreSQL."""
    if _URL.match(value):
        scheme = value.split("://", 1)[0].lower()
        if scheme not in POSTGRESQL_SCHEMES:
            raise ValueError(
                f"{scheme}:// is not a supported store; give a file path (SQLite) "
                "or a postgresql:// URL"
            )
        try:
            urlsplit(value).port  # noqa: B018 (a malformed port raises here)
        except ValueError as exc:
            raise ValueError(f"is not a valid URL: {exc}") from None
        return DatabaseURL(value)
    path = _path(value)
    # Checked before anything opens it: a typo must never get a directory "repaired".
    if path.is_dir():
        raise ValueError(f"is a directory; name a file such as {path / 'feeds.sqlite3'}")
    return path


def _as_text(value: Any) -> str:
    """A ready override value as the text the environment would hold, to parse it alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, DatabaseURL):
        return value.url
    if isinstance(value, int | float | Path):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise ValueError(f"must be given as text, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Setting:
    """One configurable value: ``FEEDS_<NAME>``."""

    name: str
    default: str
    parse: Callable[[str], Any]
    help: str
    shown_default: str = ""
    """What ``--help`` shows as the default when the raw default says too little."""

    @property
    def variable(self) -> str:
        return PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("seed_dir", "seeds", _path, "Directory of seed `*.txt` files to republish."),
    Setting(
        "database",
        "instance/feeds.sqlite3",
        parse_database,
        "The store: a SQLite file (created with its directory if missing), or a "
        "`postgresql://user:password@host:port/dbname` URL (any libpq URL) for a "
        "PostgreSQL database shared by several nodes.",
    ),
    Setting("host", "127.0.0.1", str, "Address `feeds serve` listens on."),
    Setting("port", "8000", _int_range(1, 65535), "Port `feeds serve` listens on."),
    Setting(
        "base_url",
        "",
        lambda v: _base_url(v) if v else "",
        "Public base URL for every link in feeds and pages; never taken from the "
        "request. Default `http://127.0.0.1:<FEEDS_PORT>`.",
        "http://127.0.0.1:<FEEDS_PORT>",
    ),
    Setting(
        "sync_interval",
        "60",
        _positive_float,
        "Seconds between syncs of the seed directory (any positive number).",
    ),
    Setting(
        "page_size",
        "50",
        _int_range(1, MAX_PAGE_SIZE),
        f"Releases per archive page; the subscription feed holds at least this many "
        f"(1 to {MAX_PAGE_SIZE}).",
    ),
    Setting(
        "scheduler",
        "on",
        _bool,
        "Run the background sync scheduler inside the web app (`off` to sync only via CLI).",
    ),
    Setting(
        "max_file_bytes",
        str(100 * 1024 * 1024),
        _int_range(1, 2**40),
        "Seed files larger than this many bytes are skipped with a problem.",
    ),
    Setting(
        "websub_hub",
        "",
        lambda v: _base_url(v) if v else "",
        "WebSub hub URL; when set, feeds name it (`rel=hub`) and each sync that changes a "
        "feed pings it. Empty: off.",
        "(empty: off)",
    ),
    Setting(
        "trusted_hosts",
        "",
        lambda v: tuple(h.strip() for h in v.split(",") if h.strip()),
        "Comma-separated `Host` values to accept (e.g. `feeds.example.org,.example.org`); "
        "others get 400. Empty: any (links never use the `Host` header anyway).",
        "(empty: any host)",
    ),
    Setting("workers", "2", _int_range(1, 64), "gunicorn worker processes for `feeds serve`."),
    Setting("log_level", "INFO", _log_level, "Logging level."),
)


@dataclass(frozen=True, slots=True)
class Config:
    """Validated settings; build with :func:`load`."""

    seed_dir: Path
    database: Path | DatabaseURL
    host: str
    port: int
    base_url: str
    sync_interval: float
    page_size: int
    scheduler: bool
    max_file_bytes: int
    websub_hub: str
    trusted_hosts: tuple[str, ...]
    workers: int
    log_level: str

    @property
    def max_age(self) -> int:
        """``Cache-Control`` max-age of current documents: one sync interval, 1 s to 1 h.

        Capped far below the 5 hours some readers clamp to, so polls stay useful.
        """
        return max(1, min(int(self.sync_interval), 3600))

    @property
    def log_level_number(self) -> int:
        return int(getattr(logging, self.log_level))


def load(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Settings from ``environ`` (default ``os.environ``), then ``overrides`` by name.

    Overrides are given as strings or as ready values (``8000``, ``Path(...)``); either
    way they pass the same checks as the environment's text.
    """
    environ = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    known = {s.name for s in SETTINGS}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    for setting in SETTINGS:
        raw = overrides.get(setting.name, environ.get(setting.variable, setting.default))
        try:
            # Ready values (an int, a Path) pass the very checks a variable's text does.
            values[setting.name] = setting.parse(raw if isinstance(raw, str) else _as_text(raw))
        except ValueError as exc:
            shown = mask_url(raw) if isinstance(raw, str) else raw
            raise ConfigError(f"{setting.variable}={shown!r} is invalid: {exc}") from None
    if not values["base_url"]:
        values["base_url"] = f"http://127.0.0.1:{values['port']}"
    config = Config(**values)
    assert {f.name for f in fields(Config)} == known
    return config


def check_seed_dir(path: Path, label: str = "FEEDS_SEED_DIR") -> None:
    """Fail at start, naming ``label`` and the path, if the seed directory cannot be listed."""
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        raise ConfigError(f"{label}={str(path)!r} is invalid: {exc.strerror or exc}") from None


LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(config: Config) -> None:
    """One line per event, key=value; leaves an already configured root logger alone."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT)
    logging.getLogger("feeds").setLevel(config.log_level_number)
