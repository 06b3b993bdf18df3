"""Serving benchmark: our service against bare Flask, bare WSGI and nginx, on the same bytes.

Scenario 1 starts, on 127.0.0.1 and free ports,

- **ours**: ``gunicorn -w W -k gthread --threads T wsgi:app`` over a temporary
  seed directory (a copy of ``seeds/``), a temporary database and the
  scheduler on with a one-hour interval (no sync runs during the load);
- **bare**: ``bench/bare_app.py``, a Flask app returning the document as a
  constant, under the same gunicorn settings;
- **wsgi**: ``bench/bare_wsgi.py``, a plain WSGI callable returning the same
  bytes and headers, built once: the floor of any Python answer;
- **nginx**: the same bytes as a static file beside its ``.gz``
  (``gzip_static on``, ``etag on``), ``worker_processes`` = W.

Ours is fetched first; its exact identity and gzip bytes are then handed to
bare and nginx, and every server is checked (status, bytes, encoding) before
any load. Then, for N rounds, each case (full ``200``, gzip ``200``, ``304``
on the server's own ETag) is loaded on each server in turn with a bounded
``wrk`` run, and the median requests/s per server and case is printed with
the ratios ours/bare and ours/nginx.

With ``--postgresql URL`` (an empty database), scenario 1 also starts
**ours-pg**: ours with ``FEEDS_DATABASE=URL``, loaded like the others and
compared with ours on SQLite (its bytes differ only in the times of its own
first sync; it is checked against its own bytes).

Scenario 2 starts ours twice, over stores of 10 and of 10,000 generated
releases (``FEEDS_PAGE_SIZE=10``, so both subscription feeds hold 10 entries
of the same size), and prints ours(10k)/ours(10) per case: serving from the
cache should not depend on how much the store holds.

Every process runs in its own process group and is stopped in a ``finally``
block (SIGTERM, then SIGKILL after a bounded wait); every wait is bounded.

    .venv/bin/python bench/serve.py [--duration S] [--rounds N] [--connections C] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import seedgen
from workspace import workspace

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
GUNICORN = BIN / "gunicorn"
FEEDS = BIN / "feeds"


def production_options() -> dict[str, Any]:
    """The gunicorn settings ``feeds serve`` uses with default ``FEEDS_*`` (feeds/serving.py)."""
    try:
        from feeds import config, serving
    except ImportError:  # an older tree: the values feeds/cli.py hard-coded
        return {"workers": 2, "threads": 4, "timeout": 60, "graceful_timeout": 10, "keepalive": 2}
    options: dict[str, Any] = serving.options(config.load(environ={}))
    return options


PRODUCTION = production_options()
THREADS: int = PRODUCTION["threads"]
WORKERS: int = PRODUCTION["workers"]
#: Scheduler interval for ours: no sync may run during a load.
SYNC_INTERVAL = 3600
START_SECONDS = 60.0
STOP_SECONDS = 10.0
CONTENT_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


# -- processes -------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes


def get(port: int, path: str, headers: Mapping[str, str] | None = None) -> Reply:
    """One GET to 127.0.0.1 (no proxy, no decompression, no redirects)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


