"""Process-wide settings for a long-running renderer (call once, before the first render)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from typing import Any

import pyvips

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc mallopt parameter


def tune_process(malloc_arenas: int = 2) -> None:
    guard_log_handler()
    # We cache renditions ourselves. libvips' operation cache would keep recent thumbnail calls,
    # and with them whole master buffers, alive: hundreds of MB after a few dozen misses.
    pyvips.cache_set_max(0)
    # glibc gives each thread that contends for malloc its own arena; libvips' worker threads
    # then fragment them around large decode buffers. Two arenas halve peak RSS at no measured cost.
    name = ctypes.util.find_library("c")
    if name:
        try:
            libc = ctypes.CDLL(name)
            if hasattr(libc, "mallopt"):
                libc.mallopt(M_ARENA_MAX, malloc_arenas)
        except OSError:
            log.debug("could not tune malloc arenas")


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
