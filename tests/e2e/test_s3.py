"""Masters in S3: a real S3 API (moto's server) on 127.0.0.1, a real edge server in front of it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from origin.core.errors import Problem
from origin.core.master import MasterInfo
from origin.masters.index import version_hash
from origin.masters.s3 import S3MasterStore, S3Settings, split_s3_url
from tests.support.corpus import AVIF_ACCEPT, CORPUS, MASTER_STAT_TTL_S, TEST_KEYS
from tests.support.images import decode, sniff
from tests.support.metrics import scrape
from tests.support.metrics import value as metric
from tests.support.s3 import CREDENTIALS, S3Server, start_s3
from tests.support.server import Server, start_server, stop_server

BUCKET = "masters"
PHOTOS = ["flower_640x427.jpg", "rocket_640x427.jpg", "rgba_alpha_1600x1000.webp", "truncated_60pct.png"]


@pytest.fixture(scope="module")
def s3() -> S3Server:
    server = start_s3()
    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    for name in PHOTOS:
        client.put_object(Bucket=BUCKET, Key=f"site/{name}", Body=(CORPUS / name).read_bytes())
    client.put_object(Bucket=BUCKET, Key="outside.jpg", Body=(CORPUS / PHOTOS[0]).read_bytes())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def edge(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("s3edge")
    (tmp / "unused").mkdir()
    srv = start_server(tmp, s3.edge_env(f"s3://{BUCKET}/site"), masters=tmp / "unused")
    yield srv
    stop_server(srv)


def test_s3_urls_are_split_into_bucket_and_prefix():
    assert split_s3_url("s3://b/a/b/") == ("b", "a/b/")
    assert split_s3_url("s3://b") == ("b", "")
    with pytest.raises(ValueError):
        split_s3_url("s3:///x")


def test_a_master_in_s3_is_served_negotiated_and_versioned(edge: Server):
    version = version_hash((CORPUS / "flower_640x427.jpg").read_bytes())[:16]
    r = httpx.get(edge.url("flower_640x427.jpg", w=200, v=version), headers={"Accept": AVIF_ACCEPT})
    assert r.status_code == 200, r.text
    assert sniff(r.content) == "avif" and decode(r.content).width == 200
    assert r.headers["cache-control"].endswith("immutable")
    alpha = httpx.get(edge.url("rgba_alpha_1600x1000.webp", w=100), headers={"Accept": "*/*"})
    assert sniff(alpha.content) == "png"


def test_unknown_keys_and_escapes_are_404_and_broken_masters_415(edge: Server):
    assert httpx.get(edge.url("nope.jpg", w=10)).status_code == 404
    assert httpx.get(edge.url("../outside.jpg", w=10)).status_code == 404
    assert httpx.get(edge.url("truncated_60pct.png", w=10)).status_code == 415


def test_a_replaced_object_gets_a_new_version(edge: Server, s3: S3Server):
    client = s3.client()
    client.put_object(Bucket=BUCKET, Key="site/changing.jpg", Body=(CORPUS / "flower_640x427.jpg").read_bytes())
    before = httpx.get(edge.url("changing.jpg", w=64, fm="jpeg"))
    client.put_object(Bucket=BUCKET, Key="site/changing.jpg", Body=(CORPUS / "rocket_640x427.jpg").read_bytes())
    time.sleep(MASTER_STAT_TTL_S + 0.05)  # the HEAD of the old object is trusted until then
    after = httpx.get(edge.url("changing.jpg", w=64, fm="jpeg"))
    assert before.status_code == after.status_code == 200
    assert before.headers["etag"] != after.headers["etag"]


def test_the_byte_limit_holds_while_streaming(s3: S3Server, monkeypatch: pytest.MonkeyPatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings = S3Settings(endpoint_url=s3.endpoint, addressing_style="path")
    size = len((CORPUS / "flower_640x427.jpg").read_bytes())

    async def read(max_bytes: int) -> bytes:
        store = S3MasterStore(f"s3://{BUCKET}/site", settings, max_bytes)
        try:
            info = await store.stat("flower_640x427.jpg")
            assert info is not None and info.size == size
            return await store.read(info)
        finally:
            await store.close()

    assert len(asyncio.run(read(10**8))) == size
    with pytest.raises(Problem) as err:
        asyncio.run(read(1000))  # the HEAD said otherwise, or the object grew: stop reading anyway
    assert err.value.status == 413


def test_a_read_of_a_replaced_etag_is_refused_not_hashed(s3: S3Server, monkeypatch: pytest.MonkeyPatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)

    async def stale_read() -> None:
        store = S3MasterStore(
            f"s3://{BUCKET}/site", S3Settings(endpoint_url=s3.endpoint, addressing_style="path"), 10**8
        )
        try:
            await store.read(MasterInfo("flower_640x427.jpg", 1, '"0000000000"'))
        finally:
            await store.close()

    with pytest.raises(Problem) as err:
        asyncio.run(stale_read())
    assert err.value.status == 503 and err.value.headers["Retry-After"] == "1"


def test_an_unreachable_s3_rendition_tier_leaves_the_server_ready_and_serving(tmp_path: Path):
    s3 = start_s3()
    s3.client().create_bucket(Bucket="renditions")
    env = {k: v for k, v in s3.edge_env("").items() if k != "EDGE_MASTERS"}
    edge = start_server(tmp_path, {**env, "EDGE_CACHE_S3_URL": "s3://renditions/tier"})
    try:
        cached = edge.url("flower_640x427.jpg", w=52, fm="jpeg")
        assert httpx.get(cached).status_code == 200
        assert httpx.get(edge.base + "/readyz").json()["degraded"] == []
        assert metric(scrape(edge), "edge_dependency_up", name="edge-s3") == 1
        s3.stop()
        time.sleep(0.2)
        ready = httpx.get(edge.base + "/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["problems"] == []
        assert "s3 rendition tier renditions is not reachable" in ready.json()["degraded"][0]
        assert metric(scrape(edge), "edge_dependency_up", name="edge-s3") == 0
        assert metric(scrape(edge), "edge_dependency_up", name="masters") == 1
        # Served from the local tiers, and new renditions are still made from the local masters.
        hit = httpx.get(cached, timeout=30)
        assert hit.status_code == 200 and "edge-memory; hit" in hit.headers["cache-status"]
        fresh = httpx.get(edge.url("flower_640x427.jpg", w=53, fm="jpeg"), timeout=30)
        assert fresh.status_code == 200
        assert 'edge-s3; fwd=miss; detail="not stored"' in fresh.headers["cache-status"]
    finally:
        stop_server(edge)
        s3.stop()


def test_store_outage_is_a_clean_502_and_hits_still_serve(tmp_path: Path):
    s3 = start_s3()
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="a.jpg", Body=(CORPUS / "flower_640x427.jpg").read_bytes())
    (tmp_path / "unused").mkdir()
    edge = start_server(tmp_path, s3.edge_env(f"s3://{BUCKET}"), masters=tmp_path / "unused")
    try:
        cached = edge.url("a.jpg", w=50, fm="jpeg")
        assert httpx.get(cached).status_code == 200
        assert httpx.get(edge.base + "/readyz").status_code == 200
        s3.stop()
        time.sleep(0.2)
        down = httpx.get(edge.url("a.jpg", w=51, fm="jpeg"), timeout=30)
        assert down.status_code in (502, 504), down.text
        assert down.headers["cache-control"] == "no-store"
        # Ready still: an S3 outage is every replica's, and unready pods would stop serving the
        # renditions their caches hold. The body and edge_dependency_up say what is down.
        ready = httpx.get(edge.base + "/readyz")
        assert ready.status_code == 200 and "s3 bucket" in ready.json()["degraded"][0]
        assert metric(scrape(edge), "edge_dependency_up", name="masters") == 0
        # Renditions already made are still served from the caches, by the last version seen.
        hit = httpx.get(cached)
        assert hit.status_code == 200 and "hit" in hit.headers["cache-status"]
    finally:
        stop_server(edge)
        s3.stop()


def test_cli_signs_and_versions_masters_in_s3(s3: S3Server):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, **s3.edge_env(f"s3://{BUCKET}/site")}
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "version", "rocket_640x427.jpg"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == version_hash((CORPUS / "rocket_640x427.jpg").read_bytes())[:16]