@dataclass
class Server:
    """A started process (leader of its own process group) listening on ``port``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    stopped: bool = field(default=False)

    def log(self, limit: int = 4000) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- end of {self.name}'s log ({self.log_path}) ---\n{text[-limit:]}"

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the processes of this server's group.

        Summed over ``/proc/<pid>/stat`` of the group (master, workers and their
        threads); None where there is no ``/proc``.
        """
        proc = Path("/proc")
        if not proc.is_dir():
            return None
        ticks = 0
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after "(comm)": state ppid pgrp session ... utime (14th) stime (15th).
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.process.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole group after :data:`STOP_SECONDS`."""
        if self.stopped:
            return
        self.stopped = True
        pgid = self.process.pid
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _kill_group(pgid)
            self.process.wait(timeout=STOP_SECONDS)
        finally:
            # Workers of a master that is gone must not outlive the benchmark.
            deadline = time.monotonic() + 2
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _kill_group(pgid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def environ(settings: Mapping[str, str], home: Path) -> dict[str, str]:
    """This environment without ``FEEDS_*`` and proxies, plus ``settings``.

    ``HOME`` is the run's temporary directory: gunicorn 23+ opens a control
    socket under ``~/.gunicorn``, which two servers must not share.
    """
    drop = ("FEEDS_", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(settings)
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    port: int,
    log_path: Path,
    ready_path: str,
    stack: ExitStack,
) -> Server:
    """Start ``argv`` in its own group; wait (bounded) until ``ready_path`` answers 200."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log_path)
    stack.callback(server.stop)
    deadline = time.monotonic() + START_SECONDS
    while True:
        code = process.poll()
        if code is not None:
            raise SystemExit(f"{name} exited with {code} before answering\n{server.log()}")
        try:
            if get(port, ready_path).status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{name} did not answer {ready_path} in {START_SECONDS:.0f} s\n{server.log()}"
            )
        time.sleep(0.1)


def gunicorn_argv(port: int, args: argparse.Namespace, access_log: Path) -> list[str]:
    """The gunicorn settings every Python server here runs with (those of ``feeds serve``).

    Without ``--access-log`` no access log is written (production writes one line
    per request), for ours and bare alike.
    """
    argv = [str(GUNICORN), "-w", str(args.workers), "-k", "gthread"]
    argv += ["--threads", str(args.threads), "-b", f"127.0.0.1:{port}"]
    flags = {"timeout": "--timeout", "graceful_timeout": "--graceful-timeout"}
    for name, flag in (flags | {"keepalive": "--keep-alive"}).items():
        if name in PRODUCTION:
            argv += [flag, str(PRODUCTION[name])]
    if args.access_log:
        argv += ["--access-logfile", str(access_log)]
        if "access_log_format" in PRODUCTION:
            argv += ["--access-logformat", PRODUCTION["access_log_format"]]
    return argv


def start_ours(
    name: str,
    seed_dir: Path,
    database: Path | str,
    workdir: Path,
    args: argparse.Namespace,
    stack: ExitStack,
    *,
    page_size: int | None = None,
) -> Server:
    port = free_port()
    settings = {
        "FEEDS_SEED_DIR": str(seed_dir),
        "FEEDS_DATABASE": str(database),
        "FEEDS_PORT": str(port),
        "FEEDS_SCHEDULER": "on",
        "FEEDS_SYNC_INTERVAL": str(SYNC_INTERVAL),
        "FEEDS_LOG_LEVEL": "WARNING",
    }
    if page_size is not None:
        settings["FEEDS_PAGE_SIZE"] = str(page_size)
    return start(
        name,
        [*gunicorn_argv(port, args, workdir / f"{name}.access.log"), "wsgi:app"],
        env=environ(settings, workdir),
        cwd=ROOT,
        port=port,
        log_path=workdir / f"{name}.log",
        ready_path="/healthz",
        stack=stack,
    )


