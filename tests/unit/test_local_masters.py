"""The local master store under churn: a master removed mid-request is a retry, never a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from origin.core.errors import Problem
from origin.masters.local import LocalMasterStore


def test_a_master_removed_mid_request_is_a_retry_not_a_crash(tmp_path: Path):
    """Deleting and re-creating masters during traffic gave 500s (FileNotFoundError escaping)."""
    (tmp_path / "a.jpg").write_bytes(b"x" * 10)
    store = LocalMasterStore(tmp_path)
    info = asyncio.run(store.stat("a.jpg"))
    assert info is not None
    (tmp_path / "a.jpg").unlink()
    assert asyncio.run(store.stat("a.jpg")) is None  # gone: a 404 upstream
    with pytest.raises(Problem) as caught:
        asyncio.run(store.read(info))  # stat'ed, then removed before the read
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]
    (tmp_path / "a.jpg").write_bytes(b"y" * 10)  # re-created: served again
    assert asyncio.run(store.read(asyncio.run(store.stat("a.jpg")))) == b"y" * 10
