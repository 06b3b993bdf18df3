"""In-process cost of the hot path, without a server: where a cached request's CPU goes.

Builds the app over a copy of ``seeds/`` in a temporary directory (scheduler
off), requests ``/feeds/all.atom`` once so it is cached, then times, with the
same WSGI environ each time and alternating rounds:

- **hot**: the app's ``wsgi_app`` (the hot path) answering it;
- **flask**: the Flask app alone (the hot path's ``app``) answering the same
  request from the same cache (routing, request and response objects, hooks);
- **generation**: the store's generation question alone, which the hot path
  asks once per request (issue 13: "one cheap question").

for a plain ``200``, a gzip ``200`` and a ``304``. Prints the median µs per
request of each. ``bench/serve.py`` measures the same paths under gunicorn,
where the server's own per-request work comes on top of both.

    .venv/bin/python bench/hotpath.py [--rounds N] [--number N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workspace import workspace

ROOT = Path(__file__).resolve().parent.parent


def per_call(function: Callable[[], object], number: int) -> float:
    """CPU µs per call of ``function`` over ``number`` calls."""
    started = time.process_time()
    for _ in range(number):
        function()
    return (time.process_time() - started) / number * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians over them (5)")
    parser.add_argument("--number", type=int, default=5000, help="requests per round (5000)")
    args = parser.parse_args(argv)
    from feeds.app import create_app

    with workspace(False, "feeds-hotpath-") as workdir:
        seeds = workdir / "seeds"
        seeds.mkdir()
        for seed in sorted((ROOT / "seeds").glob("*.txt")):
            shutil.copyfile(seed, seeds / seed.name)
        settings = {
            "seed_dir": seeds,
            "database": workdir / "feeds.sqlite3",
            "scheduler": False,
            "log_level": "WARNING",
        }
        app = create_app(settings, environ={})
        hot = app.extensions["feeds.hotpath"]
        store = app.extensions["feeds.site"].store

        def environ(**headers: str) -> dict[str, Any]:
            return {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/feeds/all.atom",
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http",
                "HTTP_HOST": "127.0.0.1:8000",
                **headers,
            }

        seen: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
            seen["status"], seen["headers"] = status, headers

        b"".join(hot(environ(), start_response))
        etag = dict(seen["headers"])["ETag"]
        cases = {
            "200": environ(),
            "gzip 200": environ(HTTP_ACCEPT_ENCODING="gzip, deflate, br"),
            "304": environ(HTTP_IF_NONE_MATCH=etag),
        }
        print(f"# {args.rounds} rounds of {args.number:,} requests; GET /feeds/all.atom")
        rows = []
        for name, base in cases.items():
            times: dict[str, list[float]] = {"hot": [], "flask": [], "generation": []}
            before = hot.answered
            for _ in range(args.rounds):
                times["hot"].append(
                    per_call(lambda b=base: b"".join(hot(dict(b), start_response)), args.number)
                )
                times["flask"].append(
                    per_call(lambda b=base: b"".join(hot.app(dict(b), start_response)), args.number)
                )
                times["generation"].append(per_call(store.generation, args.number))
            if hot.answered - before != args.rounds * args.number:
                raise SystemExit(f"{name}: the hot path fell through; nothing to measure")
            medians = {k: statistics.median(v) for k, v in times.items()}
            rows.append((name, medians))
        print(f"{'case':<9} {'hot µs':>8} {'flask µs':>9} {'flask/hot':>10} {'generation µs':>14}")
        for name, m in rows:
            print(
                f"{name:<9} {m['hot']:>8.1f} {m['flask']:>9.1f} {m['flask'] / m['hot']:>10.1f} "
                f"{m['generation']:>14.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