def start_bare(
    body_file: Path,
    path: str,
    workdir: Path,
    args: argparse.Namespace,
    stack: ExitStack,
    app: str = "bare_app:app",
    name: str = "bare",
) -> Server:
    port = free_port()
    settings = {
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_PATH": path,
        "BENCH_CONTENT_TYPE": CONTENT_TYPES[path.rsplit(".", 1)[1]],
        "BENCH_MAX_AGE": str(SYNC_INTERVAL),
    }
    argv = gunicorn_argv(port, args, workdir / f"{name}.access.log")
    argv += ["--pythonpath", str(BENCH)]
    return start(
        name,
        [*argv, app],
        env=environ(settings, workdir),
        cwd=BENCH,
        port=port,
        log_path=workdir / f"{name}.log",
        ready_path=path,
        stack=stack,
    )


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{
        application/atom+xml atom;
        application/rss+xml rss;
        application/feed+json json;
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/atom+xml application/rss+xml application/feed+json;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    etag on;
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
        gzip off;
        gzip_static on;
        gzip_vary on;
        add_header Cache-Control "public, max-age={max_age}";
    }}
}}
"""


def nginx_binary() -> str | None:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return found


def start_nginx(
    binary: str, docroot: Path, path: str, workdir: Path, args: argparse.Namespace, stack: ExitStack
) -> Server:
    port = free_port()
    prefix = workdir / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            workers=args.workers, prefix=prefix, port=port, docroot=docroot, max_age=SYNC_INTERVAL
        ),
        "utf-8",
    )
    # -e: the startup error log too goes to the temporary directory (nginx >= 1.19.5).
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return start(
        "nginx",
        argv,
        env=environ({}, workdir),
        cwd=prefix,
        port=port,
        log_path=workdir / "nginx.log",
        ready_path=path,
        stack=stack,
    )


# -- load ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    status: int
    headers: Callable[[str], list[str]]
    """wrk ``-H`` values, given the server's identity ETag (quoted)."""


CASES = (
    Case("full 200", 200, lambda etag: []),
    Case("gzip 200", 200, lambda etag: ["Accept-Encoding: gzip"]),
    Case("304", 304, lambda etag: [f"If-None-Match: {etag}"]),
)


@dataclass(frozen=True, slots=True)
class WrkResult:
    rps: float
    requests: int
    latency: str
    errors: str
    """Empty, or what wrk counted as errors (non-2xx/3xx responses, socket errors)."""
    cpu: float | None = None
    """CPU seconds the server's processes used during the run."""

    @property
    def cpu_per_request(self) -> float | None:
        return self.cpu / self.requests if self.cpu is not None and self.requests else None


_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_REQUESTS = re.compile(r"^\s+(\d+) requests in", re.M)
_LATENCY = re.compile(r"^\s+Latency\s+(\S+)", re.M)
_NON_OK = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: (.*)")


def wrk(url: str, headers: Sequence[str], seconds: float, args: argparse.Namespace) -> WrkResult:
    """One bounded wrk run."""
    argv = [args.wrk, f"-t{min(args.wrk_threads, args.connections)}", f"-c{args.connections}"]
    argv += [f"-d{seconds:g}s", "--timeout", "5s"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    found = _RPS.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"wrk failed ({done.returncode}): {' '.join(argv)} {url}\n{done.stdout}{done.stderr}"
        )
    errors = []
    if (non_ok := _NON_OK.search(done.stdout)) is not None:
        errors.append(f"{non_ok[1]} non-2xx/3xx")
    if (socket_errors := _SOCKET.search(done.stdout)) is not None:
        errors.append(f"socket errors {socket_errors[1]}")
    latency = _LATENCY.search(done.stdout)
    requests = _REQUESTS.search(done.stdout)
    return WrkResult(
        float(found[1]),
        int(requests[1]) if requests else 0,
        latency[1] if latency else "?",
        "; ".join(errors),
    )


