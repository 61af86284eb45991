"""The parts a server is made of, built once from the configuration and passed to every handler."""

from __future__ import annotations

from dataclasses import dataclass

from edge.caches import DiskTier, MemoryTier, Tier, TieredCache
from edge.config import Config, ConfigError
from edge.metrics import Metrics
from edge.render_pool import RenderPool, default_workers
from edge.renditions import RenditionService
from edge.s3_cache import S3Tier
from edge.signing import Signer
from edge.stores import master_store
from origin.masters import MasterStore
from origin.versions import MasterIndex
from rules.loader import RulesInvalid, load_rules
from rules.model import RuleSet


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
    renditions = RenditionService(
        store, TieredCache(tiers), pool, config.limits, config.encode, config.formats.qualities(), metrics
    )
    index = MasterIndex(store, config.limits)
    signer = Signer(config.signing_keys())
    return Services(config, signer, index, renditions, pool, store, tiers, metrics, load_rule_set(config))


def load_rule_set(config: Config) -> RuleSet:
    """The breakpoint rules; invalid rules stop start-up with every error listed."""
    try:
        return load_rules(config.rules_dir)
    except RulesInvalid as invalid:
        listing = "\n  ".join(str(e) for e in invalid.errors)
        raise ConfigError(f"rules in {config.rules_dir} are invalid:\n  {listing}") from None
