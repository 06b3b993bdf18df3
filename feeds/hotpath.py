"""The hot path: repeated requests for cached documents answered without entering Flask.

Most traffic is pollers asking again for a feed they already have. For a
``GET``/``HEAD`` whose raw URL (:func:`feeds.wire.url_key`) names a
representation the site holds and that is still valid (one generation
question, :meth:`feeds.site.Site.hit`), this WSGI layer sends the very
answer the Flask view would (:func:`feeds.wire.answers`: same status line,
headers in the same order, same bytes). Everything else falls through to the
wrapped app unchanged: misses, other methods, a ``Host`` it cannot vouch for
(Flask answers ``400`` to an untrusted one), and conditional or
``Accept-Encoding`` headers outside the plain forms parsed here.

Falling through is always correct, only slower; answering is only allowed
where the answer provably matches Flask's, which ``tests/test_hotpath.py``
checks case by case against the Flask app itself.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC
from typing import Any

from feeds import wire
from feeds.config import Config
from feeds.site import Representation, Site

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: Prepared answers kept per worker (one per URL; a few hundred bytes each). Cleared
#: when full: the site's own cache bounds what is worth keeping, this only saves work.
MAX_PREPARED = 4096
#: An ``If-None-Match`` list of quoted tags, each maybe weak (``W/``), as clients send
#: them; anything else (unquoted tags, ``w/``, empty items) is left to werkzeug.
_TAG_LIST = re.compile(r'[ \t]*(?:W/)?"[^"]*"[ \t]*(?:,[ \t]*(?:W/)?"[^"]*"[ \t]*)*')
_TAG = re.compile(r'"([^"]*)"')
_HOST_NAME = re.compile(r"[a-z0-9.-]+", re.ASCII | re.IGNORECASE)
_PORT = re.compile(r"[1-9][0-9]{0,4}")


class HotPath:
    """WSGI middleware in front of the Flask app; see the module docstring.

    ``answered`` counts the requests it answered itself (a statistic for tests and
    benchmarks; increments from concurrent threads may rarely be lost).
    """

    def __init__(self, app: WSGIApp, site: Site, config: Config) -> None:
        self.app = app
        self.site = site
        self.base_url = config.base_url
        self.hub = config.websub_hub
        # Only plain host names: ".example.org" (any subdomain) and IDNA forms are
        # werkzeug's to match, so such requests fall through to it.
        self.trusted: frozenset[str] | None = None
        if config.trusted_hosts:
            self.trusted = frozenset(h for h in config.trusted_hosts if _HOST_NAME.fullmatch(h))
        self.answered = 0
        self._prepared: dict[Hashable, tuple[Representation, wire.Answers]] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        self.answered += 1
        start_response(answer.status, list(answer.headers))
        if environ["REQUEST_METHOD"] == "HEAD" or not answer.body:
            return []
        return [answer.body]

    def _answer(self, environ: dict[str, Any]) -> wire.Answer | None:
        """Flask's answer to this request, if it is one of the plain cached cases; else None."""
        method = environ.get("REQUEST_METHOD")
        if method != "GET" and method != "HEAD":
            return None
        if self.trusted is not None and not self._trusted_host(environ.get("HTTP_HOST")):
            return None
        gzipped = wire.wants_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if gzipped is None:
            return None
        key = wire.url_key(environ)
        rep = self.site.hit(key)
        if rep is None:
            return None
        not_modified = _not_modified(
            rep,
            wire.etag_of(rep, gzipped),
            environ.get("HTTP_IF_NONE_MATCH"),
            environ.get("HTTP_IF_MODIFIED_SINCE"),
        )
        if not_modified is None:
            return None
        return self._answers(key, rep, environ).pick(gzipped, not_modified)

    def _answers(self, key: Hashable, rep: Representation, environ: dict[str, Any]) -> wire.Answers:
        known = self._prepared.get(key)
        if known is not None and known[0] is rep:
            return known[1]
        path = wire.request_path(environ.get("PATH_INFO", ""))
        made = wire.answers(rep, path, self.base_url, self.hub)
        if len(self._prepared) >= MAX_PREPARED:
            self._prepared.clear()
        self._prepared[key] = (rep, made)
        return made

    def _trusted_host(self, host: str | None) -> bool:
        """True only for ``name`` or ``name:port`` with ``name`` exactly a trusted host.

        werkzeug accepts these too (it ignores the port); whatever this cannot vouch
        for goes to Flask, which accepts it or answers ``400``.
        """
        if not host or self.trusted is None:
            return False
        name, colon, port = host.partition(":")
        if colon and not (_PORT.fullmatch(port) and int(port) <= 65535):
            return False
        return name in self.trusted


def _not_modified(
    rep: Representation, etag: str, if_none_match: str | None, if_modified_since: str | None
) -> bool | None:
    """Whether the client's copy is current, as werkzeug decides it; None if unsure.

    ``If-None-Match`` wins over ``If-Modified-Since``; either encoding's tag names this
    same version (weak comparison, lists, ``*``).
    """
    if if_none_match is not None:
        if if_none_match == "*":
            return True
        if not _TAG_LIST.fullmatch(if_none_match):
            return None
        tags = _TAG.findall(if_none_match)
        return rep.etag in tags or etag in tags
    if if_modified_since is not None:
        if if_modified_since == rep.http_date:  # what pollers echo
            return True
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False  # werkzeug reads an unparsable date as no date
        except Exception:  # anything werkzeug might treat otherwise: let it
            return None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return rep.last_modified <= since
    return False
