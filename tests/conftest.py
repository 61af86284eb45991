"""Fixtures only (helpers live in tests/support). `server` and `http` come from tests/unit (the app in
process) or tests/e2e (a real server process); here, what both use."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from tests.support.http import Pictures


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """An HTTP origin for masters (tests.support.http.Pictures) on loopback, to allowlist."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pictures)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
