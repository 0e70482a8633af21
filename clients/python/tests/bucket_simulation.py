"""A simulated server token bucket and clients driving `Pacer` against it, on a fake clock.

The bucket follows the service's documented arithmetic (docs/rate-limits.md): a token
bucket of `burst` tokens refilled at `rate_per_minute`, a quota, `X-RateLimit-Remaining` =
whole tokens, `X-RateLimit-Reset` = when full again (rounded up to the second),
`Retry-After` on a 429 (rounded up).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from iopaint_sdk.pacing import Pacer, Ticket

EPSILON = 1e-9


class FakeClock:
    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class SimulatedBucket:
    burst: int
    rate_per_minute: float
    clock: FakeClock
    quota: int = 1_000_000
    quota_resets_at: float = 1_764_028_800.0
    tokens: float = -1.0
    updated: float = 0.0
    used: int = 0
    initial_tokens: float | None = None
    send_date: bool = False  # a Date header (RFC 7231, whole seconds), as uvicorn sends
    date_staleness: float = 0.0  # seconds the Date header lags (servers cache it)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst if self.initial_tokens is None else self.initial_tokens)
        self.updated = self.clock()

    @property
    def per_second(self) -> float:
        return self.rate_per_minute / 60.0

    def decide(self, cost: int = 1) -> tuple[int, dict[str, str]]:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        quota_left = self.quota - self.used
        if quota_left < cost:
            status, retry_after = 429, max(1, math.ceil(self.quota_resets_at - now))
        elif self.tokens + EPSILON < cost:
            status = 429
            retry_after = max(1, math.ceil((cost - self.tokens) / self.per_second - EPSILON))
        else:
            status, retry_after = 200, 0
            self.tokens = max(0.0, self.tokens - cost)
            self.used += cost
        quota_left = self.quota - self.used
        remaining = max(0, min(math.floor(self.tokens + EPSILON), quota_left))
        if quota_left < 1:
            reset = self.quota_resets_at
        else:
            reset = math.ceil(now + (self.burst - self.tokens) / self.per_second)
        headers = {
            "X-RateLimit-Limit": str(self.burst),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }
        if status == 429:
            headers["Retry-After"] = str(retry_after)
        if self.send_date:
            headers["Date"] = formatdate(math.floor(now - self.date_staleness), usegmt=True)
        return status, headers


@dataclass
class SimulationResult:
    wall_seconds: float
    refusals: int  # 429s the transport saw
    quota_refusals: int
    completed: int
    pacer: Pacer
    send_times: list[float] = field(default_factory=list)


def simulate(
    bucket: SimulatedBucket,
    *,
    requests: int,
    concurrency: int,
    processing_s: Callable[[int], float] | float = 1.0,
    latency_s: float = 0.01,
    clock: FakeClock,
    client_clock_offset: float = 0.0,
    max_wait_s: float = 300.0,
) -> SimulationResult:
    """`requests` spending requests sent by `concurrency` workers through one `Pacer`.

    A worker asks the pacer; waits what it says (or for the next response when it says
    None); sends; the server decides `latency_s` later and answers after the processing
    time. A 429 is retried through the pacer, as the client does. A predicted wait longer
    than `max_wait_s` is not waited (the client sends and lets the server decide); a quota
    refusal ends the request.
    """
    pacer = Pacer(clock=clock, wall_clock=lambda: clock() + client_clock_offset)
    start = clock()
    events: list[tuple[float, int, str, object]] = []
    order = 0

    def push(at: float, kind: str, payload: object) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, kind, payload))

    pending = list(range(requests))
    waiting: list[int] = []  # workers waiting for the next response
    result = SimulationResult(0.0, 0, 0, 0, pacer)
    current: dict[int, int] = {}  # worker -> request index

    def next_processing(index: int) -> float:
        return processing_s(index) if callable(processing_s) else processing_s

    def try_send(worker: int) -> None:
        if worker not in current:
            if not pending:
                return
            current[worker] = pending.pop(0)
        delay = pacer.delay()
        if delay is None:
            waiting.append(worker)
            return
        if delay > 0 and delay <= max_wait_s:
            push(clock() + delay, "wake", worker)
            return
        ticket = pacer.grant()
        result.send_times.append(clock() - start)
        push(clock() + latency_s, "decide", (worker, ticket))

    for worker in range(concurrency):
        push(clock(), "wake", worker)
    while events:
        at, _, kind, payload = heapq.heappop(events)
        clock.now = max(clock.now, at)
        if kind == "wake":
            try_send(int(payload))  # type: ignore[arg-type]
        elif kind == "decide":
            worker, ticket = payload  # type: ignore[misc]
            status, headers = bucket.decide()
            took = next_processing(current[worker]) if status == 200 else 0.0
            if status == 200:
                headers["X-Processing-Time"] = f"{took:.3f}"
            push(clock() + took + latency_s, "respond", (worker, ticket, status, headers))
        elif kind == "respond":
            worker, ticket, status, headers = payload  # type: ignore[misc]
            assert isinstance(ticket, Ticket)
            quota = status == 429 and bucket.used >= bucket.quota
            pacer.observe(ticket, status, headers, quota_refusal=quota)
            if status == 429:
                result.refusals += 1
                if quota:
                    result.quota_refusals += 1
                    del current[worker]
            else:
                result.completed += 1
                del current[worker]
                result.wall_seconds = clock() - start
            wake = [*waiting, worker]
            waiting.clear()
            for other in wake:
                push(clock(), "wake", other)
    return result
