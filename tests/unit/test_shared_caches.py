"""What worker processes share, in process: the shared disk tier's janitor keeps the budget, the
render lock makes a second worker wait, and a purge reaches another worker's memory tier."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from edge.caches.disk import SharedDiskTier
from edge.caches.memory import MemoryTier
from edge.caches.shared import RenderLocks
from edge.services import build_services
from origin.core.keys import master_id
from origin.core.rendition import Rendition
from tests.support.app import config_for
from tests.support.corpus import CORPUS

R = Rendition(b"x" * 1000, "jpeg", 10, 10)


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


def test_the_janitor_keeps_the_shared_tier_within_its_budget(tmp_path: Path):
    tier = SharedDiskTier(tmp_path, max_bytes=5_000, sweep_s=3600)
    try:
        for n in range(10):
            run(tier.put(f"ab{n:04d}", R))
            os.utime(tmp_path / "ab" / f"ab{n:04d}", (time.time() - 100 + n, time.time() - 100 + n))
        stray = tmp_path / "ab" / ".tmp-crashed"
        stray.write_bytes(b"half")
        os.utime(stray, (time.time() - 120, time.time() - 120))
        young = tmp_path / "ab" / ".tmp-being-written"
        young.write_bytes(b"half")
        tier.sweep()
        kept = sorted(p.name for p in (tmp_path / "ab").iterdir() if not p.name.startswith("."))
        assert kept == [f"ab{n:04d}" for n in range(6, 10)]  # the least recently used went first
        assert tier.bytes_used <= 5_000
        assert not stray.exists() and young.exists()  # a write under way is left alone
        assert run(tier.get("ab0009")) == R
        assert run(tier.purge("ab000")) == 4
    finally:
        run(tier.close())


def test_a_second_worker_waits_for_the_first_render_of_a_key(tmp_path: Path):
    locks_a, locks_b = RenderLocks(tmp_path, timeout_s=5), RenderLocks(tmp_path, timeout_s=5)
    order = []

    async def first() -> None:
        async with locks_a.hold("key") as waited:
            order.append(("a", waited))
            await asyncio.sleep(0.2)
        order.append(("a done", False))

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with locks_b.hold("key") as waited:
            order.append(("b", waited))

    async def both() -> None:
        await asyncio.gather(first(), second())

    run(both())
    assert order == [("a", False), ("a done", False), ("b", True)]


def test_a_purge_reaches_another_workers_memory_tier(tmp_path: Path):
    config = config_for(tmp_path, CORPUS)
    a, b = build_services(config, processes=2), build_services(config, processes=2)
    try:
        key = master_id("flower_640x427.jpg") + "0123"
        memory_a, memory_b = (next(t for t in s.cache.tiers if isinstance(t, MemoryTier)) for s in (a, b))
        run(memory_a.put(key, R))
        run(memory_b.put(key, R))
        run(a.purge("flower_640x427.jpg"))
        assert run(memory_a.get(key)) is None
        assert run(memory_b.get(key)) == R  # b has not read the purge log yet
        assert b.purges is not None
        run(b.purges.catch_up())
        assert run(memory_b.get(key)) is None
    finally:
        run(a.close())
        run(b.close())
