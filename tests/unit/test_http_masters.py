"""Masters over HTTP: the allowlist, the address policy, and a real local HTTP server."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from edge.urls import canonical_path
from origin.core.errors import Problem
from origin.masters.http import AllowEntry, HttpMasterStore, HttpSettings, check_url, is_public
from tests.support.app import InProcess, start_app, stop_app
from tests.support.images import decode, sniff

ALLOW = [AllowEntry.parse("https://images.example.com/photos/"), AllowEntry.parse("https://cdn.example.org:8443/")]


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://images.example.com/photos/a.jpg", True),
        ("https://IMAGES.example.com/photos/a/b.jpg", True),
        ("https://images.example.com:443/photos/a.jpg", True),
        ("https://cdn.example.org:8443/x.png", True),
        ("http://images.example.com/photos/a.jpg", False),  # scheme must match
        ("https://images.example.com:444/photos/a.jpg", False),  # port must match
        ("https://images.example.com/other/a.jpg", False),  # prefix must match
        ("https://images.example.com/photos/../secret", False),
        ("https://images.example.com/photos/%2e%2e/secret", False),
        ("https://user:pw@images.example.com/photos/a.jpg", False),
        ("https://images.example.com/photos/a.jpg?x=1", False),
        ("https://images.example.com.evil.net/photos/a.jpg", False),
        ("https://cdn.example.org/x.png", False),  # 443 is not 8443
        ("file:///etc/passwd", False),
        ("gopher://images.example.com/photos/a.jpg", False),
    ],
)
def test_the_allowlist_matches_scheme_host_port_and_prefix_exactly(url, ok):
    if ok:
        assert check_url(url, ALLOW).host in ("images.example.com", "cdn.example.org")
    else:
        with pytest.raises(Problem) as err:
            check_url(url, ALLOW)
        assert err.value.status == 403


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.216.34", True),
        ("2606:4700::6810:85e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # CGNAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_only_public_addresses_are_fetched(address, public):
    assert is_public(ipaddress.ip_address(address), []) is public


def test_a_name_that_resolves_inside_is_refused_even_when_allowlisted():
    async def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]  # one public answer is not enough: all must be

    store = HttpMasterStore(HttpSettings(allow=("https://images.example.com/photos/",)), 10**6, resolver=rebinding)

    async def go():
        try:
            await store.stat("https://images.example.com/photos/a.jpg")
        finally:
            await store.close()

    with pytest.raises(Problem) as err:
        asyncio.run(go())
    assert err.value.status == 403 and "non-public" in err.value.detail


def _edge(tmp: Path, pictures: str, **extra: str) -> InProcess:
    env = {
        "EDGE_HTTP_ALLOW": f"{pictures}/pics/",
        "EDGE_HTTP_READ_TIMEOUT_S": "1",
        "EDGE_LIMITS_MAX_MASTER_BYTES": "200000",
        **extra,
    }
    return start_app(tmp, env)


@pytest.fixture(scope="module")
def edge(pictures: str, tmp_path_factory: pytest.TempPathFactory):
    srv = _edge(tmp_path_factory.mktemp("httpedge"), pictures, EDGE_HTTP_ALLOW_NETWORKS="127.0.0.0/8")
    yield srv
    stop_app(srv)


def test_an_allowlisted_http_master_is_rendered(edge: InProcess, pictures: str):
    url = edge.url(f"{pictures}/pics/flower_640x427.jpg", w=160, fm="webp")
    assert f"/img/{canonical_path(pictures)}/pics/" in url
    r = edge.get(url)
    assert r.status_code == 200, r.text
    assert sniff(r.content) == "webp" and decode(r.content).width == 160
    assert edge.get(url).headers["cache-status"] == "edge-memory; hit"


def test_redirects_are_followed_only_inside_the_allowlist(edge: InProcess, pictures: str):
    assert edge.get(edge.url(f"{pictures}/pics/redirect-inside", w=50)).status_code == 200
    outside = edge.get(edge.url(f"{pictures}/pics/redirect-outside", w=50))
    assert outside.status_code == 403 and "allowlist" in outside.json()["detail"]
    loop = edge.get(edge.url(f"{pictures}/pics/loop", w=50))
    assert loop.status_code == 502 and "redirected more than" in loop.json()["detail"]


def test_urls_outside_the_allowlist_are_403(edge: InProcess, pictures: str):
    assert edge.get(edge.url(f"{pictures}/private/flower_640x427.jpg", w=50)).status_code == 403
    assert edge.get(edge.url("https://example.com/pics/flower_640x427.jpg", w=50)).status_code == 403
    assert edge.get(edge.url(f"{pictures}/pics/missing.jpg", w=50)).status_code == 404


def test_slow_and_oversized_masters_fail_cleanly(edge: InProcess, pictures: str):
    slow = edge.get(edge.url(f"{pictures}/pics/slow.jpg", w=50), timeout=30)
    assert slow.status_code == 504 and slow.headers["cache-control"] == "no-store"
    big = edge.get(edge.url(f"{pictures}/pics/truncated_progressive_50pct.jpg", w=50))
    assert big.status_code == 413


def test_loopback_is_refused_without_an_explicit_network(pictures: str, tmp_path: Path):
    srv = _edge(tmp_path, pictures)
    try:
        r = srv.get(srv.url(f"{pictures}/pics/flower_640x427.jpg", w=50))
        assert r.status_code == 403 and "non-public" in r.json()["detail"]
        # Local masters still work beside the HTTP ones.
        assert srv.get(srv.url("flower_640x427.jpg", w=50)).status_code == 200
    finally:
        stop_app(srv)
