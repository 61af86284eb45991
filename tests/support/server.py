"""A real server: `edge serve` in a subprocess on a free port, for what only a real process shows."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge.config import DEMO_MASTERS
from edge.signing import Signer, parse_keys
from origin.core.request import RenditionOptions
from tests.support.corpus import CORPUS, TEST_ENV, TEST_KEYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    masters: Path
    cache_dir: Path
    process: subprocess.Popen[bytes]
    signer: Signer
    log_path: Path

    def url(self, path: str, **options: object) -> str:
        """A signed URL for `path` (options as in the grammar: w=, h=, fm=, v=...)."""
        return self.base + self.signer.sign_url(path, RenditionOptions(**options))  # type: ignore[arg-type]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(timeout=kwargs.pop("timeout", 30), **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """One GET through a short-lived client (what a test would do with httpx.get)."""
        timeout = kwargs.pop("timeout", 30)
        with self.client(timeout=timeout) as client:
            return client.get(url, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp: Path, env_extra: dict[str, str] | None = None, masters: Path | None = None, cache_dir: Path | None = None
) -> Server:
    if masters is None:
        masters = tmp / "masters"
        shutil.copytree(CORPUS, masters, ignore=shutil.ignore_patterns("*.py", "*.md", "licenses"))
    cache_dir = cache_dir or tmp / "cache"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_")}
    # Only the bundled models unless a test adds some: not whatever `edge models add` put in var/models.
    env.update({**TEST_ENV, "EDGE_CACHE_DIR": str(cache_dir)})
    env.update(env_extra or {})
    log_path = tmp / f"server-{port}.log"
    log = open(log_path, "wb")
    # A store named in the environment (EDGE_MASTERS=s3://...) must not be overridden by --masters.
    where = [] if "EDGE_MASTERS" in env else ["--masters", str(masters)]
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "serve", *where, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz", process, log_path, 30)
    return Server(base, masters, cache_dir, process, Signer(parse_keys(TEST_KEYS)), log_path)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    """Until `url` answers 200; if the process dies or time runs out, kill it and raise with its log."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{url} did not come up:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.1)


def start_demo_server(tmp: Path, env_extra: dict[str, str] | None = None) -> Server:
    """A server on a copy of the demo masters, which the bundled example rules cover."""
    shutil.copytree(DEMO_MASTERS, tmp / "masters")
    return start_server(tmp, env_extra, masters=tmp / "masters")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
