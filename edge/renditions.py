"""Getting a rendition: cache tiers first, then one render per key however many ask at once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import blake3

from edge.caches import Rendition, TieredCache
from edge.metrics import Metrics
from edge.options import RenditionOptions, canonical_query
from edge.problems import Problem
from edge.render_pool import RenderPool
from edge.singleflight import SingleFlight
from origin.encode import EncodeSettings
from origin.limits import Limits
from origin.masters import MasterStore
from origin.pipeline import Cancelled, CancelToken, Rendered, render
from origin.plan import plan_rendition
from origin.versions import MasterRecord, version_hash

# Bump when the pipeline's output changes for the same inputs: every cached rendition and ETag moves.
PIPELINE_VERSION = "1"


@dataclass
class Outcome:
    rendition: Rendition
    cache_status: list[str]  # RFC 9211 members, origin side first
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


def master_id(master_path: str) -> str:
    """The prefix every rendition key of one master starts with, whatever its version: for purges."""
    return blake3.blake3(master_path.encode()).hexdigest()[:16] + "-"


def rendition_key(record: MasterRecord, opts: RenditionOptions, fmt: str, settings_fingerprint: str) -> str:
    """Names one representation: master version + what shapes the pixels + format + pipeline."""
    shape = canonical_query(replace(opts, fm=fmt), rendering_only=True)
    material = "\n".join((PIPELINE_VERSION, record.version, shape, settings_fingerprint))
    return master_id(record.info.path) + blake3.blake3(material.encode()).hexdigest()[:32]


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
    ):
        self.metrics = metrics or Metrics()
        self.store = store
        self.cache = cache
        self.pool = pool
        self.limits = limits
        self.encode = encode
        self.qualities = qualities
        self.flight: SingleFlight[Outcome] = SingleFlight()
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
        outcome, joined = await self.flight.run(key, lambda: self._render(record, opts, fmt, key, statuses))
        if joined:
            self.metrics.singleflight_joins.inc()
            return Outcome(outcome.rendition, [s + "; collapsed" for s in statuses], outcome.timings)
        return outcome

    async def _render(
        self, record: MasterRecord, opts: RenditionOptions, fmt: str, key: str, statuses: list[str]
    ) -> Outcome:
        # Plan before fetching: a plan that cannot be met (crop outside, output too big) costs nothing.
        plan = plan_rendition(opts, record.header, fmt, self.limits, self.qualities)
        started = time.perf_counter()
        data = await self.store.read(record.info)
        fetched = time.perf_counter() - started

        def work(token: CancelToken) -> tuple[Rendered, float]:
            if token.cancelled:  # the budget ran out while queued
                raise Cancelled()
            started = time.perf_counter()
            if version_hash(data) != record.version:
                # Replaced between stat and read: never cache these bytes under the old version.
                raise Problem(503, "master changed during the request; retry", headers={"Retry-After": "1"})
            verified = time.perf_counter() - started
            return render(data, plan, self.encode, token), verified

        try:
            rendered, verified = await self.pool.run(work)
        except Problem as problem:
            if problem.status == 503:
                self.metrics.queue_rejections.inc()
            elif problem.status == 504:
                self.metrics.render_timeouts.inc()
            raise
        rendition = Rendition(rendered.body, rendered.format, rendered.width, rendered.height, rendered.upscale)
        await self.cache.put(key, rendition)
        # Reading the master and checking it is still the version we planned for are one phase.
        timings = {"fetch": fetched + verified, **rendered.timings}
        self.metrics.observe_render(rendered.format, timings)
        return Outcome(rendition, [s + "; stored" for s in statuses], timings)
