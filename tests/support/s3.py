"""A real S3-compatible server for tests: moto's standalone server on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import boto3
import httpx

from tests.support.server import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **_boto_credentials())

    def edge_env(self, masters_url: str) -> dict[str, str]:
        """Environment for an edge server whose masters live at `masters_url` in this store."""
        return {
            **CREDENTIALS,
            "EDGE_MASTERS": masters_url,
            "EDGE_S3_ENDPOINT_URL": self.endpoint,
            "EDGE_S3_ADDRESSING_STYLE": "path",
            "EDGE_S3_READ_TIMEOUT_S": "2",
            "EDGE_S3_CONNECT_TIMEOUT_S": "1",
            "EDGE_S3_MAX_ATTEMPTS": "1",
        }

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def start_s3(port: int | None = None) -> S3Server:
    port = port or free_port()
    env = {**os.environ, **CREDENTIALS}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(endpoint + "/moto-api/", timeout=1)
            return S3Server(endpoint, process)
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
