"""The HTML pages in a real browser (Chromium via Playwright) against a real ``feeds serve``.

What a person sees on ``/``, an agency page and a release page reached by
following links: headings, the agency table with its counts, release dates or
"date not stated", bullet lists, feed links that answer, copy buttons that
appear and work with JavaScript, pages that still work without it, the agency
chooser, no horizontal scrolling on a phone, and no console error or
Content-Security-Policy violation anywhere. Full-page screenshots go to
``screenshots/`` under pytest's temporary directory for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from .servers import REAL_SEED, Server, fetch, servers

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip(
        "Chromium is not installed (apt-get install chromium); .ci/run installs it",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)

ROOT = Path(__file__).resolve().parent.parent
#: Where screenshots go: ``screenshots/`` under pytest's temporary directory (set by
#: the ``server`` fixture), for a person to look at after a run.
SCREENSHOTS: list[Path] = []
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Playwright's waits, in milliseconds: bounded and short (everything is local).
TIMEOUT_MS = 10_000
PHONE = {"width": 375, "height": 800}
WIDE = {"width": 1400, "height": 900}
AGENCY_COUNTS = {"Eurojust": 1, "Europol": 2, "Interpol": 5, "NATO": 2}
UNICEF_TITLE = (
    "INTERPOL and UNICEF sign cooperation agreement to address child sexual exploitation and abuse"
)
UNICEF_BULLETS = (
    "Supporting the establishment of specialist units",
    "Advancing training and systematic professional development",
    "Promoting and facilitating better linkages between law enforcement and social services",
)
COLOMBIA_TITLE = "Colombia: Two arrested for live streaming child sexual abuse"
#: Records Content-Security-Policy violations the page reports (init scripts bypass the CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});
"""


@dataclass
class Watched:
    """A page with everything it reported that a developer console would show."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        # Empty without JavaScript: nothing can run, so nothing can be blocked.
        violations: list[str] = self.page.evaluate("window.__cspViolations || []")
        problems = self.errors + [f"CSP violation: {v}" for v in violations]
        assert not problems, f"{self.page.url}: console errors:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    SCREENSHOTS[:] = [tmp_path_factory.getbasetemp() / "screenshots-pages"]
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Any, *, javascript: bool = True, viewport: dict[str, int] = WIDE) -> Watched:
    context = browser.new_context(java_script_enabled=javascript, viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page)
    if javascript:
        page.add_init_script(CSP_LISTENER)

    def on_console(msg: Any) -> None:
        url = msg.location.get("url") or ""
        # When the browser asks for the icon is a race with the test; that it finds one is
        # checked deterministically by test_the_browser_finds_an_icon.
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            watched.errors.append(f"console.{msg.type}: {msg.text} ({url or 'no URL'})")

    page.on("console", on_console)
    page.on(
        "response",
        lambda r: (
            watched.errors.append(f"{r.request.method} {r.url} answered {r.status}")
            if r.status >= 400
            else None
        ),
    )
    page.on("pageerror", lambda exc: watched.errors.append(f"uncaught: {exc}"))
    return watched


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = new_page(browser)
    yield page
    page.page.context.close()


@pytest.fixture
def no_js(browser: Any) -> Iterator[Watched]:
    page = new_page(browser, javascript=False)
    yield page
    page.page.context.close()


def visit(watched: Watched, url: str) -> None:
    response = watched.page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, f"{url}: {response and response.status}"


def screenshot(watched: Watched, name: str) -> None:
    folder = SCREENSHOTS[0]
    folder.mkdir(parents=True, exist_ok=True)
    watched.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def agency_table(page: Any) -> dict[str, int]:
    """Agency name -> release count, as the index's agency chips show them."""
    chips = page.locator("ul.chips > li > a")
    shown: dict[str, int] = {}
    for i in range(chips.count()):
        name = chips.nth(i).locator("strong").inner_text().strip()
        count = chips.nth(i).locator("span").inner_text().split(" release")[0]
        shown[name] = int(count)
    return shown


