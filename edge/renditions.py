"""Getting a rendition: cache tiers first, then one render per key however many ask at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import blake3
from cachetools import LRUCache

from edge.caches import Rendition, TieredCache
from edge.metrics import Metrics
from edge.options import RenditionOptions, canonical_query
from edge.problems import Problem
from edge.render_pool import RenderPool
from edge.singleflight import SingleFlight
from origin.encode import EncodeSettings
from origin.intermediates import IntermediateCache
from origin.limits import Limits
from origin.masters import MasterStore
from origin.pipeline import Cancelled, CancelToken, Rendered, RenderTools, render
from origin.plan import Box, Plan, SuperResPolicy, plan_rendition
from origin.superres import Upscaler
from origin.versions import MasterRecord, version_hash

log = logging.getLogger("edge")

# Bump when the pipeline's output changes for the same inputs: every cached rendition and ETag moves.
PIPELINE_VERSION = "2"  # 2: centre-aligned Lanczos3 enlargement (origin/resample.py)


@dataclass
class Outcome:
    rendition: Rendition
    cache_status: list[str]  # RFC 9211 members, origin side first
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    interim: bool = False  # a Lanczos stand-in while a model makes the real one: not for shared caches


def master_id(master_path: str) -> str:
    """The prefix every rendition key of one master starts with, whatever its version: for purges."""
    return blake3.blake3(master_path.encode()).hexdigest()[:16] + "-"


def rendition_key(record: MasterRecord, opts: RenditionOptions, fmt: str, settings_fingerprint: str) -> str:
    """Names one representation: master version + what shapes the pixels + format + pipeline."""
    shape = canonical_query(replace(opts, fm=fmt), rendering_only=True)
    material = "\n".join((PIPELINE_VERSION, record.version, shape, settings_fingerprint))
    return master_id(record.info.path) + blake3.blake3(material.encode()).hexdigest()[:32]


@dataclass
class SuperResSupport:
    """Everything super-resolution needs: the model runtime, when to use it, and its own queue."""

    upscaler: Upscaler
    policy: SuperResPolicy
    pool: RenderPool  # model runs, apart from plain renders: one device, bounded
    intermediates: IntermediateCache
    budget_s: float  # the longest a request waits for a model run
    allowed: Callable[[str], bool]  # per master path: False where a rule says `enhance: never`


class RenditionService:
    def __init__(
        self,
        store: MasterStore,
        cache: TieredCache,
        pool: RenderPool,
        limits: Limits,
        encode: EncodeSettings,
        qualities: dict[str, int],
        metrics: Metrics | None = None,
        superres: SuperResSupport | None = None,
    ):
        self.metrics = metrics or Metrics()
        self.store = store
        self.cache = cache
        self.pool = pool
        self.limits = limits
        self.encode = encode
        self.qualities = qualities
        self.superres = superres
        self.tools = RenderTools(
            encode, superres.upscaler if superres else None, superres.intermediates if superres else None
        )
        self.flight: SingleFlight[Outcome] = SingleFlight()
        # Lanczos stand-ins served while a model works on the real rendition in the background.
        self.interim: LRUCache[str, Rendition] = LRUCache(64 * 1024 * 1024, getsizeof=lambda r: len(r.body))
        self.upgrading: dict[str, asyncio.Task[None]] = {}
        self.fingerprint = "|".join(
            (encode.fingerprint(), repr(sorted(qualities.items())), f"side{limits.max_output_side}")
        )

    def key(self, record: MasterRecord, opts: RenditionOptions, fmt: str) -> str:
        return rendition_key(record, opts, fmt, self.fingerprint)

    async def get(self, record: MasterRecord, opts: RenditionOptions, fmt: str, key: str) -> Outcome:
        started = time.perf_counter()
        rendition, statuses = await self.cache.get(key)
        for member in statuses:
            tier, _, result = member.partition("; ")
            self.metrics.cache_lookups.labels(tier, "hit" if result == "hit" else "miss").inc()
        if rendition is not None:
            return Outcome(rendition, statuses, {"cache": time.perf_counter() - started})
        stand_in = self.interim.get(key) if key in self.upgrading else None
        if stand_in is not None:
            return Outcome(stand_in, statuses, {"cache": time.perf_counter() - started}, interim=True)
        outcome, joined = await self.flight.run(key, lambda: self._render(record, opts, fmt, key, statuses))
        if joined:
            self.metrics.singleflight_joins.inc()
            return replace(outcome, cache_status=[s + "; collapsed" for s in statuses])
        return outcome

    def _policy(self, record: MasterRecord) -> SuperResPolicy | None:
        sr = self.superres
        return sr.policy if sr is not None and sr.allowed(record.info.path) else None

    async def _render(
        self, record: MasterRecord, opts: RenditionOptions, fmt: str, key: str, statuses: list[str]
    ) -> Outcome:
        # Plan before fetching: a plan that cannot be met (crop outside, output too big) costs nothing.
        plan = plan_rendition(opts, record.header, fmt, self.limits, self.qualities, self._policy(record))
        started = time.perf_counter()
        data = await self.store.read(record.info)
        fetched = time.perf_counter() - started
        pool = self.pool
        if plan.superres_scale and self.superres is not None:
            region = plan.region or Box(0, 0, plan.load_w, plan.load_h)
            upscaler = self.superres.upscaler
            estimate = await asyncio.to_thread(upscaler.estimate_seconds, region.w, region.h, plan.superres_scale)
            if estimate > self.superres.budget_s:
                # Too slow to wait for: Lanczos now, privately cached; the model in the background.
                self._upgrade_later(key, data, plan, record)
                self.metrics.superres_fallbacks.labels("budget").inc()
                rendered, verified = await self._run(self.pool, data, replace(plan, superres_scale=0), record)
                rendition = _rendition(rendered)
                self.interim[key] = rendition
                timings = {"fetch": fetched + verified, **rendered.timings}
                return Outcome(rendition, statuses, timings, interim=True)
            pool = self.superres.pool
        rendered, verified = await self._run(pool, data, plan, record)
        rendition = _rendition(rendered)
        await self._store(key, rendition, rendered)
        # Reading the master and checking it is still the version we planned for are one phase.
        timings = {"fetch": fetched + verified, **rendered.timings}
        self.metrics.observe_render(rendered.format, timings)
        return Outcome(rendition, [s + "; stored" for s in statuses], timings)

    async def _store(self, key: str, rendition: Rendition, rendered: Rendered) -> None:
        await self.cache.put(key, rendition)
        if rendered.upscale not in ("none", "lanczos"):
            self.metrics.superres_runs.labels(rendered.upscale).inc()

    def _upgrade_later(self, key: str, data: bytes, plan: Plan, record: MasterRecord) -> None:
        if key in self.upgrading or self.superres is None:
            return

        async def upgrade() -> None:
            try:
                rendered, _ = await self._run(self.superres.pool, data, plan, record)
                await self._store(key, _rendition(rendered), rendered)
            except Exception as error:  # the stand-in keeps serving; the next miss tries again
                self.metrics.superres_fallbacks.labels("error").inc()
                log.warning("super-resolution upgrade failed: %s", error)
            finally:
                self.upgrading.pop(key, None)
                self.interim.pop(key, None)

        self.upgrading[key] = asyncio.create_task(upgrade())

    async def _run(self, pool: RenderPool, data: bytes, plan: Plan, record: MasterRecord) -> tuple[Rendered, float]:
        """Render in `pool`; also returns the seconds spent checking the bytes are the planned version."""

        def work(token: CancelToken) -> tuple[Rendered, float]:
            if token.cancelled:  # the budget ran out while queued
                raise Cancelled()
            started = time.perf_counter()
            if version_hash(data) != record.version:
                # Replaced between stat and read: never cache these bytes under the old version.
                raise Problem(503, "master changed during the request; retry", headers={"Retry-After": "1"})
            verified = time.perf_counter() - started
            return render(data, plan, self.tools, token, record.version), verified

        try:
            return await pool.run(work)
        except Problem as problem:
            if problem.status == 503:
                self.metrics.queue_rejections.inc()
            elif problem.status == 504:
                self.metrics.render_timeouts.inc()
            raise


def _rendition(rendered: Rendered) -> Rendition:
    return Rendition(rendered.body, rendered.format, rendered.width, rendered.height, rendered.upscale)
