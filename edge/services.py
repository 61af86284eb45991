"""The parts a server is made of, built once from the configuration and passed to every handler."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge.caches import DiskTier, MemoryTier, Tier, TieredCache
from edge.config import Config, ConfigError
from edge.metrics import Metrics
from edge.render_pool import RenderPool, default_workers
from edge.renditions import RenditionService, SuperResSupport
from edge.s3_cache import S3Tier
from edge.signing import Signer
from edge.stores import master_store
from origin.intermediates import IntermediateCache
from origin.masters import MasterStore
from origin.plan import SuperResPolicy
from origin.superres import Upscaler, available_models
from origin.versions import MasterIndex
from rules.loader import RulesInvalid, load_rules
from rules.model import RuleSet

log = logging.getLogger("edge")


@dataclass
class Services:
    config: Config
    signer: Signer
    masters: MasterIndex
    renditions: RenditionService
    pool: RenderPool
    store: MasterStore
    tiers: list[Tier]
    metrics: Metrics
    rules: RuleSet


def build_services(config: Config, store: MasterStore | None = None) -> Services:
    store = store or master_store(config)
    tiers: list[Tier] = []
    if config.cache.memory_mb:
        tiers.append(MemoryTier(config.cache.memory_mb * 1024 * 1024))
    if config.cache.disk_mb:
        tiers.append(DiskTier(config.cache.disk_dir, config.cache.disk_mb * 1024 * 1024))
    if config.cache.s3_url:
        tiers.append(S3Tier(config.cache.s3_url, config.s3))
    s = config.server
    pool = RenderPool(s.render_workers or default_workers(), s.queue_limit, s.render_timeout_s, s.retry_after_s)
    metrics = Metrics()
    metrics.track_queue(lambda: pool.pending)
    sr = config.superres
    ruleset = load_rule_set(config)
    upscaler = make_upscaler(config)
    renditions = RenditionService(
        store,
        TieredCache(tiers),
        pool,
        config.limits,
        config.encode,
        config.formats.qualities(),
        metrics,
        superres=SuperResSupport(
            upscaler=upscaler,
            policy=SuperResPolicy(sr.enabled, sr.min_dpr, sr.min_factor),
            pool=RenderPool(sr.concurrency, sr.queue_limit, sr.timeout_s, s.retry_after_s),
            intermediates=IntermediateCache(sr.intermediate_mb * 1024 * 1024),
            budget_s=sr.budget_s,
            allowed=lambda path: all(rule.enhance != "never" for rule in ruleset.rules_for(path)),
        )
        if upscaler is not None
        else None,
    )
    index = MasterIndex(store, config.limits)
    signer = Signer(config.signing_keys())
    return Services(config, signer, index, renditions, pool, store, tiers, metrics, ruleset)


def make_upscaler(config: Config) -> Upscaler | None:
    """The super-resolution runtime over the installed models, or None (disabled, or no model)."""
    sr = config.superres
    if not sr.enabled:
        return None
    models = available_models([Path(sr.models_dir)] if sr.models_dir else [])
    if not models:
        log.warning("super-resolution: no model installed; upscaling with Lanczos")
        return None
    return Upscaler(models, threads=sr.threads or None, use_cuda=sr.use_cuda)


def load_rule_set(config: Config) -> RuleSet:
    """The breakpoint rules; invalid rules stop start-up with every error listed."""
    try:
        return load_rules(config.rules_dir)
    except RulesInvalid as invalid:
        listing = "\n  ".join(str(e) for e in invalid.errors)
        raise ConfigError(f"rules in {config.rules_dir} are invalid:\n  {listing}") from None
