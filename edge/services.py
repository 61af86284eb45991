"""The composition root: the one place that builds stores, cache tiers, pools, the upscaler, the
renderer and the rules, from the configuration. Handlers and CLI commands get what they need
from a `Services` (or from the builders here); nothing else constructs these parts."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from edge.caches.disk import DiskTier, SharedDiskTier
from edge.caches.memory import MemoryTier
from edge.caches.shared import PurgeLog, RenderLocks
from edge.caches.tiered import Tier, TieredCache
from edge.config import Config, ConfigError
from edge.metrics import Metrics
from edge.placeholders import Placeholders
from edge.renditions import RenditionService
from edge.signing import Signer, VerifiedUrls
from edge.upgrades import Patience
from origin.core.concurrency import cpu_count
from origin.core.errors import Problem
from origin.core.keys import master_id
from origin.core.master import MasterHeader, MasterRecord
from origin.imaging.credentials import Credentials
from origin.imaging.intermediates import IntermediateCache
from origin.masters.http import HttpMasterStore
from origin.masters.index import MasterIndex
from origin.masters.local import LocalMasterStore
from origin.masters.routed import RoutedStore
from origin.masters.store import MasterStore
from origin.plan import plan_rendition
from origin.pool import RenderPool
from origin.render import MasterHints, Renderer, SuperRes
from origin.superres.policy import SuperResPolicy
from origin.superres.registry import available_models
from origin.superres.remote import RemoteModels
from origin.superres.runtime import Upscaler
from rules.closed_world import ClosedWorld
from rules.loader import RulesInvalid, load_rules
from rules.model import Rule, RuleSet
from rules.srcset import Capacity, plan

log = logging.getLogger("edge")


@dataclass
class Services:
    config: Config
    signer: Signer
    masters: MasterIndex
    renditions: RenditionService
    store: MasterStore
    cache: TieredCache
    metrics: Metrics
    rules: RuleSet
    capacity: Capacity  # what the renderer will make: srcset, warm and closed world plan with it
    closed_world: ClosedWorld
    verified: VerifiedUrls  # request URLs whose signature already held
    placeholders: Placeholders  # per master version and rule: colour, ThumbHash, data URI
    purges: PurgeLog | None = None  # with several worker processes: purges every worker applies
    renders_at_once: int = 1  # render threads in all the server's processes (sizes libvips' threads)

    async def purge(self, master_path: str) -> dict[str, int]:
        """Every rendition of a master out of every tier (and every worker's memory), its stat forgotten."""
        self.masters.forget(master_path)
        removed = await self.cache.purge(master_id(master_path))
        if self.purges is not None:
            self.purges.announce(master_path)
        return removed

    async def forget_locally(self, master_path: str) -> None:
        """Another worker purged this master: drop what only this process holds."""
        self.masters.forget(master_path)
        for tier in self.cache.tiers:
            if isinstance(tier, MemoryTier):
                await tier.purge(master_id(master_path))

    async def close(self) -> None:
        await self.renditions.upgrades.close()
        await self.store.close()
        await self.cache.close()
        self.renditions.renderer.shutdown()


def build_services(config: Config, store: MasterStore | None = None, processes: int = 1) -> Services:
    """Everything one process serves with. `processes` > 1: this is one of that many worker
    processes of one server, which share the disk tier and split the memory and the CPUs."""
    store = store or master_store(config)
    cache = TieredCache(cache_tiers(config, processes=processes))
    s = config.server
    # Render threads: each worker process its share of the cores, so that all of them together
    # render as many at once as there are cores (libvips' own threads still let one render use
    # them all). More costs CPU: 800w JPEG first touches at c=16, two workers, 55-58 CPU-ms each
    # with two threads per worker, 43-44 with one (benchmarks/RESULTS.md). (With one socket shared
    # by the workers, before each had its own, connections piled onto one worker and a share of
    # the cores left the others idle.)
    pool = RenderPool(
        s.render_workers or max(1, cpu_count() // processes),
        s.queue_limit,
        s.render_timeout_s,
        s.retry_after_s,
        memory_budget=s.render_memory_mb * 1024 * 1024,
    )
    metrics = Metrics()
    metrics.track_queue(lambda: pool.pending)
    for tier in cache.tiers:
        if hasattr(tier, "bytes_used"):  # memory and disk know their size; S3 does not say
            metrics.track_tier(tier.name, functools.partial(getattr, tier, "bytes_used"))
    ruleset = load_rule_set(config)
    upscaler = make_upscaler(config, processes, metrics.superres_provider, metrics.superres_remote)
    sr = config.superres
    model_runs = sr.remote_concurrency if sr.backend == "remote" else sr.concurrency
    policy = SuperResPolicy(sr, available=upscaler is not None)
    superres = (
        SuperRes(
            upscaler,
            RenderPool(model_runs, sr.queue_limit, sr.timeout_s, s.retry_after_s),
            IntermediateCache(sr.intermediate_mb * 1024 * 1024),
        )
        if upscaler is not None
        else None
    )
    index = MasterIndex(store, config.limits, stat_ttl_s=s.master_stat_ttl_s)
    capacity = capacity_of(config, policy)
    hints = MasterHints(ruleset.enhance_for, index.take_bytes, DecodeSizes(ruleset, capacity, config))
    decoded = IntermediateCache(config.cache.decoded_mb * 1024 * 1024 // processes) if config.cache.decoded_mb else None
    credentials = make_credentials(config)
    renderer = Renderer(
        store,
        config.limits,
        config.formats,
        config.encode,
        pool,
        policy,
        superres,
        hints,
        decoded,
        credentials,
        config.provenance.metadata,
        s.isolate_megapixels,
    )
    signer = Signer(config.signing_keys())
    shared = Path(config.cache.disk_dir) / ".shared"
    locks = RenderLocks(shared, s.render_timeout_s) if processes > 1 else None
    patience = Patience(s.upgrade_under_load_after_s, s.upgrade_under_load_share)
    renditions = RenditionService(renderer, cache, metrics, locks, s.timeout_memory_s, patience)
    services = Services(
        config=config,
        signer=signer,
        masters=index,
        renditions=renditions,
        store=store,
        cache=cache,
        metrics=metrics,
        rules=ruleset,
        capacity=capacity,
        closed_world=ClosedWorld(ruleset, capacity),
        verified=VerifiedUrls(signer, config.signing.required),
        placeholders=Placeholders(renditions, capacity),
        renders_at_once=pool.workers * processes,
    )
    if processes > 1:
        services.purges = PurgeLog(shared, services.forget_locally)
    return services


class DecodeSizes:
    """For a master the rules declare renditions of: the size to decode it at once for all of them
    (the largest load size any declared rendition needs), so a srcset burst decodes it once. None
    for a master no rule covers: its first touch decodes with shrink-on-load for its one rendition."""

    def __init__(self, ruleset: RuleSet, capacity: Capacity, config: Config):
        self.ruleset, self.capacity, self.config = ruleset, capacity, config
        self._sizes: LRUCache[tuple[tuple[str, ...], MasterHeader], tuple[int, int] | None] = LRUCache(10_000)

    def __call__(self, record: MasterRecord) -> tuple[int, int] | None:
        rules = self.ruleset.rules_for(record.path)
        if not rules:
            return None
        key = (tuple(r.name for r in rules), record.header)
        if key not in self._sizes:
            self._sizes[key] = self._largest(rules, record.header)
        return self._sizes[key]

    def _largest(self, rules: list[Rule], header: MasterHeader) -> tuple[int, int] | None:
        width = height = 0
        for rule in rules:
            try:
                sources = plan(rule, header, self.capacity).all_sources
                for candidate in (c for source in sources for c in source.candidates):
                    load = plan_rendition(candidate.options, header, "jpeg", self.config.limits)
                    width, height = max(width, load.load_w), max(height, load.load_h)
            except Problem:  # a rule whose crop misses this master declares nothing for it
                continue
        return (width, height) if width else None


def master_store(config: Config) -> MasterStore:
    """A directory or s3://bucket/prefix, plus allowlisted http(s) URLs when `http.allow` names any."""
    primary: MasterStore
    if config.masters_in_s3:
        from origin.masters.s3 import S3MasterStore  # aiobotocore: only where S3 is configured

        primary = S3MasterStore(config.server.masters, config.s3, config.limits.max_master_bytes)
    else:
        primary = LocalMasterStore(config.masters_dir)
    if config.http.allow:  # absolute URLs as master paths, from the allowlist only
        return RoutedStore(primary, HttpMasterStore(config.http, config.limits.max_master_bytes))
    return primary


def cache_tiers(config: Config, *, processes: int = 1) -> list[Tier]:
    """The rendition tiers, nearest first. With several processes, each has a share of
    cache.memory_mb and the disk tier is shared."""
    c = config.cache
    tiers: list[Tier] = []
    if c.memory_mb:
        tiers.append(MemoryTier(c.memory_mb * 1024 * 1024 // processes))
    if c.disk_mb and processes > 1:
        tiers.append(SharedDiskTier(c.disk_dir, c.disk_mb * 1024 * 1024))
    elif c.disk_mb:
        tiers.append(DiskTier(c.disk_dir, c.disk_mb * 1024 * 1024))
    if c.s3_url:
        from edge.caches.s3 import S3Tier  # aiobotocore: only where S3 is configured

        tiers.append(S3Tier(c.s3_url, config.s3))
    return tiers


def make_upscaler(
    config: Config,
    processes: int = 1,
    on_load: Callable[[str, str], None] | None = None,
    on_remote: Callable[[str, float, int], None] | None = None,
) -> Upscaler | None:
    """The super-resolution runtime over the installed models, or None (disabled, or no model);
    `on_load(model, provider)` hears which provider each model's session really got, `on_remote`
    each request to the inference server of `backend = "remote"` (outcome, seconds, tiles)."""
    sr = config.superres
    if not sr.enabled:
        return None
    models = available_models([Path(sr.models_dir)] if sr.models_dir else [])
    if not models:
        log.warning("super-resolution: no model installed; upscaling with Lanczos")
        return None
    threads = sr.threads or max(1, cpu_count() // processes)
    remote = RemoteModels(sr, on_remote) if sr.backend == "remote" else None
    upscaler = Upscaler(
        models, threads=threads, use_cuda=sr.use_cuda, on_load=on_load, remote=remote, local_runs=sr.concurrency
    )
    # Where onnxruntime lists CUDA, find out now whether a session gets it: the models picked (and
    # so the rendition keys that name them) must not change after the first request.
    device = upscaler.settle_device()
    if sr.warm_up == "on" or (sr.warm_up == "auto" and device == "cuda"):
        upscaler.warm_up()
        log.info("super-resolution warmed up on %s", device)
    return upscaler


def capacity_of(config: Config, policy: SuperResPolicy | None = None) -> Capacity:
    """What this configuration renders. Without a policy (CLI commands that plan markup but load no
    model), super-resolution counts as available when it is enabled and a model is installed."""
    if policy is None:
        sr = config.superres
        installed = sr.enabled and bool(available_models([Path(sr.models_dir)] if sr.models_dir else []))
        policy = SuperResPolicy(sr, available=installed)
    return Capacity(config.limits, policy)


def make_credentials(config: Config) -> Credentials | None:
    """The C2PA signer when `[provenance] c2pa` is on; a bad certificate or key stops start-up."""
    if not config.provenance.c2pa:
        return None
    try:
        return Credentials(config.provenance)
    except ValueError as e:
        raise ConfigError(f"provenance.{e}") from None


def load_rule_set(config: Config) -> RuleSet:
    """The breakpoint rules; invalid rules stop start-up with every error listed."""
    try:
        return load_rules(config.rules_dir)
    except RulesInvalid as invalid:
        listing = "\n  ".join(str(e) for e in invalid.errors)
        raise ConfigError(f"rules in {config.rules_dir} are invalid:\n  {listing}") from None


def survey_masters(config: Config, paths: list[str], *, stop_at_first: bool = False) -> list[MasterRecord | Problem]:
    """Each master's record, or the Problem that keeps it from being served (415, 422...), in
    order; with `stop_at_first`, up to the first servable one. For CLI commands: a masters folder
    is user data and may hold anything (notes, manifests, bombs)."""

    async def survey() -> list[MasterRecord | Problem]:
        store = master_store(config)
        index = MasterIndex(store, config.limits)
        out: list[MasterRecord | Problem] = []
        try:
            for path in paths:
                try:
                    out.append(await index.lookup(path))
                except Problem as problem:
                    out.append(problem)
                    continue
                if stop_at_first:
                    break
        finally:
            await store.close()
        return out

    return asyncio.run(survey())


def lookup_master(config: Config, path: str) -> MasterRecord:
    """One master's record through the configured store (for CLI commands; raises Problem)."""

    async def lookup() -> MasterRecord:
        store = master_store(config)
        try:
            return await MasterIndex(store, config.limits).lookup(path)
        finally:
            await store.close()

    return asyncio.run(lookup())
