"""The admission arithmetic, table-driven, on an injected clock (no store, no sleeps)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from auth.token_bucket import Bucket, BucketState, Decision, Quota, decide

FREE = Bucket(capacity=5, refill_per_second=2 / 60)  # one token every 30 s
T0 = 1_764_000_000.0
DAY_END = 1_764_028_800  # 2025-11-25T00:00:00Z
ROOMY_QUOTA = Quota(used=0, limit=1000, resets_at=DAY_END)


@dataclass(frozen=True)
class Step:
    at: float  # seconds after T0
    allowed: bool
    remaining: int
    retry_after: int = 0
    reason: str | None = None


def run(steps: list[Step], bucket: Bucket = FREE, quota: Quota = ROOMY_QUOTA) -> list[Decision]:
    state: BucketState | None = None
    used = quota.used
    decisions = []
    for step in steps:
        current = Quota(used, quota.limit, quota.resets_at)
        outcome = decide(state, bucket, current, T0 + step.at, cost=1)
        state, used = outcome.bucket, outcome.quota_used
        decisions.append(outcome.decision)
    return decisions


CASES = {
    "a fresh bucket lets the burst through, then refuses": [
        Step(0, True, 4),
        Step(0, True, 3),
        Step(0, True, 2),
        Step(0, True, 1),
        Step(0, True, 0),
        Step(0, False, 0, retry_after=30, reason="rate"),
        Step(10, False, 0, retry_after=20, reason="rate"),
    ],
    "after the time for one token exactly one more passes": [
        *[Step(0, True, n) for n in (4, 3, 2, 1, 0)],
        Step(30, True, 0),
        Step(30, False, 0, retry_after=30, reason="rate"),
        Step(59.9, False, 0, retry_after=1, reason="rate"),
        Step(60, True, 0),
    ],
    "an idle bucket refills to its capacity, not beyond": [
        Step(0, True, 4),
        Step(3600, True, 4),
    ],
    "refused requests spend nothing": [
        *[Step(0, True, n) for n in (4, 3, 2, 1, 0)],
        *[Step(1, False, 0, retry_after=29, reason="rate") for _ in range(5)],
        Step(30, True, 0),
    ],
    "a clock that steps back neither refills nor drains": [
        Step(100, True, 4),
        Step(50, True, 3),
    ],
}


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_token_bucket(steps: list[Step]) -> None:
    decisions = run(steps)
    observed = [(d.allowed, d.remaining, d.retry_after, d.reason) for d in decisions]
    assert observed == [(s.allowed, s.remaining, s.retry_after, s.reason) for s in steps]


def test_headers_describe_the_bucket() -> None:
    first, second = run([Step(0, True, 4), Step(0, True, 3)])
    assert first.limit == 5
    assert first.reset_at == T0 + 30  # one token missing: full again in 30 s
    assert second.reset_at == T0 + 60


def test_the_quota_refuses_even_with_tokens_left() -> None:
    quota = Quota(used=0, limit=10, resets_at=DAY_END)
    steps = [Step(30 * n, True, min(4, 9 - n)) for n in range(10)]
    decisions = run([*steps, Step(300, False, 0)], quota=quota)
    refused = decisions[-1]
    assert refused.reason == "quota"
    assert refused.retry_after == DAY_END - (T0 + 300)
    assert refused.reset_at == DAY_END  # nothing passes before the quota resets
    assert refused.quota.used == 10


def test_remaining_is_capped_by_the_quota_left() -> None:
    quota = Quota(used=8, limit=10, resets_at=DAY_END)
    (decision,) = run([Step(0, True, 1)], quota=quota)
    assert decision.quota.left == 1


def test_peeking_spends_nothing() -> None:
    outcome = decide(None, FREE, ROOMY_QUOTA, T0, cost=0)
    assert outcome.decision.allowed
    assert outcome.decision.remaining == 5
    assert outcome.quota_used == 0
    assert outcome.decision.reset_at == T0


def test_a_cost_of_three_needs_three_tokens_and_says_when_they_are_there() -> None:
    outcome = decide(None, FREE, ROOMY_QUOTA, T0, cost=3)
    assert (outcome.decision.allowed, outcome.decision.remaining, outcome.quota_used) == (
        True,
        2,
        3,
    )
    refused = decide(outcome.bucket, FREE, ROOMY_QUOTA, T0 + 10, cost=3).decision
    # 2 + 1/3 tokens at T0+10: the third whole one comes at T0+30, 20 s later.
    assert (refused.allowed, refused.reason, refused.retry_after) == (False, "rate", 20)
    assert refused.reset_at == T0 + 10 + 20  # on a refusal: when this request would pass
    later = decide(outcome.bucket, FREE, ROOMY_QUOTA, T0 + 30, cost=3).decision
    assert (later.allowed, later.remaining) == (True, 0)


def test_a_refusal_by_the_quota_resets_with_the_quota() -> None:
    quota = Quota(used=8, limit=10, resets_at=DAY_END)
    refused = decide(None, FREE, quota, T0, cost=3).decision
    assert (refused.allowed, refused.reason) == (False, "quota")
    assert refused.retry_after == DAY_END - T0 and refused.reset_at == DAY_END
    assert decide(None, FREE, quota, T0, cost=2).decision.allowed


@pytest.mark.parametrize("cost", [-1, 6])
def test_a_cost_outside_the_bucket_is_a_programming_error(cost: int) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.5"):
        decide(None, FREE, ROOMY_QUOTA, T0, cost=cost)
