"""The background sync job: APScheduler 3, one job, never overlapping.

Every process that serves the app runs this scheduler; ``max_instances=1`` and
``coalesce=True`` keep one process from stacking syncs, and the sync lock keeps
processes from overlapping (a busy lock means another process is syncing right
now, so this run is skipped).
"""

from __future__ import annotations

import logging
from datetime import UTC

from apscheduler.executors.debug import DebugExecutor
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
            max_file_bytes=config.max_file_bytes,
            blocking=False,
        )
    except SyncBusyError:
        log.debug("sync skipped: another process is syncing")
        return
    websub.after_sync(report, config.websub_hub, config.base_url)


def start(store: Store, config: Config) -> BackgroundScheduler:
    """Start the scheduler with the sync job every ``config.sync_interval`` seconds."""
    # The job runs in the scheduler's own daemon thread (DebugExecutor runs it inline,
    # despite its name): a thread pool refuses work once the interpreter starts to
    # exit, and APScheduler logs an error for every due job while a worker stops.
    # A sync cut short at exit is one transaction rolled back: nothing is lost.
    scheduler = BackgroundScheduler(timezone=UTC, executors={"default": DebugExecutor()})
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


def stop(scheduler: BackgroundScheduler) -> None:
    """Stop the scheduler without racing it.

    APScheduler's loop may wake once more after ``shutdown`` and hand a due job to an
    executor that is already shut down (an error in the log at every stop). Removing
    the job first, under the scheduler's own lock, leaves that last wake-up nothing
    to run. A sync in flight is one transaction: not waiting for it loses nothing.
    """
    if scheduler.running:
        scheduler.remove_all_jobs()
        scheduler.shutdown(wait=False)
