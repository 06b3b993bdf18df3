"""The bare-WSGI floor of the serving benchmark: one constant document, no framework.

The same bytes and headers as ``bare_app.py`` (strong ETag, the gzip bytes with
their own, ``If-None-Match`` answering ``304``, gzip when the client accepts it,
``Last-Modified``, ``Cache-Control``, ``Vary``), from a plain WSGI callable with
every header list built once at import: what any Python answer under the same
gunicorn settings costs at least. The hot path's target is within 1.5x of it.

Run by ``bench/serve.py`` as ``gunicorn ... bare_wsgi:app`` with ``bench/`` on
the Python path; the same ``BENCH_*`` variables as ``bare_app.py``.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BODY_FILE = Path(os.environ["BENCH_BODY_FILE"])
PATH = os.environ.get("BENCH_PATH", "/feeds/all.atom")
CONTENT_TYPE = os.environ.get("BENCH_CONTENT_TYPE", "application/atom+xml; charset=utf-8")
MAX_AGE = int(os.environ.get("BENCH_MAX_AGE", "3600"))

BODY = BODY_FILE.read_bytes()
_gz_file = BODY_FILE.with_name(BODY_FILE.name + ".gz")
GZIPPED = _gz_file.read_bytes() if _gz_file.exists() else gzip.compress(BODY, 6, mtime=0)
ETAG = hashlib.sha256(BODY).hexdigest()[:32]
LAST_MODIFIED = email.utils.formatdate(int(BODY_FILE.stat().st_mtime), usegmt=True)


def _headers(etag: str, body: bytes | None, gzipped: bool) -> list[tuple[str, str]]:
    headers = [
        ("ETag", f'"{etag}"'),
        ("Last-Modified", LAST_MODIFIED),
        ("Cache-Control", f"public, max-age={MAX_AGE}"),
        ("Vary", "Accept-Encoding"),
    ]
    if body is not None:
        headers.append(("Content-Type", CONTENT_TYPE))
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
    return headers


_ANSWERS = {
    (gzipped, not_modified): _headers(
        ETAG + "-gz" if gzipped else ETAG,
        None if not_modified else (GZIPPED if gzipped else BODY),
        gzipped,
    )
    for gzipped in (False, True)
    for not_modified in (False, True)
}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != PATH:
        start_response("404 NOT FOUND", [("Content-Length", "0")])
        return []
    gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    etag = ETAG + "-gz" if gzipped else ETAG
    not_modified = f'"{etag}"' in environ.get("HTTP_IF_NONE_MATCH", "")
    start_response(
        "304 NOT MODIFIED" if not_modified else "200 OK", list(_ANSWERS[gzipped, not_modified])
    )
    if not_modified or environ["REQUEST_METHOD"] == "HEAD":
        return []
    return [GZIPPED if gzipped else BODY]
