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
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from feeds import pages, query, urls, wire
from feeds.errors import BadRequestError, NotFoundError, StoreError
from feeds.site import Key, Representation, Site
from feeds.sync import unrecorded_failure

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,199}")
_EXT = "(?P<ext>" + "|".join(urls.FORMATS) + ")"
_FEED = re.compile(r"(?P<name>[a-z0-9+-]{1,2000})\." + _EXT)
_ARCHIVE = re.compile(r"(?P<page>[1-9][0-9]{0,8})\." + _EXT)
_TOPIC_FEED = re.compile(r"(?P<slug>[^/]{1,200})\." + _EXT)
HTML = wire.HTML
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


class _Exact(Response):
    """A response whose status line and headers are exactly those :mod:`feeds.wire` built.

    werkzeug would drop ``Last-Modified`` from a 304 as an entity header (DESIGN.md
    promises the same validators) and add a default ``Content-Type``; the hot path
    sends these very headers, so nothing may be added or removed on the way out.
    """

    default_mimetype = None
    automatically_set_content_length = False

    def get_wsgi_headers(self, environ: Any) -> Headers:
        return Headers(self.headers)


def send(rep: Representation) -> Response:
    """The representation as a response: gzip if accepted, 304 if the client is current.

    Every header is ready-made (:func:`feeds.wire.answers`, shared with the hot path);
    nothing is rendered, compressed or formatted here.
    """
    gzipped = wire.wants_gzip(request.headers.get("Accept-Encoding", ""))
    if gzipped is None:  # weights to parse: "gzip;q=0" says no
        gzipped = request.accept_encodings["gzip"] > 0
    config = _site().config
    made = wire.answers(rep, request.path, config.base_url, config.websub_hub)
    answer = made.pick(gzipped, _not_modified(rep, wire.etag_of(rep, gzipped)))
    return _Exact(answer.body, status=answer.status, headers=list(answer.headers))


def _raw() -> Key | None:
    """This request's raw URL, the key the hot path finds a page under; None with a query.

    Only feeds take query arguments; a page filed under every query string a client
    invents would let anyone push real documents out of the bounded cache.
    """
    return None if request.query_string else wire.url_key(request.environ)


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
    key = wire.url_key(request.environ)  # filters are in the query: each is its own feed
    rep = site.hit(key)
    if rep is not None:
        return send(rep)
    match = _FEED.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no feed {spec!r}")
    selection = site.selection(match["name"])
    if selection.name != match["name"]:
        return _redirect(urls.feed(selection.name, match["ext"]))
    return send(site.feed(selection, match["ext"], _filters(), alias=key))


@bp.get("/feeds/<name>/archive/<spec>")
def archive(name: str, spec: str) -> Response:
    match = _ARCHIVE.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no archive page {spec!r}")
    site = _site()
    selection = site.selection(name)
    if selection.name != name:
        return _redirect(urls.archive(selection.name, int(match["page"]), match["ext"]))
    if _filters():
        raise BadRequestError("filters", "apply to /feeds/<name>.<format>, not to archive pages")
    rep = site.archive(selection, int(match["page"]), match["ext"], alias=_raw())
    if rep is None:
        raise NotFoundError(f"archive page {match['page']} of {name!r} is not full yet")
    return send(rep)


@bp.get("/feeds/topics/<kind>/<spec>")
def topic_feed(kind: str, spec: str) -> Response:
    site = _site()
    key = wire.url_key(request.environ)  # filters are in the query: each is its own feed
    rep = site.hit(key)
    if rep is not None:
        return send(rep)
    match = _TOPIC_FEED.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no feed {spec!r}")
    topic = site.topic_key(kind, match["slug"])
    if topic != f"{kind}/{match['slug']}":  # a name or alias: the code is canonical
        return _redirect(f"/feeds/topics/{topic}.{match['ext']}")
    return send(site.feed(query.topic_selection(topic), match["ext"], _filters(), alias=key))


@bp.get("/feeds/topics/<kind>/<slug>/archive/<spec>")
def topic_archive(kind: str, slug: str, spec: str) -> Response:
    match = _ARCHIVE.fullmatch(spec)
    if match is None:
        raise NotFoundError(f"no archive page {spec!r}")
    site = _site()
    topic = site.topic_key(kind, slug)
    if topic != f"{kind}/{slug}":
        return _redirect(f"/feeds/topics/{topic}/archive/{spec}")
    if _filters():
        raise BadRequestError("filters", "apply to feeds, not to archive pages")
    selection = query.topic_selection(topic)
    rep = site.archive(selection, int(match["page"]), match["ext"], alias=_raw())
    if rep is None:
        raise NotFoundError(f"archive page {match['page']} of {topic!r} is not full yet")
    return send(rep)


