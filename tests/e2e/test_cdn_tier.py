"""The nginx cache tier from deploy/, run for real in front of a real origin."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import edge
from tests.support.corpus import AVIF_ACCEPT
from tests.support.images import sniff
from tests.support.metrics import scrape, value
from tests.support.server import Server, free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "edge-cache.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (./dev test installs it when root)")


@pytest.fixture(scope="module")
def cdn(server: Server):
    # nginx workers run as an unprivileged user: their cache directory must be theirs to write.
    workdir = Path(tempfile.mkdtemp(prefix="edge-nginx-"))
    os.chmod(workdir, 0o777)
    port = free_port()
    origin = server.base.removeprefix("http://")
    conf = workdir / "nginx.conf"
    made = edge("deploy", "nginx", "--listen", f"127.0.0.1:{port}", "--origin", origin, "--cache-dir", str(workdir))
    assert made.returncode == 0, made.stderr
    conf.write_text(made.stdout)
    check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base + "/healthz", timeout=1)
            break
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("nginx did not start") from None
            time.sleep(0.1)
    yield base
    process.terminate()
    process.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


def origin_answers(server: Server, fmt: str) -> float:
    return value(scrape(server), "edge_requests_total", status="200", format=fmt)


def test_second_request_is_served_by_the_tier_without_reaching_origin(server: Server, cdn: str):
    path = server.url("flower_640x427.jpg", w=333, v=None).removeprefix(server.base)
    before = origin_answers(server, "avif")
    first = httpx.get(cdn + path, headers={"Accept": AVIF_ACCEPT})
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    assert origin_answers(server, "avif") == before + 1  # rendered (or answered) at origin
    second = httpx.get(cdn + path, headers={"Accept": "image/avif,image/webp;q=0.9,*/*;q=0.5"})
    assert second.headers["x-cache"] == "HIT"
    assert second.content == first.content
    assert origin_answers(server, "avif") == before + 1  # origin never saw the second request
    assert second.headers["vary"] == "Accept"


def test_avif_and_jpeg_clients_never_get_each_others_bytes(server: Server, cdn: str):
    path = server.url("rocket_640x427.jpg", w=210).removeprefix(server.base)
    clients = [
        (AVIF_ACCEPT, "avif"),
        ("*/*", "jpeg"),
        ("image/avif;q=0, image/webp, */*", "webp"),
        ("image/avif;q=0, image/webp;q=0, */*", "jpeg"),
        ("image/webp,image/avif", "avif"),
        ("text/html", "jpeg"),
    ]
    for _round in range(2):  # the second round is served from the tier
        for accept, fmt in clients:
            r = httpx.get(cdn + path, headers={"Accept": accept})
            assert sniff(r.content) == fmt, (accept, r.headers.get("x-cache"))
            assert r.headers["content-type"] == f"image/{fmt}"


def test_concurrent_misses_reach_origin_once(server: Server, cdn: str):
    import asyncio

    path = server.url("chelsea_cat_451x300.png", w=301, fm="webp").removeprefix(server.base)
    before = origin_answers(server, "webp")

    async def burst():
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(client.get(cdn + path) for _ in range(8)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    assert origin_answers(server, "webp") == before + 1  # proxy_cache_lock collapsed the rest


def test_errors_are_not_cached_by_the_tier(server: Server, cdn: str):
    bad = server.url("flower_640x427.jpg", w=10)[:-3] + "AAA"
    for _ in range(2):
        r = httpx.get(cdn + bad.removeprefix(server.base))
        assert r.status_code == 403 and r.headers["x-cache"] in ("MISS", "BYPASS", "EXPIRED")


def test_non_canonical_spellings_are_served_under_the_canonical_key_without_a_redirect(server: Server, cdn: str):
    # Our choice: no redirect (a redirect costs every visitor a round trip, and a CDN caches
    # each spelling anyway). The origin serves each spelling from the one canonical entry, so the
    # tier in front may hold a copy per spelling, but the origin renders once.
    signed = server.url("flower_640x427.jpg", w=344, q=70, fm="webp").removeprefix(server.base)
    path, _, query = signed.partition("?")
    pairs = query.split("&")
    reordered = path + "?" + "&".join(reversed(pairs))  # the same signature covers every order
    default_q = server.url("flower_640x427.jpg", w=344, fm="webp", q=80).removeprefix(server.base)
    bare = server.url("flower_640x427.jpg", w=344, fm="webp").removeprefix(server.base)  # q=80 is the default

    first = httpx.get(cdn + signed)
    assert first.status_code == 200 and first.headers["cache-status"].endswith("fwd=miss; stored")
    again = httpx.get(cdn + reordered)
    assert again.status_code == 200 and again.headers["x-cache"] == "MISS"  # another spelling for nginx...
    assert "edge-memory; hit" in again.headers["cache-status"]  # ...one entry at origin
    assert again.headers["etag"] == first.headers["etag"] and again.content == first.content

    spelled = httpx.get(cdn + default_q)
    plain = httpx.get(cdn + bare)
    assert spelled.headers["etag"] == plain.headers["etag"] and spelled.content == plain.content
    assert "edge-memory; hit" in plain.headers["cache-status"] and plain.status_code == 200


def test_operators_endpoints_are_not_reachable_through_the_public_listener(server: Server, cdn: str):
    for method, path in (("GET", "/metrics"), ("GET", "/preview"), ("POST", "/admin/purge/flower_640x427.jpg")):
        r = httpx.request(method, cdn + path)
        assert r.status_code == 404 and "edge_requests_total" not in r.text, path
    assert httpx.get(server.base + "/metrics").status_code == 200  # the origin's own port still has them
    image = httpx.get(cdn + server.url("flower_640x427.jpg", w=77).removeprefix(server.base))
    assert image.status_code == 200 and httpx.get(cdn + "/healthz").status_code == 200
    assert httpx.get(cdn + "/img/" + "a" * 9000 + ".jpg").status_code == 414  # bounded request line
