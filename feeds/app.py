"""The application factory: wires config, store, first sync, scheduler and web.

``create_app()`` returns a ready WSGI app: the store exists, one sync has run
(so the first request already has data) and, unless turned off, the scheduler
keeps syncing in the background. Its ``wsgi_app`` is wrapped in the hot path
(:mod:`feeds.hotpath`), which answers repeated requests for cached documents.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from feeds import config as config_module
from feeds import schedule, web, websub
from feeds.backends import open_store
from feeds.config import Config
from feeds.hotpath import HotPath
from feeds.site import Site
from feeds.store import Store
from feeds.sync import locked_sync, utcnow

log = logging.getLogger(__name__)


def create_app(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Flask:
    """Build the app from ``FEEDS_*`` settings, with ``overrides`` by setting name.

    Raises :class:`~feeds.errors.ConfigError` for bad settings or a seed directory that
    cannot be listed, and :class:`~feeds.errors.StoreError` for a store that cannot be
    opened or written (only a corrupt one is moved aside and rebuilt).
    """
    config = config_module.load(environ, overrides)
    config_module.check_seed_dir(config.seed_dir)
    config_module.configure_logging(config)
    store = open_store(config.database, serving=True)
    store.initialize(utcnow())
    report = locked_sync(store, config.seed_dir, max_file_bytes=config.max_file_bytes)
    # Changes found while the service was down reach WebSub subscribers too.
    websub.after_sync_in_background(report, config.websub_hub, config.base_url)
    return serve(config, store)


def serve(config: Config, store: Store) -> Flask:
    """The web app over a ready store (no sync here), with the scheduler if configured."""
    app = Flask(__name__)
    app.config["FEEDS"] = config
    if config.trusted_hosts:
        app.config["TRUSTED_HOSTS"] = list(config.trusted_hosts)
    site = Site(store, config)
    app.extensions["feeds.site"] = site
    app.register_blueprint(web.bp)
    app.before_request(web.only_get_and_head)
    app.after_request(web.common_headers)
    # Repeated requests for cached documents are answered in front of Flask; wrapping
    # wsgi_app (not the app) keeps the Flask object for gunicorn and the test client.
    hot = HotPath(app.wsgi_app, site, config)
    app.wsgi_app = hot  # type: ignore[method-assign]
    app.extensions["feeds.hotpath"] = hot
    if config.scheduler:
        scheduler = schedule.start(store, config)
        app.extensions["feeds.scheduler"] = scheduler
        atexit.register(schedule.stop, scheduler)
    log.info(
        "app ready seed_dir=%s database=%s base_url=%s",
        config.seed_dir,
        config.database,
        config.base_url,
    )
    return app