def our_links(page: Any, base: str) -> list[str]:
    """Every distinct href on the page (links and <link> elements) under our base URL."""
    hrefs: list[str] = page.eval_on_selector_all(
        "a[href], link[href]", "els => els.map(e => e.href)"
    )
    return sorted({h.split("#")[0] for h in hrefs if h.startswith(base + "/") or h == base})


def assert_links_answer(page: Any, base: str) -> list[str]:
    links = our_links(page, base)
    dead = [f"{url} -> {fetch(url).status}" for url in links if fetch(url).status != 200]
    assert not dead, f"{page.url} links to pages that do not answer 200:\n" + "\n".join(dead)
    return links


def date_text(value: date) -> str:
    return f"{value.day} {value.strftime('%B %Y')}"


def published_by_url(server: Server) -> dict[str, date | None]:
    """Each release page URL with its published date, from the combined JSON Feed."""
    items = server.get("/feeds/all.json").json()["items"]
    return {
        item["url"]: date.fromisoformat(item["date_published"][:10])
        if item.get("date_published")
        else None
        for item in items
    }


def assert_list_dates(page: Any, server: Server) -> int:
    """Every listed release shows its published date, or "date not stated" when unknown."""
    published = published_by_url(server)
    items = page.locator("ol.releases > li")
    for i in range(items.count()):
        item = items.nth(i)
        href = item.locator("h3 a").get_attribute("href")
        meta = item.locator(".meta").inner_text()
        assert href in published, f"{href} is listed but not in /feeds/all.json"
        known = published[href]
        expected = date_text(known) if known else "date not stated"
        assert expected in meta, f"{href}: shows {meta!r}, expected {expected!r}"
    return int(items.count())


def test_index(server: Server, watched: Watched) -> None:
    page = watched.page
    visit(watched, server.url("/"))
    assert page.locator("h1").inner_text() == "Agency press releases"
    assert page.title() == "Agency press releases"
    assert "10 releases from 4 agencies" in page.locator("main").inner_text()
    assert agency_table(page) == AGENCY_COUNTS
    for name in AGENCY_COUNTS:
        link = page.locator("ul.chips").get_by_role("link", name=name)
        assert link.get_attribute("href") == server.url(f"/agencies/{name.lower()}")
    assert assert_list_dates(page, server) == 10

    links = assert_links_answer(page, server.base)
    for name in ["all", *(n.lower() for n in AGENCY_COUNTS)]:
        assert server.url(f"/feeds/{name}.atom") in links  # autodiscovery
    assert server.url("/feeds.opml") in links
    discovered = page.eval_on_selector_all(
        'link[rel="alternate"][type="application/atom+xml"]', "els => els.map(e => e.href)"
    )
    assert server.url("/feeds/all.atom") in discovered

    # With JavaScript the copy button appears beside the one feed URL shown, and copies it.
    buttons = page.locator("button.copy")
    assert buttons.count() == 3  # one per format; the chosen format's is shown
    for i in range(buttons.count()):
        assert buttons.nth(i).get_attribute("hidden") is None
    assert page.locator("button.copy:visible").count() == 1
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    first = page.locator("button.copy:visible")
    assert first.get_attribute("data-copy") == server.url("/feeds/all.atom")
    first.click()
    # The label changes once the clipboard accepted the text, and back after 1.5 s.
    sync_api.expect(first).to_have_text("Copied", timeout=1000)
    assert page.evaluate("navigator.clipboard.readText()") == first.get_attribute("data-copy")
    screenshot(watched, "index-wide")
    watched.assert_clean()


