"""HTTP helpers: what a problem response must look like, raw requests, a misbehaving master origin."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import httpcore
import httpx

from tests.support.corpus import CORPUS
from tests.support.server import Server


def assert_problem(r: httpx.Response, status: int, *words: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert doc["status"] == status and doc["title"] and doc["detail"]
    for word in words:
        assert word in doc["detail"], doc
    assert "Traceback" not in r.text
    return doc


def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (httpx would normalise dot segments)."""
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """httpx's own transport (httpcore), so that request targets go out byte for byte: httpx's URL
    model would normalise away the dot segments and odd escapes being fuzzed."""

    def __init__(self, base: str):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host.encode(), int(port)
        self.pool = httpcore.ConnectionPool(max_connections=4, retries=0)
        self.sent = 0

    def send(self, method: str, target: str, headers: list[tuple[str, str]] | None = None) -> Answer:
        url = httpcore.URL(scheme=b"http", host=self.host, port=self.port, target=target.encode("ascii"))
        wire = [(b"Host", b"127.0.0.1")] + [(k.encode(), v.strip(" \t").encode("latin-1")) for k, v in headers or []]
        timeout = {"connect": 5.0, "read": 30.0, "write": 5.0, "pool": 5.0}  # a hang fails the test
        self.sent += 1
        r = self.pool.request(method, url, headers=wire, extensions={"timeout": timeout})
        return Answer(r.status, {k.decode().lower(): v.decode("latin-1") for k, v in r.headers}, r.content)

    def close(self) -> None:
        self.pool.close()


class Pictures(BaseHTTPRequestHandler):
    """A small origin for masters, with the misbehaviours a store must survive."""

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head: bool = False):
        path = self.path
        if path.startswith("/pics/") and (CORPUS / path[6:]).is_file():
            body = (CORPUS / path[6:]).read_bytes()
            self._send(200, body, {"ETag": f'"{len(body)}"', "Content-Type": "image/jpeg"}, head)
        elif path == "/pics/redirect-inside":
            self._send(302, headers={"Location": "/pics/flower_640x427.jpg"}, head=head)
        elif path == "/pics/redirect-outside":
            self._send(302, headers={"Location": "/private/flower_640x427.jpg"}, head=head)
        elif path == "/pics/loop":
            self._send(302, headers={"Location": "/pics/loop"}, head=head)
        elif path == "/pics/slow.jpg":
            time.sleep(3)
            self._send(200, b"late", head=head)
        elif path == "/private/flower_640x427.jpg":
            self._send(200, (CORPUS / "flower_640x427.jpg").read_bytes(), head=head)
        else:
            self._send(404, b"no", head=head)
