"""The memory tier: an LRU bounded in bytes, in this process."""

from __future__ import annotations

from cachetools import LRUCache

from origin.core.rendition import Rendition


class MemoryTier:
    name = "edge-memory"

    def __init__(self, max_bytes: int):
        self._lru: LRUCache[str, Rendition] = LRUCache(max_bytes, getsizeof=lambda r: len(r.body) + 200)

    async def get(self, key: str) -> Rendition | None:
        return self._lru.get(key)

    async def put(self, key: str, rendition: Rendition) -> bool:
        if len(rendition.body) + 200 > self._lru.maxsize:
            return False
        self._lru[key] = rendition
        return True

    async def purge(self, prefix: str) -> int:
        doomed = [key for key in list(self._lru.keys()) if key.startswith(prefix)]
        for key in doomed:
            self._lru.pop(key, None)
        return len(doomed)

    async def ready(self) -> str | None:
        return None

    async def health(self) -> str | None:
        return None

    async def close(self) -> None:
        pass

    @property
    def bytes_used(self) -> int:
        return int(self._lru.currsize)