def test_agency_page(server: Server, watched: Watched) -> None:
    page = watched.page
    visit(watched, server.url("/"))
    page.locator("ul.chips").get_by_role("link", name="Interpol").click()
    page.wait_for_load_state("load")
    assert page.url == server.url("/agencies/interpol")
    assert page.locator("h1").inner_text() == "Interpol press releases"
    assert "5 releases" in page.locator("main p.meta").first.inner_text()
    # Choosing another format shows that format's URL instead, without any script.
    page.get_by_label("RSS", exact=True).check()
    shown = page.locator(".subscribe code:visible")
    assert shown.count() == 1
    assert shown.inner_text() == server.url("/feeds/interpol.rss")
    assert assert_list_dates(page, server) == 5
    agencies = page.locator("ol.releases .meta a").all_inner_texts()
    assert set(agencies) == {"Interpol"}
    links = assert_links_answer(page, server.base)
    assert server.url("/feeds/interpol.atom") in links
    discovered = page.eval_on_selector_all(
        'link[rel="alternate"][type="application/atom+xml"]', "els => els.map(e => e.href)"
    )
    assert discovered == [server.url("/feeds/interpol.atom")]
    assert page.locator("button.copy:visible").count() == 1
    screenshot(watched, "agency-interpol-wide")
    watched.assert_clean()


def test_release_page(server: Server, watched: Watched) -> None:
    page = watched.page
    visit(watched, server.url("/"))
    page.get_by_role("link", name=UNICEF_TITLE, exact=True).click()
    page.wait_for_load_state("load")
    assert page.url.startswith(server.url("/releases/"))
    assert page.locator("h1").inner_text() == UNICEF_TITLE
    assert page.title() == f"{UNICEF_TITLE} – Interpol"
    meta = page.locator("article p.meta").first
    assert meta.get_by_role("link").inner_text() == "Interpol"
    meta_text = meta.inner_text()
    assert "(news and events)" in meta_text
    assert "published 13 April 2023" in meta_text
    bullets = page.locator("article ul > li").all_inner_texts()
    assert len(bullets) == 3, bullets
    for bullet, start in zip(bullets, UNICEF_BULLETS, strict=True):
        assert bullet.startswith(start), (bullet, start)
        assert "•" not in bullet, f"the bullet marker is shown as text: {bullet!r}"
    body = page.locator("article").inner_text()
    assert "Catherine Russell" in body and "About UNICEF" in body
    links = assert_links_answer(page, server.base)
    assert server.url("/agencies/interpol") in links
    assert server.url("/feeds/interpol.atom") in links
    screenshot(watched, "release-unicef-wide")
    watched.assert_clean()

    # A release whose source states no date says so instead of inventing one.
    visit(watched, server.url("/"))
    page.get_by_role("link", name=COLOMBIA_TITLE, exact=True).click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == COLOMBIA_TITLE
    colombia_meta = page.locator("article p.meta").first.inner_text()
    assert "date not stated" in colombia_meta
    assert "published" not in colombia_meta
    watched.assert_clean()


def test_chooser_opens_the_combined_feed(server: Server, watched: Watched) -> None:
    page = watched.page
    visit(watched, server.url("/"))
    form = page.locator("form").filter(has=page.get_by_role("button", name="Open feed"))
    form.get_by_label("Europol").check()
    form.get_by_label("NATO").check()
    with page.expect_response(lambda r: "/feeds/europol+nato" in r.url) as landed:
        form.get_by_role("button", name="Open feed").click()
    response = landed.value
    assert response.url == server.url("/feeds/europol+nato.atom")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = fetch(response.url)
    assert feed.status == 200
    assert feed.body.count(b"<entry>") == AGENCY_COUNTS["Europol"] + AGENCY_COUNTS["NATO"]
    watched.assert_clean()


