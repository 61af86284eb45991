"""The disk tier on a real filesystem that fails: read-only (with a crash's stray temporary file
in it) and full. The server starts, serves every request, says in Cache-Status that it did not
store, and reports it in /readyz's body while staying ready (it can serve)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corpus import AVIF_ACCEPT
from tests.support.server import start_server, stop_server

PHOTO = "flower_640x427.jpg"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs of its own (root can write anywhere else, so only a filesystem can refuse)."""
    where = tmp_path / "cachefs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_read_only_cache_with_a_stray_temp_file_starts_serves_and_says_it_stores_nothing(
    tmp_path: Path, small_fs: Path
):
    (small_fs / "ab").mkdir()
    (small_fs / "ab" / ".tmp-0123456789abcdef").write_bytes(b"half an entry")  # what a crash leaves
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    server = start_server(tmp_path, cache_dir=small_fs)
    try:
        assert "Traceback" not in server.log()
        for _ in range(2):
            r = server.get(server.url(PHOTO, w=210), headers={"Accept": AVIF_ACCEPT})
            assert r.status_code == 200
        assert 'edge-disk; fwd=miss; detail="not stored"' not in r.headers["cache-status"]  # memory had it
        fresh = server.get(server.url(PHOTO, w=211), headers={"Accept": AVIF_ACCEPT})
        assert fresh.status_code == 200
        assert 'edge-disk; fwd=miss; detail="not stored"' in fresh.headers["cache-status"]
        assert "edge-memory; fwd=miss; stored" in fresh.headers["cache-status"]
        ready = server.get(server.base + "/readyz")
        assert ready.status_code == 200 and ready.json()["problems"] == []
        assert any("not writable" in d or "could not store" in d for d in ready.json()["degraded"]), ready.json()
    finally:
        stop_server(server)


def test_a_full_cache_disk_serves_without_storing_and_says_so(tmp_path: Path, small_fs: Path):
    with open(small_fs / "filler", "wb") as f:  # fill it to the last block
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    server = start_server(tmp_path, cache_dir=small_fs)
    try:
        r = server.get(server.url(PHOTO, w=420, fm="png"))
        assert r.status_code == 200
        assert 'edge-disk; fwd=miss; detail="not stored"' in r.headers["cache-status"]
        degraded = server.get(server.base + "/readyz").json()["degraded"]
        assert any("could not store" in d or "nearly full" in d for d in degraded), degraded
        assert not [p for p in small_fs.rglob(".tmp-*")]  # a failed write leaves no temporary file
    finally:
        stop_server(server)
