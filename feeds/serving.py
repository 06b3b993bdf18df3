"""gunicorn settings for production, shared by ``feeds serve`` and ``deploy/gunicorn.conf.py``.

Threaded workers (a feed request waits on nothing but a small SQLite read),
bounded timeouts, key=value access log lines, and a clean scheduler shutdown
when a worker exits.
"""

from __future__ import annotations

from typing import Any

from feeds import schedule
from feeds.config import Config

ACCESS_LOG_FORMAT = (
    'remote=%(h)s method=%(m)s path="%(U)s" query="%(q)s" status=%(s)s bytes=%(B)s '
    'ms=%(M)s agent="%(a)s"'
)


def options(config: Config) -> dict[str, Any]:
    """gunicorn settings for this configuration."""
    return {
        "bind": f"{config.host}:{config.port}",
        "workers": config.workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 60,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "loglevel": config.log_level.lower(),
        "worker_exit": worker_exit,
    }


def worker_exit(server: Any, worker: Any) -> None:
    """Stop this worker's scheduler; a sync in flight is one transaction and loses nothing."""
    app = getattr(worker, "wsgi", None)
    scheduler = getattr(app, "extensions", {}).get("feeds.scheduler")
    if scheduler is not None:
        schedule.stop(scheduler)
