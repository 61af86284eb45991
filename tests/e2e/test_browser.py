"""Generated markup in a real browser: Debian's Chromium, headless, driven by Playwright.

What a frontend developer would check by hand: which URL the browser really chose
(`currentSrc`) at each viewport and device-pixel ratio, that it got AVIF, that the LCP preload
was used (one image fetch, not two), that art direction switches crops, and that the preview
page shows every rendition.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.browser import SKIP, chromium
from tests.support.server import Server, start_demo_server, stop_server

pytestmark = SKIP
HERO = ("hero", "seeding_dandelions.jpg")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    env = {"EDGE_RULES_PREVIEW": "true", "EDGE_CLIENT_HINTS_ENABLED": "true"}
    srv = start_demo_server(tmp_path_factory.mktemp("browser"), env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


class Pages:
    """Serves test pages from another origin, as a site would embed the CDN's URLs."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = pages.get(self.path, b"")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, head: str, body: str) -> str:
        self.pages[path] = (
            '<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"{head}<style>body{{margin:0}} img{{max-width:100%;height:auto;display:block}}</style></head>"
            f"<body>{body}</body></html>"
        ).encode()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture(scope="module")
def pages():
    p = Pages()
    yield p
    p.httpd.shutdown()


def visit(browser, url: str, width: int, dpr: int, selector: str = "img"):
    """Load `url` in a fresh context; return (currentSrc, image requests, content type per URL)."""
    context = browser.new_context(device_scale_factor=dpr, viewport={"width": width, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    types: dict[str, str] = {}
    page.on("request", lambda r: requests.append(r.url) if "/img/" in r.url else None)
    page.on(
        "response", lambda r: types.__setitem__(r.url, r.headers.get("content-type", "")) if "/img/" in r.url else None
    )
    page.goto(url)
    page.wait_for_function(
        f"(() => {{ const i = document.querySelector({selector!r}); return i.complete && i.naturalWidth > 0 }})()"
    )
    current = page.evaluate(f"document.querySelector({selector!r}).currentSrc")
    context.close()
    return current, requests, types


def option(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def expected_width(widths: list[int], needed: float) -> int:
    """The smallest candidate that covers the need (the largest when none does)."""
    return min((w for w in widths if w >= needed), default=max(widths))


def test_img_with_preload_picks_the_right_candidate_gets_avif_and_fetches_once(demo: Server, browser, pages: Pages):
    q = {"base_url": demo.base}
    markup = httpx.get(f"{demo.base}/srcset/{HERO[0]}/{HERO[1]}", params=q).json()
    img_html = httpx.get(f"{demo.base}/srcset/{HERO[0]}/{HERO[1]}", params={**q, "format": "html"}).text
    preload = httpx.get(f"{demo.base}/preload/{HERO[0]}/{HERO[1]}", params={**q, "for": "img"}).json()["html"]
    assert markup["img"]["sizes"] == "100vw"
    widths = [c["width"] for c in markup["img"]["candidates"]]
    url = pages.add("/hero-img", preload, img_html)
    chosen = {}
    for width in (375, 768, 1280):
        for dpr in (1, 3):
            current, requests, types = visit(browser, url, width, dpr)
            assert int(option(current, "w")) == expected_width(widths, width * dpr), (width, dpr, current)
            assert types[current] == "image/avif", (width, dpr)
            assert requests == [current], (width, dpr, requests)  # the preload's fetch, used by the <img>
            chosen[width, dpr] = int(option(current, "w"))
    for width in (375, 768, 1280):
        assert chosen[width, 3] > chosen[width, 1]  # a denser screen gets more pixels


def test_img_without_preload_still_fetches_one_image(demo: Server, browser, pages: Pages):
    img_html = httpx.get(f"{demo.base}/srcset/card/chelsea.png", params={"base_url": demo.base, "format": "html"}).text
    url = pages.add("/card-img", "", img_html)
    current, requests, types = visit(browser, url, 375, 2)
    assert requests == [current] and types[current] == "image/avif"


def test_picture_switches_crops_by_breakpoint_and_takes_the_avif_source(demo: Server, browser, pages: Pages):
    q = {"base_url": demo.base}
    picture = httpx.get(f"{demo.base}/srcset/{HERO[0]}/{HERO[1]}", params={**q, "format": "picture"}).text
    # No `for`: the default follows the rule, and hero art-directs, so the <picture> preload.
    preload = httpx.get(f"{demo.base}/preload/{HERO[0]}/{HERO[1]}", params=q).json()["html"]
    url = pages.add("/hero-picture", preload, picture)
    # The example rule: 4:5 on phones, 16:9 from md (768), 21:9 from xl (1280).
    for width, aspect in ((375, 5 / 4), (900, 9 / 16), (1400, 9 / 21)):
        for dpr in (1, 3):
            current, requests, types = visit(browser, url, width, dpr, "picture img")
            assert option(current, "fm") == "avif" and types[current] == "image/avif"
            ratio = int(option(current, "h")) / int(option(current, "w"))
            assert abs(ratio - aspect) < 0.02, (width, dpr, current)
            assert requests == [current], (width, dpr, requests)  # the matching preload was used


def test_a_plain_img_src_that_asks_for_client_hints_gets_the_screens_pixels(demo: Server, browser, pages: Pages):
    # One URL for every screen (no srcset): the page delegates the hints to the image origin, as
    # a site must for a CDN on another host, and the browser's DPR and layout width size it.
    origin = demo.base
    head = f'<meta http-equiv="delegate-ch" content="sec-ch-dpr {origin}; sec-ch-width {origin}">'
    src = demo.url(HERO[1], w=300, ch="dpr")
    sized = demo.url(HERO[1], w=300, ch="dpr,width")
    url = pages.add(
        "/hints",
        head,
        f'<img id="dpr" src="{src}" width="300"><img id="width" src="{sized}" sizes="250px" width="250">',
    )
    for dpr in (1, 3):
        context = browser.new_context(device_scale_factor=dpr, viewport={"width": 800, "height": 900})
        page = context.new_page()
        varies: list[str | None] = []
        page.on("response", lambda r, seen=varies: seen.append(r.headers.get("vary")) if "/img/" in r.url else None)
        page.goto(url)
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        context.close()
        # 300 CSS px at the screen's DPR; the width hint (250 CSS px) rounded up to 100 device px
        # (at 3x: 800, as w=267 dpr=3, so 801).
        assert widths == [300 * dpr, {1: 300, 3: 801}[dpr]], dpr
        assert sorted(varies) == ["Accept, Sec-CH-DPR", "Accept, Sec-CH-DPR, Sec-CH-Width"]


def test_preview_page_shows_every_rendition(demo: Server, browser):
    context = browser.new_context(device_scale_factor=2, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(f"{demo.base}/preview?rule=card&master=chelsea.png")
    rows = page.locator("tr[data-url]")
    assert rows.count() >= 6
    page.wait_for_function("document.getElementById('img-choice').textContent.includes('currentSrc=')")
    assert "dpr=2" in page.text_content("#img-choice")
    # Every rendition listed loads, and the page learnt its bytes and format from the server.
    page.evaluate("() => { for (const img of document.querySelectorAll('td.thumb img')) img.loading = 'eager' }")
    page.wait_for_function(
        "[...document.querySelectorAll('td.thumb img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_function("[...document.querySelectorAll('td.bytes')].every(c => /^[0-9]+$/.test(c.textContent))")
    types = {t.strip() for t in page.locator("td .type").all_text_contents()}
    assert "image/avif" in types and "image/webp" in types
    context.close()


def test_preview_is_off_unless_enabled(server: Server):
    assert httpx.get(server.base + "/preview?rule=card&master=chelsea_cat_451x300.png").status_code == 404


def test_a_3x_phone_gets_a_model_made_candidate_from_a_small_master(demo: Server, browser, pages: Pages):
    """chelsea.png is 451 px wide; the card rule offers up to twice that. A 3x phone picks the
    widest candidate, and the server makes its missing pixels with the model, not Lanczos."""
    img_html = httpx.get(f"{demo.base}/srcset/card/chelsea.png", params={"base_url": demo.base, "format": "html"}).text
    url = pages.add("/card-dpr3", "", img_html)
    context = browser.new_context(device_scale_factor=3, viewport={"width": 375, "height": 900})
    page = context.new_page()
    upscaled: dict[str, str] = {}
    page.on(
        "response", lambda r: upscaled.__setitem__(r.url, r.headers.get("x-upscale", "")) if "/img/" in r.url else None
    )
    page.goto(url)
    page.wait_for_function(
        "(() => { const i = document.querySelector('img'); return i.complete && i.naturalWidth > 0 })()"
    )
    current = page.evaluate("document.querySelector('img').currentSrc")
    context.close()
    assert int(option(current, "w")) > 451, current
    label, deadline = upscaled[current], time.monotonic() + 90
    while label == "lanczos" and time.monotonic() < deadline:  # the budget stand-in on a slow CPU
        time.sleep(0.5)  # the model's rendition follows in the background
        label = httpx.get(current, headers={"Accept": "image/avif"}, timeout=120).headers["x-upscale"]
    assert label not in ("none", "lanczos"), label
