"""Better encodes, made while the server is idle and swapped into the cache.

WebP and AVIF renditions are first encoded fast, and q=auto ones larger than their search's
sample are searched on the sample (origin.render.has_upgrade): both are served as provisional
(briefly cacheable, an ETag of their own) and their keys wait here. Once no render has been
waiting or running for a moment, each is made again from the master with the better settings
(EncodeSettings.upgraded) and q=auto's trials scored on the whole image, and replaces the
provisional one in every tier; a better encode at a fixed quality that is no smaller leaves the
fast one, marked final. Under load misses keep every core, except that a server which is never
idle still upgrades what is asked for again: once the oldest key that had a hit while waiting has
waited `Patience.after_s`, it runs under load, and the next only after a rest that keeps upgrades
to `Patience.share` of a render thread's time. What waits past `limit` is dropped, and the next
hit on it asks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from cachetools import TTLCache

from edge.caches.shared import RenderLocks
from edge.caches.tiered import TieredCache
from edge.metrics import Metrics
from origin.core.errors import Problem
from origin.render import Job, Made, Renderer

log = logging.getLogger("edge")


@dataclass(frozen=True)
class Patience:
    """How a server that is never idle still gets its upgrades made."""

    after_s: float = 30.0  # the oldest waiting upgrade runs under load once it has waited this; 0: never
    share: float = 0.1  # ... and upgrades made under load take at most this share of a render thread

    def __post_init__(self) -> None:
        if self.after_s < 0 or not 0 < self.share <= 1:
            raise ValueError(f"upgrades under load: after_s must be 0 or more and share 0..1, got {self}")

    def rest_s(self, took_s: float) -> float:
        """How long to wait after an upgrade made under load that took `took_s`, before the next."""
        return took_s * (1 - self.share) / self.share

    def overdue(self, waited_s: float, now: float, rest_until: float) -> bool:
        """Whether an upgrade that has waited `waited_s` may start on a busy server now."""
        return self.after_s > 0 and waited_s >= self.after_s and now >= rest_until


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
        patience: Patience | None = None,
    ):
        self.renderer, self.cache, self.metrics, self.locks = renderer, cache, metrics, locks
        self.on_made = on_made  # the audit line and render metrics of each upgrade made
        self.limit = limit
        self.idle_s = idle_s  # how long the render pool must have been empty before one starts
        self.patience = patience or Patience()
        self._waiting: OrderedDict[str, tuple[Job, float]] = OrderedDict()  # oldest first, with when wanted
        # Waiting keys asked for again (a hit on the provisional rendition), in that order: only
        # these are worth a render thread under load; a rendition nobody asks for twice waits for idle.
        self._asked: OrderedDict[str, None] = OrderedDict()
        self._rest_until = 0.0  # time.monotonic() before which no upgrade starts under load
        self._task: asyncio.Task[None] | None = None
        self._current = ""
        # Keys whose upgrade failed lately: not tried again on every hit for a while.
        self._failed: TTLCache[str, bool] = TTLCache(1024, ttl=600)

    def want(self, job: Job) -> None:
        """Make `job`'s better encode when there is time (its provisional rendition is cached)."""
        if job.key in self._waiting:
            self._asked.setdefault(job.key)
            return
        if job.key == self._current or job.key in self._failed:
            return
        if len(self._waiting) >= self.limit:
            self.metrics.encode_upgrades.labels(job.plan.format, "dropped").inc()
            return
        self._waiting[job.key] = (job, time.monotonic())
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._waiting:
            overdue = await self._until_turn()
            key = overdue or next(iter(self._waiting))
            job, wanted = self._waiting.pop(key)
            asked = key in self._asked
            self._asked.pop(key, None)
            self._current, started = key, time.monotonic()
            try:
                result = await self.upgrade(job)
            except Problem as problem:
                if problem.status != 503:
                    result = self._failure(key, problem)
                else:  # the render queue is full: first in line again, after a rest
                    self._waiting[key] = (job, wanted)
                    self._waiting.move_to_end(key, last=False)
                    if asked:
                        self._asked[key] = None
                        self._asked.move_to_end(key, last=False)
                    result = "deferred"
            except Exception as error:
                result = self._failure(key, error)
            finally:
                self._current = ""
            if overdue:
                self._rest_until = time.monotonic() + self.patience.rest_s(max(time.monotonic() - started, 0.1))
            self.metrics.encode_upgrades.labels(job.plan.format, result).inc()

    def _failure(self, key: str, error: Exception) -> str:
        """The provisional one keeps serving; a hit asks again, after a while."""
        self._failed[key] = True
        log.warning("encode upgrade of %s failed: %s", key, error)
        return "failed"

    async def _until_turn(self) -> str | None:
        """Wait until the render pool has been empty for `idle_s` (None: the oldest goes next), or
        until the oldest key asked for again is overdue on a pool that is never empty (that key:
        it runs under load)."""
        pool, quiet, step = self.renderer.pool, 0, self.idle_s / 4
        while quiet < 4:
            await asyncio.sleep(step)
            quiet = quiet + 1 if pool.pending == 0 else 0
            if quiet == 0 and self._asked:
                key, now = next(iter(self._asked)), time.monotonic()
                if self.patience.overdue(now - self._waiting[key][1], now, self._rest_until):
                    return key
        return None

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
        self._asked.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
