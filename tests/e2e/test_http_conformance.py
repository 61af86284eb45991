"""HTTP as browsers, CDNs and crawlers use it, against a real server: Last-Modified and the
conditional requests (If-Modified-Since, If-Match, If-Unmodified-Since: 412), single byte ranges
(206, 416, If-Range), and every kind of response run through httplint with no error."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httplint import HttpResponseLinter, levels

from origin.core.dates import http_date
from origin.core.request import RenditionOptions
from tests.support.cli import edge
from tests.support.corpus import AVIF_ACCEPT, CORPUS, TEST_KEYS
from tests.support.server import Server, start_server, stop_server

PHOTO = "flower_640x427.jpg"
CARD = "coffee.jpg"
MTIME = 1_750_000_000  # the master's modification time, set before the server sees it


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("conformance")
    masters = tmp / "masters"
    masters.mkdir()
    shutil.copy(CORPUS / PHOTO, masters / PHOTO)
    os.utime(masters / PHOTO, (MTIME, MTIME))
    shutil.copy(CORPUS / PHOTO, masters / CARD)  # a name the bundled `card` rule covers
    (tmp / "pages.csv").write_text(f"page,master\nhttps://shop.example/flower,{PHOTO}\n")
    built = edge(
        "sitemap", "build", "--masters", str(masters), "--pages", str(tmp / "pages.csv"),
        "--base-url", "https://img.example", "--out", str(tmp / "sitemaps"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    srv = start_server(tmp, {"EDGE_SITEMAPS_DIR": str(tmp / "sitemaps"), "EDGE_KEYS": TEST_KEYS}, masters=masters)
    yield srv
    stop_server(srv)


def get(server: Server, url: str, **headers: str) -> httpx.Response:
    return server.get(url, headers={"Accept": AVIF_ACCEPT, **headers})


def test_renditions_carry_last_modified_and_if_modified_since_gives_304(served: Server):
    url = served.url(PHOTO, w=200)
    r = get(served, url)
    assert r.status_code == 200 and r.headers["last-modified"] == http_date(MTIME)
    assert r.headers["accept-ranges"] == "bytes"
    same = get(served, url, **{"If-Modified-Since": http_date(MTIME)})
    assert same.status_code == 304 and same.headers["etag"] == r.headers["etag"]
    assert same.headers["last-modified"] == http_date(MTIME)
    assert get(served, url, **{"If-Modified-Since": http_date(MTIME - 1)}).status_code == 200
    # If-None-Match decides when both are sent.
    both = {"If-Modified-Since": http_date(MTIME + 60), "If-None-Match": '"other"'}
    assert get(served, url, **both).status_code == 200


def test_if_match_and_if_unmodified_since_fail_with_412(served: Server):
    url = served.url(PHOTO, w=210)
    etag = get(served, url).headers["etag"]
    assert get(served, url, **{"If-Match": etag}).status_code == 200
    assert get(served, url, **{"If-Match": "*"}).status_code == 200
    wrong = get(served, url, **{"If-Match": '"not-this-one"'})
    assert wrong.status_code == 412 and wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["status"] == 412
    assert get(served, url, **{"If-Unmodified-Since": http_date(MTIME - 60)}).status_code == 412
    assert get(served, url, **{"If-Unmodified-Since": http_date(MTIME)}).status_code == 200


def test_a_single_range_gives_206_with_the_right_bytes(served: Server):
    url = served.url(PHOTO, w=220)
    whole = get(served, url)
    body, etag = whole.content, whole.headers["etag"]
    part = get(served, url, Range="bytes=100-199")
    assert part.status_code == 206 and part.content == body[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    assert part.headers["content-length"] == "100" and part.headers["etag"] == etag
    tail = get(served, url, Range="bytes=-50")
    assert tail.status_code == 206 and tail.content == body[-50:]
    assert get(served, url, Range="bytes=10-").content == body[10:]
    # If-Range: the range only while the client's copy is still this one.
    assert get(served, url, Range="bytes=0-9", **{"If-Range": etag}).content == body[:10]
    stale = get(served, url, Range="bytes=0-9", **{"If-Range": '"older"'})
    assert stale.status_code == 200 and stale.content == body
    # Several ranges: the whole body (a valid answer, and a rendition is small).
    assert get(served, url, Range="bytes=0-9,20-29").status_code == 200
    head = served.client().head(url, headers={"Accept": AVIF_ACCEPT, "Range": "bytes=0-9"})
    assert head.status_code == 200 and head.headers["content-length"] == str(len(body))


def test_an_unsatisfiable_range_gives_416(served: Server):
    url = served.url(PHOTO, w=230)
    size = len(get(served, url).content)
    r = get(served, url, Range=f"bytes={size}-")
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}" and r.content == b""


def test_sitemaps_carry_last_modified_and_honour_conditions(served: Server):
    r = served.get(served.base + "/sitemaps/sitemap-index.xml")
    assert r.status_code == 200 and "last-modified" in r.headers
    since = {"If-Modified-Since": r.headers["last-modified"]}
    assert served.get(served.base + "/sitemaps/sitemap-index.xml", headers=since).status_code == 304
    wrong = {"If-Match": '"other"'}
    assert served.get(served.base + "/sitemaps/sitemap-index.xml", headers=wrong).status_code == 412


def test_robots_txt_names_the_sitemap_index_where_the_build_put_it(served: Server, tmp_path: Path):
    r = served.get(served.base + "/robots.txt")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    lines = r.text.splitlines()
    assert "Sitemap: https://img.example/sitemaps/sitemap-index.xml" in lines
    assert "User-agent: *" in lines and "Disallow: /admin/" in lines
    # Before any build, robots.txt still answers, naming no sitemap.
    bare = start_server(tmp_path, {"EDGE_SITEMAPS_DIR": str(tmp_path / "none")}, masters=served.masters)
    try:
        r = bare.get(bare.base + "/robots.txt")
        assert r.status_code == 200 and "Sitemap:" not in r.text
    finally:
        stop_server(bare)


def lint(server: Server, target: str, method: str = "GET", **headers: str) -> tuple[int, list[str]]:
    """The status and httplint's errors (level BAD) for a response as it came off the wire (the
    body undecoded, so a gzip body is checked as gzip)."""
    with server.client() as client, client.stream(method, server.base + target, headers=headers) as r:
        body = b"".join(r.iter_raw())
    linter = HttpResponseLinter()
    linter.process_response_topline(b"HTTP/1.1", str(r.status_code).encode(), r.reason_phrase.encode())
    linter.is_head_response = method == "HEAD"
    linter.process_headers(list(r.headers.raw))
    linter.feed_content(body)
    linter.finish_content(True)
    return r.status_code, [f"{n.category.name}: {n.summary}" for n in linter.notes if n.level == levels.BAD]


def test_every_kind_of_response_is_clean_in_httplint(served: Server):
    sign = served.signer.sign_url
    img, avif = sign(PHOTO, RenditionOptions(w=240)), {"Accept": AVIF_ACCEPT}
    etag = get(served, served.base + img).headers["etag"]
    cases = {
        "rendition": (img, "GET", avif),
        "rendition HEAD": (img, "HEAD", avif),
        "rendition 304": (img, "GET", {**avif, "If-None-Match": etag}),
        "rendition 206": (img, "GET", {**avif, "Range": "bytes=0-99"}),
        "rendition 416": (img, "GET", {**avif, "Range": "bytes=99999999-"}),
        "rendition 412": (img, "GET", {**avif, "If-Match": '"x"'}),
        "explicit webp": (sign(PHOTO, RenditionOptions(w=240, fm="webp")), "GET", {}),
        "bad signature 403": (img.replace("s=", "s=A"), "GET", {}),
        "unknown master 404": (sign("nope.jpg", RenditionOptions()), "GET", {}),
        "srcset json": (f"/srcset/card/{CARD}", "GET", {}),
        "srcset gzip": (f"/srcset/card/{CARD}", "GET", {"Accept-Encoding": "gzip"}),
        "srcset br": (f"/srcset/card/{CARD}", "GET", {"Accept-Encoding": "br"}),
        "info": (sign(PHOTO, RenditionOptions(), route="info"), "GET", {}),
        "healthz": ("/healthz", "GET", {}),
        "metrics": ("/metrics", "GET", {"Accept-Encoding": "gzip"}),
        "sitemap": ("/sitemaps/sitemap-index.xml", "GET", {}),
        "unknown route 404": ("/nothing", "GET", {}),
        "robots.txt": ("/robots.txt", "GET", {}),
    }
    results = {name: lint(served, target, method, **headers) for name, (target, method, headers) in cases.items()}
    statuses = {name: status for name, (status, _) in results.items()}
    assert statuses["rendition 206"] == 206 and statuses["rendition 416"] == 416 and statuses["info"] == 200
    assert statuses["srcset json"] == statuses["srcset gzip"] == 200
    errors = {name: notes for name, (_, notes) in results.items() if notes}
    assert not errors, errors


def _closed_within(sock: socket.socket, seconds: float, drip: bytes = b"") -> bool:
    """Whether the server closes `sock` within `seconds`, while we send `drip` a byte at a time."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    for i in itertools.count():
        if time.monotonic() > deadline:
            return False
        try:
            if i < len(drip):
                sock.send(drip[i : i + 1])
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_idle_and_slow_clients_are_cut_off_and_smuggling_is_refused(tmp_path: Path, served: Server):
    server = start_server(tmp_path, {"EDGE_SERVER_REQUEST_TIMEOUT_S": "1"}, masters=served.masters)
    try:
        address = ("127.0.0.1", int(server.base.rsplit(":", 1)[1]))
        # A connection that never sends a request, and one that sends its head a byte at a time.
        assert _closed_within(socket.create_connection(address), 4)
        assert _closed_within(
            socket.create_connection(address), 4, drip=b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 60
        )
        # A request that arrives in time is answered, however long its answer takes, and the
        # connection stays open for the next one.
        with server.client() as client:
            for _ in range(2):
                assert client.get(server.url(PHOTO, w=250), headers={"Accept": AVIF_ACCEPT}).status_code == 200
                time.sleep(0.5)
        # Content-Length with Transfer-Encoding: 400 and the connection closed, so the bytes after
        # the chunked body are never read as a second request.
        smuggler = socket.create_connection(address)
        smuggler.sendall(
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answer = b""
        smuggler.settimeout(3)
        while chunk := smuggler.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1
    finally:
        stop_server(server)
