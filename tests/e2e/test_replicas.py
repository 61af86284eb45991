"""Several origin replicas sharing a rendition tier in S3, and purging a master everywhere."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.support.corpus import CORPUS, TEST_KEYS
from tests.support.metrics import scrape, value
from tests.support.s3 import start_s3
from tests.support.server import Server, start_server, stop_server

ADMIN = "admin-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    s3 = start_s3()
    s3.client().create_bucket(Bucket="renditions")
    tmp = tmp_path_factory.mktemp("cluster")
    masters = tmp / "masters"
    masters.mkdir()
    for name in ("flower_640x427.jpg", "rocket_640x427.jpg"):
        (masters / name).write_bytes((CORPUS / name).read_bytes())
    env = {
        **{k: v for k, v in s3.edge_env("").items() if k != "EDGE_MASTERS"},
        "EDGE_CACHE_S3_URL": "s3://renditions/r",
        "EDGE_ADMIN_TOKEN": ADMIN,
    }
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    a = start_server(tmp / "a", env, masters=masters)  # each replica has its own disk cache
    b = start_server(tmp / "b", env, masters=masters)
    yield a, b, s3, env
    stop_server(a)
    stop_server(b)
    s3.stop()


def test_replica_b_serves_what_replica_a_rendered(cluster):
    a, b, _s3, _env = cluster
    path = a.url("flower_640x427.jpg", w=222, fm="webp").removeprefix(a.base)
    first = httpx.get(a.base + path)
    assert "edge-s3; fwd=miss; stored" in first.headers["cache-status"]
    renders_before = value(scrape(b), "edge_renders_total", format="webp")
    second = httpx.get(b.base + path)
    assert second.headers["cache-status"].startswith("edge-s3; hit")
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert value(scrape(b), "edge_renders_total", format="webp") == renders_before  # B rendered nothing


def test_admin_purge_needs_the_token(cluster):
    a, _b, _s3, _env = cluster
    assert httpx.post(a.base + "/admin/purge/flower_640x427.jpg").status_code == 401
    wrong = httpx.post(a.base + "/admin/purge/flower_640x427.jpg", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["content-type"] == "application/problem+json"


def test_purge_removes_a_master_from_every_tier_of_every_replica(cluster):
    a, b, s3, env = cluster
    url = a.url("rocket_640x427.jpg", w=111, fm="jpeg").removeprefix(a.base)
    other = a.url("flower_640x427.jpg", w=111, fm="jpeg").removeprefix(a.base)
    for server in (a, b):
        httpx.get(server.base + url)
        httpx.get(server.base + other)
    keys = lambda: [o["Key"] for o in s3.client().list_objects_v2(Bucket="renditions").get("Contents", [])]  # noqa: E731
    before = keys()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "purge",
            "rocket_640x427.jpg",
            "--masters",
            str(a.masters),
            "--server",
            a.base,
            "--server",
            b.base,
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "EDGE_KEYS": TEST_KEYS, "EDGE_CACHE_DIR": str(a.cache_dir), **env},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(keys()) < len(before)  # the shared tier lost the rocket's renditions
    again_a = httpx.get(a.base + url)
    assert "hit" not in again_a.headers["cache-status"]  # gone from A's memory, disk and S3: rendered anew
    again_b = httpx.get(b.base + url)
    assert again_b.headers["cache-status"].startswith("edge-s3; hit")  # gone from B's memory and disk
    for server in (a, b):
        kept = httpx.get(server.base + other)
        assert kept.headers["cache-status"] == "edge-memory; hit"  # other masters untouched


def test_purge_disabled_without_a_token(server: Server):
    assert httpx.post(server.base + "/admin/purge/flower_640x427.jpg").status_code == 404


def test_readyz_covers_the_s3_tier(cluster):
    a, _b, _s3, _env = cluster
    assert httpx.get(a.base + "/readyz").json()["status"] == "ok"
