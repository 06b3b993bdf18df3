"""What each kind of store trouble does, through the real CLI and the real app.

Only a corrupt store is moved aside and rebuilt. A directory, a read-only file
or directory, a lock held too long, a full disk: at start the command exits 2
with one line naming ``FEEDS_DATABASE``, the path and the reason, touching
nothing; while serving, the sync fails, the last good state keeps being
served, ``/healthz`` says ``degraded`` with the reason, and the next sync
retries. Permission tests run as ``nobody`` (root ignores permissions); the
full-disk test mounts a small tmpfs. Each skips with the reason where the
machine cannot do that.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import site
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask

from feeds import sqlite_store as store_module
from feeds.errors import ConfigError, StoreBusy, StoreUnavailable
from feeds.sqlite_store import SQLiteStore as Store
from feeds.sync import sync, utcnow

from .conftest import REAL_SEED, ROOT
from .servers import clean_environ, free_port

FEEDS = Path(sys.executable).parent / "feeds"


#: The ``feeds`` command for another user, through an interpreter that user can run:
#: this one's may sit in root's home (pyenv), so a system Python of the same version
#: is used then, with this checkout and its installed packages on its path.
AS_USER = ["-c", "import sys; from feeds.cli import main; sys.exit(main(sys.argv[1:]))"]


def _python_for(user: str) -> tuple[list[str], dict[str, str]] | None:
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"]
    path = os.pathsep.join([str(ROOT), *site.getsitepackages()])
    for python in candidates:
        env = {} if python == sys.executable else {"PYTHONPATH": path}
        probe = subprocess.run(
            ["runuser", "-u", user, "--", python, "-c", "import feeds.cli"],
            env={**os.environ, **env},
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return [python, *AS_USER], env
    return None


def run_feeds(
    *args: str, settings: dict[str, str], cwd: Path, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [str(FEEDS), *args]
    extra: dict[str, str] = {}
    if user is not None:
        found = _python_for(user)
        assert found is not None
        argv = ["runuser", "-u", user, "--", *found[0], *args]
        extra = found[1]
    env = clean_environ(
        {
            "FEEDS_LOG_LEVEL": "WARNING",
            # A port nobody uses: `serve` must fail on the store, not on a taken port.
            "FEEDS_HOST": "127.0.0.1",
            "FEEDS_PORT": str(free_port()),
            **settings,
            **extra,
        }
    )
    # Its own process group: a command that wrongly starts serving is stopped whole,
    # workers and all, instead of outliving the test.
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"{argv} did not stop within 60 s\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed, checked to be single and no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# -- a directory as the database ------------------------------------------------------


@pytest.fixture
def users_dir(tmp_path: Path) -> Path:
    """Someone's directory with files in it, as FEEDS_DATABASE by mistake."""
    path = tmp_path / "data"
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_bytes(b"my notes\n")
    (path / "sub" / "photo.jpg").write_bytes(bytes(range(256)) * 4)
    return path


@pytest.mark.parametrize("command", ["sync", "stats", "export", "serve"])
def test_a_directory_as_the_database_is_a_configuration_error_and_left_untouched(
    command: str, users_dir: Path, real_seed_dir: Path, tmp_path: Path
) -> None:
    before = tree(users_dir)
    siblings = sorted(p.name for p in users_dir.parent.iterdir())
    args = [command, str(tmp_path / "out")] if command == "export" else [command]
    settings = {"FEEDS_DATABASE": str(users_dir), "FEEDS_SEED_DIR": str(real_seed_dir)}
    result = run_feeds(*args, settings=settings, cwd=tmp_path)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"feeds: FEEDS_DATABASE='{users_dir}' is invalid: is a directory")
    assert tree(users_dir) == before
    assert sorted(p.name for p in users_dir.parent.iterdir()) == siblings  # no .corrupt-*


def test_a_directory_given_to_the_store_itself_is_unavailable_not_corrupt(
    users_dir: Path,
) -> None:
    before = tree(users_dir)
    with pytest.raises(StoreUnavailable, match="a directory"):
        Store(users_dir).initialize(utcnow())
    assert tree(users_dir) == before
    assert not list(users_dir.parent.glob("*.corrupt-*"))


def test_create_app_refuses_a_directory_as_the_database(
    make_app: Callable[..., Flask], real_seed_dir: Path, users_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="FEEDS_DATABASE"):
        make_app(real_seed_dir, database=users_dir)


