"""Rendition cache tiers: memory (LRU bounded in bytes) in front of disk (content-addressed files).

Disk entries are written to a temporary name and renamed into place, and carry a checksum of the
body, so a crash mid-write leaves at worst a stray temp file (removed at start), never a partial
entry that could be served.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import blake3
from cachetools import LRUCache

MAGIC = b"EDGE-RENDITION-1\n"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendition:
    body: bytes
    format: str
    width: int
    height: int
    upscale: str = "none"


class Tier(Protocol):
    name: str

    async def get(self, key: str) -> Rendition | None: ...

    async def put(self, key: str, rendition: Rendition) -> None: ...

    async def purge(self, prefix: str) -> int:
        """Remove every entry whose key starts with `prefix`; return how many went."""
        ...


class MemoryTier:
    name = "edge-memory"

    def __init__(self, max_bytes: int):
        self._lru: LRUCache[str, Rendition] = LRUCache(max_bytes, getsizeof=lambda r: len(r.body) + 200)

    async def get(self, key: str) -> Rendition | None:
        return self._lru.get(key)

    async def put(self, key: str, rendition: Rendition) -> None:
        if len(rendition.body) + 200 <= self._lru.maxsize:
            self._lru[key] = rendition

    async def purge(self, prefix: str) -> int:
        doomed = [key for key in list(self._lru.keys()) if key.startswith(prefix)]
        for key in doomed:
            self._lru.pop(key, None)
        return len(doomed)

    @property
    def bytes_used(self) -> int:
        return int(self._lru.currsize)


def encode_entry(rendition: Rendition) -> bytes:
    meta = {
        "format": rendition.format,
        "width": rendition.width,
        "height": rendition.height,
        "upscale": rendition.upscale,
        "length": len(rendition.body),
        "blake3": blake3.blake3(rendition.body).hexdigest(),
    }
    return MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + rendition.body


def decode_entry(raw: bytes) -> Rendition | None:
    """The rendition in a disk entry, or None when the entry is not whole and intact."""
    if not raw.startswith(MAGIC):
        return None
    head, sep, body = raw[len(MAGIC) :].partition(b"\n")
    try:
        meta = json.loads(head)
        if not sep or len(body) != meta["length"] or blake3.blake3(body).hexdigest() != meta["blake3"]:
            return None
        return Rendition(body, meta["format"], meta["width"], meta["height"], meta["upscale"])
    except (ValueError, KeyError, TypeError):
        return None


class DiskTier:
    """Files at root/ab/abcdef...; total size bounded, least recently used evicted first."""

    name = "edge-disk"

    def __init__(self, root: str | Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> file size, oldest first
        self._total = 0
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scan()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _scan(self) -> None:
        """Rebuild the index after a restart; oldest access first. Stray temp files are removed."""
        found = []
        for sub in self.root.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                if f.name.startswith(".tmp-"):
                    f.unlink(missing_ok=True)
                    continue
                st = f.stat()
                found.append((st.st_mtime_ns, f.name, st.st_size))
        for _, key, size in sorted(found):
            self._sizes[key] = size
            self._total += size
        self._evict()

    def _get_sync(self, key: str) -> Rendition | None:
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            with self._lock:
                self._forget(key)  # removed by a purge from another process, or by hand
            return None
        rendition = decode_entry(raw)
        with self._lock:
            if rendition is None:  # damaged: drop it so it is rendered again
                self._forget(key)
                path.unlink(missing_ok=True)
            elif key in self._sizes:
                self._sizes.move_to_end(key)
        if rendition is not None:
            try:
                os.utime(path)  # recency survives restarts
            except OSError:
                pass  # evicted meanwhile: the bytes we read are still whole
        return rendition

    def _put_sync(self, key: str, rendition: Rendition) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        data = encode_entry(rendition)
        tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: readers see the old entry, or the whole new one
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self._forget(key)
            self._sizes[key] = len(data)
            self._total += len(data)
            self._evict()

    def _forget(self, key: str) -> None:
        size = self._sizes.pop(key, None)
        if size is not None:
            self._total -= size

    def _evict(self) -> None:
        while self._total > self.max_bytes and self._sizes:
            key, size = self._sizes.popitem(last=False)
            self._total -= size
            self._path(key).unlink(missing_ok=True)

    async def get(self, key: str) -> Rendition | None:
        return await asyncio.to_thread(self._get_sync, key)

    def _purge_sync(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._sizes if key.startswith(prefix)]
            for key in doomed:
                self._forget(key)
        for key in doomed:
            self._path(key).unlink(missing_ok=True)
        return len(doomed)

    async def purge(self, prefix: str) -> int:
        return await asyncio.to_thread(self._purge_sync, prefix)

    async def ready(self) -> str | None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            return f"disk cache {self.root} is not writable"
        return None

    async def put(self, key: str, rendition: Rendition) -> None:
        try:
            await asyncio.to_thread(self._put_sync, key, rendition)
        except OSError as e:
            # A full or failing disk costs the cache entry, not the response: the rendition is made.
            log.warning("disk cache: could not store %s: %s", key, e)

    @property
    def bytes_used(self) -> int:
        return self._total


class TieredCache:
    """Tiers from the closest to the user (memory) to the farthest; a hit is copied upwards."""

    def __init__(self, tiers: list[Tier]):
        self.tiers = tiers

    async def get(self, key: str) -> tuple[Rendition | None, list[str]]:
        """The rendition (or None) and RFC 9211 Cache-Status members, origin side first."""
        statuses: list[str] = []
        for i, tier in enumerate(self.tiers):
            rendition = await tier.get(key)
            if rendition is not None:
                statuses.insert(0, f"{tier.name}; hit")
                for upper in self.tiers[:i]:
                    await upper.put(key, rendition)
                return rendition, statuses
            statuses.insert(0, f"{tier.name}; fwd=miss")
        return None, statuses

    async def put(self, key: str, rendition: Rendition) -> None:
        for tier in self.tiers:
            await tier.put(key, rendition)

    async def purge(self, prefix: str) -> dict[str, int]:
        """Entries removed per tier."""
        return {tier.name: await tier.purge(prefix) for tier in self.tiers}
