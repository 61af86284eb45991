"""`edge purge` purges the CDN in front too: the request it sends, seen by a stub that records it
(Fastly, Cloudflare) or by a real CloudFront API (moto's server), and the tag it purges is the
one every rendition of the master carries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from tests.support.cli import edge
from tests.support.s3 import CREDENTIALS, start_s3
from tests.support.server import Server

MASTER = "flower_640x427.jpg"


class Stub:
    """An HTTP API that records every request and answers `status`."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.calls.append({"path": self.path, "headers": dict(self.headers), "body": body})
                answer = b'{"status": "ok"}'
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.httpd.shutdown()


def purge(server: Server, env: dict[str, str]):
    return edge("purge", MASTER, "--masters", str(server.masters), env={"EDGE_CACHE_DISK_MB": "0", **env})


def test_fastly_is_purged_by_the_tag_every_rendition_carries(server: Server, stub: Stub):
    tag = server.get(server.url(MASTER, w=90)).headers["surrogate-key"]
    env = {
        "EDGE_CDN_PROVIDER": "fastly",
        "EDGE_CDN_SERVICE": "svc-1",
        "EDGE_CDN_TOKEN": "fastly-token",
        "EDGE_CDN_API_URL": stub.url,
    }
    out = purge(server, env)
    assert out.returncode == 0, out.stderr
    [call] = stub.calls
    assert call["path"] == f"/service/svc-1/purge/{tag}" and call["headers"]["Fastly-Key"] == "fastly-token"
    assert f"fastly: purged tag {tag}" in out.stdout


def test_cloudflare_is_purged_by_cache_tag(server: Server, stub: Stub):
    tag = server.get(server.url(MASTER, w=91)).headers["cache-tag"]
    env = {
        "EDGE_CDN_PROVIDER": "cloudflare",
        "EDGE_CDN_SERVICE": "zone-9",
        "EDGE_CDN_TOKEN": "cf-token",
        "EDGE_CDN_API_URL": stub.url,
    }
    assert purge(server, env).returncode == 0
    [call] = stub.calls
    assert call["path"] == "/client/v4/zones/zone-9/purge_cache"
    assert call["headers"]["Authorization"] == "Bearer cf-token" and json.loads(call["body"]) == {"tags": [tag]}


def test_a_cdn_that_refuses_is_an_error_not_a_silent_success(server: Server, stub: Stub):
    stub.status = 403
    env = {
        "EDGE_CDN_PROVIDER": "fastly",
        "EDGE_CDN_SERVICE": "svc-1",
        "EDGE_CDN_TOKEN": "bad",
        "EDGE_CDN_API_URL": stub.url,
    }
    out = purge(server, env)
    assert out.returncode == 1 and "CDN: fastly: 403" in out.stderr and "Traceback" not in out.stderr


def test_cloudfront_gets_an_invalidation_of_every_rendition_path(server: Server):
    api = start_s3()  # moto's server answers the CloudFront API too
    try:
        keys = {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"]}
        keys["aws_secret_access_key"] = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
        client = boto3.client("cloudfront", endpoint_url=api.endpoint, region_name="us-east-1", **keys)
        origin = {"Id": "o", "DomainName": "origin.example.com", "CustomOriginConfig": {
            "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}  # fmt: skip
        config = {
            "CallerReference": "edge-test", "Comment": "", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                     "ForwardedValues": {"QueryString": True, "Cookies": {"Forward": "none"}},
                                     "MinTTL": 0, "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        }  # fmt: skip
        distribution = client.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
        env = {
            "EDGE_CDN_PROVIDER": "cloudfront",
            "EDGE_CDN_SERVICE": distribution,
            "EDGE_CDN_API_URL": api.endpoint,
            **CREDENTIALS,
        }
        out = purge(server, env)
        assert out.returncode == 0, out.stderr
        [listed] = client.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
        paths = client.get_invalidation(DistributionId=distribution, Id=listed["Id"])["Invalidation"]
        assert paths["InvalidationBatch"]["Paths"]["Items"] == [f"/img/{MASTER}*"]
        assert f"cloudfront: invalidation {listed['Id']}" in out.stdout
    finally:
        api.stop()
