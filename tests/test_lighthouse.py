"""Lighthouse audits of the index, an agency page and a release page, when Lighthouse is there.

Lighthouse is an npm package, not a Python one: set ``LIGHTHOUSE`` to its
executable (``npm install lighthouse`` puts it in ``node_modules/.bin``) or
have ``lighthouse`` on ``PATH``; otherwise the test skips. Accessibility and
best practices must score 100 and SEO at least 95. Performance is not asserted:
it times the page, and a shared CI machine's load would make it flaky.
The search page is left out on purpose: ``robots.txt`` keeps crawlers out of
searches, which Lighthouse counts against its SEO score.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import REAL_SEED, Server, servers

pytestmark = pytest.mark.e2e

LIGHTHOUSE = os.environ.get("LIGHTHOUSE") or shutil.which("lighthouse")
CHROMIUM = shutil.which("chromium")
if LIGHTHOUSE is None or CHROMIUM is None:
    pytest.skip(
        "Lighthouse (set LIGHTHOUSE=.../node_modules/.bin/lighthouse) or Chromium is missing",
        allow_module_level=True,
    )
CHROME_FLAGS = "--headless --no-sandbox --disable-gpu --disable-background-networking"
MINIMUM = {"accessibility": 100, "best-practices": 100, "seo": 95}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("lighthouse")
    seeds = tmp / "seeds"
    seeds.mkdir()
    shutil.copy(REAL_SEED, seeds / REAL_SEED.name)
    with servers(tmp) as pool:
        yield pool.feeds_serve(
            {
                "FEEDS_SEED_DIR": str(seeds),
                "FEEDS_DATABASE": str(tmp / "db" / "feeds.sqlite3"),
                "FEEDS_WORKERS": "1",
            }
        )


def scores(url: str, preset: str, out: Path) -> dict[str, int]:
    command = [
        str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}",
        f"--chrome-flags={CHROME_FLAGS}", "--only-categories=accessibility,best-practices,seo",
    ]  # fmt: skip
    if preset == "desktop":
        command.append("--preset=desktop")
    env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    report = json.loads(out.read_text(encoding="utf-8"))
    return {k: round(v["score"] * 100) for k, v in report["categories"].items()}


@pytest.mark.parametrize("preset", ["mobile", "desktop"])
def test_pages_score_in_lighthouse(server: Server, preset: str, tmp_path: Path) -> None:
    release = next(
        item["url"] for item in server.get("/feeds/all.json").json()["items"] if item["url"]
    )
    low = []
    for url in [server.url("/"), server.url("/agencies/interpol"), release]:
        got = scores(url, preset, tmp_path / "report.json")
        low += [f"{url} {k}: {got[k]} < {v}" for k, v in MINIMUM.items() if got[k] < v]
    assert not low, "\n".join(low)