@bp.get("/topics")
def topics_index() -> Response:
    rep = _site().topics_page(alias=_raw())
    assert rep is not None
    return send(rep)


@bp.get("/topics/<kind>")
def topics_of_kind(kind: str) -> Response:
    """A kind's topics: the ``scheme`` of every topic category names this page."""
    rep = _site().topics_page(kind, alias=_raw())
    if rep is None:
        raise NotFoundError(f"no kind of topic {kind!r}")
    return send(rep)


@bp.get("/topics.opml")
def topics_opml() -> Response:
    return send(_site().topics_opml(alias=_raw()))


@bp.get("/topics/<kind>/<slug>")
def topic(kind: str, slug: str) -> Response:
    return topic_page(kind, slug, "1")


@bp.get("/topics/<kind>/<slug>/page/<number>")
def topic_page(kind: str, slug: str, number: str) -> Response:
    site = _site()
    topic = site.topic_key(kind, slug)
    if topic != f"{kind}/{slug}":
        suffix = f"/page/{number}" if "/page/" in request.path else ""
        return _redirect(f"/topics/{topic}{suffix}")
    valid = number.isascii() and number.isdigit() and len(number) < 9
    rep = site.topic_page(topic, int(number), alias=_raw()) if valid else None
    if rep is None:
        raise NotFoundError(f"topic {topic!r} page {number!r}")
    return send(rep)


def _page(status: int, body: bytes) -> Response:
    """An HTML page made for this request only (a helpful error page): never cached."""
    response = Response(body, status=status, content_type=HTML)
    response.headers["Content-Security-Policy"] = pages.SCRIPT_CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(urls.CHOOSE)
def choose() -> Response:
    """The index page's chooser, without JavaScript: redirect to the chosen feed."""
    chosen = request.args.getlist("agency")
    extension = request.args.get("format", urls.FORMATS[0])
    if extension not in urls.FORMATS:
        raise BadRequestError("format", "one of " + ", ".join(urls.FORMATS))
    site = _site()
    if not chosen:  # submitted with nothing ticked: say so, and offer the chooser again
        problem = "Tick at least one agency: the feed holds exactly the agencies you tick."
        body = pages.chooser(site.state(), site.config.base_url, extension, problem)
        return _page(400, body)
    selection = site.selection("+".join(chosen))
    response = Response(status=303)
    response.headers["Location"] = site.config.base_url + urls.feed(selection.name, extension)
    return response


@bp.get(urls.SEARCH)
def search() -> Response:
    """Releases matching words; an empty or malformed search gets a page that helps."""
    site = _site()
    args = request.args.to_dict(flat=False)
    state = site.state()
    if not any(value.strip() for value in args.get("q", [])):
        return _page(200, pages.search_help(state, site.config.base_url, args, ""))
    try:
        if len(request.query_string) > MAX_QUERY_STRING:
            raise BadRequestError("query string", f"at most {MAX_QUERY_STRING} bytes")
        wanted = pages.search_request(state, args)
    except (BadRequestError, NotFoundError) as exc:
        return _page(400, pages.search_help(state, site.config.base_url, args, _problem(exc)))
    return send(site.search_page(wanted))


def _problem(exc: BadRequestError | NotFoundError) -> str:
    """A search's mistake in words a person reads."""
    if isinstance(exc, NotFoundError):
        return f"Cannot search that agency: {exc}."
    names = {"q": "The words", "exclude": "The excluded words", "page": "The page number"}
    name = names.get(exc.parameter, exc.parameter.capitalize())
    allowed = str(exc).removeprefix(f"invalid {exc.parameter}: ")
    return f"{name}: {allowed}."


@bp.get(urls.ROBOTS)
def robots() -> Response:
    return send(_site().robots())


@bp.get(urls.OPML)
def opml() -> Response:
    return send(_site().opml(alias=_raw()))


@bp.get("/")
def index() -> Response:
    return send(_site().index_page(alias=_raw()))


@bp.get("/agencies/<slug>")
def agency(slug: str) -> Response:
    return agency_page(slug, "1")


@bp.get("/agencies/<slug>/page/<number>")
def agency_page(slug: str, number: str) -> Response:
    valid = _SLUG.fullmatch(slug) and number.isascii() and number.isdigit() and len(number) < 9
    rep = _site().agency_page(slug, int(number), alias=_raw()) if valid else None
    if rep is None:
        raise NotFoundError(f"agency {slug!r} page {number!r}")
    return send(rep)


@bp.get("/releases/<uuid>")
def release(uuid: str) -> Response:
    rep = _site().release_page(uuid, alias=_raw()) if _UUID.fullmatch(uuid) else None
    if rep is None:
        raise NotFoundError(f"release {uuid!r}")
    return send(rep)


@bp.get(urls.HEALTH)
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
    for name, value in wire.COMMON:
        response.headers[name] = value
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
