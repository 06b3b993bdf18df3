"""HTTP: maps URLs to the site's representations. The only place that knows status codes.

Conditional GET happens here, before anything is rendered for a cached
representation: a strong ETag per byte sequence (gzip bytes have their own),
``If-None-Match`` (weak comparison, lists, ``*``) winning over
``If-Modified-Since``, ``304`` with no body and the same validators. Errors
are one plain line, never a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from feeds import pages, query
from feeds.errors import BadRequestError, NotFoundError, StoreError
from feeds.site import Representation, Site
from feeds.sync import unrecorded_failure

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,199}")
_FEED = re.compile(r"(?P<name>[a-z0-9+-]{1,2000})\.(?P<ext>atom|rss|json)")
_ARCHIVE = re.compile(r"(?P<page>[1-9][0-9]{0,8})\.(?P<ext>atom|rss|json)")
FORMATS = ("atom", "rss", "json")
HTML = "text/html; charset=utf-8"
#: Longest query string accepted at all (each filter has its own, smaller bound).
MAX_QUERY_STRING = 1024
#: Seconds a client is asked to wait when the store cannot answer (a database restart).
STORE_RETRY_AFTER = 5


def _site() -> Site:
    site: Site = current_app.extensions["feeds.site"]
    return site


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _not_modified(rep: Representation, etag: str) -> bool:
    headers = request.headers
    if "If-None-Match" in headers:
        tags = request.if_none_match
        # Either encoding's tag names this same version: the client's copy is current.
        return bool(tags.star_tag or tags.contains_weak(rep.etag) or tags.contains_weak(etag))
    if "If-Modified-Since" in headers:
        since = request.if_modified_since
        return since is not None and rep.last_modified <= since
    return False


class _Response(Response):
    """A response whose 304s keep ``Last-Modified``.

    werkzeug drops it from every 304 as an entity header; DESIGN.md promises the same
    validators on a 304, and clients that compare ``If-Modified-Since`` as an echoed
    string need it back.
    """

    def get_wsgi_headers(self, environ: Any) -> Any:
        headers = super().get_wsgi_headers(environ)
        if self.status_code == 304 and "Last-Modified" in self.headers:
            headers["Last-Modified"] = self.headers["Last-Modified"]
        return headers


def send(rep: Representation) -> Response:
    """The representation as a response: gzip if accepted, 304 if the client is current.

    Every header value is ready-made on the representation; nothing is rendered,
    compressed or formatted here.
    """
    accept = request.headers.get("Accept-Encoding", "")
    # Parse the header only when it has weights ("gzip;q=0" says no); most say plainly.
    gzipped = "gzip" in accept and (";" not in accept or request.accept_encodings["gzip"] > 0)
    etag = rep.etag + "-gz" if gzipped else rep.etag
    headers = [
        ("ETag", f'"{etag}"'),
        ("Last-Modified", rep.http_date),
        ("Cache-Control", f"public, max-age={rep.max_age}"),
        ("Vary", "Accept-Encoding"),
    ]
    if rep.content_type == HTML:
        headers.append(("Content-Security-Policy", pages.SCRIPT_CSP))
        headers.append(("Referrer-Policy", "no-referrer"))
    else:
        hub = _site().config.websub_hub
        if hub:
            headers.append(("Link", f'<{hub}>; rel="hub"'))
            headers.append(("Link", f'<{_site().config.base_url}{request.path}>; rel="self"'))
    if _not_modified(rep, etag):
        return _Response(status=304, headers=headers)
    headers.append(("Content-Type", rep.content_type))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return _Response(rep.gzipped if gzipped else rep.body, headers=headers)


def _filters() -> query.Filters:
    if len(request.query_string) > MAX_QUERY_STRING:
        raise BadRequestError("query string", f"at most {MAX_QUERY_STRING} bytes")
    return query.filters(request.args.to_dict(flat=False))


def _redirect(path: str) -> Response:
    location = _site().config.base_url + path
    if request.query_string:
        location += "?" + request.query_string.decode("ascii", "replace")
    response = Response(f"Moved to {location}\n", status=301, content_type="text/plain")
    response.headers["Location"] = location
    return response


@bp.get("/feeds/<spec>")
def feed(spec: str) -> Response:
    site = _site()
    key = ("url", spec, request.query_string.decode("latin-1"))
    rep = site.hit(key)
    if rep is not None:
        return send(rep)
    match = _FEED.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no feed {spec!r}")
    selection = site.selection(match["name"])
    if selection.name != match["name"]:
        return _redirect(f"/feeds/{selection.name}.{match['ext']}")
    return send(site.feed(selection, match["ext"], _filters(), alias=key))


@bp.get("/feeds/<name>/archive/<spec>")
def archive(name: str, spec: str) -> Response:
    match = _ARCHIVE.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no archive page {spec!r}")
    site = _site()
    selection = site.selection(name)
    if selection.name != name:
        return _redirect(f"/feeds/{selection.name}/archive/{spec}")
    if _filters():
        raise BadRequestError("filters", "apply to /feeds/<name>.<format>, not to archive pages")
    rep = site.archive(selection, int(match["page"]), match["ext"])
    if rep is None:
        raise NotFoundError(f"archive page {match['page']} of {name!r} is not full yet")
    return send(rep)


@bp.get("/feeds/choose")
def choose() -> Response:
    """The index page's chooser, without JavaScript: redirect to the chosen feed."""
    chosen = request.args.getlist("agency")
    extension = request.args.get("format", "atom")
    if extension not in FORMATS:
        raise BadRequestError("format", "one of atom, rss, json")
    if not chosen:  # submitted with nothing ticked: back to the chooser
        response = Response(status=303)
        response.headers["Location"] = f"{_site().config.base_url}/#choose"
        return response
    selection = _site().selection("+".join(chosen))
    response = Response(status=303)
    response.headers["Location"] = f"{_site().config.base_url}/feeds/{selection.name}.{extension}"
    return response


