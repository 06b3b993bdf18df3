"""The HTML pages, search, the chooser and robots.txt through the Flask test client.

What a person (or a crawler) gets from each URL: search results that agree with
the ``q`` filter, a feed to subscribe to the search, pages that help when a
search or the chooser is used wrongly, one Subscribe control per page, a meta
description per page, and a robots.txt that keeps crawlers out of open-ended URLs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from lxml import html

from feeds import urls

from .conftest import BASE_URL

HTML = "text/html; charset=utf-8"


def page(client: FlaskClient, path: str, status: int = 200) -> html.HtmlElement:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.data[:300])
    assert response.headers["Content-Type"] == HTML
    assert "script-src 'sha256-" in response.headers["Content-Security-Policy"]
    return html.fromstring(response.data)


def release_links(doc: html.HtmlElement) -> list[str]:
    return [str(a) for a in doc.xpath('//ol[@class="releases"]/li/h3/a/@href')]


def feed_urls(client: FlaskClient, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, path
    return [item["url"] for item in response.get_json()["items"]]


def subscribe_urls(doc: html.HtmlElement) -> list[str]:
    """The feed URLs the page's Subscribe control offers, one per format."""
    controls = doc.xpath('//section[contains(@class, "subscribe")]')
    assert len(controls) == 1, f"{len(controls)} Subscribe controls"
    return [str(b) for b in controls[0].xpath(".//button/@data-copy")]


def test_search_finds_what_the_q_filter_finds(client: FlaskClient) -> None:
    for words in ["child", "interpol child", "traffick", "nato", "zürich"]:
        doc = page(client, "/search?q=" + quote(words))
        expected = feed_urls(client, "/feeds/all.json?q=" + quote(words))
        assert release_links(doc) == expected, words


def test_search_offers_its_feed(client: FlaskClient) -> None:
    doc = page(client, "/search?q=Child+abuse")
    assert subscribe_urls(doc) == [
        f"{BASE_URL}/feeds/all.{ext}?q=child+abuse" for ext in urls.FORMATS
    ]
    heading = doc.xpath('//section[contains(@class, "subscribe")]/h2')[0].text_content()
    assert heading == "Subscribe to this search"
    # The feed it offers answers, with the same releases.
    assert feed_urls(client, "/feeds/all.json?q=child+abuse") == release_links(doc)


def test_search_narrowed_to_agencies(client: FlaskClient) -> None:
    doc = page(client, "/search?q=the&agency=nato&agency=europol")
    shown = release_links(doc)
    assert shown == feed_urls(client, "/feeds/europol+nato.json?q=the")
    assert shown, "the test needs matches"
    assert subscribe_urls(doc)[0] == f"{BASE_URL}/feeds/europol+nato.atom?q=the"
    ticked = doc.xpath('//input[@name="agency"][@checked]/@value')
    assert sorted(ticked) == ["europol", "nato"]


def test_search_pages(make_app: Callable[..., Flask], seed_dir: Path) -> None:
    releases = [f"Harbour seizure number {n}\n\nSource: Frontex\n\nBody {n}.\n" for n in range(45)]
    (seed_dir / "many.txt").write_text("\n".join(releases), encoding="utf-8")
    client = make_app(seed_dir).test_client()
    seen: list[str] = []
    path = "/search?q=harbour"
    pages = 0
    while path:
        doc = page(client, path)
        seen += release_links(doc)
        pages += 1
        older = doc.xpath('//nav[@class="pager"]/a[@rel="next"]/@href')
        path = str(older[0]).removeprefix(BASE_URL) if older else ""
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert seen == feed_urls(client, "/feeds/all.json?q=harbour&limit=50")


def test_empty_search_explains_how_to_search(client: FlaskClient) -> None:
    for path in ["/search", "/search?q=", "/search?q=+++"]:
        doc = page(client, path)
        assert doc.xpath("//h2")[0].text_content() == "How search works"
        assert not release_links(doc)
        assert not doc.xpath('//*[@class="problem"]')


def test_malformed_search_says_what_to_correct(client: FlaskClient) -> None:
    cases = {
        "/search?q=%21%21": "every word needs a letter or digit",
        "/search?q=" + "a" * 201: "at most 200 characters",
        "/search?q=child&page=0": "The page number",
        "/search?q=child&page=x": "The page number",
        "/search?q=child&agency=fbi": "no agency 'fbi'",
    }
    for path, message in cases.items():
        doc = page(client, path, status=400)
        problem = doc.xpath('//*[@class="problem"]')[0].text_content()
        assert message in problem, (path, problem)
        # The form is there again, with what was typed, to correct it.
        typed = doc.xpath('//input[@id="q"]/@value')[0]
        assert typed == re.search(r"q=([^&]*)", path)[1].replace("%21", "!")  # type: ignore[index]