def test_pages_work_without_javascript(server: Server, no_js: Watched) -> None:
    page = no_js.page
    visit(no_js, server.url("/"))
    assert page.locator("h1").inner_text() == "Agency press releases"
    assert agency_table(page) == AGENCY_COUNTS
    assert page.locator("ol.releases > li h3 a").count() == 10
    assert page.locator("button.copy").count() == 3
    assert page.locator("button.copy:visible").count() == 0, "copy buttons that cannot work"
    # The format choice is CSS: it works without JavaScript.
    assert page.locator(".subscribe code:visible").inner_text() == server.url("/feeds/all.atom")
    page.get_by_label("JSON Feed", exact=True).first.check()
    assert page.locator(".subscribe code:visible").inner_text() == server.url("/feeds/all.json")
    assert_links_answer(page, server.base)
    screenshot(no_js, "index-no-js")

    # The chooser is a plain form: it works without JavaScript too.
    page.get_by_label("Eurojust").check()
    page.get_by_label("Interpol").check()
    page.get_by_label("Format").select_option("rss")
    with page.expect_response(lambda r: "/feeds/eurojust+interpol" in r.url) as landed:
        page.get_by_role("button", name="Open feed").click()
    assert landed.value.url == server.url("/feeds/eurojust+interpol.rss")
    assert landed.value.status == 200

    visit(no_js, server.url("/"))
    page.get_by_role("link", name=UNICEF_TITLE, exact=True).click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == UNICEF_TITLE
    assert page.locator("article ul > li").count() == 3
    assert page.locator("button.copy:visible").count() == 0
    assert_links_answer(page, server.base)
    no_js.assert_clean()


def test_the_browser_finds_an_icon(server: Server, watched: Watched) -> None:
    """Without a declared icon the browser asks for /favicon.ico on every first visit.

    A 404 there is a red error in the console of every visitor's developer tools and
    a line in the server's error statistics for every new reader.
    """
    page = watched.page
    visit(watched, server.url("/"))
    declared: list[str] = page.eval_on_selector_all(
        'link[rel~="icon"]', "els => els.map(e => e.href)"
    )
    icons = declared or [server.url("/favicon.ico")]
    csp = fetch(server.url("/")).headers.get("Content-Security-Policy", "")
    for icon in icons:
        if icon.startswith("data:"):
            img_src = next((d for d in csp.split(";") if d.strip().startswith("img-src")), "")
            assert "data:" in img_src, f"icon {icon[:40]} is blocked by the CSP: {csp}"
            continue
        reply = fetch(icon)
        assert reply.status == 200, (
            f"the page declares no icon, so browsers fetch {icon}: it answers {reply.status}"
            if not declared
            else f"the declared icon {icon} answers {reply.status}"
        )
    watched.assert_clean()


# -- every page type at a phone's and a desktop's width --------------------------------

#: The widths the issue names: a common phone and a laptop.
WIDTHS = {"390": {"width": 390, "height": 844}, "1280": {"width": 1280, "height": 900}}
#: WCAG 2.1 AA, as axe-core tags its rules.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
#: Elements whose box is wider than the viewport, ignoring visually hidden ones.
TOO_WIDE_JS = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 1 && (r.right > width + 1 || r.left < -1);
  }).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
              + ' ' + Math.round(e.getBoundingClientRect().width) + 'px');
}"""
#: Each place where a shown feed URL wraps: the characters either side of the break.
URL_BREAKS_JS = """() => {
  const breaks = [];
  for (const code of document.querySelectorAll('.subscribe code')) {
    if (!code.offsetParent) continue;
    const text = code.textContent;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    let lastTop = null, lastChar = '';
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        if (lastTop !== null && rect.top > lastTop + 2) breaks.push([lastChar, node.data[i], text]);
        lastTop = rect.top; lastChar = node.data[i];
      }
    }
  }
  return breaks;
}"""


@dataclass(frozen=True)
class PageType:
    name: str
    path: str
    status: int = 200
    subscribe: bool = True


@pytest.fixture(scope="module")
def page_types(server: Server) -> list[PageType]:
    release = next(url for url in published_by_url(server) if url)
    return [
        PageType("index", "/"),
        PageType("agency", "/agencies/interpol"),
        PageType("release", release.removeprefix(server.base)),
        PageType("search", "/search?q=child"),
        PageType("search-no-results", "/search?q=zzyzx"),
        PageType("search-empty", "/search", subscribe=False),
        PageType("chooser-error", "/feeds/choose", status=400, subscribe=False),
    ]


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots for a person to look at, under pytest's temporary directory."""
    return tmp_path_factory.mktemp("screenshots", numbered=False)


