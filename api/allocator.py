"""glibc malloc settings that keep a long-running image service's memory flat.

Each request allocates and frees buffers of megabytes (uploads, pixels, PNGs) from many
threads (Starlette's thread pool, BentoML's). glibc gives threads their own arenas, up to
eight per core, and freed memory stays spread over them, so the HTTP worker's memory floor
kept rising in a soak. Capped at two arenas it stays flat. A fixed mmap threshold also
flattened it but made large requests slower in page faults, so it is not used. The figures
and the command that measures them: docs/testing.md, "Measured choices".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h
ARENA_MAX = 2


def limit_heap_fragmentation() -> bool:
    """Apply the setting to this process; False where the C library is not glibc."""
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    libc = ctypes.CDLL(library)
    if not hasattr(libc, "mallopt"):
        return False
    applied = libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1
    if not applied:
        logger.warning("mallopt refused the arena limit; memory may fragment")
    return applied
