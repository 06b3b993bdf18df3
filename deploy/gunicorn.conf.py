"""gunicorn configuration: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every value comes from feeds.serving (the same settings `feeds serve` uses),
driven by the FEEDS_* environment variables (FEEDS_HOST, FEEDS_PORT,
FEEDS_WORKERS, FEEDS_LOG_LEVEL, ...).
"""

from feeds.config import load
from feeds.serving import options

globals().update(options(load()))