@pytest.mark.parametrize("width", sorted(WIDTHS), ids=[f"{w}px" for w in sorted(WIDTHS)])
def test_every_page_type_fits_and_passes_axe(
    server: Server, browser: Any, page_types: list[PageType], artefacts: Path, width: str
) -> None:
    axe_module = pytest.importorskip(
        "axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed"
    )
    axe = axe_module.Axe()
    viewport = WIDTHS[width]
    # Axe is injected as a script: the strict CSP is bypassed for it (and only here).
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    failures: list[str] = []
    try:
        for kind in page_types:
            response = page.goto(server.url(kind.path), wait_until="load")
            assert response is not None and response.status == kind.status, kind
            where = f"{kind.name} at {width}px"
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > viewport["width"]:
                failures.append(f"{where}: scrolls sideways ({scroll}px wide)")
            too_wide = page.evaluate(TOO_WIDE_JS)
            if too_wide:
                failures.append(f"{where}: wider than the viewport: {too_wide[:5]}")
            for before, after, url in page.evaluate(URL_BREAKS_JS):
                if before.isalnum() and after.isalnum():
                    failures.append(f"{where}: {url} wraps inside a word ({before}|{after})")
            controls = page.locator(".subscribe")
            if kind.subscribe:
                shown = page.locator(".subscribe code:visible")
                if controls.count() != 1 or shown.count() != 1:
                    failures.append(f"{where}: {controls.count()} Subscribe controls")
                else:
                    assert shown.inner_text().startswith(server.url("/feeds/"))
            if page.locator('form[role="search"] input[name="q"]').count() != 1:
                failures.append(f"{where}: no search box")
            results = axe.run(page, options=AXE_OPTIONS)
            if results.violations_count:
                failures.append(f"{where}: axe:\n{results.generate_report()}")
            page.screenshot(path=str(artefacts / f"{kind.name}-{width}.png"), full_page=True)
        if width == "390":
            page.goto(server.url("/"), wait_until="load")
            first = page.locator("ol.releases > li h3 a").first.bounding_box()
            assert first is not None
            if first["y"] + first["height"] > viewport["height"]:
                failures.append(f"index at 390px: the first release title ends at {first}")
    finally:
        context.close()
    assert not failures, "\n".join(failures)


def test_search_works_without_javascript(server: Server, no_js: Watched) -> None:
    page = no_js.page
    visit(no_js, server.url("/agencies/nato"))
    box = page.get_by_label("Search releases")
    box.fill("child")
    box.press("Enter")
    page.wait_for_load_state("load")
    assert page.url == server.url("/search?q=child")
    titles = page.locator("ol.releases > li h3 a").all_inner_texts()
    assert UNICEF_TITLE in titles and COLOMBIA_TITLE in titles
    assert page.locator(".subscribe code:visible").inner_text() == server.url(
        "/feeds/all.atom?q=child"
    )
    # Narrow it to one agency with a chip; the feed offered follows.
    page.locator("main form").get_by_label("Interpol").check()
    page.locator("main form").get_by_role("button", name="Search").click()
    page.wait_for_load_state("load")
    assert page.url == server.url("/search?q=child&agency=interpol")
    assert page.locator(".subscribe code:visible").inner_text() == server.url(
        "/feeds/interpol.atom?q=child"
    )
    assert set(page.locator("ol.releases .meta a").all_inner_texts()) == {"Interpol"}
    no_js.assert_clean()
