"""The real app in this process: `create_app(config, build_services(config))` behind httpx.

`InProcess` has the same face as tests.support.server.Server (`base`, `masters`, `cache_dir`,
`signer`, `url()`, `client()`, `log()`), so a test reads the same whichever it talks to; only what a
real process shows (SIGKILL, uvicorn's parsing of raw request lines, nginx, several processes) needs
the real server. Requests run on one event loop in a background thread, for the app's whole life,
so concurrent requests, single-flight and background upgrades behave as they do under uvicorn.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from edge.config import Config, load_config
from edge.http.app import create_app
from edge.services import Services, build_services
from edge.signing import Signer, parse_keys
from origin.core.request import RenditionOptions
from tests.support.corpus import CORPUS, TEST_ENV, TEST_KEYS

BASE = "http://edge.test"


class LoopTransport(httpx.BaseTransport):
    """A synchronous httpx transport into an ASGI app running on its own event loop thread."""

    def __init__(self, app: Any):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-loop", daemon=True)
        self._thread.start()
        self._asgi = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))

    def run(self, coroutine: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> httpx.Response:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._asgi.handle_async_request(inner)
            content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return self.run(send())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class InProcess:
    config: Config
    services: Services
    transport: LoopTransport
    masters: Path
    cache_dir: Path
    signer: Signer = field(default_factory=lambda: Signer(parse_keys(TEST_KEYS)))
    base: str = BASE
    _log: io.StringIO = field(default_factory=io.StringIO)
    _handlers: list[tuple[logging.Logger, logging.Handler, int, bool]] = field(default_factory=list)

    def url(self, path: str, **options: object) -> str:
        """A signed URL for `path` (options as in the grammar: w=, h=, fm=, v=...)."""
        return self.base + self.signer.sign_url(path, RenditionOptions(**options))  # type: ignore[arg-type]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=self.transport, timeout=kwargs.pop("timeout", 30), **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """One GET through a short-lived client (what a test would do with httpx.get)."""
        timeout = kwargs.pop("timeout", 30)
        with self.client(timeout=timeout) as client:
            return client.get(url, **kwargs)

    def log(self) -> str:
        """What the app logged (its loggers, access log included), as the server's stderr would show."""
        return self._log.getvalue()

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the app's event loop (to call services directly)."""
        return self.transport.run(coroutine, timeout=60)

    def _capture(self) -> None:
        """Log as `edge serve` does: access and render-audit lines as bare JSON, the rest with
        level and logger."""
        self._handlers = []
        for name, fmt, propagate in (
            ("edge", "%(levelname)s %(name)s: %(message)s", True),
            ("edge.access", "%(message)s", False),
            ("edge.render", "%(message)s", False),
        ):
            logger = logging.getLogger(name)
            handler = logging.StreamHandler(self._log)
            handler.setFormatter(logging.Formatter(fmt))
            self._handlers.append((logger, handler, logger.level, logger.propagate))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = propagate

    def _release(self) -> None:
        for logger, handler, level, propagate in self._handlers:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def config_for(tmp: Path, masters: Path, env: dict[str, str] | None = None) -> Config:
    """The configuration tests run with: the test keys, caches under `tmp`, only bundled models."""
    base = {**TEST_ENV, "EDGE_CACHE_DIR": str(tmp / "cache")}
    return load_config(env={**base, "EDGE_MASTERS": str(masters), **(env or {})})


def start_app(
    tmp: Path, env: dict[str, str] | None = None, masters: Path | None = None, cache_dir: Path | None = None
) -> InProcess:
    """The app over a copy of the test corpus (or `masters`), configured like tests.support.server's
    real server; `stop_app` ends it. Its log (the edge loggers) is captured for `log()`."""
    if masters is None:
        masters = tmp / "masters"
        shutil.copytree(CORPUS, masters, ignore=shutil.ignore_patterns("*.py", "*.md", "licenses"))
    extra = {"EDGE_CACHE_DIR": str(cache_dir)} if cache_dir else {}
    config = config_for(tmp, masters, {**extra, **(env or {})})
    services = build_services(config)
    transport = LoopTransport(create_app(config, services))
    app = InProcess(config, services, transport, masters, Path(config.cache.disk_dir))
    app._capture()
    return app


def stop_app(app: InProcess) -> None:
    try:
        app.run(app.services.close())
    finally:
        app.transport.stop()
        app._release()


@contextmanager
def in_process(tmp: Path, env: dict[str, str] | None = None, masters: Path | None = None) -> Iterator[InProcess]:
    app = start_app(tmp, env, masters)
    try:
        yield app
    finally:
        stop_app(app)
