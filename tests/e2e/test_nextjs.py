"""The Next.js example app (integrations/nextjs/example) built for real and opened in Chromium.

`npm ci` from the committed lock (the package registry is the only network it needs), `next
build` against a real server of ours (next.config reads /rules.json from it), `next start`, then
headless Chromium: the next/image loader's keyless URLs load from our server, DPR 1 picks a
small candidate and DPR 3 a larger one made by the model from this small master, as AVIF; the
Server Component page's signed URLs load too. Skipped without node/npm or Chromium.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.browser import SKIP, chromium
from tests.support.corpus import TEST_KEYS
from tests.support.images import decode
from tests.support.node import NODE, NPM, SKIP_REASON, installed_app, run
from tests.support.server import Server, free_port, start_demo_server, stop_server, wait_until_up

pytestmark = [pytest.mark.skipif(NPM is None or NODE is None, reason=SKIP_REASON), SKIP]
KEY_ID, SECRET = TEST_KEYS.split(",")[0].split(":", 1)
ROCKET_WIDTH = 640  # rocket.jpg: the card rule offers up to twice that, the model makes the rest


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Keyless URLs need closed world; a generous budget lets the model answer in the request.
    env = {"EDGE_RULES_CLOSED_WORLD": "true", "EDGE_SUPERRES_BUDGET_S": "60"}
    srv = start_demo_server(tmp_path_factory.mktemp("next-edge"), env)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def next_app(tmp_path_factory: pytest.TempPathFactory, edge_server: Server) -> Iterator[str]:
    """The example app, built against our server and started."""
    tmp = tmp_path_factory.mktemp("next-app")
    env = {
        **os.environ,
        "NEXT_TELEMETRY_DISABLED": "1",
        "EDGE_ORIGIN": edge_server.base,
        "EDGE_KEY_ID": KEY_ID,
        "EDGE_SECRET": SECRET,
    }
    app = installed_app(tmp, "nextjs", env)
    run([NPM, "run", "build"], app, env, 300)  # type: ignore[list-item]
    port = free_port()
    log = open(tmp / "next.log", "wb")
    # next itself, not `npm run start`: terminate() then stops the server, not only npm.
    command = [NODE, "node_modules/next/dist/bin/next", "start", "-p", str(port)]
    process = subprocess.Popen(command, cwd=app, env=env, stdout=log, stderr=log)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/", process, tmp / "next.log", 60)
    yield base
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _open(browser, url: str, selector: str, dpr: float) -> tuple[str, int, dict[str, dict[str, str]]]:
    """(currentSrc, its width in pixels, response headers by URL) of the image at a 375 px phone
    viewport. (naturalWidth is in CSS pixels for a srcset candidate: the file's own is decoded.)"""
    context = browser.new_context(device_scale_factor=dpr, viewport={"width": 375, "height": 800})
    page = context.new_page()
    responses: dict[str, dict[str, str]] = {}
    page.on("response", lambda r: responses.__setitem__(r.url, r.headers) if "/img/" in r.url else None)
    page.goto(url)
    page.wait_for_function(
        f"(() => {{ const i = document.querySelector({selector!r}); return i && i.complete && i.naturalWidth > 0 }})()",
        timeout=120_000,
    )
    current = page.evaluate(f"document.querySelector({selector!r}).currentSrc")
    context.close()
    pixels = decode(httpx.get(current, headers={"Accept": "image/avif"}, timeout=120).content).width
    return current, pixels, responses


def test_next_image_loads_from_our_server_by_dpr_and_gets_avif(next_app: str, edge_server: Server, browser):
    src1, natural1, responses1 = _open(browser, next_app + "/", "#rocket", 1)
    src3, natural3, responses3 = _open(browser, next_app + "/", "#rocket", 3)
    for src, responses in ((src1, responses1), (src3, responses3)):
        assert src.startswith(edge_server.base + "/img/rocket.jpg?rule=card&w="), src
        assert responses[src]["content-type"] == "image/avif", responses[src]
    # 375 px viewport: the card slot is 343 CSS px. DPR 1 takes a candidate within the master;
    # DPR 3 one past it, which the server makes with the model (not Lanczos).
    assert 343 <= natural1 <= ROCKET_WIDTH and responses1[src1]["x-upscale"] == "none"
    assert natural3 > ROCKET_WIDTH and natural3 > natural1
    label, deadline = responses3[src3].get("x-upscale", "none"), time.monotonic() + 90
    while label == "lanczos" and time.monotonic() < deadline:  # a budget stand-in on a slow CPU
        time.sleep(0.5)
        label = httpx.get(src3, headers={"Accept": "image/avif"}, timeout=120).headers["x-upscale"]
    assert label not in ("none", "lanczos"), label
    assert int(parse_qs(urlsplit(src3).query)["w"][0]) >= 343 * 3  # the candidate the browser wanted


def test_the_server_component_page_signs_its_urls(next_app: str, edge_server: Server, browser):
    src, natural, responses = _open(browser, next_app + "/signed", "#signed", 2)
    assert src.startswith(edge_server.base + "/img/coffee.jpg?") and "&s=" in src and "kid=k1" in src, src
    assert natural > 0 and responses[src]["content-type"] == "image/avif"
    markup = httpx.get(edge_server.base + "/srcset/card/coffee.jpg", params={"base_url": edge_server.base}).json()
    assert src in [c["url"] for c in markup["img"]["candidates"]]  # the server's own markup
