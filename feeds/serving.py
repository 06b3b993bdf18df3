"""gunicorn settings for production, shared by ``feeds serve`` and ``deploy/gunicorn.conf.py``.

Threaded workers (a feed request waits on nothing but a small SQLite read),
bounded timeouts, key=value access log lines, a clean scheduler shutdown
when a worker exits, and no control socket in the user's home directory.
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
        **_no_control_socket(),
    }


def _no_control_socket() -> dict[str, Any]:
    """Recent gunicorn versions open a control socket under ``~/.gunicorn`` unless told not to.

    A service has no business writing into its user's home directory; older gunicorn
    versions have no such setting (and no socket).
    """
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS):
        return {"control_socket_disable": True}
    return {}


def worker_exit(server: Any, worker: Any) -> None:
    """Stop this worker's scheduler; a sync in flight is one transaction and loses nothing."""
    app = getattr(worker, "wsgi", None)
    scheduler = getattr(app, "extensions", {}).get("feeds.scheduler")
    if scheduler is not None:
        schedule.stop(scheduler)
