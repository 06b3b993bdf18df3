"""The ``feeds`` command: serve, sync, check, stats, export, migrate-store. The only module
that prints.

Exit codes: 0 success, 1 the command ran and found problems (or the sync
failed, or an operation failed), 2 bad usage or configuration (a store that
cannot be opened at start included). Every failure is one line on stderr,
never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from feeds import __version__, backends, parse, scan, websub
from feeds.backends import open_store
from feeds.config import (
    SETTINGS,
    Config,
    DatabaseURL,
    check_seed_dir,
    configure_logging,
    load,
    parse_database,
)
from feeds.errors import ConfigError, FeedsError, StoreError
from feeds.store import Store
from feeds.sync import locked_sync, utcnow

log = logging.getLogger(__name__)


def _settings_epilog() -> str:
    lines = ["settings (environment variables):"]
    for setting in SETTINGS:
        default = setting.shown_default or setting.default
        lines.append(f"  {setting.variable:<22} default {default}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feeds",
        description="Republish agency press releases from a seed directory as Atom feeds.",
        epilog=_settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"feeds {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="sync, then serve the feeds with gunicorn (syncing every FEEDS_SYNC_INTERVAL)",
        description="Run the web service under gunicorn on FEEDS_HOST:FEEDS_PORT.",
    )
    serve.add_argument("--host", help="listen address (FEEDS_HOST)")
    serve.add_argument("--port", type=int, help="listen port (FEEDS_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (FEEDS_WORKERS)")

    commands.add_parser(
        "sync",
        help="sync the seed directory into the store once and print what changed",
        description="Run one sync now (waits if another process is syncing).",
    )

    check = commands.add_parser(
        "check",
        help="parse seed files without storing anything; list problems and warnings",
        description="Parse every seed file and print problems (text that is not published "
        "as written) as path:line: message and warnings (near-misses such as 'Source Europol' "
        "or '31 February 2026', published as written) as path:line: warning: message. "
        "Exit status 1 if there are problems, or with --strict any warnings.",
    )
    check.add_argument("dir", nargs="?", type=Path, help="seed directory (FEEDS_SEED_DIR)")
    check.add_argument("--strict", action="store_true", help="exit with status 1 on warnings too")

    commands.add_parser(
        "stats",
        help="list agencies with their release counts",
        description="Print every agency with its present and gone releases and newest date.",
    )

    export_parser = commands.add_parser(
        "export",
        help="write every feed and page as static files (for nginx, a CDN or object store)",
        description="Write every feed (all formats and archive pages), every HTML page and the "
        "OPML under DIR, byte-identical to what the server sends, each with a .gz beside it. "
        "DIR is replaced as a whole. See deploy/nginx-static.conf.",
    )
    export_parser.add_argument("out", type=Path, metavar="DIR", help="output directory")

    migrate = commands.add_parser(
        "migrate-store",
        help="copy the SQLite store (FEEDS_DATABASE) into an empty PostgreSQL database",
        description="Copy every release, number, first-seen and updated time, file, content "
        "and copy of the SQLite store FEEDS_DATABASE names into an empty PostgreSQL "
        "database, in one transaction, so that feeds served from it are byte-identical and "
        "its next sync finds nothing new. Refuses a database that holds any table. Then "
        "set FEEDS_DATABASE to the URL.",
    )
    migrate.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://user:password@host:port/dbname"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        for name in ("host", "port", "workers"):
            value = getattr(args, name)
            if value is not None:
                # Through the environment, so gunicorn's workers see it too.
                os.environ[f"FEEDS_{name.upper()}"] = str(value)
    try:
        config = load(overrides=overrides)
    except FeedsError as exc:
        print(f"feeds: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)
    # The top of every command: a known failure is one line, never a traceback.
    try:
        return _run(args, config)
    except ConfigError as exc:
        print(f"feeds: {exc}", file=sys.stderr)
        return 2
    except FeedsError as exc:
        print(f"feeds: {args.command} failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(f"feeds: {args.command} failed: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, config: Config) -> int:
    if args.command == "serve":
        return _serve(config)
    if args.command == "sync":
        return _sync(config)
    if args.command == "stats":
        return _stats(config)
    if args.command == "export":
        return _export(config, args.out)
    if args.command == "migrate-store":
        return _migrate_store(config, args.to)
    if args.dir is not None:
        check_seed_dir(args.dir, "DIR")
    else:
        check_seed_dir(config.seed_dir)
    return _check(args.dir or config.seed_dir, config, strict=args.strict)


def _count(number: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class _ProgressBar:
    """Files and bytes done: a redrawn bar on a terminal, a log line now and then otherwise."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int, size: int) -> None:
        now = time.monotonic()
        final = done == total
        if not final and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        megabytes = size / 1e6
        if self.tty:
            filled = self.WIDTH * done // total if total else self.WIDTH
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{total} files, {megabytes:.1f} MB read")
            self.drawn = True
            if final:
                self.stream.write("\n")
        elif total and (done or final):
            log.info("sync progress files=%d total=%d mb_read=%.1f", done, total, megabytes)
        self.stream.flush()


def _open_store(config: Config) -> Store | None:
    """The store, ready; None (after one line naming ``FEEDS_DATABASE``) if unusable."""
    try:
        store = open_store(config.database)
        store.initialize(utcnow())
    except StoreError as exc:
        print(
            f"feeds: cannot use FEEDS_DATABASE={config.database}: {exc.reason}: {exc.detail}; "
            f"{exc.hint}",
            file=sys.stderr,
        )
        return None
    return store


