"""HTTP: maps URLs to the site's bytes. The only place that knows about status codes.

Errors are one plain line, never a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from feeds.site import Site

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)

ATOM = "application/atom+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,199}")


def _site() -> Site:
    site: Site = current_app.extensions["feeds.site"]
    return site


def _not_found(what: str) -> Response:
    return _plain(404, f"Not found: {what}")


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


@bp.get("/feeds/<name>.atom")
def atom_feed(name: str) -> Response:
    if name != "all" and not _SLUG.fullmatch(name):
        return _not_found(f"feed {name!r}")
    body = _site().atom(name)
    if body is None:
        return _not_found(f"no agency {name!r} has ever been seen")
    return Response(body, content_type=ATOM)


@bp.get("/")
def index() -> Response:
    return Response(_site().index_page(), content_type=HTML)


@bp.get("/agencies/<slug>")
def agency(slug: str) -> Response:
    body = _site().agency_page(slug) if _SLUG.fullmatch(slug) else None
    if body is None:
        return _not_found(f"agency {slug!r}")
    return Response(body, content_type=HTML)


@bp.get("/releases/<uuid>")
def release(uuid: str) -> Response:
    body = _site().release_page(uuid) if _UUID.fullmatch(uuid) else None
    if body is None:
        return _not_found(f"release {uuid!r}")
    return Response(body, content_type=HTML)


@bp.get("/healthz")
def healthz() -> Any:
    store = _site().store
    last = store.last_syncs(1)
    problems: dict[str, list[dict[str, Any]]] = {}
    for problem in store.problems():
        problems.setdefault(problem.path, []).append(
            {"line": problem.line, "message": problem.message}
        )
    last_sync = last[0] if last else None
    return jsonify(
        status="ok" if last_sync and last_sync["ok"] else "degraded",
        last_sync=last_sync,
        last_good_sync=store.last_good_sync(),
        counts=store.counts(),
        problems=problems,
    )


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    response = _plain(exc.code or 500, f"{exc.code} {exc.name}")
    if exc.code == 405:
        response.headers["Allow"] = ", ".join(
            getattr(exc, "valid_methods", None) or ["GET", "HEAD"]
        )
    return response


@bp.app_errorhandler(Exception)
def internal_error(exc: Exception) -> Response:
    log.exception("request failed")
    return _plain(500, "500 Internal Server Error")
