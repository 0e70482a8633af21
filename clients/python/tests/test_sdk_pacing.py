"""`Pacer` against a simulated server bucket on a fake clock (deterministic, instant)."""

from __future__ import annotations

import random

import pytest
from bucket_simulation import FakeClock, SimulatedBucket, simulate

from iopaint_sdk.pacing import Pacer


def theoretical_minimum(requests: int, burst: int, rate_per_minute: float) -> float:
    return max(0, requests - burst) * 60.0 / rate_per_minute


@pytest.mark.parametrize(
    ("burst", "rate", "requests", "concurrency", "processing", "refusals"),
    [
        (5, 2, 20, 4, 1.0, 0),  # the free plan's shape
        (5, 2, 20, 1, 1.0, 0),
        (5, 2, 20, 8, 8.0, 0),  # slow model: many requests in flight when headers arrive
        (20, 10, 60, 4, 2.0, 0),  # basic
        (60, 30, 150, 8, 0.5, 0),  # pro
        # A token a second: Reset's whole seconds hide the interval at first; the few
        # 429s are waited out, never surfaced.
        (3, 60, 30, 4, 0.3, 3),
    ],
)
def test_paced_batch_sees_no_429_and_ends_near_the_minimum(
    burst: int, rate: float, requests: int, concurrency: int, processing: float, refusals: int
) -> None:
    clock = FakeClock()
    bucket = SimulatedBucket(burst, rate, clock)
    result = simulate(
        bucket,
        requests=requests,
        concurrency=concurrency,
        processing_s=processing,
        clock=clock,
    )
    minimum = theoretical_minimum(requests, burst, rate)
    last_send = result.send_times[-1]
    assert result.completed == requests
    assert result.refusals <= refusals
    assert minimum <= last_send  # the simulated bucket cannot be beaten
    # Reset is rounded up to the second: the pacer may start each token up to ~1 s late.
    assert last_send <= minimum + 0.1 * minimum + 2.0
    snapshot = result.pacer.snapshot()
    assert snapshot.limit == burst
    assert snapshot.interval is not None
    assert snapshot.interval <= 60.0 / rate  # a lower bound of the true interval


def test_out_of_order_answers_do_not_mislead_the_pacer() -> None:
    clock = FakeClock()
    rng = random.Random(3)
    bucket = SimulatedBucket(5, 2, clock)
    result = simulate(
        bucket,
        requests=20,
        concurrency=6,
        processing_s=lambda index: rng.uniform(0.1, 20.0),
        clock=clock,
    )
    assert result.completed == 20 and result.refusals == 0
    assert result.send_times[-1] <= theoretical_minimum(20, 5, 2) + 10.0


def test_a_fast_limit_costs_few_refusals() -> None:
    # 600/min with burst 100: Reset's whole seconds hide the interval, so a few 429s are
    # allowed; none is surfaced (each is retried after its Retry-After).
    clock = FakeClock()
    bucket = SimulatedBucket(100, 600, clock)
    result = simulate(bucket, requests=300, concurrency=8, processing_s=0.5, clock=clock)
    assert result.completed == 300
    assert result.refusals <= 5


@pytest.mark.parametrize("initial_tokens", [0.0, 0.5, 2.3])
def test_a_drained_bucket_costs_at_most_one_refusal(initial_tokens: float) -> None:
    clock = FakeClock()
    bucket = SimulatedBucket(5, 2, clock, initial_tokens=initial_tokens)
    result = simulate(bucket, requests=10, concurrency=4, processing_s=1.0, clock=clock)
    assert result.completed == 10
    assert result.refusals <= 1


@pytest.mark.parametrize(
    ("skew", "stale"), [(-120.0, 0.0), (-45.0, 4.0), (45.0, 4.0), (600.0, 0.0)]
)
def test_a_far_off_client_clock_is_corrected_by_the_date_header(skew: float, stale: float) -> None:
    clock = FakeClock(1_764_000_000.37)
    bucket = SimulatedBucket(5, 2, clock, send_date=True, date_staleness=stale)
    result = simulate(
        bucket,
        requests=20,
        concurrency=4,
        processing_s=1.0,
        clock=clock,
        client_clock_offset=skew,
    )
    assert result.completed == 20 and result.refusals == 0
    assert result.send_times[-1] <= theoretical_minimum(20, 5, 2) + 10.0


@pytest.mark.parametrize("skew", [-1.0, -0.3, 0.4, 1.0])
def test_clocks_a_second_apart_cost_no_refusal(skew: float) -> None:
    clock = FakeClock(1_764_000_000.37)
    bucket = SimulatedBucket(5, 2, clock, send_date=True, date_staleness=3.0)
    result = simulate(
        bucket, requests=20, concurrency=4, processing_s=1.0, clock=clock, client_clock_offset=skew
    )
    assert result.completed == 20 and result.refusals == 0
    assert result.send_times[-1] <= theoretical_minimum(20, 5, 2) + 10.0


def test_a_spent_quota_is_refused_not_waited_for() -> None:
    clock = FakeClock()
    bucket = SimulatedBucket(5, 2, clock, quota=7)
    result = simulate(bucket, requests=10, concurrency=4, processing_s=1.0, clock=clock)
    assert result.completed == 7
    assert result.quota_refusals == 3  # the other three, each told at once


def test_first_request_probes_alone_then_the_burst_goes() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, wall_clock=clock)
    assert pacer.delay() == 0
    probe = pacer.grant()
    assert pacer.delay() is None  # wait for the probe's headers
    reset = int(clock() + 30)
    pacer.observe(
        probe,
        200,
        {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": str(reset)},
    )
    tickets = []
    for _ in range(4):
        assert pacer.delay() == 0
        tickets.append(pacer.grant())
    # No token left: the next comes about one interval (learned from Reset, conservatively:
    # 28..30 s) after.
    assert 28.0 <= pacer.delay() <= 30.0  # type: ignore[operator]


def test_a_429_holds_every_request_until_retry_after() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, wall_clock=clock)
    ticket = pacer.grant()
    pacer.observe(ticket, 429, {"Retry-After": "20", "X-RateLimit-Limit": "5"})
    assert pacer.delay() == pytest.approx(20.0)
    clock.now += 20
    assert pacer.delay() == 0
    assert pacer.snapshot().interval == pytest.approx(19.0)  # longer than Retry-After - 1


def test_a_response_without_rate_headers_gives_its_token_back() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, wall_clock=clock)
    first = pacer.grant()
    pacer.observe(
        first,
        200,
        {
            "X-RateLimit-Limit": "2",
            "X-RateLimit-Remaining": "1",
            "X-RateLimit-Reset": str(int(clock() + 30)),
        },
    )
    second = pacer.grant()
    assert pacer.delay() > 25  # type: ignore[operator]
    pacer.observe(second, 401, {})  # refused before the limiter: it spent nothing
    assert pacer.delay() == 0