def _sync(config: Config) -> int:
    logging.getLogger("feeds.sync").setLevel(logging.WARNING)  # the table says it all
    store = _open_store(config)
    if store is None:
        return 2
    report = locked_sync(
        store,
        config.seed_dir,
        max_file_bytes=config.max_file_bytes,
        progress=_ProgressBar(sys.stderr),
    )
    if not report.ok:
        print(f"feeds: sync failed: {report.error}", file=sys.stderr)
        return 1
    websub.after_sync(report, config.websub_hub, config.base_url)
    rows = [
        ("files read", report.files_read),
        ("files unchanged", report.files_skipped),
        ("files w/ problems", len({p.path for p in report.problems})),
        ("releases new", report.count("new")),
        ("releases changed", report.count("changed")),
        ("releases gone", report.count("gone")),
        ("releases back", report.count("returned")),
        ("problems", len(report.problems)),
    ]
    for label, value in rows:
        print(f"{label:<18}{value:>8}")
    print(f"{'seconds':<18}{report.seconds:>8.3f}")
    for problem in report.problems:
        print(problem, file=sys.stderr)
    return 0


def _stats(config: Config) -> int:
    store = _open_store(config)
    if store is None:
        return 2
    with store.read() as reader:
        state = reader.state()
    print(f"{'agency':<28}{'releases':>9}{'gone':>7}  newest")
    for agency in state.agencies:
        newest = agency.newest.isoformat() if agency.newest else "-"
        gone = agency.members - agency.present_count
        print(f"{agency.name[:27]:<28}{agency.present_count:>9}{gone:>7}  {newest}")
    print(f"{'total':<28}{state.present:>9}{state.releases - state.present:>7}")
    return 0


def _export(config: Config, out: Path) -> int:
    # The web side (pages, rendering, Flask) is imported by the commands that use it:
    # `feeds sync` from cron starts in a fraction of the time.
    from feeds import export
    from feeds.site import Site

    store = _open_store(config)
    if store is None:
        return 2
    # Export what the seeds say now, not what the last sync happened to see.
    synced = locked_sync(store, config.seed_dir, max_file_bytes=config.max_file_bytes)
    if not synced.ok:
        print(f"feeds: sync failed: {synced.error}; exporting the last good state", file=sys.stderr)
    try:
        report = export.export(Site(store, config), out)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(f"feeds: export to {out} failed: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    print(f"exported {_count(report.files, 'file')} ({report.bytes / 1e6:.1f} MB) to {out}")
    return 0


def _migrate_store(config: Config, to: str) -> int:
    source = config.database
    if isinstance(source, DatabaseURL):
        raise ConfigError(
            f"FEEDS_DATABASE={source} is not a SQLite file; migrate-store copies a SQLite store"
        )
    if not source.is_file():
        raise ConfigError(f"FEEDS_DATABASE={str(source)!r} is invalid: no SQLite store there")
    try:
        target = parse_database(to)
    except ValueError as exc:
        raise ConfigError(f"--to is invalid: {exc}") from None
    if not isinstance(target, DatabaseURL):
        raise ConfigError("--to is invalid: give a postgresql:// URL")
    store = _open_store(config)  # checks (and migrates) the source's own schema first
    if store is None:
        return 2
    store.close()
    backends.migrate(source, target)
    copied = open_store(target)
    try:
        counts = copied.counts()
    finally:
        copied.close()
    print(
        f"copied {_count(counts['releases'] + counts['releases_gone'], 'release')} "
        f"({counts['releases']} present), {counts['agencies']} agency feed(s) and "
        f"{_count(counts['files'], 'file')} to {target}; now set FEEDS_DATABASE to it"
    )
    return 0


def _check(seed_dir: Path, config: Config, strict: bool = False) -> int:
    """Print problems and warnings like a compiler; 1 if any problem (or warning, if strict)."""
    seeds, problems = scan.list_seeds(seed_dir)
    releases = 0
    for seed in seeds:
        content, read_problems = scan.read_seed(seed, config.max_file_bytes)
        problems += read_problems
        if content is None:
            continue
        text, decode_problems = scan.decode(content.data, seed.name)
        drafts, parse_problems = parse.parse(text, seed.name)
        problems += decode_problems + parse_problems
        releases += len(drafts)
    for problem in problems:
        shown = problem.path if problem.path == str(seed_dir) else str(seed_dir / problem.path)
        print(replace(problem, path=shown))
    warnings = sum(problem.severity == "warning" for problem in problems)
    errors = len(problems) - warnings
    counts = (
        _count(len(seeds), "file"),
        _count(releases, "release"),
        _count(errors, "problem"),
        _count(warnings, "warning"),
    )
    print(", ".join(counts), file=sys.stderr)
    return 1 if errors or (strict and warnings) else 0


def _check_port(host: str, port: int) -> None:
    """Fail now, naming the address, if ``host:port`` cannot be listened on.

    gunicorn would say it is starting, then retry for seconds before giving up.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            # As gunicorn binds: a port left in TIME_WAIT is free, one being listened on is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another port with --port or FEEDS_PORT"
        ) from None


def _serve(config: Config) -> int:
    from gunicorn.app.base import BaseApplication

    from feeds import serving

    # Everything that can be wrong at start fails here, before gunicorn says anything.
    check_seed_dir(config.seed_dir)
    _check_port(config.host, config.port)
    store = _open_store(config)
    if store is None:
        return 2
    store.close()

    def ready(server: Any) -> None:
        print(f"feeds: serving {config.seed_dir} on {config.base_url}/", file=sys.stderr)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in serving.options(config).items():
                self.cfg.set(key, value)
            self.cfg.set("when_ready", ready)

        def load(self) -> Any:
            from feeds.app import create_app

            return create_app()

    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
