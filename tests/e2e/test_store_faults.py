"""Faults in the stores behind the server: master stores (HTTP, S3) that are slow, fail or drop
connections mid-body, and a disk cache that cannot be written.

The bar (issue 6): a clean 502/504 with `no-store` while the store misbehaves, no poisoned cache
entry (after the store recovers the same URL renders, and its bytes equal a clean reference), and
recovery without a restart. References are renditions of the same master bytes from the local
corpus by a server whose stores never failed: the pipeline does not depend on where bytes came from.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from edge.caches.entry import decode_entry
from origin.core.errors import Problem
from origin.core.keys import master_id
from origin.masters.s3 import S3MasterStore, S3Settings
from tests.support.corpus import CORPUS
from tests.support.http import assert_problem
from tests.support.images import decode
from tests.support.s3 import CREDENTIALS, S3Server, start_s3
from tests.support.server import Server, start_server, stop_server

MASTER = "flower_640x427.jpg"
BODY = (CORPUS / MASTER).read_bytes()
TIMEOUT = httpx.Timeout(30)


def reference(server: Server, **options: object) -> bytes:
    """The rendition of the corpus master with these options, from the clean session server."""
    r = httpx.get(server.url(MASTER, **options), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.content


def assert_store_failure(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text)
    assert_problem(r, r.status_code)  # problem+json, no-store, no traceback


# ---- masters over HTTP: a small origin that misbehaves on request -----------------------------------


class FaultyOrigin(BaseHTTPRequestHandler):
    """Serves MASTER at /pics/<anything>.jpg; `faults[path]` says how to misbehave on GET (and HEAD
    when the fault's name ends in '+head')."""

    faults: dict[str, str] = {}
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.respond(head=True)

    def do_GET(self):
        self.respond(head=False)

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def respond(self, head: bool) -> None:
        fault = self.faults.get(self.path, "ok")
        if head and not fault.endswith("+head"):
            fault = "ok"
        fault = fault.removesuffix("+head")
        etag = {"ETag": '"flower-1"'}
        if fault == "ok":
            self._headers(200, {"Content-Length": str(len(BODY)), "Content-Type": "image/jpeg", **etag})
            if not head:
                self.wfile.write(BODY)
        elif fault == "500":
            self._headers(500, {"Content-Length": "4", **etag})
            self.wfile.write(b"oops")
        elif fault == "slow":  # nothing at all until long after the edge's read time-out
            time.sleep(2.5)
            self.close_connection = True
        elif fault == "stall-mid-body":  # headers and half the body, then silence
            self._headers(200, {"Content-Length": str(len(BODY)), **etag})
            self.wfile.write(BODY[: len(BODY) // 2])
            self.wfile.flush()
            time.sleep(2.5)
            self.close_connection = True
        elif fault == "drop-mid-body":  # announces the whole length, sends half, hangs up
            self._headers(200, {"Content-Length": str(len(BODY)), **etag})
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True
        elif fault == "drop-close-delimited":  # no Content-Length: the body ends when the socket does
            self._headers(200, {"Connection": "close", **etag})
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True
        elif fault == "reset":  # hang up before answering
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
        elif fault == "garbage":  # not HTTP at all
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
            self.close_connection = True
        elif fault.startswith("redirect:"):  # to wherever the fault names, even a malformed URL
            self._headers(302, {"Location": fault.removeprefix("redirect:"), "Content-Length": "0"})
        else:
            raise AssertionError(fault)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FaultyOrigin)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def http_edge(origin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("faultyhttp"),
        {
            "EDGE_HTTP_ALLOW": f"{origin}/pics/",
            "EDGE_HTTP_ALLOW_NETWORKS": "127.0.0.0/8",
            "EDGE_HTTP_READ_TIMEOUT_S": "1",
            "EDGE_HTTP_CONNECT_TIMEOUT_S": "1",
        },
    )
    yield srv
    stop_server(srv)


HTTP_FAULTS = [
    ("500", (502,)),
    ("500+head", (502,)),
    ("slow", (504,)),
    ("slow+head", (504,)),
    ("stall-mid-body", (504,)),
    ("drop-mid-body", (502,)),
    ("reset", (502,)),
    ("reset+head", (502,)),
    ("garbage", (502,)),
]


@pytest.mark.parametrize("fault, statuses", HTTP_FAULTS)
@pytest.mark.parametrize("when", ["first-look", "render"])
def test_a_failing_http_master_is_a_clean_5xx_and_recovers(
    http_edge: Server, server: Server, origin: str, fault: str, statuses: tuple[int, ...], when: str
):
    """first-look: the store fails while the master is inspected (version hash, header); render: the
    master is known, and the store fails when its bytes are fetched again for a new rendition."""
    path = f"/pics/{fault}-{when}.jpg"
    master = origin + path
    if when == "render":
        assert httpx.get(http_edge.url(master, w=33, fm="jpeg"), timeout=TIMEOUT).status_code == 200
    FaultyOrigin.faults[path] = fault
    try:
        failed = httpx.get(http_edge.url(master, w=64, fm="webp"), timeout=TIMEOUT)
        assert_store_failure(failed, *statuses)
    finally:
        FaultyOrigin.faults.pop(path)
    # The store is back: the same URL renders, and what it serves is the clean rendition.
    again = httpx.get(http_edge.url(master, w=64, fm="webp"), timeout=TIMEOUT)
    assert again.status_code == 200, again.text
    assert again.content == reference(server, w=64, fm="webp")
    assert decode(again.content).width == 64


def test_a_close_delimited_body_cut_short_is_a_502_and_poisons_nothing(http_edge: Server, server: Server, origin: str):
    """A response without Content-Length ends when the connection closes, so a dropped connection
    looks like a whole, shorter master. Regression: the edge hashed the half master as the version
    of that ETag (415 then, and 503 "master changed" for every request after the store recovered)."""
    path = "/pics/close-delimited.jpg"
    FaultyOrigin.faults[path] = "drop-close-delimited"
    try:
        failed = httpx.get(http_edge.url(origin + path, w=80, fm="jpeg"), timeout=TIMEOUT)
        assert_store_failure(failed, 502)
    finally:
        FaultyOrigin.faults.pop(path)
    for width in (80, 81):  # the failed URL, and one never asked for
        r = httpx.get(http_edge.url(origin + path, w=width, fm="jpeg"), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.content == reference(server, w=width, fm="jpeg")


@pytest.mark.parametrize(
    "location",
    ["//[/x.jpg", "http://[::1/pics/x.jpg", "http://[zz]/pics/x.jpg", "http://127.0.0.1:abc/x", "http://a b/"],
)
def test_a_redirect_to_a_malformed_url_is_refused_not_a_500(http_edge: Server, origin: str, location: str):
    """Regression: a Location with an unclosed IPv6 literal ('//[/x.jpg') made urljoin raise
    ValueError inside the store, and the request ended as a 500."""
    path = f"/pics/redirect-{abs(hash(location))}.jpg"
    FaultyOrigin.faults[path] = f"redirect:{location}+head"
    try:
        r = httpx.get(http_edge.url(origin + path, w=50), timeout=TIMEOUT)
    finally:
        FaultyOrigin.faults.pop(path)
    assert_store_failure(r, 403, 502)


def test_the_http_origin_going_away_entirely_is_a_clean_502(http_edge: Server, server: Server, tmp_path: Path):
    # An allowlisted host with nothing listening: connection refused on every request.
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{port.getsockname()[1]}"
    port.close()
    srv = start_server(tmp_path, {"EDGE_HTTP_ALLOW": f"{dead}/pics/", "EDGE_HTTP_ALLOW_NETWORKS": "127.0.0.0/8"})
    try:
        r = httpx.get(srv.url(f"{dead}/pics/{MASTER}", w=40), timeout=TIMEOUT)
        assert_store_failure(r, 502)
        assert httpx.get(srv.base + "/healthz").status_code == 200
    finally:
        stop_server(srv)


# ---- masters in S3, behind a TCP proxy that misbehaves on request ----------------------------------


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 server. Modes, switchable at any time:
    pass; slow (each answer delayed past the edge's read time-out); cut (a connection is closed
    once `cut_after` bytes went either way: object bodies and uploads are cut, small HEAD answers
    get through); refuse (accepted and closed at once); blackhole (accepted, never answered)."""

    def __init__(self, upstream_port: int, cut_after: int = 30_000):
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.mode = "pass"
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self.accepted = 0  # connections made to the proxy, ever
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        with self._lock:  # pooled connections must not carry on under the old mode
            for c in list(self._conns):
                self._close(c)

    def _close(self, c: socket.socket) -> None:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()
        self._conns.discard(c)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        mode = self.mode
        if mode == "refuse":
            client.close()
            return
        with self._lock:
            self._conns.add(client)
        if mode == "blackhole":
            return  # closed by set_mode or stop
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            with self._lock:
                self._close(client)
            return
        with self._lock:
            self._conns.add(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
        self._pump(upstream, client, True)

    def _pump(self, src: socket.socket, dst: socket.socket, from_store: bool) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if from_store and self.mode == "slow":
                    time.sleep(2.5)
                if self.mode == "cut" and sent + len(data) > self.cut_after:
                    dst.sendall(data[: max(0, self.cut_after - sent)])
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        with self._lock:
            self._close(src)
            self._close(dst)

    def stop(self) -> None:
        self._stopped = True
        self._sock.close()
        self.set_mode("pass")


BUCKET = "faulty"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    store = start_s3()
    client = store.client()
    client.create_bucket(Bucket=BUCKET)
    for i in range(12):
        client.put_object(Bucket=BUCKET, Key=f"m{i}.jpg", Body=BODY)
    yield store
    store.stop()


@pytest.fixture(scope="module")
def proxy(s3: S3Server) -> Iterator[FaultyProxy]:
    p = FaultyProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def s3_edge(s3: S3Server, proxy: FaultyProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("faultys3")
    (tmp / "unused").mkdir()
    env = {**s3.edge_env(f"s3://{BUCKET}"), "EDGE_S3_ENDPOINT_URL": proxy.endpoint, "EDGE_S3_READ_TIMEOUT_S": "1"}
    srv = start_server(tmp, env, masters=tmp / "unused")
    yield srv
    stop_server(srv)


S3_FAULTS = [("slow", (504,)), ("cut", (502,)), ("refuse", (502,)), ("blackhole", (504,))]


@pytest.mark.parametrize("fault, statuses", S3_FAULTS)
def test_a_failing_s3_store_is_a_clean_5xx_and_recovers(
    s3_edge: Server, server: Server, proxy: FaultyProxy, fault: str, statuses: tuple[int, ...]
):
    key = f"m{[f for f, _ in S3_FAULTS].index(fault)}.jpg"
    known = f"m{[f for f, _ in S3_FAULTS].index(fault) + len(S3_FAULTS)}.jpg"
    assert httpx.get(s3_edge.url(known, w=20, fm="jpeg"), timeout=TIMEOUT).status_code == 200
    proxy.set_mode(fault)
    try:
        # A master never seen (fails while it is inspected) and a known one (fails on the re-read for
        # a new rendition; for `cut`, HEAD answers still get through, so only the body read fails).
        for master in (key, known):
            r = httpx.get(s3_edge.url(master, w=96, fm="webp"), timeout=TIMEOUT)
            assert_store_failure(r, *statuses)
    finally:
        proxy.set_mode("pass")
    for master in (key, known):
        r = httpx.get(s3_edge.url(master, w=96, fm="webp"), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.content == reference(server, w=96, fm="webp")


@pytest.mark.parametrize("attempts", [1, 3])
def test_s3_max_attempts_counts_every_attempt(proxy: FaultyProxy, monkeypatch: pytest.MonkeyPatch, attempts: int):
    """Regression: s3.max_attempts went to botocore as retries.max_attempts, which counts retries only,
    so max_attempts=1 made 2 attempts and the default 3 made 4: with the default 10 s read time-out,
    40 s and more before a hung store was answered 504."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings = S3Settings(
        endpoint_url=proxy.endpoint,
        addressing_style="path",
        read_timeout_s=0.5,
        connect_timeout_s=0.5,
        max_attempts=attempts,
    )

    async def look() -> None:
        store = S3MasterStore(f"s3://{BUCKET}", settings, 10**8)
        try:
            await store.stat("m0.jpg")
        finally:
            await store.close()

    proxy.set_mode("blackhole")
    before = proxy.accepted
    try:
        with pytest.raises(Problem) as err:
            asyncio.run(look())
    finally:
        proxy.set_mode("pass")
    assert err.value.status == 504
    assert proxy.accepted - before == attempts


def test_while_s3_is_down_cached_renditions_are_served_and_the_rest_fails_cleanly(
    s3_edge: Server, server: Server, proxy: FaultyProxy
):
    cached = s3_edge.url("m10.jpg", w=48, fm="jpeg")
    first = httpx.get(cached, timeout=TIMEOUT)
    assert first.status_code == 200 and httpx.get(s3_edge.base + "/readyz").status_code == 200
    proxy.set_mode("refuse")
    try:
        hit = httpx.get(cached, timeout=TIMEOUT)  # documented: served by the last version seen
        assert hit.status_code == 200 and "hit" in hit.headers["cache-status"]
        assert hit.content == first.content
        miss = httpx.get(s3_edge.url("m10.jpg", w=49, fm="jpeg"), timeout=TIMEOUT)
        assert_store_failure(miss, 502)
        ready = httpx.get(s3_edge.base + "/readyz", timeout=TIMEOUT)  # the fleet's outage: still ready
        assert ready.status_code == 200 and "not reachable" in ready.json()["degraded"][0]
    finally:
        proxy.set_mode("pass")
    assert httpx.get(s3_edge.base + "/readyz", timeout=TIMEOUT).status_code == 200
    recovered = httpx.get(s3_edge.url("m10.jpg", w=49, fm="jpeg"), timeout=TIMEOUT)
    assert recovered.status_code == 200 and recovered.content == reference(server, w=49, fm="jpeg")


def test_a_failing_shared_rendition_tier_is_only_a_miss(
    s3: S3Server, proxy: FaultyProxy, server: Server, tmp_path: Path
):
    """cache.s3_url behind the faulty proxy, masters on local disk: the tier is an optimisation, so
    its faults never fail a request, and nothing half-written is ever left in it."""
    s3.client().create_bucket(Bucket="renditions")
    env = {
        **{k: v for k, v in s3.edge_env("").items() if k != "EDGE_MASTERS"},
        "EDGE_S3_ENDPOINT_URL": proxy.endpoint,
        "EDGE_S3_READ_TIMEOUT_S": "1",
        "EDGE_CACHE_S3_URL": "s3://renditions/r",
        "EDGE_CACHE_MEMORY_MB": "0",
        "EDGE_CACHE_DISK_MB": "0",  # only the S3 tier, so every request goes to it
    }
    srv = start_server(tmp_path, env)
    try:
        for i, fault in enumerate(["cut", "slow", "refuse", "blackhole", "pass"]):
            proxy.set_mode(fault)
            try:
                r = httpx.get(srv.url(MASTER, w=300 + i, fm="png"), timeout=TIMEOUT)  # ~100 KB: `cut` bites
                assert r.status_code == 200, (fault, r.text)
                assert r.headers["cache-control"] != "no-store"
            finally:
                proxy.set_mode("pass")
        objects = s3.client().list_objects_v2(Bucket="renditions").get("Contents", [])
        assert objects, "the tier stored nothing once the store was back"
        for obj in objects:
            raw = s3.client().get_object(Bucket="renditions", Key=obj["Key"])["Body"].read()
            assert decode_entry(raw) is not None, obj["Key"]
        again = httpx.get(srv.url(MASTER, w=304, fm="png"), timeout=TIMEOUT)
        assert again.headers["cache-status"].startswith("edge-s3; hit")
        assert again.content == reference(server, w=304, fm="png")
    finally:
        stop_server(srv)


# ---- the disk cache ---------------------------------------------------------------------------------


def test_a_disk_cache_that_cannot_be_written_still_serves_the_rendition(tmp_path: Path):
    """Stands in for a full or failing disk: the entry's directory cannot be created. The rendition
    is made anyway and must be served (the cache is an optimisation); nothing half-written stays."""
    srv = start_server(tmp_path)
    try:
        blocker = srv.cache_dir / master_id(MASTER)[:2]
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_bytes(b"not a directory")
        r = httpx.get(srv.url(MASTER, w=70, fm="jpeg"), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert decode(r.content).width == 70
        blocker.unlink()
        later = httpx.get(srv.url(MASTER, w=71, fm="jpeg"), timeout=TIMEOUT)
        assert later.status_code == 200 and "edge-disk; fwd=miss; stored" in later.headers["cache-status"]
        assert [p.name for p in srv.cache_dir.rglob(".tmp-*")] == []
    finally:
        stop_server(srv)
