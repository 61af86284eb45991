"""In process: `server` here is the real app over httpx (tests.support.app), not a subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.app import InProcess, start_app, stop_app


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    app = start_app(tmp_path_factory.mktemp("app"))
    yield app
    stop_app(app)


@pytest.fixture(scope="session")
def http(server: InProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
