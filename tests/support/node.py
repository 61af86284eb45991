"""The framework example apps (integrations/*/example) as the suite builds them: copied out of the
checkout next to the JS package they link (file:../../js), then `npm ci` from the committed lock."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.vectors import ROOT

NPM = shutil.which("npm")
NODE = shutil.which("node")
SKIP_REASON = "node and npm are not installed (apt-get install nodejs npm)"
# npm's errors when there is no network: the registry is the one place the example apps need.
OFFLINE = (
    "ENOTFOUND",
    "EAI_AGAIN",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "ESOCKETTIMEDOUT",
    "ERR_SOCKET_TIMEOUT",
    "ENETUNREACH",
    "ECONNRESET",
)


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def installed_app(tmp: Path, framework: str, env: dict[str, str]) -> Path:
    """integrations/{framework}/example under `tmp`, its dependencies installed by `npm ci`."""
    assert NPM is not None, SKIP_REASON
    skip = shutil.ignore_patterns("node_modules", ".next", ".astro", "dist")
    shutil.copytree(ROOT / "integrations" / "js", tmp / "integrations" / "js", ignore=skip)
    app = tmp / "integrations" / framework / "example"
    shutil.copytree(ROOT / "integrations" / framework / "example", app, ignore=skip)
    done = subprocess.run(
        # Offline, npm would retry for minutes: fail fast instead, and skip.
        [NPM, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--fetch-timeout=30000", "--fetch-retries=1"],
        cwd=app, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    offline = [line for line in done.stderr.splitlines() if any(code in line for code in OFFLINE)]
    if done.returncode and offline:
        pytest.skip(f"the npm registry is not reachable from here: {offline[0].strip()}")
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return app
