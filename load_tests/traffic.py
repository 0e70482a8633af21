"""What the load test sends, by the names locust reports it under.

The locustfile sends this traffic; the report and the plots read it back by the same names.
Nothing here imports locust: the report process must stay free of its gevent patching.
"""

from __future__ import annotations

REMOVE = "/api/v1/remove-watermark"
HEALTH = "/api/v1/health"
STATS = "/api/v1/stats"
JOBS = "/api/v1/jobs"
BATCH = "/api/v1/batch"

# Request names as locust reports them: one per route, and one per deliberate-error or
# over-limit flavour of remove-watermark so that their latencies do not mix.
NAME_REMOVE = REMOVE
NAME_INVALID = f"{REMOVE} [invalid]"
NAME_OVER_LIMIT = f"{REMOVE} [free plan]"

# Jobs and batches: a submission, the polls of its status (one name for every id), its result.
NAME_JOB_SUBMIT = JOBS
NAME_JOB_STATUS = f"{JOBS}/[id]"
NAME_JOB_RESULT = f"{JOBS}/[id]/result"
NAME_BATCH_SUBMIT = BATCH
NAME_BATCH_STATUS = f"{BATCH}/[id]"
NAME_BATCH_RESULT = f"{BATCH}/[id]/result"
BATCH_SIZE = 3
"""Images per batch a `BatchCustomer` sends (a batch of N spends N tokens and N units)."""
JOB_POLL_S = 0.5
"""How often job and batch users ask whether their work has ended."""

METERED_NAMES: tuple[str, ...] = (NAME_REMOVE, NAME_INVALID, NAME_OVER_LIMIT)
"""Requests a key's usage counts, so `/stats` must agree with what the client saw of them."""
SUBMIT_NAMES: tuple[str, ...] = (NAME_JOB_SUBMIT, NAME_BATCH_SUBMIT)
"""Job submissions: refused ones count in `rate_limited`; their jobs count when they end,
as the poll that saw them end records (`job_outcome` in the request log: succeeded and
failed jobs), a batch of N as N."""

UNLIMITED_PLANS = frozenset({"enterprise"})
"""Plans whose keys get limits far above the load: a 429 on them is a failure."""
OVER_LIMIT_PLAN = "free"
"""The plan of the one client that sends back to back to draw 429s."""
NO_KEY_PLAN = "none"
"""The plan recorded for requests sent without a key (or with an unknown one)."""

# Image sides and how often customers send them: most uploads are small.
SIZES: list[tuple[tuple[int, int], int]] = [
    ((256, 256), 40),
    ((512, 512), 25),
    ((1280, 720), 12),
    ((1024, 1024), 15),
    ((2048, 2048), 8),
]
FORMATS: list[tuple[str, int]] = [("JPEG", 60), ("PNG", 25), ("WEBP", 15)]
MASKS: list[tuple[str, int]] = [("box", 70), ("soft", 17), ("half-size", 8), ("empty", 5)]


def size_label(size: tuple[int, int]) -> str:
    """`WxH`, as the request log records an upload's size."""
    return f"{size[0]}x{size[1]}"


SIZE_LABELS: list[str] = [size_label(size) for size, _ in SIZES]
"""Every size sent, smallest first: the order of the report's per-size table."""