# -- garbage bytes: the one case that is moved aside ----------------------------------


def test_garbage_database_is_moved_aside_and_rebuilt_by_the_cli(
    real_seed_dir: Path, tmp_path: Path
) -> None:
    database = tmp_path / "feeds.sqlite3"
    garbage = b"this is not a database at all\n" * 200
    database.write_bytes(garbage)
    settings = {"FEEDS_DATABASE": str(database), "FEEDS_SEED_DIR": str(real_seed_dir)}
    result = run_feeds("sync", settings=settings, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "releases new            10" in result.stdout
    (aside,) = tmp_path.glob("feeds.sqlite3.corrupt-*")
    assert aside.read_bytes() == garbage


# -- every command against an impossible path -----------------------------------------


@pytest.mark.parametrize(
    ("command", "code", "named"),
    [
        ("sync", 2, "FEEDS_DATABASE"),
        ("stats", 2, "FEEDS_DATABASE"),
        ("serve", 2, "FEEDS_DATABASE"),
        ("check", 2, "DIR"),
        ("export", 1, "export to"),
    ],
)
def test_every_command_fails_in_one_line_on_an_impossible_path(
    command: str, code: int, named: str, real_seed_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    impossible = blocker / "below"
    database = impossible / "feeds.sqlite3" if command in {"sync", "stats", "serve"} else None
    settings = {
        "FEEDS_DATABASE": str(database or tmp_path / "db" / "feeds.sqlite3"),
        "FEEDS_SEED_DIR": str(real_seed_dir),
    }
    args = {"check": ["check", str(impossible)], "export": ["export", str(impossible)]}
    result = run_feeds(*args.get(command, [command]), settings=settings, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    line = result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr, result.stderr
    assert named in line and str(impossible) in line and "Not a directory" in line, line
    if database is not None:
        assert line == one_line(result)
    assert blocker.read_text() == "not a directory\n"


# -- permissions, as an unprivileged user ---------------------------------------------


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory outside pytest's private tmp, which ``nobody`` may enter and write."""
    if os.geteuid() != 0:
        pytest.skip("permission tests switch to user nobody, which needs root")
    if shutil.which("runuser") is None:
        pytest.skip("runuser is not installed (util-linux)")
    if _python_for("nobody") is None:
        pytest.skip("user nobody can run neither this Python nor a system Python as recent")
    nobody = pwd.getpwnam("nobody")
    path = Path(tempfile.mkdtemp(prefix="feeds-nobody-"))
    try:
        path.chmod(0o755)
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
        seeds = path / "seeds"
        seeds.mkdir(mode=0o755)
        shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
        (seeds / REAL_SEED.name).chmod(0o644)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _stored_by_root(base: Path) -> tuple[Path, dict[str, str]]:
    """A store synced once by root under ``base/db``: files owned by root, mode 644."""
    database = base / "db" / "feeds.sqlite3"
    settings = {"FEEDS_DATABASE": str(database), "FEEDS_SEED_DIR": str(base / "seeds")}
    assert run_feeds("sync", settings=settings, cwd=base).returncode == 0
    assert not database.with_name(database.name + "-wal").exists()  # closed cleanly
    return database, settings


@pytest.mark.parametrize("command", ["sync", "serve"])
def test_read_only_database_file(command: str, nobody_dir: Path) -> None:
    database, settings = _stored_by_root(nobody_dir)
    nobody = pwd.getpwnam("nobody")
    # The directory and the lock are nobody's; the database file is root's, mode 644.
    for path in (database.parent, database.with_name(database.name + ".lock")):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    before = database.read_bytes()
    result = run_feeds(command, settings=settings, cwd=nobody_dir, user="nobody")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"feeds: cannot use FEEDS_DATABASE={database}: read-only: "), line
    assert database.read_bytes() == before
    assert not list(database.parent.glob("*.corrupt-*"))


@pytest.mark.parametrize("command", ["sync", "serve"])
def test_read_only_directory(command: str, nobody_dir: Path) -> None:
    database, settings = _stored_by_root(nobody_dir)
    nobody = pwd.getpwnam("nobody")
    # The files are nobody's, but the directory is root's: nothing can be created beside.
    for path in (database, database.with_name(database.name + ".lock")):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    before = tree(database.parent)
    result = run_feeds(command, settings=settings, cwd=nobody_dir, user="nobody")
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"feeds: cannot use FEEDS_DATABASE={database}: read-only directory")
    assert "FEEDS_DATABASE name a file in a directory this user can write" in line
    assert tree(database.parent) == before


def test_unreadable_seed_directory_stops_serve_and_fails_sync(nobody_dir: Path) -> None:
    database = nobody_dir / "db" / "feeds.sqlite3"
    seeds = nobody_dir / "seeds"
    seeds.chmod(0o700)  # root's, closed to everyone else
    settings = {"FEEDS_DATABASE": str(database), "FEEDS_SEED_DIR": str(seeds)}
    served = run_feeds("serve", settings=settings, cwd=nobody_dir, user="nobody")
    assert served.returncode == 2
    assert one_line(served) == (f"feeds: FEEDS_SEED_DIR='{seeds}' is invalid: Permission denied")
    synced = run_feeds("sync", settings=settings, cwd=nobody_dir, user="nobody")
    assert synced.returncode == 1
    assert synced.stderr.splitlines()[-1] == (
        f"feeds: sync failed: seed directory unavailable: {seeds}: Permission denied"
    )


# -- a store locked by another process ------------------------------------------------


@pytest.fixture
def quick_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)


