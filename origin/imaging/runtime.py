"""Process-wide settings for a long-running renderer (call once, before the first render)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import sys
from typing import Any

import pyvips

from origin.core.concurrency import cpu_count

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc mallopt parameter
SWITCH_INTERVAL_S = 0.001  # see tune_process


def libvips_version() -> str:
    return ".".join(str(pyvips.version(i)) for i in range(3))


def tune_process(malloc_arenas: int = 2) -> None:
    """Call early: before the threads (libvips', onnxruntime's) that would each get a malloc arena."""
    guard_log_handler()
    # We cache renditions ourselves. libvips' operation cache would keep recent thumbnail calls,
    # and with them whole master buffers, alive: hundreds of MB after a few dozen misses.
    pyvips.cache_set_max(0)
    # libvips sizes its thread pools from the machine's cores (64 on a 64-core node); a pod
    # limited to 2 CPUs by its cgroup gets 2. VIPS_CONCURRENCY, when set, wins.
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.concurrency_set(cpu_count())
    limit_malloc_arenas(malloc_arenas)
    # The event loop shares the GIL with render threads that call into Python between libvips
    # operations; at CPython's 5 ms switch interval it waited up to a few of those per request.
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def share_cores(renders_at_once: int) -> int:
    """Size libvips' threads per render so that `renders_at_once` renders (in every process of
    the server) together have about one thread per core, and return it. libvips sizes its pools
    for a render that has the machine to itself; under load, with every render thread busy, the
    extra threads only cost CPU (2 workers of 1 render thread on 2 cores: 800w JPEG first
    touches 51.7 -> 45.7 CPU-ms each with 1 libvips thread instead of 2, 320w 42.0 -> 37.0).
    VIPS_CONCURRENCY, when set, wins."""
    if "VIPS_CONCURRENCY" not in os.environ:
        pyvips.concurrency_set(max(1, cpu_count() // max(1, renders_at_once)))
    return int(pyvips.concurrency_get())


def limit_malloc_arenas(arenas: int) -> bool:
    """At most `arenas` glibc malloc arenas, in this process (mallopt) and in the processes it
    starts (MALLOC_ARENA_MAX, read by glibc at start-up). glibc gives each thread that contends for
    malloc its own arena, and libvips' and onnxruntime's threads fragment them around large decode
    buffers: two cut the hostile-load run's peak RSS from 744 to 522-590 MB (benchmarks/hostile.py).
    An environment that sets MALLOC_ARENA_MAX wins; 0 keeps glibc's default. False when not applied."""
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(hasattr(libc, "mallopt") and libc.mallopt(M_ARENA_MAX, arenas))
    except OSError:
        log.debug("could not tune malloc arenas")
        return False


_guarded = False


def guard_log_handler() -> None:
    """No garbage collection while pyvips forwards a libvips message to Python logging.

    pyvips hands libvips' GLib log messages to `logging` from inside GLib's log handler. Should
    Python's cyclic collector run during that call (any allocation may start it) and free an image
    whose disposal logs in turn (a damaged JPEG's "read gave 1 warnings"), GLib sees a recursive
    log call on that thread and the process dies ("VIPS-WARNING (recursed)"): the fuzz test's
    damaged masters did it about one run in three. The forwarded call is short; collection waits.
    """
    global _guarded
    if _guarded or not getattr(pyvips, "API_mode", False):
        return  # ABI mode binds its callback at import; nothing to swap in
    forward = pyvips._log_handler_callback  # noqa: SLF001 (pyvips offers no public hook)

    def without_gc(domain: Any, level: Any, message: Any, user_data: Any) -> None:
        collecting = gc.isenabled()
        gc.disable()
        try:
            forward(domain, level, message, user_data)
        finally:
            if collecting:
                gc.enable()

    pyvips.ffi.def_extern(name="_log_handler_callback")(without_gc)
    _guarded = True
