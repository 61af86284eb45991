"""Better encodes, made while the server is idle and swapped into the cache.

WebP and AVIF renditions are first encoded fast, and q=auto ones larger than their search's
sample are searched on the sample (origin.render.has_upgrade): both are served as provisional
(briefly cacheable, an ETag of their own) and their keys wait here. Once no render has been
waiting or running for a moment, each is made again from the master with the better settings
(EncodeSettings.upgraded) and q=auto's trials scored on the whole image, and replaces the
provisional one in every tier; a better encode at a fixed quality that is no smaller leaves the
fast one, marked final. Under load nothing here runs, so misses keep every core; what waits past
`limit` is dropped, and the next hit on it asks again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from cachetools import TTLCache

from edge.caches.shared import RenderLocks
from edge.caches.tiered import TieredCache
from edge.metrics import Metrics
from origin.render import Job, Made, Renderer

log = logging.getLogger("edge")


class Upgrades:
    def __init__(
        self,
        renderer: Renderer,
        cache: TieredCache,
        metrics: Metrics,
        locks: RenderLocks | None = None,
        limit: int = 4096,
        idle_s: float = 0.25,
        on_made: Callable[[Job, Made], None] = lambda _job, _made: None,
    ):
        self.renderer, self.cache, self.metrics, self.locks = renderer, cache, metrics, locks
        self.on_made = on_made  # the audit line and render metrics of each upgrade made
        self.limit = limit
        self.idle_s = idle_s  # how long the render pool must have been empty before one starts
        self._waiting: OrderedDict[str, Job] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._current = ""
        # Keys whose upgrade failed lately: not tried again on every hit for a while.
        self._failed: TTLCache[str, bool] = TTLCache(1024, ttl=600)

    def want(self, job: Job) -> None:
        """Make `job`'s better encode when there is time (its provisional rendition is cached)."""
        if job.key in self._waiting or job.key == self._current or job.key in self._failed:
            return
        if len(self._waiting) >= self.limit:
            self.metrics.encode_upgrades.labels(job.plan.format, "dropped").inc()
            return
        self._waiting[job.key] = job
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._waiting:
            await self._until_idle()
            key, job = self._waiting.popitem(last=False)
            self._current = key
            try:
                result = await self.upgrade(job)
            except Exception as error:  # the provisional one keeps serving; a hit asks again later
                result = "failed"
                self._failed[key] = True
                log.warning("encode upgrade of %s failed: %s", key, error)
            finally:
                self._current = ""
            self.metrics.encode_upgrades.labels(job.plan.format, result).inc()

    async def _until_idle(self) -> None:
        pool, quiet, step = self.renderer.pool, 0, self.idle_s / 4
        while quiet < 4:
            await asyncio.sleep(step)
            quiet = quiet + 1 if pool.pending == 0 else 0

    async def upgrade(self, job: Job) -> str:
        """Replace `job`'s provisional rendition with its better encode; what happened."""
        async with self._held(job.key):
            found = await self.cache.get(job.key)
            fast = found.rendition
            if fast is None or not fast.provisional:  # purged, or upgraded by another process
                return "gone"
            made = await self.renderer.render(job, better=True)
            if made.upgrade is not None:  # a Lanczos stand-in: the model's turn (the server is idle)
                made = await made.upgrade()
            again = (await self.cache.get(job.key)).rendition
            if again is None or not again.provisional:  # purged while it was made
                return "gone"
            self.on_made(job, made)
            # q=auto: the upgrade's quality was searched on the whole image, so it is the one that
            # meets the target, bigger or not. Otherwise the better encode must pay for itself.
            if job.plan.quality_target is not None or len(made.rendition.body) < len(fast.body):
                await self.cache.put(job.key, made.rendition)
                return "better"
            await self.cache.put(job.key, replace(fast, provisional=False))
            return "kept"

    @asynccontextmanager
    async def _held(self, key: str) -> AsyncIterator[None]:
        if self.locks is None:
            yield
            return
        async with self.locks.hold(key):
            yield

    async def close(self) -> None:
        self._waiting.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