class Holder:
    """Another process holding the database's write lock until released."""

    def __init__(self, database: Path) -> None:
        code = (
            "import sqlite3, sys\n"
            f"conn = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "conn.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "locked\n"

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def holder() -> Iterator[Callable[[Path], Holder]]:
    held: list[Holder] = []

    def hold(database: Path) -> Holder:
        held.append(Holder(database))
        return held[-1]

    yield hold
    for one in held:
        if one.process.poll() is None:
            one.release()


def test_busy_store_at_start_exits_2_through_the_cli(
    quick_busy_timeout: None,
    holder: Callable[[Path], Holder],
    real_seed_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from feeds.cli import main

    database = tmp_path / "db" / "feeds.sqlite3"
    monkeypatch.setenv("FEEDS_DATABASE", str(database))
    monkeypatch.setenv("FEEDS_SEED_DIR", str(real_seed_dir))
    assert main(["sync"]) == 0
    capsys.readouterr()
    lock = holder(database)
    assert main(["sync"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"feeds: cannot use FEEDS_DATABASE={database}: busy: ")
    assert "another program holds the database" in err
    lock.release()
    assert not list(database.parent.glob("*.corrupt-*"))
    assert main(["sync"]) == 0  # the same store, history and all: nothing is new
    assert "releases new             0" in capsys.readouterr().out


@pytest.mark.sqlite_only  # another program holding the SQLite file's write lock
def test_busy_store_while_serving_keeps_serving_and_recovers(
    quick_busy_timeout: None,
    holder: Callable[[Path], Holder],
    make_app: Callable[..., Flask],
    real_seed_dir: Path,
) -> None:
    app = make_app(real_seed_dir)
    client = app.test_client()
    site = app.extensions["feeds.site"]
    served = client.get("/feeds/all.atom").data
    (real_seed_dir / "new.txt").write_text(
        "Late release\n\nSource: NATO\n\nIt arrived late.\n", encoding="utf-8"
    )
    lock = holder(site.config.database)
    report = sync(site.store, real_seed_dir)
    assert not report.ok
    assert report.error.startswith(f"busy: {site.config.database}: database is locked")
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["reason"] == report.error
    assert client.get("/feeds/all.atom").data == served
    lock.release()
    assert sync(site.store, real_seed_dir).ok
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["reason"] is None
    assert b"Late release" in client.get("/feeds/all.atom").data


# -- the seed directory vanishes while serving ----------------------------------------


def test_seed_directory_gone_while_serving_keeps_the_last_good_state(
    make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    app = make_app(real_seed_dir)
    client = app.test_client()
    served = client.get("/feeds/all.atom").data
    moved = real_seed_dir.rename(real_seed_dir.with_name("moved"))
    store = app.extensions["feeds.site"].store
    assert not sync(store, real_seed_dir).ok
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    assert health["reason"] == (
        f"seed directory unavailable: {real_seed_dir}: No such file or directory"
    )
    assert client.get("/feeds/all.atom").data == served
    assert health["counts"]["releases"] == 10
    moved.rename(real_seed_dir)
    assert sync(store, real_seed_dir).ok
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_create_app_refuses_a_missing_seed_directory(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="FEEDS_SEED_DIR=.*No such file or directory"):
        make_app(tmp_path / "nope")


# -- a full disk ----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test (a new store of 16 KiB pages takes about 1 MiB)."""
    if shutil.which("mount") is None:
        pytest.skip("mount is not installed")
    point = tmp_path / "disk"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "feeds-test", str(point)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=True, timeout=60)


def fill(disk: Path, leave: int = 0) -> Path:
    """Take all but ``leave`` free bytes of ``disk``; returns the file to delete to free them."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass
        out.truncate(max(0, filler.stat().st_size - leave))
    return filler


def test_full_disk_while_serving_keeps_serving_and_recovers_when_freed(
    small_disk: Path, make_app: Callable[..., Flask], real_seed_dir: Path
) -> None:
    database = small_disk / "feeds.sqlite3"
    app = make_app(real_seed_dir, database=database)
    client = app.test_client()
    store = app.extensions["feeds.site"].store
    served = client.get("/feeds/all.atom").data
    body = "\n\n".join(f"Paragraph {n} of a long release. " * 20 for n in range(100))
    (real_seed_dir / "long.txt").write_text(
        f"A long release\n\nSource: NATO\n\n{body}\n", encoding="utf-8"
    )
    filler = fill(small_disk)
    wal = database.with_name(database.name + "-wal")
    sizes = []
    for _ in range(4):
        report = sync(store, real_seed_dir)
        assert not report.ok
        assert report.error.startswith(f"disk full: {database}: database or disk is full")
        sizes.append(wal.stat().st_size if wal.exists() else 0)
        health = client.get("/healthz").get_json()
        assert health["status"] == "degraded" and health["reason"] == report.error
        assert client.get("/feeds/all.atom").data == served
    assert sizes[1:] == sizes[:-1], f"the WAL grew while syncs failed: {sizes}"
    filler.unlink()
    again = sync(store, real_seed_dir)
    assert again.ok and again.count("new") == 1
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["reason"] is None
    assert b"A long release" in client.get("/feeds/all.atom").data
    assert not list(small_disk.glob("*.corrupt-*"))


def test_full_disk_fails_the_cli(small_disk: Path, real_seed_dir: Path, tmp_path: Path) -> None:
    database = small_disk / "feeds.sqlite3"
    settings = {"FEEDS_DATABASE": str(database), "FEEDS_SEED_DIR": str(real_seed_dir)}
    assert run_feeds("sync", settings=settings, cwd=tmp_path).returncode == 0
    (real_seed_dir / "long.txt").write_text(
        "A long release\n\nSource: NATO\n\n" + "Words and more words. " * 8000,
        encoding="utf-8",
    )
    # Room to open the store, not to store the new release: the sync fails.
    filler = fill(small_disk, leave=128 * 1024)
    result = run_feeds("sync", settings=settings, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"feeds: sync failed: disk full: {database}: database or disk is full"
    )
    assert "free disk space" in result.stderr  # the log line says what to do
    # No room even to open it: the command stops at start.
    filler.unlink()
    filler = fill(small_disk)
    result = run_feeds("sync", settings=settings, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line(result).startswith(f"feeds: cannot use FEEDS_DATABASE={database}: disk full")
    filler.unlink()
    result = run_feeds("sync", settings=settings, cwd=tmp_path)
    assert result.returncode == 0 and "releases new             1" in result.stdout


# -- the classification itself ----------------------------------------------------------


def test_a_failed_rollback_never_hides_the_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "feeds.sqlite3")
    store.initialize(utcnow())
    # Before, the explicit ROLLBACK failed ("no transaction is active") and its error
    # was all the operator saw.
    with pytest.raises(RuntimeError, match="^the real reason$"):
        with store._write() as conn:
            conn.execute("ROLLBACK")  # as SQLite does by itself on SQLITE_FULL
            raise RuntimeError("the real reason")


def test_busy_is_classified_by_its_code(
    quick_busy_timeout: None, holder: Callable[[Path], Holder], tmp_path: Path
) -> None:
    database = tmp_path / "feeds.sqlite3"
    Store(database).initialize(utcnow())
    lock = holder(database)
    with pytest.raises(StoreBusy) as caught:
        Store(database).initialize(utcnow())
    assert caught.value.reason == "busy"
    assert getattr(caught.value.__cause__, "sqlite_errorname", None) == "SQLITE_BUSY"
    lock.release()
