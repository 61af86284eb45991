"""Concurrency vocabulary: single-flight, cancellation tokens, and how many CPUs this process has."""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


CGROUP_QUOTAS = (
    ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "<quota> <period>" or "max <period>"
    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),  # cgroup v1
)


def cpu_count() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota when there is one
    (a pod limited to 2 CPUs on a 64-core node gets 2, not 64)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota)) if quota else cpus)


# Render and probe threads run this much nicer than the event loop's thread: when every core is
# busy, the scheduler gives the thread that answers cache hits and /healthz its turn first.
# Threads libvips and onnxruntime start from a render thread inherit it (Linux: nice is per thread).
BACKGROUND_NICE = 10


def run_in_background() -> None:
    """Lower the calling thread's CPU priority by BACKGROUND_NICE (a ThreadPoolExecutor
    initializer); nothing where the platform does not allow it."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: same priority as the loop
        pass


def cgroup_cpu_quota() -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 for "150000 100000"), or None for none."""
    for quota_file, period_file in CGROUP_QUOTAS:
        try:
            text = open(quota_file).read().split()
            if period_file is not None:
                text.append(open(period_file).read().strip())
        except OSError:
            continue
        if len(text) >= 2 and text[0] not in ("max", "-1"):
            try:
                quota, period = int(text[0]), int(text[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    return None


@dataclass
class CancelToken:
    """Set from the event loop; checked by render threads (model tiles), or acted on at once by what
    they registered with `on_cancel` (libvips' kill flag on the image being computed)."""

    _event: threading.Event = field(default_factory=threading.Event)
    # When (time.monotonic()) a model run must be done by: what the request may wait for one.
    deadline: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _callbacks: dict[int, Callable[[], None]] = field(default_factory=dict)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = list(self._callbacks.values()), {}
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when the token is cancelled (at once when it is already); returns the
        function that forgets it (call it when the work it would stop is done)."""
        with self._lock:
            if not self._event.is_set():
                key = id(callback)
                self._callbacks[key] = callback
                return lambda: self._forget(key)
        callback()
        return lambda: None

    def _forget(self, key: int) -> None:
        with self._lock:
            self._callbacks.pop(key, None)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class SingleFlight(Generic[T]):
    """Concurrent calls with one key share one execution and its result."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._inflight)

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run `fn` unless a call with `key` is in flight; return (result, joined an existing call).

        The work runs in its own task and callers await it shielded: a client that disconnects
        cancels only its own wait, so the others (and the cache) still get the result.
        """
        task = self._inflight.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(fn())
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task), joined
