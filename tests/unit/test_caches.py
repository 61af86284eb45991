"""Cache tiers in process: byte bounds, eviction, and no partial entry ever served."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.caches.disk import DiskTier
from edge.caches.entry import decode_entry, encode_entry
from edge.caches.memory import MemoryTier
from edge.caches.tiered import TieredCache
from edge.headers import cache_status
from origin.core.rendition import Rendition

R = Rendition(b"x" * 1000, "jpeg", 10, 10)


def run(coro):
    return asyncio.run(coro)


def test_memory_tier_is_bounded_in_bytes():
    tier = MemoryTier(max_bytes=5000)
    for i in range(10):
        run(tier.put(f"k{i}", R))
    assert tier.bytes_used <= 5000
    assert run(tier.get("k9")) == R and run(tier.get("k0")) is None


def test_disk_entries_round_trip_and_detect_damage():
    raw = encode_entry(R)
    assert decode_entry(raw) == R
    for cut in (0, 5, len(raw) // 2, len(raw) - 1):
        assert decode_entry(raw[:cut]) is None
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    assert decode_entry(flipped) is None


def test_disk_tier_evicts_least_recently_used(tmp_path: Path):
    room = 3 * len(encode_entry(R))  # three entries fit, a fourth does not
    tier = DiskTier(tmp_path, max_bytes=room)
    for key in ("aa1", "bb2", "cc3"):
        run(tier.put(key, R))
    run(tier.get("aa1"))  # recently used
    run(tier.put("dd4", R))
    assert run(tier.get("aa1")) == R
    assert run(tier.get("bb2")) is None
    assert tier.bytes_used <= room


def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path):
    tier = DiskTier(tmp_path, max_bytes=10**6)
    run(tier.put("abcdef", R))
    path = tmp_path / "ab" / "abcdef"
    path.write_bytes(path.read_bytes()[:-10])  # as if cut short
    assert run(tier.get("abcdef")) is None
    assert not path.exists()


def test_restart_rebuilds_the_index_and_removes_temp_files(tmp_path: Path):
    tier = DiskTier(tmp_path, max_bytes=10**6)
    run(tier.put("abcdef", R))
    stray = tmp_path / "ab" / ".tmp-123"
    stray.write_bytes(b"half a write")
    again = DiskTier(tmp_path, max_bytes=10**6)
    assert not stray.exists()
    assert run(again.get("abcdef")) == R and again.bytes_used == tier.bytes_used


def test_tiers_promote_hits_and_report_cache_status(tmp_path: Path):
    memory, disk = MemoryTier(10**6), DiskTier(tmp_path, 10**6)
    cache = TieredCache([memory, disk])
    run(disk.put("k1", R))
    found = run(cache.get("k1"))
    assert found.rendition == R and cache_status(found.lookups) == "edge-disk; hit, edge-memory; fwd=miss"
    assert run(memory.get("k1")) == R
    missed = run(cache.get("nope")).lookups
    assert cache_status(missed, stored=True) == "edge-disk; fwd=miss; stored, edge-memory; fwd=miss; stored"
    assert cache_status(missed, collapsed=True) == "edge-disk; fwd=miss; collapsed, edge-memory; fwd=miss; collapsed"


def test_a_disk_hit_in_the_page_cache_is_read_without_waiting_and_a_cold_one_still_arrives(tmp_path: Path):
    import os

    from edge.caches.disk import WouldBlock, entry_path, read_entry

    tier = DiskTier(tmp_path, 10_000_000)
    rendition = Rendition(os.urandom(50_000), "webp", 10, 10)
    run(tier.put("abcdef", rendition))
    path = entry_path(tmp_path, "abcdef")
    assert read_entry(path, nowait=True) == (rendition, True)  # just written: in the page cache
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # out of the page cache, where the fs allows
    finally:
        os.close(fd)
    try:
        assert read_entry(path, nowait=True) == (rendition, True)  # tmpfs: pages never leave memory
    except WouldBlock:
        pass  # a real disk: the loop would have waited, so the tier reads in a thread instead
    assert run(tier.get("abcdef")) == rendition
    assert read_entry(tmp_path / "ab" / "missing", nowait=True) == (None, False)
    path.write_bytes(path.read_bytes()[:-10])  # cut short: damaged, removed, rendered again
    assert run(tier.get("abcdef")) is None and not path.exists()
