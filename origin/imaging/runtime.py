"""Process-wide settings for a long-running renderer (call once, before the first render)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyvips

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc mallopt parameter


def tune_process(malloc_arenas: int = 2) -> None:
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