def test_search_with_no_results_still_offers_the_feed(client: FlaskClient) -> None:
    doc = page(client, "/search?q=zzyzx")
    assert not release_links(doc)
    assert "No release matches yet" in doc.xpath("//h2")[0].text_content()
    assert subscribe_urls(doc)[0] == f"{BASE_URL}/feeds/all.atom?q=zzyzx"


def test_search_pages_are_cached_and_conditional(client: FlaskClient) -> None:
    first = client.get("/search?q=child")
    again = client.get("/search?q=child", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/search?q=CHILD").headers["ETag"] == first.headers["ETag"]


def test_every_page_has_a_search_box(client: FlaskClient) -> None:
    release = release_links(page(client, "/"))[0].removeprefix(BASE_URL)
    for path in ["/", "/agencies/interpol", release, "/search?q=child", "/search"]:
        doc = page(client, path)
        form = doc.xpath('//form[@role="search"]')
        assert len(form) == 1, path
        assert form[0].get("action") == BASE_URL + "/search"
        assert form[0].xpath('.//input[@name="q"]/@id') == ["site-q"]
        assert doc.xpath('//label[@for="site-q"]')[0].text_content() == "Search releases"


def test_one_subscribe_control_per_page(client: FlaskClient) -> None:
    expected = {"/": "all", "/agencies/interpol": "interpol"}
    release = release_links(page(client, "/agencies/nato"))[0].removeprefix(BASE_URL)
    expected[release] = "nato"
    for path, name in expected.items():
        doc = page(client, path)
        assert subscribe_urls(doc) == [f"{BASE_URL}/feeds/{name}.{ext}" for ext in urls.FORMATS]
        # The first format is chosen, and the URL shown has no break opportunity inside a word.
        assert doc.xpath('//input[@type="radio"][@checked]/@value') == ["atom"]
        shown = re.search(r"<code>(.*?)</code>", client.get(path).data.decode())
        assert shown is not None, path
        pieces = shown[1].split("<wbr>")
        assert "".join(pieces) == f"{BASE_URL}/feeds/{name}.atom"
        assert all(re.fullmatch(r"[^/.+?&=]*[/.+?&=]?", p) for p in pieces), pieces


def test_every_page_has_its_own_description(client: FlaskClient) -> None:
    release = release_links(page(client, "/"))[0].removeprefix(BASE_URL)
    seen = {}
    for path in ["/", "/agencies/interpol", "/agencies/nato", release, "/search?q=child"]:
        descriptions = page(client, path).xpath('//meta[@name="description"]/@content')
        assert len(descriptions) == 1, path
        assert 50 <= len(descriptions[0]) <= 165, (path, descriptions[0])
        seen[path] = descriptions[0]
    assert len(set(seen.values())) == len(seen), seen
    assert "Europol, Interpol" in seen["/"] or "Eurojust, Europol" in seen["/"]
    assert seen["/agencies/interpol"].startswith("5 releases from Interpol")


def test_index_leads_with_the_latest_releases(client: FlaskClient) -> None:
    doc = page(client, "/")
    headings = [h.text_content() for h in doc.xpath("//main//h2")]
    assert headings[0] == "Latest releases"
    assert release_links(doc) == feed_urls(client, "/feeds/all.json")
    chips = doc.xpath('//ul[@class="chips"]/li/a')
    assert [c.xpath("string(strong)") for c in chips] == ["Eurojust", "Europol", "Interpol", "NATO"]
    interpol = chips[2].text_content()
    assert "5 releases" in interpol and "newest 3 August 2023" in interpol
    assert "1 release ·" in chips[0].text_content() or "1 release" in chips[0].text_content()


def test_chooser_with_nothing_ticked_says_so(client: FlaskClient) -> None:
    doc = page(client, "/feeds/choose?format=rss", status=400)
    assert "Tick at least one agency" in doc.xpath('//*[@class="problem"]')[0].text_content()
    assert len(doc.xpath('//form[@action="http://feeds.test/feeds/choose"]//input')) == 4
    assert doc.xpath("//select/option[@selected]/@value") == ["rss"]
    chosen = client.get("/feeds/choose?agency=nato&agency=europol&format=json")
    assert chosen.status_code == 303
    assert chosen.headers["Location"] == f"{BASE_URL}/feeds/europol+nato.json"


def test_robots_txt_keeps_crawlers_out_of_open_ended_urls(client: FlaskClient) -> None:
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    rules = response.data.decode().splitlines()
    assert rules[0] == "User-agent: *"
    disallowed = {r.split(": ", 1)[1] for r in rules if r.startswith("Disallow: ")}
    assert disallowed == {"/search", "/feeds/choose", "/feeds/*?"}
    assert "Allow: /" in rules
