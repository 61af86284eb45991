"""Intermediates kept in memory so other widths and formats of a master reuse them: the region a
model upscaled (the expensive part of a high-DPR miss), and the master decoded once at the size
its declared renditions need (so a srcset burst decodes each master once, not once per URL).

Entries are pixel buffers (bounded in bytes, least recently used evicted), shared by render
threads; `get_or_make` makes an entry once however many threads ask for it at the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyvips
from cachetools import LRUCache

Entry = tuple[bytes, int, int, int, str, str]  # pixels, width, height, bands, band format, interpretation
MAKE_TIMEOUT_S = 120.0


class IntermediateCache:
    def __init__(self, max_bytes: int):
        self._lru: LRUCache[str, Entry] = LRUCache(max_bytes, getsizeof=lambda entry: len(entry[0]))
        self._lock = threading.Lock()
        self._making: dict[str, threading.Event] = {}

    def get(self, key: str) -> pyvips.Image | None:
        with self._lock:
            entry = self._lru.get(key)
        return None if entry is None else _image(entry)

    def put(self, key: str, image: pyvips.Image) -> pyvips.Image:
        """Keep `image` (when it fits); returns it as the cache will give it back."""
        entry = (image.write_to_memory(), image.width, image.height, image.bands, image.format, image.interpretation)
        if len(entry[0]) <= self._lru.maxsize:
            with self._lock:
                self._lru[key] = entry
        return _image(entry)

    def get_or_make(self, key: str, make: Callable[[], pyvips.Image]) -> pyvips.Image:
        """The entry for `key`, made by `make()` once: a thread that asks while another is making
        it waits for that one instead of making it again."""
        with self._lock:
            entry = self._lru.get(key)
            if entry is not None:
                return _image(entry)
            making = self._making.get(key)
            if making is None:
                self._making[key] = threading.Event()
        if making is not None:
            making.wait(MAKE_TIMEOUT_S)
            return self.get(key) or self.put(key, make())  # the maker failed, or it did not fit
        try:
            return self.put(key, make())
        finally:
            with self._lock:
                self._making.pop(key).set()


def _image(entry: Entry) -> pyvips.Image:
    data, width, height, bands, band_format, interpretation = entry
    return pyvips.Image.new_from_memory(data, width, height, bands, band_format).copy(interpretation=interpretation)
