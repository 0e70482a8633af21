"""glibc malloc settings that keep a long-running image service's memory flat.

Each request allocates and frees buffers of megabytes (uploads, pixels, PNGs) from
several threads. With glibc's defaults such buffers come from per-thread arenas, and the
threshold above which they are mapped (and returned to the OS on free) grows up to 32 MB,
so freed memory stays in fragmented arenas: in a 10-minute soak the HTTP worker's memory
floor rose by 16 MB/min. With two arenas and a fixed 128 KiB mapping threshold it rose by
under 3 MB/min (`load_tests/run.py --profile soak`, docs/testing.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# From glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2


def limit_heap_fragmentation() -> bool:
    """Apply the settings to this process; False where the C library is not glibc."""
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    libc = ctypes.CDLL(library)
    if not hasattr(libc, "mallopt"):
        return False
    applied = libc.mallopt(_M_ARENA_MAX, ARENA_MAX) == 1
    applied &= libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    if not applied:
        logger.warning("mallopt refused the allocator settings; memory may fragment")
    return applied
