"""The background sync job: APScheduler 3, one job, never overlapping.

Every process that serves the app runs this scheduler; ``max_instances=1`` and
``coalesce=True`` keep one process from stacking syncs, and the sync lock keeps
processes from overlapping (a busy lock means another process is syncing right
now, so this run is skipped).
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from feeds import websub
from feeds.config import Config
from feeds.errors import SyncBusyError
from feeds.store import Store
from feeds.sync import locked_sync

log = logging.getLogger(__name__)


def scheduled_sync(store: Store, config: Config) -> None:
    """The job: one sync if no other process is syncing."""
    try:
        report = locked_sync(
            store,
            config.seed_dir,
            config.lock_path,
            max_file_bytes=config.max_file_bytes,
            blocking=False,
        )
    except SyncBusyError:
        log.debug("sync skipped: another process is syncing")
        return
    websub.after_sync(report, config.websub_hub, config.base_url)


def start(store: Store, config: Config) -> BackgroundScheduler:
    """Start the scheduler with the sync job every ``config.sync_interval`` seconds."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        scheduled_sync,
        "interval",
        seconds=config.sync_interval,
        args=(store, config),
        id="sync",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    scheduler.start()
    log.info("scheduler started interval=%s", config.sync_interval)
    return scheduler
