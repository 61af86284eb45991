"""The disk tier: content-addressed files, total size bounded, least recently used evicted first.

Entries are written to a temporary name and renamed into place, and carry a checksum of the body
(edge.caches.entry), so a crash mid-write leaves at worst a stray temp file (removed at start),
never a partial entry that could be served.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from edge.caches.entry import decode_entry, encode_entry
from origin.core.rendition import Rendition

log = logging.getLogger(__name__)


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

    async def close(self) -> None:
        pass

    @property
    def bytes_used(self) -> int:
        return self._total
