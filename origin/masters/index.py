"""Version hashes: blake3 of a master's bytes, computed once per master identity (path+size+mtime).

The same pass reads the header, so a request for a cached master costs one stat: the record says
which version is current (for `v` and ETags) and whether the master has alpha or animation
(for negotiation). Refusals (bombs, undecodable files) are cached the same way.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import blake3
from cachetools import LRUCache

from origin.core.concurrency import SingleFlight, run_in_background
from origin.core.errors import Problem, retry_soon
from origin.core.limits import Limits
from origin.core.master import MasterInfo, MasterRecord
from origin.imaging.probe import probe
from origin.masters.store import MasterStore

RECENT_BYTES = 64 * 1024 * 1024  # 16 concurrent first touches of 4 MB masters
# First touches are hashed and probed on threads of their own, never on the default executor that
# disk-tier hits and file reads use: a burst of hostile first touches cannot make a hit wait.
PROBE_THREADS = 2
PROBE_TIMEOUT_S = 10.0  # a probe this slow is a 503 (preflight keeps them far below it)


def version_hash(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def inspect(info: MasterInfo, data: bytes, limits: Limits) -> MasterRecord:
    return MasterRecord(info, version_hash(data), probe(data, limits))


class MasterIndex:
    def __init__(self, store: MasterStore, limits: Limits, max_entries: int = 100_000, stat_ttl_s: float = 0.0):
        self.store = store
        self.limits = limits
        # How long a stat is trusted: within it, a request for a known master asks the store nothing
        # (a cache hit on S3 masters would otherwise cost a HEAD). A changed master shows after it.
        self.stat_ttl_s = stat_ttl_s
        self._records: LRUCache[tuple[str, str], MasterRecord | Problem] = LRUCache(max_entries)
        self._latest: LRUCache[str, MasterRecord] = LRUCache(max_entries)  # by path, for store outages
        self._fresh: LRUCache[str, tuple[float, MasterRecord]] = LRUCache(max_entries)  # by path: when stat'ed
        # The bytes of masters just inspected, for the render that usually follows at once: a first
        # touch then reads and hashes the master once, not twice. Taken once; bounded in bytes.
        self._bytes: LRUCache[tuple[str, str], bytes] = LRUCache(RECENT_BYTES, getsizeof=len)
        self._flight: SingleFlight[MasterRecord | Problem] = SingleFlight()
        self._probes = ThreadPoolExecutor(
            max_workers=PROBE_THREADS, thread_name_prefix="probe", initializer=run_in_background
        )

    async def lookup(self, path: str) -> MasterRecord:
        """The current record of a master, or a Problem: 404 unknown, 413 too big, 415/422 refused.

        When the store fails (502/504), the last version seen for the path stands in, so renditions
        already in the caches are still served; anything that needs the master's bytes still fails.
        """
        if self.stat_ttl_s:
            fresh = self._fresh.get(path)
            if fresh is not None and time.monotonic() - fresh[0] < self.stat_ttl_s:
                return fresh[1]
        try:
            record = await self._lookup(path)
        except Problem as problem:
            latest = self._latest.get(path)
            if problem.status in (502, 504) and latest is not None:
                return latest
            raise
        self._latest[path] = record
        if self.stat_ttl_s:
            self._fresh[path] = (time.monotonic(), record)
        return record

    def take_bytes(self, record: MasterRecord) -> bytes | None:
        """The master's bytes if this index read them for `record` and no render took them yet:
        known to be that version (they were hashed to make the record)."""
        return self._bytes.pop((record.info.path, record.version), None)

    def forget(self, path: str) -> None:
        """Drop what is known of a master path (a purge): the next request asks the store again."""
        self._fresh.pop(path, None)
        self._latest.pop(path, None)

    async def _lookup(self, path: str) -> MasterRecord:
        info = await self.store.stat(path)
        if info is None:
            raise Problem(404, f"no master at {path!r}")
        if info.size > self.limits.max_master_bytes:
            raise Problem(
                413,
                f"master is {info.size} bytes, over the limit of {self.limits.max_master_bytes} bytes",
            )
        key = (info.path, info.identity)
        cached = self._records.get(key)
        if cached is None:
            cached, _ = await self._flight.run(repr(key), lambda: self._inspect(info))
            self._records[key] = cached
        if isinstance(cached, Problem):
            raise replace(cached)  # a fresh copy: re-raising one object grows its traceback
        return cached

    async def _inspect(self, info: MasterInfo) -> MasterRecord | Problem:
        data = await self.store.read(info)
        loop = asyncio.get_running_loop()
        probing = loop.run_in_executor(self._probes, inspect, info, data, self.limits)
        try:
            record = await asyncio.wait_for(asyncio.shield(probing), PROBE_TIMEOUT_S)
        except Problem as problem:
            return problem
        except TimeoutError:  # not remembered: a busy moment is not the master's fault
            raise retry_soon(f"reading the header of {info.path!r} took over {PROBE_TIMEOUT_S:g} s") from None
        if len(data) <= RECENT_BYTES // 4:
            self._bytes[(info.path, record.version)] = data
        return record
