"""Rules and sitemaps inside the real server: closed-world mode, start-up checks, served sitemaps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from edge.config import DEMO_MASTERS
from tests.support.corpus import TEST_KEYS
from tests.support.images import decode
from tests.support.server import Server, start_demo_server, start_server, stop_server


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory):
    """A closed-world server on the demo masters with the bundled example rules."""
    srv = start_demo_server(tmp_path_factory.mktemp("closed"), {"EDGE_RULES_CLOSED_WORLD": "true"})
    yield srv
    stop_server(srv)


def test_closed_world_serves_declared_renditions_only(closed: Server):
    markup = httpx.get(closed.base + "/srcset/hero/seeding_dandelions.jpg").json()
    urls = [u.split(" ")[0] for u in markup["img"]["srcset"].split(", ")]
    assert urls
    for url in urls[:3]:
        r = httpx.get(url if url.startswith("http") else closed.base + url)
        assert r.status_code == 200, (url, r.text)
    # Correctly signed, but no rule declares it: refused.
    r = httpx.get(closed.url("seeding_dandelions.jpg", w=777))
    assert r.status_code == 403 and "closed world" in r.json()["detail"]


def test_the_preload_endpoint_sends_a_link_header(closed: Server):
    r = httpx.get(closed.base + "/preload/hero/seeding_dandelions.jpg")
    assert r.status_code == 200
    assert "rel=preload" in r.headers["link"] and "imagesrcset=" in r.headers["link"]


def test_the_server_refuses_to_start_on_invalid_rules(tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "site.yaml").write_text("rules:\n  hero:\n    masters: ['*.jpg']\n    sizes: half\n")
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, "EDGE_RULES_DIR": str(rules)},
        timeout=60,
    )
    assert out.returncode == 2
    assert "site.yaml:4 rules.hero.sizes" in out.stderr and "half" in out.stderr


def test_built_sitemaps_are_served_with_validators(tmp_path: Path):
    masters = tmp_path / "masters"
    shutil.copytree(DEMO_MASTERS, masters)
    pages = tmp_path / "pages.csv"
    pages.write_text(
        "page,master\nhttps://shop.example.com/a?x=1&y=2,coffee.jpg\nhttps://shop.example.com/b,rocket.jpg\n"
    )
    out_dir = tmp_path / "sitemaps"
    env = {"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, "EDGE_MASTERS": str(masters)}
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "sitemap",
            "build",
            "--pages",
            str(pages),
            "--base-url",
            "https://img.example.com",
            "--out",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    # Under closed world: every URL a built sitemap lists must still answer (issue 14).
    srv = start_server(
        tmp_path, {"EDGE_SITEMAPS_DIR": str(out_dir), "EDGE_RULES_CLOSED_WORLD": "true"}, masters=masters
    )
    try:
        index = httpx.get(srv.base + "/sitemaps/sitemap-index.xml")
        assert index.status_code == 200 and index.headers["content-type"].startswith("application/xml")
        ET.fromstring(index.content)
        again = httpx.get(srv.base + "/sitemaps/sitemap-index.xml", headers={"If-None-Match": index.headers["etag"]})
        assert again.status_code == 304
        sitemap = httpx.get(srv.base + "/sitemaps/sitemap-00001.xml")
        ns = {
            "s": "http://www.sitemaps.org/schemas/sitemap/0.9",
            "i": "http://www.google.com/schemas/sitemap-image/1.1",
        }
        locs = [e.text for e in ET.fromstring(sitemap.content).findall(".//i:image/i:loc", ns)]
        assert len(locs) == 2 and all(loc.startswith("https://img.example.com/img/") for loc in locs)
        # The image URLs the sitemap lists are accepted by the server that signed them, closed world and all.
        for loc in locs:
            assert httpx.get(srv.base + loc.removeprefix("https://img.example.com")).status_code == 200
        assert httpx.get(srv.base + "/sitemaps/../cli.py").status_code == 404
    finally:
        stop_server(srv)


def test_srcset_cli_uses_the_configured_rules(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "srcset", "hero", "seeding_dandelions.jpg", "--format", "json"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rule"] == "hero"


def test_warm_renders_what_the_rules_declare_so_the_first_visitor_hits(tmp_path: Path):
    masters = tmp_path / "masters"
    shutil.copytree(DEMO_MASTERS, masters)
    srv = start_server(tmp_path, masters=masters)
    try:
        env = {"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, "EDGE_MASTERS": str(masters)}
        run = subprocess.run(
            [sys.executable, "-m", "edge.cli", "warm", "chelsea.png", "--server", srv.base, "--concurrency", "2"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        assert "rendered" in run.stdout and "failed" not in run.stdout
        # A browser now asking for the markup's URLs gets cache hits, in its own format.
        markup = httpx.get(srv.base + "/srcset/card/chelsea.png").json()
        first = markup["img"]["src"]
        r = httpx.get(first if first.startswith("http") else srv.base + first, headers={"Accept": "image/webp,*/*"})
        assert r.status_code == 200 and "hit" in r.headers["cache-status"]
        again = subprocess.run(
            [sys.executable, "-m", "edge.cli", "warm", "chelsea.png", "--server", srv.base],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert "already cached" in again.stdout and "rendered" not in again.stdout
    finally:
        stop_server(srv)


def test_keyless_urls_reach_declared_renditions_and_nothing_else(closed: Server):
    doc = httpx.get(closed.base + "/srcset/hero/seeding_dandelions.jpg").json()
    widths = [c["width"] for c in doc["img"]["candidates"]]
    width = widths[0]  # the smallest: within the master, so no model stand-in (private) answers
    keyless = httpx.get(
        f"{closed.base}/img/seeding_dandelions.jpg?rule=hero&w={width}", headers={"Accept": "image/webp,*/*"}
    )
    assert keyless.status_code == 200, keyless.text
    assert keyless.headers["content-type"] == "image/webp" and keyless.headers["vary"] == "Accept"
    assert decode(keyless.content).width == width
    assert keyless.headers["cache-control"].startswith("public, max-age=300")  # no v: the master may change
    # One rendition, one entry: the signed URL of the markup is now a hit, with the same ETag.
    signed = next(c["url"] for c in doc["img"]["candidates"] if c["width"] == width)
    again = httpx.get(
        signed if signed.startswith("http") else closed.base + signed, headers={"Accept": "image/webp,*/*"}
    )
    assert again.headers["etag"] == keyless.headers["etag"] and "hit" in again.headers["cache-status"]
    # A format the rule declares, by name.
    source = next(s for s in doc["picture"]["sources"] if s["format"] == "avif")
    avif_width = source["candidates"][0]["width"]
    r = httpx.get(f"{closed.base}/img/seeding_dandelions.jpg?rule=hero&w={avif_width}&fm=avif")
    assert r.status_code == 200 and r.headers["content-type"] == "image/avif"
    refused = [
        f"rule=hero&w={width + 1}",  # an undeclared width
        "rule=nope&w=640",  # an unknown rule
        f"rule=hero&w={width}&q=20",  # any extra option
        f"rule=hero&w={width}&fm=gif",  # a format the rule does not declare
        f"rule=hero&w={width}&rule=hero",
        f"rule=card&w={width}",  # another rule (card does not cover this master, or not this width)
    ]
    for query in refused:
        r = httpx.get(f"{closed.base}/img/seeding_dandelions.jpg?{query}")
        assert r.status_code == 403, (query, r.status_code, r.text)


def test_under_closed_world_the_masters_own_size_answers(closed: Server):
    """Image sitemaps link each master at its own size: closed world allows exactly that."""
    version = httpx.get(closed.base + "/srcset/hero/seeding_dandelions.jpg").json()["version"]
    r = httpx.get(closed.url("seeding_dandelions.jpg", v=version))
    assert r.status_code == 200, r.text
    assert httpx.get(closed.url("seeding_dandelions.jpg", w=1234)).status_code == 403  # still closed


def test_keyless_urls_are_refused_when_the_world_is_open(tmp_path: Path):
    srv = start_server(tmp_path, {})
    try:
        r = httpx.get(f"{srv.base}/img/flower_640x427.jpg?rule=hero&w=640")
        assert r.status_code == 403
    finally:
        stop_server(srv)
