"""Getting a rendition: cache tiers first, then one render per key however many ask at once.

Making renditions is origin.render's business; this module caches them, collapses concurrent
misses into one render, serves Lanczos stand-ins while a model works in the background, and
counts what happened. The outcome is structured: edge.headers spells it as response headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace

from cachetools import LRUCache, TTLCache

from edge.caches.shared import RenderLocks
from edge.caches.tiered import TieredCache, TierLookup
from edge.metrics import Metrics
from edge.upgrades import Patience, Upgrades
from origin.core.concurrency import SingleFlight
from origin.core.errors import OverBudget, Problem
from origin.core.master import MasterRecord
from origin.core.rendition import Rendition, made_by_model
from origin.core.request import RenditionOptions
from origin.render import Job, Made, Renderer

log = logging.getLogger("edge")
# One JSON line per rendition made (edge.logs writes them bare, like the access log): the audit
# trail of what was made from which master version, how, and what it says about itself.
audit = logging.getLogger("edge.render")


@dataclass(frozen=True)
class Outcome:
    rendition: Rendition
    lookups: tuple[TierLookup, ...]  # what each cache tier answered, nearest first
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    stored: bool = False  # rendered now and stored (in every tier but `unstored`)
    unstored: tuple[str, ...] = ()  # tiers that could not store it (a full or read-only disk...)
    collapsed: bool = False  # joined a render already in flight
    interim: bool = False  # a Lanczos stand-in while a model makes the real one: not for shared caches

    @property
    def cache(self) -> str:
        """hit, miss or collapsed: for access logs and metrics."""
        if any(lookup.hit for lookup in self.lookups):
            return "hit"
        return "collapsed" if self.collapsed else "miss"


def record_render(job: Job, made: Made) -> None:
    """The audit line of one rendition: master, version, what was made, how, and its provenance."""
    if not audit.isEnabledFor(logging.INFO):
        return
    plan, rendition = job.plan, made.rendition
    line = {
        "time": round(time.time(), 3),
        "event": "render",
        "key": job.key,
        "master": job.record.path,
        "version": job.record.short_version,
        "width": rendition.width,
        "height": rendition.height,
        "format": rendition.format,
        "quality": plan.quality_target if plan.quality_target is not None else plan.quality,
        "upscale": rendition.upscale,
        "source_type": "algorithmicallyEnhanced" if made_by_model(rendition.upscale) else "master's",
        "c2pa": made.timings.notes.get("credentials") == "c2pa",  # a Content Credentials manifest written
        "bytes": len(rendition.body),
        "ms": {name: round(seconds * 1000, 1) for name, seconds in made.timings.items()},
    }
    audit.info("%s", json.dumps(line, separators=(",", ":")))


class RenditionService:
    def __init__(
        self,
        renderer: Renderer,
        cache: TieredCache,
        metrics: Metrics | None = None,
        locks: RenderLocks | None = None,
        timeout_memory_s: float = 300.0,
        patience: Patience | None = None,
    ):
        self.renderer = renderer
        self.cache = cache
        self.metrics = metrics or Metrics()
        self.locks = locks  # with several worker processes: one render per key across them
        self.flight: SingleFlight[Outcome] = SingleFlight()
        # Lanczos stand-ins served while a model works on the real rendition in the background.
        self.interim: LRUCache[str, Rendition] = LRUCache(64 * 1024 * 1024, getsizeof=lambda r: len(r.body))
        self.upgrading: dict[str, asyncio.Task[None]] = {}
        # Renditions whose render ran past its budget: a retry is answered at once, for a while,
        # instead of paying for the same doomed render again (a 504 is no-store, so every client
        # and cache in front would retry).
        self.timed_out: TTLCache[str, float] | None = (
            TTLCache(10_000, ttl=timeout_memory_s) if timeout_memory_s > 0 else None
        )
        self.timeout_memory_s = timeout_memory_s
        # Better encodes, while idle (or overdue).
        self.upgrades = Upgrades(renderer, cache, self.metrics, locks, on_made=self._made, patience=patience)

    def job(self, record: MasterRecord, opts: RenditionOptions, fmt: str) -> Job:
        return self.renderer.job(record, opts, fmt)

    async def get(self, job: Job) -> Outcome:
        started = time.perf_counter()
        found = await self.cache.get(job.key)
        for lookup in found.lookups:
            self.metrics.count_lookup(lookup.tier, lookup.hit)
        if found.rendition is not None:
            if found.rendition.provisional:  # here after a restart, or made by another process
                self.upgrades.want(job)
            return Outcome(found.rendition, found.lookups, {"cache": time.perf_counter() - started})
        stand_in = self.interim.get(job.key) if job.key in self.upgrading else None
        if stand_in is not None:
            return Outcome(stand_in, found.lookups, {"cache": time.perf_counter() - started}, interim=True)
        if self.timed_out is not None and job.key in self.timed_out:
            left = max(1, round(self.timed_out[job.key] - time.monotonic()))
            raise Problem(
                504,
                f"this rendition ran past its render budget a moment ago; not tried again for {left} s",
                headers={"Retry-After": str(left)},
            )
        outcome, joined = await self.flight.run(job.key, lambda: self._render_once(job, found.lookups))
        if joined:
            self.metrics.singleflight_joins.inc()
            return replace(outcome, stored=False, collapsed=True)
        return outcome

    async def _render_once(self, job: Job, lookups: tuple[TierLookup, ...]) -> Outcome:
        """Render, unless another worker process is rendering the same key: then wait for it and
        take its result from the shared tiers."""
        if self.locks is None:
            return await self._render(job, lookups)
        async with self.locks.hold(job.key) as waited:
            if waited:
                found = await self.cache.get(job.key)
                if found.rendition is not None:
                    return Outcome(found.rendition, lookups, {}, collapsed=True)
            return await self._render(job, lookups)

    async def _render(self, job: Job, lookups: tuple[TierLookup, ...]) -> Outcome:
        try:
            made = await self.renderer.render(job)
        except Problem as problem:
            if problem.status == 503:
                self.metrics.queue_rejections.inc()
            elif problem.status == 504:
                self.metrics.render_timeouts.inc()
                if self.timed_out is not None and isinstance(problem, OverBudget):  # not a slow store
                    self.timed_out[job.key] = time.monotonic() + self.timeout_memory_s
            raise
        if made.upgrade is not None:
            # Too slow to wait for: Lanczos now, privately cached; the model in the background.
            self.metrics.superres_fallbacks.labels("budget").inc()
            self.interim[job.key] = made.rendition
            self._upgrade_later(job, made)
            return Outcome(made.rendition, lookups, made.timings, interim=True)
        unstored = await self._store(job.key, made)
        self._made(job, made)
        return Outcome(made.rendition, lookups, made.timings, stored=True, unstored=unstored)

    def _made(self, job: Job, made: Made) -> None:
        """Count and log a rendition just made; a provisional one waits for its upgrade."""
        self.metrics.observe_render(made.rendition.format, made.timings, made.rendition.upscale)
        record_render(job, made)
        if made.rendition.provisional:
            self.upgrades.want(job)

    async def _store(self, key: str, made: Made) -> tuple[str, ...]:
        unstored = await self.cache.put(key, made.rendition)
        if made_by_model(made.rendition.upscale):
            self.metrics.superres_runs.labels(made.rendition.upscale).inc()
        return unstored

    def _upgrade_later(self, job: Job, stand_in: Made) -> None:
        key = job.key
        if key in self.upgrading or stand_in.upgrade is None:
            return
        upgrade = stand_in.upgrade

        async def run() -> None:
            try:
                upgraded = await upgrade()
                await self._store(key, upgraded)
                self._made(job, upgraded)
            except Exception as error:  # the stand-in keeps serving; the next miss tries again
                self.metrics.superres_fallbacks.labels("error").inc()
                log.warning("super-resolution upgrade failed: %s", error)
            finally:
                self.upgrading.pop(key, None)
                self.interim.pop(key, None)

        self.upgrading[key] = asyncio.create_task(run())