@dataclass
class Target:
    """A server to load, with each case's wrk headers and the results so far."""

    label: str
    server: Server
    path: str
    headers: dict[str, list[str]] = field(default_factory=dict)
    results: dict[str, list[WrkResult]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{self.path}"

    def median(self, case: str) -> float:
        return statistics.median(r.rps for r in self.results[case])

    def cpu_median(self, case: str) -> float | None:
        """Median server CPU µs per request over rounds."""
        values = [r.cpu_per_request for r in self.results[case]]
        known = [v * 1e6 for v in values if v is not None]
        return statistics.median(known) if known else None

    def cell(self, case: str) -> str:
        """The median, with half the range over rounds as a share of it (the noise)."""
        values = [r.rps for r in self.results[case]]
        median = statistics.median(values)
        if len(values) < 2 or not median:
            return f"{median:,.0f}"
        return f"{median:,.0f} ±{(max(values) - min(values)) / 2 / median:.0%}"


def verify(target: Target, body: bytes, gzipped: bytes) -> None:
    """Check status and bytes of every case before loading; fill in the wrk headers."""
    port, path, name = target.server.port, target.path, target.label
    full = get(port, path)
    etag = full.headers.get("etag")
    problems = []
    if full.status != 200 or full.body != body:
        problems.append(f"full: status {full.status}, {len(full.body)} bytes, not our bytes")
    if "content-encoding" in full.headers:
        problems.append(f"full: Content-Encoding {full.headers['content-encoding']}")
    if not etag:
        problems.append("full: no ETag")
    zipped = get(port, path, {"Accept-Encoding": "gzip"})
    if zipped.status != 200 or zipped.headers.get("content-encoding") != "gzip":
        problems.append(f"gzip: status {zipped.status}, {zipped.headers.get('content-encoding')}")
    elif zipped.body != gzipped or gzip.decompress(zipped.body) != body:
        problems.append("gzip: not our gzip bytes")
    for case in CASES:
        target.headers[case.name] = case.headers(etag or '""')
        target.results[case.name] = []
    not_modified = get(port, path, dict(h.split(": ", 1) for h in target.headers["304"]))
    if not_modified.status != 304 or not_modified.body:
        problems.append(f"304: status {not_modified.status} for If-None-Match {etag}")
    if problems:
        raise SystemExit(f"{name} failed verification:\n  " + "\n  ".join(problems))
    print(f"#   {name}: 200 / gzip 200 / 304 ok, ETag {etag}", flush=True)


def load(targets: Sequence[Target], args: argparse.Namespace) -> None:
    """Warm every server up, then round by round, case by case, each server in turn."""
    for target in targets:
        # Every worker and thread gets its connection and cached representation.
        wrk(target.url, [], 1, args)
        wrk(target.url, ["Accept-Encoding: gzip"], 1, args)
    for number in range(1, args.rounds + 1):
        for case in CASES:
            line = []
            for target in targets:
                before = target.server.cpu_seconds()
                result = wrk(target.url, target.headers[case.name], args.duration, args)
                after = target.server.cpu_seconds()
                if before is not None and after is not None:
                    result = replace(result, cpu=after - before)
                target.results[case.name].append(result)
                flag = f" ({result.errors})" if result.errors else ""
                line.append(f"{target.label} {result.rps:,.0f} (avg {result.latency}){flag}")
            print(f"#   round {number} {case.name:<8} " + ", ".join(line), flush=True)


# -- output ----------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}"
        return "  ".join(
            [first, *(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))]
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def errors_of(targets: Sequence[Target]) -> list[str]:
    return [
        f"{t.label} {case}: {r.errors}"
        for t in targets
        for case, results in t.results.items()
        for r in results
        if r.errors
    ]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


# -- scenarios -------------------------------------------------------------------------


def scenario_servers(args: argparse.Namespace, workdir: Path) -> None:
    print("\n== Scenario 1: ours vs bare Flask vs bare WSGI vs nginx, same bytes ==", flush=True)
    seed_dir = workdir / "seeds-real"
    seed_dir.mkdir()
    for seed in sorted((ROOT / "seeds").glob("*.txt")):
        shutil.copyfile(seed, seed_dir / seed.name)
    path = args.path
    with ExitStack() as stack:
        ours = start_ours("ours", seed_dir, workdir / "real.sqlite3", workdir, args, stack)
        body_reply = get(ours.port, path)
        gzip_reply = get(ours.port, path, {"Accept-Encoding": "gzip"})
        if body_reply.status != 200 or gzip_reply.status != 200:
            raise SystemExit(f"ours answered {body_reply.status} / {gzip_reply.status} for {path}")
        body, gzipped = body_reply.body, gzip_reply.body
        docroot = workdir / "docroot"
        document = docroot / path.lstrip("/")
        document.parent.mkdir(parents=True)
        document.write_bytes(body)
        document.with_name(document.name + ".gz").write_bytes(gzipped)
        # nginx workers may run as another user: let them read the document.
        for directory in (workdir, docroot, document.parent):
            directory.chmod(0o755)
        print(
            f"#   {path}: {len(body):,} bytes, gzip {len(gzipped):,} bytes "
            f"({body.count(b'<entry>') or '?'} entries)",
            flush=True,
        )

        targets = [Target("ours", ours, path)]
        if args.postgresql:
            ours_pg = start_ours("ours-pg", seed_dir, args.postgresql, workdir, args, stack)
            pg_body = get(ours_pg.port, path).body
            pg_gzip = get(ours_pg.port, path, {"Accept-Encoding": "gzip"}).body
            pg_target = Target("ours-pg", ours_pg, path)
            verify(pg_target, pg_body, pg_gzip)
            targets.append(pg_target)
        targets.insert(0, Target("bare", start_bare(document, path, workdir, args, stack), path))
        wsgi = start_bare(document, path, workdir, args, stack, "bare_wsgi:app", "wsgi")
        targets.insert(0, Target("wsgi", wsgi, path))
        nginx = args.nginx
        if nginx:
            server = start_nginx(nginx, docroot, path, workdir, args, stack)
            targets.insert(0, Target("nginx", server, path))
        else:
            print(
                "#   nginx: not installed (no nginx on PATH or in /usr/sbin): skipped; "
                "apt-get install nginx-light",
                flush=True,
            )
        for target in targets:
            if target.label != "ours-pg":
                verify(target, body, gzipped)
        load(targets, args)

    by_label = {t.label: t for t in targets}
    header = ["case", *(f"{t.label} req/s" for t in targets), "ours/bare"]
    if "nginx" in by_label:
        header.append("ours/nginx")
    if "ours-pg" in by_label:
        header.append("ours-pg/ours")
    rows = []
    for case in CASES:
        medians = {t.label: t.median(case.name) for t in targets}
        row = [case.name, *(t.cell(case.name) for t in targets)]
        row.append(ratio(medians["ours"], medians["bare"]))
        if "nginx" in medians:
            row.append(ratio(medians["ours"], medians["nginx"]))
        if "ours-pg" in medians:
            row.append(ratio(medians["ours-pg"], medians["ours"]))
        rows.append(row)
    print(
        f"\nrequests/s, median of {args.rounds} round(s) of {args.duration:g} s "
        f"(wrk -t{args.wrk_threads} -c{args.connections}), GET {path}:"
    )
    print(table(header, rows))
    pairs = [("ours", "bare")] + ([("ours", "nginx")] if "nginx" in by_label else [])
    if "ours-pg" in by_label:
        pairs.append(("ours-pg", "ours"))
    print_cpu(targets, pairs)
    print_targets(targets)
    for problem in errors_of(targets):
        print(f"WARNING: {problem}")


def print_cpu(targets: Sequence[Target], pairs: Sequence[tuple[str, str]]) -> None:
    """Server CPU µs per request per case, and for each pair (a, b) b's CPU / a's CPU.

    That ratio is a's throughput relative to b's if each server had the CPUs to
    itself: the same reading as the requests/s ratios, without the noise of
    wrk and other processes competing for the same CPUs.
    """
    cpu = {t.label: {c.name: t.cpu_median(c.name) for c in CASES} for t in targets}
    if any(v is None for by_case in cpu.values() for v in by_case.values()):
        return
    header = ["case", *(f"{t.label} µs" for t in targets), *(f"{a}/{b}" for a, b in pairs)]
    rows = []
    for case in CASES:
        row = [case.name, *(f"{cpu[t.label][case.name]:,.0f}" for t in targets)]
        row += [ratio(cpu[b][case.name] or 0.0, cpu[a][case.name] or 0.0) for a, b in pairs]
        rows.append(row)
    print(
        "\nserver CPU µs per request (user + system of all its processes, median over rounds);"
        " a/b = b's CPU per request / a's (a's throughput relative to b's on equal CPUs):"
    )
    print(table(header, rows))


#: Issue 13's targets: ours' CPU per request at most this share of bare Flask's ...
FLASK_SHARE = 0.5
#: ... and at most this multiple of a bare WSGI callable's.
WSGI_MULTIPLE = 1.5


def print_targets(targets: Sequence[Target]) -> None:
    """Ours' CPU per request against bare Flask's and bare WSGI's, with the targets met or not."""
    cpu = {t.label: {c.name: t.cpu_median(c.name) for c in CASES} for t in targets}
    if any(v is None for by_case in cpu.values() for v in by_case.values()):
        return
    rows = []
    for case in CASES:
        ours, flask, wsgi = (cpu[label][case.name] or 0.0 for label in ("ours", "bare", "wsgi"))
        of_flask, of_wsgi = ours / flask, ours / wsgi
        rows.append(
            [
                case.name,
                f"{ours:,.0f}",
                f"{flask:,.0f}",
                f"{wsgi:,.0f}",
                f"{of_flask:.2f} ({'met' if of_flask <= FLASK_SHARE else 'MISSED'})",
                f"{of_wsgi:.2f} ({'met' if of_wsgi <= WSGI_MULTIPLE else 'MISSED'})",
            ]
        )
    header = ["case", "ours µs", "bare µs", "wsgi µs", f"ours/bare ≤ {FLASK_SHARE}"]
    header.append(f"ours/wsgi ≤ {WSGI_MULTIPLE}")
    print("\nserver CPU per request, ours against the targets (CPU ratios, lower is better):")
    print(table(header, rows))


def scenario_store_size(args: argparse.Namespace, workdir: Path) -> None:
    small, large = 10, args.large
    print(f"\n== Scenario 2: ours with {large:,} releases in the store vs {small} ==", flush=True)
    page_size = 10
    servers: list[Target] = []
    with ExitStack() as stack:
        for count in (small, large):
            seed_dir = workdir / f"seeds-{count}"
            database = workdir / f"gen-{count}.sqlite3"
            seedgen.write_seeds(seed_dir, count)
            started = time.monotonic()
            settings = {
                "FEEDS_SEED_DIR": str(seed_dir),
                "FEEDS_DATABASE": str(database),
                "FEEDS_PAGE_SIZE": str(page_size),
                "FEEDS_LOG_LEVEL": "WARNING",
            }
            # One sync before the start, so the workers' own first syncs find nothing to do.
            done = subprocess.run(
                [str(FEEDS), "sync"],
                env=environ(settings, workdir),
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"feeds sync of {count} releases failed:\n{done.stderr}")
            print(
                f"#   store of {count:,} releases synced in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            label = f"ours({count if count < 1000 else f'{count // 1000}k'})"
            server = start_ours(
                label.replace("(", "-").rstrip(")"),
                seed_dir,
                database,
                workdir,
                args,
                stack,
                page_size=page_size,
            )
            servers.append(Target(label, server, args.path))
        bodies = {}
        for target in servers:
            full = get(target.server.port, target.path)
            zipped = get(target.server.port, target.path, {"Accept-Encoding": "gzip"})
            verify(target, full.body, zipped.body)
            bodies[target.label] = full.body
        sizes = ", ".join(
            f"{label} {len(b):,} bytes / {b.count(b'<entry>')} entries"
            for label, b in bodies.items()
        )
        print(f"#   {args.path}: {sizes}", flush=True)
        entries = {b.count(b"<entry>") for b in bodies.values()}
        if len(entries) != 1:
            raise SystemExit(f"the two feeds differ in entries ({sizes}): not comparable")
        load(servers, args)

    first, second = servers
    header = [
        "case",
        f"{first.label} req/s",
        f"{second.label} req/s",
        f"{second.label}/{first.label}",
    ]
    rows = [
        [
            case.name,
            first.cell(case.name),
            second.cell(case.name),
            ratio(second.median(case.name), first.median(case.name)),
        ]
        for case in CASES
    ]
    print(
        f"\nrequests/s, median of {args.rounds} round(s), GET {args.path} "
        f"(FEEDS_PAGE_SIZE={page_size}):"
    )
    print(table(header, rows))
    print_cpu(servers, [(second.label, first.label)])
    for problem in errors_of(servers):
        print(f"WARNING: {problem}")


# -- main ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Requests/s and CPU of our service vs bare Flask, bare WSGI, nginx."
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run (3)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; medians over them (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--workers", type=int, default=WORKERS, help=f"gunicorn -w and nginx workers ({WORKERS})"
    )
    parser.add_argument(
        "--threads", type=int, default=THREADS, help=f"gunicorn --threads ({THREADS})"
    )
    parser.add_argument(
        "--path", default="/feeds/all.atom", help="document to load (/feeds/all.atom)"
    )
    parser.add_argument(
        "--large", type=int, default=10_000, help="releases in scenario 2's big store (10000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 1 s per run (a smoke test, not numbers)"
    )
    parser.add_argument("--only", choices=("servers", "store-size"), help="run one scenario only")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="gunicorn access log (production's format) to a file, for ours, bare and wsgi",
    )
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        help="also run ours on this empty PostgreSQL database in scenario 1 (ours-pg)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 1.0, 1
    if args.duration <= 0 or args.duration > 60 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration must be in (0, 60], --rounds and --connections at least 1")
    if not re.fullmatch(r"/feeds/[a-z0-9+-]+\.(atom|rss|json)", args.path):
        parser.error("--path must be a subscription feed such as /feeds/all.atom")
    return args


def load_note() -> str:
    """The load average, with a warning when other processes compete for the CPUs."""
    one, five, _ = os.getloadavg()
    cpus = os.cpu_count() or 1
    note = f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {cpus} CPUs"
    if five > cpus / 2:
        note += ": WARNING, other processes compete with the servers and wrk; numbers are noisy"
    return note


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.wrk = shutil.which("wrk")
    if args.wrk is None:
        print("serve.py: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if not GUNICORN.exists():
        print(
            f"serve.py: no gunicorn beside {sys.executable}; run with the project's venv "
            "(.venv/bin/python bench/serve.py)",
            file=sys.stderr,
        )
        return 2
    args.nginx = nginx_binary()
    servers = (4 if args.nginx else 3) + 2
    runs = args.rounds * len(CASES) * servers * args.duration
    warmups = servers * 2
    shown = [a for a in gunicorn_argv(0, args, Path("-"))[1:] if a not in ("-b", "127.0.0.1:0")]
    gunicorn = " ".join(shown[: shown.index("--access-logfile")] if args.access_log else shown)
    gunicorn += " + access log" if args.access_log else ""
    print(
        f"# {os.cpu_count()} CPUs; gunicorn {gunicorn}; wrk -t{args.wrk_threads} "
        f"-c{args.connections} -d{args.duration:g}s; {args.rounds} round(s); "
        f"about {runs + warmups:.0f} s of load",
        flush=True,
    )
    print(f"# {load_note()}", flush=True)
    started = time.monotonic()
    with workspace(args.keep, "feeds-bench-") as workdir:
        if args.only in (None, "servers"):
            scenario_servers(args, workdir)
        if args.only in (None, "store-size"):
            scenario_store_size(args, workdir)
    print(f"\n# done in {time.monotonic() - started:.0f} s; {load_note()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
