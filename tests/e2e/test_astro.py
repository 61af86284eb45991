"""The Astro example app (integrations/astro/example) built for real against our server.

The image service (edge-image-cdn/astro) runs at build time with the signing key, so the built
page carries signed, versioned URLs: the same as the server's own markup for the rule, each
answered 200, a changed byte 403. (Its keyless mode is tested with node's runner,
integrations/js/test/astro.test.js.) Skipped without node and npm.
"""

from __future__ import annotations

import os
import re
from html import unescape
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import AVIF_ACCEPT, TEST_KEYS
from tests.support.node import NODE, NPM, SKIP_REASON, installed_app, run
from tests.support.server import start_demo_server, stop_server

pytestmark = pytest.mark.skipif(NPM is None or NODE is None, reason=SKIP_REASON)
KEY_ID, SECRET = TEST_KEYS.split(",")[0].split(":", 1)


def _attribute(img: str, name: str) -> str:
    found = re.search(rf'\s{name}="([^"]*)"', img)
    assert found, (name, img)
    return unescape(found.group(1))


def test_the_astro_build_signs_the_rules_srcset(tmp_path: Path):
    srv = start_demo_server(tmp_path, {"EDGE_RULES_CLOSED_WORLD": "true"})
    try:
        env = {**os.environ, "ASTRO_TELEMETRY_DISABLED": "1", "EDGE_ORIGIN": srv.base}
        env |= {"EDGE_KEY_ID": KEY_ID, "EDGE_SECRET": SECRET}
        app = installed_app(tmp_path / "app", "astro", env)
        run([NPM, "run", "build"], app, env, 300)  # type: ignore[list-item]
        img = re.search(r"<img[^>]*>", (app / "dist" / "index.html").read_text()).group(0)  # type: ignore[union-attr]
        markup = httpx.get(srv.base + "/srcset/card/coffee.jpg", params={"base_url": srv.base}).json()["img"]
        assert _attribute(img, "srcset") == markup["srcset"]
        assert _attribute(img, "sizes") == markup["sizes"]
        assert _attribute(img, "alt") == "A cup of coffee"
        src = _attribute(img, "src")
        assert src in [c["url"] for c in markup["candidates"]]
        for candidate in markup["candidates"][:3] + [{"url": src}]:
            r = httpx.get(candidate["url"], headers={"Accept": AVIF_ACCEPT}, timeout=60)
            assert r.status_code == 200 and r.headers["content-type"] == "image/avif", candidate
        tampered = src[:-1] + ("A" if src[-1] != "A" else "B")
        assert httpx.get(tampered).status_code == 403
    finally:
        stop_server(srv)
