"""The bare-Flask baseline of the serving benchmark: one constant document.

Serves the bytes of ``BENCH_BODY_FILE`` (and, if present, ``BENCH_BODY_FILE.gz``
as the gzip bytes) at ``BENCH_PATH``, with what our service puts on a feed
response and nothing more: a strong ETag (the gzip bytes have their own),
``If-None-Match`` answering ``304``, gzip when the client accepts it,
``Last-Modified``, ``Cache-Control`` and ``Vary``. No store, no cache lookup,
no rendering: the floor for a Flask app under the same gunicorn settings.

Run by ``bench/serve.py`` as ``gunicorn ... bare_app:app`` with ``bench/`` on
the Python path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, request

BODY_FILE = Path(os.environ["BENCH_BODY_FILE"])
PATH = os.environ.get("BENCH_PATH", "/feeds/all.atom")
CONTENT_TYPE = os.environ.get("BENCH_CONTENT_TYPE", "application/atom+xml; charset=utf-8")
MAX_AGE = int(os.environ.get("BENCH_MAX_AGE", "3600"))

BODY = BODY_FILE.read_bytes()
_gz_file = BODY_FILE.with_name(BODY_FILE.name + ".gz")
GZIPPED = _gz_file.read_bytes() if _gz_file.exists() else gzip.compress(BODY, 6, mtime=0)
ETAG = hashlib.sha256(BODY).hexdigest()[:32]
LAST_MODIFIED = datetime.fromtimestamp(int(BODY_FILE.stat().st_mtime), UTC)

app = Flask(__name__)


@app.get(PATH)
def document() -> Response:
    gzipped = request.accept_encodings["gzip"] > 0
    etag = ETAG + "-gz" if gzipped else ETAG
    if request.if_none_match.contains_weak(etag):
        response = Response(status=304)
    else:
        response = Response(GZIPPED if gzipped else BODY, content_type=CONTENT_TYPE)
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    response.last_modified = LAST_MODIFIED
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response.headers["Vary"] = "Accept-Encoding"
    return response
