"""The allocator settings apply on glibc (every Linux image we ship)."""

from __future__ import annotations

import platform

import pytest

from api.allocator import limit_heap_fragmentation


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_mallopt_accepts_the_settings() -> None:
    assert limit_heap_fragmentation() is True
