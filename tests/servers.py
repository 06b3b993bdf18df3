"""Real server processes for the end-to-end tests, on 127.0.0.1 only.

Picks free ports, starts a command with ``FEEDS_*`` settings in a clean
environment, waits (bounded) until ``/healthz`` answers, captures the output in
a log file for failure messages, and stops the whole process group with
SIGTERM, then SIGKILL after a bounded wait. Also a small HTTP client that never
goes through a proxy and always closes its responses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FEEDS = BIN / "feeds"
GUNICORN = BIN / "gunicorn"
REAL_SEED = ROOT / "seeds" / "000_cd6cbdc3db3c9078.txt"
#: (agency slug, title) of every release in :data:`REAL_SEED`, in file order.
REAL_SEED_RELEASES = (
    ("europol", "Gang behind ATM attacks taken down"),
    (
        "interpol",
        "Operation Narsil disrupts network of child abuse websites designed to generate "
        "profits from advertising",
    ),
    (
        "interpol",
        "INTERPOL and UNICEF sign cooperation agreement to address child sexual exploitation "
        "and abuse",
    ),
    ("interpol", "Colombia: Two arrested for live streaming child sexual abuse"),
    ("interpol", "Australian support for enhanced INTERPOL database to combat online child abuse"),
    (
        "interpol",
        "INTERPOL Secretary General: More specialist units needed to investigate online "
        "child abuse",
    ),
    ("europol", "Europol supports Serbia in arresting contract killer disguised as elderly man"),
    ("nato", "Secretary General praises Latvia for its contributions to NATO"),
    ("eurojust", "Criminals selling counterfeit wine stopped in their tracks"),
    (
        "nato",
        "NATO Through Time podcast \u2013 NATO\u2019s open door (2009) with former President of "
        "Croatia Kolinda Grabar-Kitarovi\u0107",
    ),
)

#: Longest wait for anything: a server to answer, a sync to happen, a process to stop.
WAIT_SECONDS = 30.0
STOP_SECONDS = 15.0

T = TypeVar("T")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is returned as it is: it may point at the configured base URL."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy, whatever the environment says, and no redirects: 127.0.0.1 only.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    method: str = "GET",
) -> Reply:
    """GET ``url``; redirects, 4xx and 5xx are returned, not raised or followed."""
    assert url.startswith("http://127.0.0.1:"), url
    request = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, dict(exc.headers.items()), exc.read())


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    check: Callable[[], T | None],
    what: str,
    *,
    timeout: float = WAIT_SECONDS,
    interval: float = 0.1,
    details: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``check`` until it returns something other than None; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{details()}")
        time.sleep(interval)


def clean_environ(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``FEEDS_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDS_")}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def isolated_environ(settings: Mapping[str, str], home: Path) -> dict[str, str]:
    """:func:`clean_environ` with ``HOME`` in the test's directory.

    Recent gunicorn versions open a control socket under ``~/.gunicorn``: it belongs
    in the test's directory, not in the home of whoever runs the tests.
    """
    env = clean_environ(settings)
    env["HOME"] = str(home)
    return env


@dataclass
class Server:
    """A started server process (and its process group)."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kwargs: Any) -> Reply:
        return fetch(self.url(path), **kwargs)

    def log(self, limit: int = 6000) -> str:
        """The end of the captured output, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last output of {self.name} ({self.log_path}) ---\n{text[-limit:]}"

    def errors(self) -> list[str]:
        """Lines of the output so far that report an error (ours or gunicorn's)."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        markers = ("level=ERROR", "level=CRITICAL", "[ERROR]", "[CRITICAL]", "Traceback")
        return [line for line in text.splitlines() if any(m in line for m in markers)]

    def healthz(self) -> dict[str, Any]:
        reply = self.get("/healthz")
        assert reply.status == 200, f"/healthz answered {reply.status}\n{self.log()}"
        result: dict[str, Any] = reply.json()
        return result

    def wait_for_sync_after(self, mark: datetime, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Wait until a sync that started after ``mark`` (aware UTC) is the last one logged.

        Such a sync read the seed directory after everything done before ``mark``.
        """

        def check() -> dict[str, Any] | None:
            health = self.healthz()
            last = health.get("last_sync")
            if last and datetime.fromisoformat(last["started"]) > mark:
                return health
            return None

        return wait_until(
            check, f"a sync after {mark.isoformat()}", timeout=timeout, details=self.log
        )

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM to the process, SIGKILL to its group after ``timeout``; returns its exit code."""
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        pgid = self.process.pid  # started with start_new_session: its own group
        code: int | None = None
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(pgid)
            code = self.process.wait(timeout=timeout)
        finally:
            # Workers left behind by a master that died must not outlive the test.
            if _group_alive(pgid):
                deadline = time.monotonic() + 2
                while _group_alive(pgid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                _kill_group(pgid)
        return code


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the id is someone else's now
        return False
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(
    name: str,
    argv: Sequence[str],
    *,
    settings: Mapping[str, str],
    cwd: Path,
    port: int,
    log_path: Path,
    timeout: float = WAIT_SECONDS,
) -> Server:
    """Start ``argv`` and wait until ``/healthz`` on ``port`` answers 200."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=isolated_environ(settings, cwd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log_path)
    try:

        def ready() -> bool | None:
            code = process.poll()
            if code is not None:
                raise AssertionError(f"{name} exited with {code} before answering\n{server.log()}")
            try:
                reply = server.get("/healthz", timeout=2)
            except OSError:
                return None
            return True if reply.status == 200 else None

        wait_until(ready, f"{name} to answer /healthz", timeout=timeout, details=server.log)
    except BaseException:
        server.stop()
        raise
    return server


class Servers:
    """Starts servers for one test and stops every one of them at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Server] = []

    def feeds_serve(self, settings: Mapping[str, str], *, name: str = "feeds serve") -> Server:
        """``feeds serve`` with ``settings``; ``FEEDS_PORT`` is picked unless given."""
        port = int(settings.get("FEEDS_PORT") or free_port())
        full = {"FEEDS_HOST": "127.0.0.1", **settings, "FEEDS_PORT": str(port)}
        return self._start(name, [str(FEEDS), "serve"], full, port)

    def gunicorn(self, settings: Mapping[str, str], *args: str, name: str = "gunicorn") -> Server:
        """``gunicorn <args> wsgi:app`` from the project directory, bound to a free port."""
        port = free_port()
        argv = [str(GUNICORN), "--chdir", str(ROOT), *args, "-b", f"127.0.0.1:{port}", "wsgi:app"]
        # FEEDS_PORT too, for a gunicorn config file that binds from the settings.
        full = {"FEEDS_HOST": "127.0.0.1", "FEEDS_PORT": str(port), **settings}
        return self._start(name, argv, full, port)

    def _start(self, name: str, argv: list[str], settings: dict[str, str], port: int) -> Server:
        log_path = self.workdir / f"server-{len(self.started) + 1}.log"
        server = start(
            name, argv, settings=settings, cwd=self.workdir, port=port, log_path=log_path
        )
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """A :class:`Servers` whose processes are all stopped on the way out; logs are printed."""
    pool = Servers(workdir)
    try:
        yield pool
    finally:
        pool.stop_all()
        for server in pool.started:
            print(server.log(limit=4000))  # shown by pytest only when the test failed