@bp.get("/feeds.opml")
def opml() -> Response:
    return send(_site().opml())


@bp.get("/")
def index() -> Response:
    return send(_site().index_page())


@bp.get("/agencies/<slug>")
def agency(slug: str) -> Response:
    return agency_page(slug, "1")


@bp.get("/agencies/<slug>/page/<number>")
def agency_page(slug: str, number: str) -> Response:
    valid = _SLUG.fullmatch(slug) and number.isascii() and number.isdigit() and len(number) < 9
    rep = _site().agency_page(slug, int(number)) if valid else None
    if rep is None:
        raise NotFoundError(f"agency {slug!r} page {number!r}")
    return send(rep)


@bp.get("/releases/<uuid>")
def release(uuid: str) -> Response:
    rep = _site().release_page(uuid) if _UUID.fullmatch(uuid) else None
    if rep is None:
        raise NotFoundError(f"release {uuid!r}")
    return send(rep)


@bp.get("/healthz")
def healthz() -> Any:
    store = _site().store
    try:
        last = store.last_syncs(1)
        last_good = store.last_good_sync()
        counts = store.counts()
        stored_problems = store.problems()
    except Exception as exc:  # the store cannot even be read: say so, never a 500 page
        log.exception("healthz cannot read the store")
        return _health("degraded", f"store unreadable: {exc}", None, None, {}, {}, {})
    # Problems (input not published as written) and warnings (near-misses), by file.
    problems: dict[str, list[dict[str, Any]]] = {}
    warnings: dict[str, list[dict[str, Any]]] = {}
    for problem in stored_problems:
        listed = warnings if problem.severity == "warning" else problems
        listed.setdefault(problem.path, []).append(
            {"line": problem.line, "message": problem.message}
        )
    last_sync = last[0] if last else None
    unrecorded = unrecorded_failure(store)
    if unrecorded is not None:  # newer than anything the store could log
        last_sync = {
            "started": unrecorded.started.isoformat(),
            "finished": unrecorded.finished.isoformat(),
            "ok": False,
            "error": unrecorded.error,
        }
    ok = bool(last_sync and last_sync["ok"])
    reason = None if ok else (last_sync or {}).get("error") or "no sync has completed yet"
    status = "ok" if ok else "degraded"
    return _health(status, reason, last_sync, last_good, counts, problems, warnings)


def _health(
    status: str,
    reason: str | None,
    last_sync: dict[str, Any] | None,
    last_good: dict[str, Any] | None,
    counts: dict[str, int],
    problems: dict[str, list[dict[str, Any]]],
    warnings: dict[str, list[dict[str, Any]]],
) -> Response:
    response = jsonify(
        status=status,
        reason=reason,
        last_sync=last_sync,
        last_good_sync=last_good,
        counts=counts,
        problems=problems,
        warnings=warnings,
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


def only_get_and_head() -> Response | None:
    """Everything here is read-only: any other method (OPTIONS too) gets 405."""
    if request.method not in ("GET", "HEAD"):
        response = _plain(405, "405 Method Not Allowed")
        response.headers["Allow"] = "GET, HEAD"
        return response
    return None


def common_headers(response: Response) -> Response:
    """Headers every response carries, errors included."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.app_errorhandler(NotFoundError)
def not_found(exc: NotFoundError) -> Response:
    return _plain(404, f"Not found: {exc}")


@bp.app_errorhandler(BadRequestError)
def bad_request(exc: BadRequestError) -> Response:
    return _plain(400, f"Bad request: {exc}")


@bp.app_errorhandler(StoreError)
def store_unavailable(exc: StoreError) -> Response:
    """The store cannot answer a document not cached here: try again soon, never a 500.

    Cached documents never get here (they are served without the store), so while a
    shared database restarts, readers of what was served before see no gap.
    """
    log.warning("store unavailable path=%s reason=%r", request.path, str(exc))
    response = _plain(503, "503 Service Unavailable: the store cannot be reached; retry soon")
    response.headers["Retry-After"] = str(STORE_RETRY_AFTER)
    return response


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    response = _plain(exc.code or 500, f"{exc.code} {exc.name}")
    if exc.code == 405:
        response.headers["Allow"] = "GET, HEAD"
    return response


@bp.app_errorhandler(Exception)
def internal_error(exc: Exception) -> Response:
    log.exception("request failed path=%s", request.path)
    return _plain(500, "500 Internal Server Error")
