"""Admission before reading: a miss gets its place (by count and by expected memory) before its
master is read, so a burst of misses on big masters is answered 503 instead of holding them all."""

from __future__ import annotations

import asyncio

import pytest

from origin.core.errors import Problem
from origin.core.formats import EncodeSettings, FormatSettings
from origin.core.limits import Limits
from origin.core.master import MasterInfo, MasterRecord
from origin.core.request import RenditionOptions
from origin.masters.index import MasterIndex
from origin.masters.local import LocalMasterStore
from origin.pool import RenderPool
from origin.render import Renderer, render_cost
from tests.support.corpus import CORPUS

PHOTO = "flower_640x427.jpg"


def test_the_memory_budget_admits_one_render_always_and_more_while_they_fit():
    pool = RenderPool(workers=4, queue_limit=4, time_budget_s=10, memory_budget=100)
    big = pool.admit(90)
    with pytest.raises(Problem) as e:
        pool.admit(20)  # 110 > 100
    assert e.value.status == 503 and e.value.headers["Retry-After"] == "2"
    small = pool.admit(10)  # 100: fits
    big.release()
    big.release()  # once only
    assert pool.pending == 1
    small.release()
    lone = pool.admit(10_000)  # over the budget, but alone: always let in
    lone.release()
    assert pool.pending == 0


class SlowStore(LocalMasterStore):
    """Counts reads and holds each until released."""

    def __init__(self) -> None:
        super().__init__(CORPUS)
        self.reads = 0
        self.go = asyncio.Event()

    async def read(self, info: MasterInfo) -> bytes:
        self.reads += 1
        await self.go.wait()
        return await super().read(info)


def test_a_miss_is_refused_before_its_master_is_read_when_the_queue_is_full():
    async def scenario() -> None:
        store = SlowStore()
        pool = RenderPool(workers=1, queue_limit=0, time_budget_s=30)
        renderer = Renderer(store, Limits(), FormatSettings(), EncodeSettings(), pool)
        record = await MasterIndex(LocalMasterStore(CORPUS), Limits()).lookup(PHOTO)
        jobs = [renderer.job(record, RenditionOptions(w=w), "jpeg") for w in (100, 120)]
        first = asyncio.create_task(renderer.render(jobs[0]))
        await asyncio.sleep(0.05)
        with pytest.raises(Problem) as e:
            await renderer.render(jobs[1])
        assert e.value.status == 503 and store.reads == 1  # the second master was never read
        store.go.set()
        assert (await first).rendition.format == "jpeg"
        assert pool.pending == 0  # the slot is free again
        failing = LocalMasterStore(CORPUS)
        renderer.store = failing
        gone = renderer.job(
            MasterRecord(MasterInfo("gone.jpg", 10, "x"), record.version, record.header),
            RenditionOptions(w=90),
            "jpeg",
        )
        with pytest.raises(Problem):
            await renderer.render(gone)  # the read fails: 503 retry soon
        assert pool.pending == 0  # and gives its place back

    asyncio.run(scenario())


def test_render_cost_counts_the_master_its_decode_and_the_output():
    async def lookup():
        return await MasterIndex(LocalMasterStore(CORPUS), Limits()).lookup(PHOTO)

    record = asyncio.run(lookup())
    renderer = Renderer(LocalMasterStore(CORPUS), Limits(), FormatSettings(), EncodeSettings(), RenderPool(1, 0, 10))
    small = render_cost(renderer.job(record, RenditionOptions(w=100), "jpeg"))
    enlarged = render_cost(renderer.job(record, RenditionOptions(w=640, dpr=3), "jpeg"))
    assert record.info.size < small < record.info.size + 640 * 427 * 3 * 2
    assert enlarged > 1920 * 1281 * 3 * 4  # floats at the output size
