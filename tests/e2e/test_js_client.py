"""The JavaScript package (integrations/js) against a real server: its signed URLs are answered,
a changed byte is refused, its keyless srcsets load, its markup is the server's own.

Node runs the package as an application would: it reads `/rules.json` and `/info/{master}` from
the server with fetch, then builds URLs. Skipped without node.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.corpus import TEST_KEYS
from tests.support.images import decode
from tests.support.server import Server, start_demo_server, stop_server
from tests.support.vectors import ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (apt-get install nodejs)")
PACKAGE = ROOT / "integrations" / "js" / "src" / "index.js"
KEY_ID, SECRET = TEST_KEYS.split(",")[0].split(":", 1)

SCRIPT = """
import { signUrl, signer, buildMarkup, keylessUrl, planRule } from %(package)s;
const [base, keyId, secret] = process.argv.slice(2);
const rules = await (await fetch(base + "/rules.json")).json();
const info = await (await fetch(base + "/info/rocket.jpg")).json();
const sign = signer({ keyId, secret });
const signed = await signUrl("rocket.jpg", { w: 320, fm: "webp", v: info.version }, { keyId, secret });
const markup = await buildMarkup(rules, "card", "rocket.jpg", { master: info, sign, alt: "A rocket" });
const keyless = planRule(rules, "hero").img.candidates.map((c) => keylessUrl(rules, "hero", "rocket.jpg", c.width));
const sized = await buildMarkup(rules, "hero", "rocket.jpg", { master: info });
console.log(JSON.stringify({ signed, html: markup.imgHtml(), picture: markup.pictureHtml(), keyless,
  sizedWidths: sized.img.candidates.map((c) => c.width), sizedUrls: sized.img.candidates.map((c) => c.url) }));
"""


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory):
    srv = start_demo_server(tmp_path_factory.mktemp("js"), {"EDGE_RULES_CLOSED_WORLD": "true"})
    yield srv
    stop_server(srv)


def run_node(tmp: Path, srv: Server) -> dict:
    script = tmp / "client.mjs"
    script.write_text(SCRIPT % {"package": json.dumps(PACKAGE.as_uri())})
    out = subprocess.run(
        [NODE, str(script), srv.base, KEY_ID, SECRET], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_url_signed_in_javascript_is_answered_and_a_changed_byte_is_refused(closed: Server, tmp_path: Path):
    made = run_node(tmp_path, closed)
    # Closed world answers only declared renditions: take the src of the package's signed markup.
    url = made["html"].split('src="')[1].split('"')[0].replace("&amp;", "&")
    r = httpx.get(closed.base + url)
    assert r.status_code == 200, r.text
    tampered = url[:-1] + ("A" if url[-1] != "A" else "B")
    assert httpx.get(closed.base + tampered).status_code == 403
    changed_option = url.replace("w=", "w=1", 1)
    assert httpx.get(closed.base + changed_option).status_code == 403
    # The plain signUrl call (not a declared rendition): the server's signer makes the same URL.
    version = httpx.get(closed.base + "/info/rocket.jpg").json()["version"]
    assert closed.base + made["signed"] == closed.url("rocket.jpg", w=320, fm="webp", v=version)


def test_javascript_markup_is_the_servers_markup(closed: Server, tmp_path: Path):
    made = run_node(tmp_path, closed)
    served = closed.base + "/srcset/card/rocket.jpg?alt=A%20rocket&format="
    assert made["html"] + "\n" == httpx.get(served + "html").text
    assert made["picture"] + "\n" == httpx.get(served + "picture").text


def test_keyless_urls_from_the_package_load_for_a_master_of_any_size(closed: Server, tmp_path: Path):
    made = run_node(tmp_path, closed)
    planned = httpx.get(closed.base + "/srcset/hero/rocket.jpg").json()["img"]["candidates"]
    widths = [c["width"] for c in planned]
    assert made["sizedWidths"] == widths  # with the /info document: exactly the master's candidates
    assert [int(u.split("w=")[1].split("&")[0]) for u in made["sizedUrls"]] == widths  # each URL asks its own width
    # Without it, the rule's widths for any master: those past this small master's candidates are
    # snapped by the server to the widest one, never refused.
    assert max(int(u.split("w=")[1]) for u in made["keyless"]) > widths[-1]
    for url in made["keyless"] + made["sizedUrls"]:
        r = httpx.get(closed.base + url, headers={"Accept": "image/webp,*/*"})
        assert r.status_code == 200, (url, r.text)
        asked = int(url.split("w=")[1].split("&")[0])
        assert decode(r.content).width == next((w for w in widths if w >= asked), widths[-1]), url


def test_the_package_passes_its_own_tests():
    out = subprocess.run(
        [NODE, "--test", "test/"], cwd=PACKAGE.parents[1], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
