"""Tiers stacked nearest first: a lookup asks each in turn and copies a hit into the nearer ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from origin.core.rendition import Rendition


class Tier(Protocol):
    name: str

    async def get(self, key: str) -> Rendition | None: ...

    async def put(self, key: str, rendition: Rendition) -> bool:
        """Store it; False when it could not be (a full or read-only disk, an S3 error)."""
        ...

    async def purge(self, prefix: str) -> int:
        """Remove every entry whose key starts with `prefix`; return how many went."""
        ...

    async def ready(self) -> str | None:
        """None when this process can serve with the tier as it is; else why not (/readyz 503)."""
        ...

    async def health(self) -> str | None:
        """None when the tier works fully; else what it cannot do (in /readyz's body, still 200:
        serving goes on, e.g. a disk tier that cannot store)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TierLookup:
    tier: str
    hit: bool


@dataclass(frozen=True)
class CacheResult:
    rendition: Rendition | None
    lookups: tuple[TierLookup, ...]  # in the order the tiers were asked: nearest first


class TieredCache:
    """Tiers from the closest to the user (memory) to the farthest; a hit is copied upwards."""

    def __init__(self, tiers: list[Tier]):
        self.tiers = tiers

    async def get(self, key: str) -> CacheResult:
        """The rendition (or None), and what each tier asked answered. A provisional rendition
        (edge.upgrades) sends the lookup on to the farther tiers: another process may have put
        its upgrade there."""
        lookups: list[TierLookup] = []
        found: tuple[int, Rendition] | None = None
        for i, tier in enumerate(self.tiers):
            rendition = await tier.get(key)
            lookups.append(TierLookup(tier.name, rendition is not None))
            if rendition is not None and (found is None or not rendition.provisional):
                found = (i, rendition)
            if found is not None and not found[1].provisional:
                break
        if found is None:
            return CacheResult(None, tuple(lookups))
        nearest, rendition = found
        for upper in self.tiers[:nearest]:
            await upper.put(key, rendition)
        return CacheResult(rendition, tuple(lookups))

    async def put(self, key: str, rendition: Rendition) -> tuple[str, ...]:
        """Store in every tier; the names of those that could not."""
        return tuple([tier.name for tier in self.tiers if not await tier.put(key, rendition)])

    async def purge(self, prefix: str) -> dict[str, int]:
        """Entries removed per tier."""
        return {tier.name: await tier.purge(prefix) for tier in self.tiers}

    async def close(self) -> None:
        for tier in self.tiers:
            await tier.close()
