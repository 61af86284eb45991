"""Prometheus metrics, one registry per app (so tests and several apps in one process never clash).

With several worker processes (`edge serve --workers N`), prometheus_client's multiprocess mode
keeps each worker's values in files under PROMETHEUS_MULTIPROC_DIR (set by `edge serve` before the
workers start), and /metrics, whichever worker answers it, reports the sum over all of them.

What every request counts (requests, bytes, request duration, cache lookups) is added up in plain
dicts and written to the metrics once a second (`refresh`) and before each scrape: in
multiprocess mode each write is a locked mmap update, and five of them cost a cache hit a third of
its CPU. A scrape therefore sees other workers' requests up to a second late.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from origin.core.rendition import made_by_model

# Renders take milliseconds to seconds; hits microseconds: one bucket layout serves both.
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.requests = Counter(
            "edge_requests_total",
            "HTTP requests answered, by status and image format",
            ["status", "format"],
            registry=r,
        )
        self.response_bytes = Counter(
            "edge_response_bytes_total", "Body bytes sent, by image format", ["format"], registry=r
        )
        self.request_seconds = Histogram(
            "edge_request_duration_seconds", "Time to answer a request", ["cache"], buckets=SECONDS, registry=r
        )
        self.fetch_seconds = Histogram(
            "edge_fetch_duration_seconds", "Time to read a master for a render", buckets=SECONDS, registry=r
        )
        self.render_seconds = Histogram(
            "edge_render_duration_seconds", "Time to decode and resize a master", buckets=SECONDS, registry=r
        )
        self.encode_seconds = Histogram(
            "edge_encode_duration_seconds", "Time to encode a rendition", ["format"], buckets=SECONDS, registry=r
        )
        self.cache_lookups = Counter(
            "edge_cache_lookups_total", "Rendition cache lookups by tier and result", ["tier", "result"], registry=r
        )
        self.renders = Counter("edge_renders_total", "Renditions rendered, by format", ["format"], registry=r)
        self.renditions = Counter(
            "edge_renditions_total",
            "Renditions made, by what made their pixels: none (a reduction), lanczos, or model",
            ["upscale"],
            registry=r,
        )
        self.singleflight_joins = Counter(
            "edge_singleflight_joins_total", "Requests that joined a render already in flight", registry=r
        )
        self.queue_rejections = Counter(
            "edge_render_rejections_total", "Renders refused because the queue was full (503)", registry=r
        )
        self.render_timeouts = Counter(
            "edge_render_timeouts_total", "Renders stopped for running over their time budget (504)", registry=r
        )
        self.superres_runs = Counter(
            "edge_superres_runs_total", "Super-resolution upscales run, by model", ["model"], registry=r
        )
        self.superres_fallbacks = Counter(
            "edge_superres_fallbacks_total",
            "Upscales done by Lanczos instead of a model, by reason",
            ["reason"],
            registry=r,
        )
        self.encode_upgrades = Counter(
            "edge_encode_upgrades_total",
            "Provisional renditions given their better encode while idle (or overdue under load), by "
            "format and result (better: swapped in; kept: the fast one was no bigger; gone: purged or "
            "upgraded elsewhere meanwhile; deferred: the render queue was full, tried again later; "
            "dropped: too many waiting; failed)",
            ["format", "result"],
            registry=r,
        )
        self.superres_remote_requests = Counter(
            "edge_superres_remote_requests_total",
            "Requests to the super-resolution inference server (backend remote), by outcome: ok, error,"
            " timeout, garbage (an answer that is not the model's), open (not sent: the circuit is open)",
            ["outcome"],
            registry=r,
        )
        self.superres_remote_seconds = Histogram(
            "edge_superres_remote_request_duration_seconds",
            "Time an inference request took, answered or not",
            buckets=SECONDS,
            registry=r,
        )
        self.superres_remote_tiles = Counter(
            "edge_superres_remote_tiles_total", "Tiles sent to the inference server", registry=r
        )
        self.dependency_up = Gauge(
            "edge_dependency_up",
            "1 when a dependency (masters, each cache tier) works fully, as of the last /readyz",
            ["name"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.superres_providers = Gauge(
            "edge_superres_provider",
            "1 for the onnxruntime execution provider each super-resolution model's session really got",
            ["model", "provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.cache_bytes = Gauge(
            "edge_cache_bytes",
            "Bytes held by each rendition cache tier of this process (the disk: as last counted)",
            ["tier"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self._tiers: list[tuple[str, Callable[[], float]]] = []
        if not self.multiprocess:  # process_*, python_gc_*, python_info: this process's, as usual
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                r.register(collector)
        self.queue_depth = Gauge(
            "edge_render_queue_depth", "Renders queued or running", registry=r, multiprocess_mode="livesum"
        )
        self._depth: Callable[[], float] | None = None

        # Label children, looked up once: labels() costs more than the increment on a cache hit.
        self._children: dict[tuple[object, ...], Any] = {}
        # Per-request counts not yet written: (metric, labels) -> amount; cache -> [sum, per bucket].
        self._counts: defaultdict[tuple[Any, ...], float] = defaultdict(float)
        self._durations: dict[str, list[Any]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_request(self, status: int, fmt: str | None, sent: int, cache: str, seconds: float) -> None:
        self._counts[(self.requests, str(status), fmt or "none")] += 1
        if fmt:
            self._counts[(self.response_bytes, fmt)] += sent
        duration = self._durations.get(cache)
        if duration is None:
            duration = self._durations[cache] = [0.0, [0] * (len(SECONDS) + 1)]  # the last bucket: +Inf
        duration[0] += seconds
        duration[1][bisect_left(SECONDS, seconds)] += 1  # the first bucket whose bound is >= seconds

    def count_lookup(self, tier: str, hit: bool) -> None:
        self._counts[(self.cache_lookups, tier, "hit" if hit else "miss")] += 1

    def flush(self) -> None:
        """Write the per-request counts gathered since the last flush into the metrics."""
        counts, self._counts = self._counts, defaultdict(float)
        for (metric, *labels), amount in counts.items():
            self._child(metric, *labels).inc(amount)
        durations, self._durations = self._durations, {}
        for cache, (total, buckets) in durations.items():
            child = self._child(self.request_seconds, cache)
            # Histogram.observe() once per request is what this avoids; its parts, written in bulk
            # (prometheus_client keeps the sum and one value per bucket, not cumulative).
            child._sum.inc(total)  # noqa: SLF001 (no public bulk observe)
            for i, n in enumerate(buckets):
                if n:
                    child._buckets[i].inc(n)  # noqa: SLF001

    def superres_provider(self, model: str, provider: str) -> None:
        """A model's session was opened on `provider` (CUDAExecutionProvider, CPUExecutionProvider)."""
        self.superres_providers.labels(model, provider).set(1)

    def superres_remote(self, outcome: str, seconds: float, tiles: int) -> None:
        """One request to the inference server (or an upscale the open circuit kept from it)."""
        self.superres_remote_requests.labels(outcome).inc()
        if outcome != "open":
            self.superres_remote_seconds.observe(seconds)
            self.superres_remote_tiles.inc(tiles)

    def track_queue(self, depth: Callable[[], float]) -> None:
        self._depth = depth
        if not self.multiprocess:  # read at each scrape; across processes each worker writes its own
            self.queue_depth.set_function(depth)

    def track_tier(self, name: str, size: Callable[[], float]) -> None:
        """Export a cache tier's size as edge_cache_bytes{tier}."""
        self._tiers.append((name, size))
        if not self.multiprocess:
            self.cache_bytes.labels(name).set_function(size)

    def refresh(self) -> None:
        """Called every second: the per-request counts, and what a scrape cannot ask another
        process (its queue depth, its tiers' sizes)."""
        self.flush()
        if self.multiprocess:
            if self._depth is not None:
                self.queue_depth.set(self._depth())
            for name, size in self._tiers:
                self.cache_bytes.labels(name).set(size())

    def observe_render(self, fmt: str, timings: dict[str, float], upscale: str = "none") -> None:
        self.renders.labels(fmt).inc()
        self.renditions.labels("model" if made_by_model(upscale) else upscale).inc()
        if "fetch" in timings:
            self.fetch_seconds.observe(timings["fetch"])
        if "render" in timings:
            self.render_seconds.observe(timings["render"])
        if "encode" in timings:
            self.encode_seconds.labels(fmt).observe(timings["encode"])

    def exposition(self) -> bytes:
        self.flush()
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
