"""What a cached representation puts on the wire: its URL key, status lines and headers.

Built in one place for the two ways a document is answered, the Flask view
(:mod:`feeds.web`) and the WSGI hot path in front of it
(:mod:`feeds.hotpath`), so that their bytes cannot drift apart. The four
answers a representation can get at one URL (identity or gzip, 200 or 304)
are built once and reused; nothing here parses a request.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from feeds import pages
from feeds.site import CONTENT_TYPES, Representation

#: Headers every response carries, errors included (web puts them on Flask's too).
COMMON = (("X-Content-Type-Options", "nosniff"),)
#: werkzeug's spelling of the status lines, kept so that a poller sees one server.
OK = "200 OK"
NOT_MODIFIED = "304 NOT MODIFIED"
HTML = CONTENT_TYPES["html"]

Header = tuple[str, str]


def url_key(environ: Mapping[str, object]) -> tuple[Hashable, ...]:
    """The cache key of a request's raw URL: path and query string as the server passed them.

    Both web (which files a representation under it) and the hot path (which looks
    it up) take it from the WSGI environ, so a repeated request parses nothing.
    """
    return ("url", environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))


def request_path(path_info: str) -> str:
    """``PATH_INFO`` as werkzeug's ``request.path`` spells it (for the WebSub ``self`` link)."""
    return "/" + path_info.encode("latin-1").decode("utf-8", "replace").lstrip("/")


def wants_gzip(accept_encoding: str) -> bool | None:
    """Whether the gzip bytes answer this ``Accept-Encoding``; None if it has weights to parse.

    Most clients say plainly (``gzip, deflate, br``); ``gzip;q=0`` means no, which only
    a full parse of the weights can tell.
    """
    if "gzip" not in accept_encoding:
        return False
    if ";" in accept_encoding:
        return None
    return True


@dataclass(frozen=True, slots=True)
class Answer:
    """One complete response: status line, headers in wire order, body for ``GET``."""

    status: str
    headers: tuple[Header, ...]
    body: bytes


@dataclass(frozen=True, slots=True)
class Answers:
    """The four answers one representation gets at one URL."""

    plain: Answer
    gzip: Answer
    plain_not_modified: Answer
    gzip_not_modified: Answer

    def pick(self, gzipped: bool, not_modified: bool) -> Answer:
        if not_modified:
            return self.gzip_not_modified if gzipped else self.plain_not_modified
        return self.gzip if gzipped else self.plain


def etag_of(rep: Representation, gzipped: bool) -> str:
    """The strong ETag (unquoted) of the bytes sent: the gzip bytes have their own."""
    return rep.etag + "-gz" if gzipped else rep.etag


def answers(rep: Representation, path: str, base_url: str, hub: str) -> Answers:
    """Every answer ``rep`` can get at ``path`` (the request's path, for the ``self`` link).

    A 304 carries the 200's validators and caching headers (DESIGN.md promises the
    same validators) but no entity headers and no body.
    """
    extra: list[Header] = []
    if rep.content_type == HTML:
        extra.append(("Content-Security-Policy", pages.SCRIPT_CSP))
        extra.append(("Referrer-Policy", "no-referrer"))
    elif hub:
        extra.append(("Link", f'<{hub}>; rel="hub"'))
        extra.append(("Link", f'<{base_url}{path}>; rel="self"'))

    def build(gzipped: bool, not_modified: bool) -> Answer:
        headers: list[Header] = [
            ("ETag", f'"{etag_of(rep, gzipped)}"'),
            ("Last-Modified", rep.http_date),
            ("Cache-Control", f"public, max-age={rep.max_age}"),
            ("Vary", "Accept-Encoding"),
            *extra,
        ]
        if not_modified:
            return Answer(NOT_MODIFIED, (*headers, *COMMON), b"")
        body = rep.gzipped if gzipped else rep.body
        headers.append(("Content-Type", rep.content_type))
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        return Answer(OK, (*headers, *COMMON), body)

    return Answers(build(False, False), build(True, False), build(False, True), build(True, True))
