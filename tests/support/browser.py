"""Debian's Chromium, headless, driven by Playwright (its wheel carries its own driver; no browser
download). Importing this skips the test module when playwright is missing; use `SKIP` to skip
it when Chromium is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = Path("/usr/bin/chromium")
SKIP = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
# The flags a sandboxed, offline machine needs (no background calls to the outside world).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's tests (a fixture yields from it)."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
