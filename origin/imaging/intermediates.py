"""Upscaled intermediates, kept in memory so other widths and formats of a master reuse them.

A super-resolution run is the expensive part of a high-DPR miss; the srcset of one image asks
for several widths and formats of the same upscaled region. Entries are pixel buffers (bounded
in bytes, least recently used evicted), shared by render threads.
"""

from __future__ import annotations

import threading

import pyvips
from cachetools import LRUCache


class IntermediateCache:
    def __init__(self, max_bytes: int):
        self._lru: LRUCache[str, tuple[bytes, int, int, int, str]] = LRUCache(
            max_bytes, getsizeof=lambda entry: len(entry[0])
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> pyvips.Image | None:
        with self._lock:
            entry = self._lru.get(key)
        if entry is None:
            return None
        data, width, height, bands, interpretation = entry
        image = pyvips.Image.new_from_memory(data, width, height, bands, "uchar")
        return image.copy(interpretation=interpretation)

    def put(self, key: str, image: pyvips.Image) -> None:
        data = image.write_to_memory()
        if len(data) > self._lru.maxsize:
            return
        with self._lock:
            self._lru[key] = (data, image.width, image.height, image.bands, image.interpretation)
