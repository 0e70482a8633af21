"""What end-to-end job tests share: submitting over HTTP, waiting for ends, reading Redis."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from tests.images import box_mask, encode, photo

JOBS = "/api/v1/jobs"
BATCH = "/api/v1/batch"
SMALL = {
    "image": ("small.png", encode(photo(64, 48), "PNG"), "image/png"),
    "mask": ("mask.png", encode(box_mask(64, 48, (8, 8, 24, 24)), "PNG"), "image/png"),
}
# OpenCV's Telea takes seconds on this: long enough to find a job running and act on it.
SLOW = {
    "image": ("slow.jpg", encode(photo(2048, 2048, seed=5), "JPEG"), "image/jpeg"),
    "mask": ("mask.png", encode(box_mask(2048, 2048, (200, 200, 920, 920)), "PNG"), "image/png"),
}


def finished(client: httpx.Client, job_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reply = client.get(f"{JOBS}/{job_id}")
        if reply.status_code == 200 and reply.json()["status"] not in ("queued", "running"):
            return reply.json()  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout_s} s")


def counted(client: httpx.Client, total: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The key's stats once `total` requests are counted (fails if more ever are)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = client.get("/api/v1/stats").json()
        assert stats["total"] <= total, stats
        if stats["total"] == total:
            return stats  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"stats never reached total {total}")


def job_fields(url: str, job_id: str, prefix: str = "iopaint:") -> dict[str, str]:
    """A job's record as the Redis job store keeps it."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return client.hgetall(f"{prefix}jobs:{{jobs}}:job:{job_id}")  # type: ignore[return-value]
    finally:
        client.close()


def queued_count(url: str, prefix: str = "iopaint:") -> int:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return int(client.zcard(f"{prefix}jobs:{{jobs}}:queue"))
    finally:
        client.close()
