"""Retry rules: what is retried, how long the client waits, and where it stops."""

from __future__ import annotations

import random
import time

import httpx
import pytest
from fake_api import FakeApi, error, image_response, json_response, multipart_parts, png_bytes

from iopaint_sdk import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    InvalidImageError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)

JOB = {
    "id": "job_1",
    "status": "queued",
    "created_at": "2025-11-24T16:00:00Z",
    "urls": {"get": "/api/v1/jobs/job_1"},
}


def recording_sleep(client: object) -> list[float]:
    waits: list[float] = []
    client._sleep = waits.append  # type: ignore[attr-defined]
    return waits


def test_503_is_retried_with_growing_jittered_backoff() -> None:
    api = FakeApi([error(503, "overloaded"), error(503, "overloaded"), image_response()])
    policy = RetryPolicy(max_attempts=5, backoff_initial=1.0, backoff_max=30.0)
    with api.client(retry=policy) as client:
        waits = recording_sleep(client)
        client.remove_watermark(png_bytes())
    assert len(api.requests) == 3
    assert len(waits) == 2
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0  # half fixed, half random


def test_backoff_is_jittered_and_capped() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=8.0, rng=random.Random(7))
    samples = [policy.backoff(3) for _ in range(200)]
    assert all(2.0 <= s <= 4.0 for s in samples)
    assert len({round(s, 6) for s in samples}) > 150  # not all the same instant
    assert all(4.0 <= policy.backoff(10) <= 8.0 for _ in range(50))


def test_503_retry_after_is_honoured() -> None:
    api = FakeApi([error(503, "at capacity", Retry_After="5"), image_response()])
    with api.client() as client:
        waits = recording_sleep(client)
        client.remove_watermark(png_bytes())
    assert waits == [5.0]


def test_attempts_are_bounded() -> None:
    api = FakeApi(default=lambda request: error(503, "down"))
    with api.client(retry=RetryPolicy(max_attempts=3, backoff_initial=0.001)) as client:
        recording_sleep(client)
        with pytest.raises(ServiceUnavailableError):
            client.remove_watermark(png_bytes())
    assert len(api.requests) == 3


def test_total_wait_is_bounded() -> None:
    api = FakeApi(default=lambda request: error(503, "down", Retry_After="20"))
    with api.client(retry=RetryPolicy(max_attempts=10, max_wait=50.0)) as client:
        waits: list[float] = []
        now = [0.0]

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

        client._sleep = sleep  # type: ignore[method-assign]
        client._clock = lambda: now[0]  # type: ignore[method-assign]
        with pytest.raises(ServiceUnavailableError):
            client.stats()
    assert waits == [20.0, 20.0]  # a third wait would end past 50 s
    assert len(api.requests) == 3


def test_4xx_are_never_retried() -> None:
    for status in (400, 401, 404, 409, 413, 422):
        api = FakeApi(default=lambda request, status=status: error(status, "no"))
        with api.client() as client, pytest.raises(APIError) as caught:
            client.remove_watermark(png_bytes())
        assert caught.value.status_code == status
        assert len(api.requests) == 1, status


def test_429_waits_retry_after_then_succeeds() -> None:
    api = FakeApi(
        [
            error(
                429,
                "Rate limit exceeded. Please try again later. Next request allowed in 1 s.",
                Retry_After="0.3",
                X_RateLimit_Limit="5",
                X_RateLimit_Remaining="0",
            ),
            image_response(),
        ]
    )
    with api.client() as client:
        started = time.monotonic()
        client.remove_watermark(png_bytes())
        waited = time.monotonic() - started
    assert len(api.requests) == 2
    assert waited >= 0.3  # the pacer held the retry until Retry-After had passed


def test_429_beyond_the_wait_budget_is_raised_at_once() -> None:
    api = FakeApi([error(429, "Rate limit exceeded.", Retry_After="120")])
    with api.client(retry=RetryPolicy(max_wait=60.0)) as client:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as caught:
            client.remove_watermark(png_bytes())
        assert time.monotonic() - started < 5.0
    assert caught.value.retry_after == 120 and not caught.value.quota_exceeded
    assert len(api.requests) == 1


def test_connection_errors_are_retried_then_reported_without_the_request() -> None:
    api = FakeApi([httpx.ConnectError("refused"), httpx.ReadError("reset"), image_response()])
    with api.client() as client:
        recording_sleep(client)
        client.remove_watermark(png_bytes())
    assert len(api.requests) == 3

    api = FakeApi(default=None, replies=[httpx.ConnectError("refused")] * 4)
    with api.client() as client:
        recording_sleep(client)
        with pytest.raises(APIConnectionError) as caught:
            client.stats()
    assert "could not connect" in str(caught.value) and "refused" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_timeouts_become_api_timeout_errors() -> None:
    api = FakeApi(replies=[httpx.ReadTimeout("slow")] * 4)
    with api.client() as client:
        recording_sleep(client)
        with pytest.raises(APITimeoutError, match="timed out"):
            client.stats()
    assert len(api.requests) == 4


def test_a_retried_job_submission_reuses_its_idempotency_key() -> None:
    api = FakeApi(
        [
            httpx.ReadError("connection reset after sending"),
            error(503, "busy"),
            json_response(JOB, status=202),
            json_response(JOB, status=202),
        ]
    )
    with api.client() as client:
        recording_sleep(client)
        client.jobs.submit(png_bytes())
        client.jobs.submit(png_bytes())
    keys = [request.headers["idempotency-key"] for request in api.requests]
    assert keys[0] == keys[1] == keys[2]  # one submit, three attempts, one key
    assert keys[3] != keys[0]  # a new submit, a new key
    assert all(key.startswith("iopaint-sdk-") and len(key) > 30 for key in keys)


def test_a_given_idempotency_key_is_sent_as_is() -> None:
    api = FakeApi([json_response(JOB, status=202)])
    with api.client() as client:
        client.jobs.submit(png_bytes(), idempotency_key="order-42")
    assert api.requests[0].headers["idempotency-key"] == "order-42"


def test_uploads_are_resent_whole_on_retry() -> None:
    image = png_bytes(16, 12)
    api = FakeApi([error(503, "busy"), image_response()])
    with api.client() as client:
        recording_sleep(client)
        client.remove_watermark(image, mask=png_bytes(16, 12, (255, 255, 255)))
    first, second = (multipart_parts(request) for request in api.requests)
    assert [p.content for p in first] == [p.content for p in second]
    assert first[0].content == image


def test_retries_can_be_turned_off() -> None:
    api = FakeApi(default=lambda request: error(503, "busy"))
    with (
        api.client(retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(ServiceUnavailableError),
    ):
        client.stats()
    assert len(api.requests) == 1


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_wait=-1)


def test_invalid_image_is_not_retried_even_with_retry_after() -> None:
    api = FakeApi(default=lambda request: error(400, "Invalid image format", Retry_After="1"))
    with api.client() as client, pytest.raises(InvalidImageError):
        client.remove_watermark(b"not an image")
    assert len(api.requests) == 1
