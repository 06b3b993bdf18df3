"""WebSub publishing: tell the configured hub which feed URLs changed after a sync.

A publish ping is a form POST of ``hub.mode=publish`` and ``hub.url``; the hub
then fetches the feed and pushes it to subscribers. A hub that is down costs a
logged warning, never a sync.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

from feeds import urls
from feeds.model import SyncReport
from feeds.query import ALL

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


def changed_feed_urls(report: SyncReport, base_url: str) -> list[str]:
    """Every feed URL whose document this sync changed: the combined feed, agencies', topics'.

    Multi-agency and filtered feeds are not enumerable; their subscribers poll.
    """
    if not report.agencies and not report.topics:
        return []
    names = [ALL, *report.agencies, *(urls.topic_feed_name(key) for key in report.topics)]
    return [base_url + urls.feed(name, ext) for name in names for ext in urls.FORMATS]


def publish(hub: str, urls: list[str]) -> int:
    """Ping ``hub`` for each URL; returns how many pings the hub accepted (2xx)."""
    accepted = 0
    for url in urls:
        data = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
        request = urllib.request.Request(hub, data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                accepted += 200 <= response.status < 300
        except (urllib.error.URLError, OSError) as exc:
            log.warning("websub ping failed hub=%s url=%s error=%s", hub, url, exc)
    log.info("websub pinged hub=%s urls=%d accepted=%d", hub, len(urls), accepted)
    return accepted


def after_sync(report: SyncReport, hub: str, base_url: str) -> None:
    """Ping the hub if ``hub`` is set and the sync changed any feed."""
    if hub and report.ok:
        urls = changed_feed_urls(report, base_url)
        if urls:
            publish(hub, urls)


def after_sync_in_background(report: SyncReport, hub: str, base_url: str) -> None:
    """:func:`after_sync` without waiting for the hub (used while the app starts)."""
    if hub and report.ok and (report.agencies or report.topics):
        threading.Thread(
            target=after_sync, args=(report, hub, base_url), name="websub-ping", daemon=True
        ).start()
