"""`AsyncIOPaintClient`: the same methods and rules as the sync client."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path

import httpx
import pytest
from fake_api import (
    KEY,
    FakeApi,
    error,
    image_response,
    json_response,
    multipart_parts,
    png_bytes,
)

from iopaint_sdk import (
    AsyncIOPaintClient,
    AsyncJobs,
    InvalidImageError,
    IOPaintClient,
    Jobs,
    RateLimitError,
    ServiceUnavailableError,
)


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")}


def test_sync_and_async_have_the_same_methods_and_signatures() -> None:
    pairs = [(IOPaintClient, AsyncIOPaintClient), (Jobs, AsyncJobs)]
    for sync_cls, async_cls in pairs:
        assert public_methods(sync_cls) - {"close"} == public_methods(async_cls) - {"aclose"}
        for name in public_methods(sync_cls) - {"close"}:
            sync_sig = inspect.signature(getattr(sync_cls, name))
            async_sig = inspect.signature(getattr(async_cls, name))
            assert list(sync_sig.parameters) == list(async_sig.parameters), name
            assert inspect.iscoroutinefunction(getattr(async_cls, name)), name


def test_remove_watermark_and_errors() -> None:
    api = FakeApi([image_response(), error(400, "Invalid image format")])

    async def scenario() -> None:
        async with api.async_client() as client:
            result = await client.remove_watermark(png_bytes(), mask=png_bytes())
            assert result.model == "opencv"
            with pytest.raises(InvalidImageError):
                await client.remove_watermark(b"junk")

    run(scenario())
    assert [p.name for p in multipart_parts(api.requests[0])] == ["image", "mask"]
    assert api.requests[0].headers["x-api-key"] == KEY
    assert len(api.requests) == 2


def test_503_retried_and_bounded() -> None:
    api = FakeApi([error(503, "busy"), image_response()])
    failing = FakeApi(default=lambda request: error(503, "down"))

    async def scenario() -> None:
        async with api.async_client() as client:
            await client.remove_watermark(png_bytes())
        async with failing.async_client() as client:
            with pytest.raises(ServiceUnavailableError):
                await client.stats()

    run(scenario())
    assert len(api.requests) == 2
    assert len(failing.requests) == 4  # FAST_RETRY's max_attempts


def test_429_waits_then_quota_is_raised() -> None:
    api = FakeApi(
        [
            error(429, "Rate limit exceeded.", Retry_After="0.3", X_RateLimit_Limit="5"),
            image_response(),
            error(429, "Daily quota of 10 requests exceeded", Retry_After="40000"),
        ]
    )

    async def scenario() -> float:
        async with api.async_client() as client:
            started = time.monotonic()
            await client.remove_watermark(png_bytes())
            waited = time.monotonic() - started
            with pytest.raises(RateLimitError) as caught:
                await client.remove_watermark(png_bytes())
            assert caught.value.quota_exceeded
            return waited

    assert run(scenario()) >= 0.3
    assert len(api.requests) == 3


def test_connection_errors_retried() -> None:
    api = FakeApi([httpx.ConnectError("refused"), image_response()])

    async def scenario() -> None:
        async with api.async_client() as client:
            await client.remove_watermark(png_bytes())

    run(scenario())
    assert len(api.requests) == 2


def test_jobs_submit_wait_result() -> None:
    def body(status: str) -> dict[str, object]:
        return {"id": "job_9", "status": status, "created_at": None, "urls": {}}

    api = FakeApi(
        [
            json_response(body("queued"), status=202),
            json_response(body("running")),
            json_response(body("succeeded")),
            image_response(),
        ]
    )

    async def scenario() -> None:
        async with api.async_client() as client:

            async def no_sleep(seconds: float) -> None:
                return None

            client._sleep = no_sleep  # type: ignore[method-assign]
            job = await client.jobs.submit(png_bytes())
            done = await client.jobs.wait(job)
            assert done.status == "succeeded"
            result = await client.jobs.result(done)
            assert result.model == "opencv"

    run(scenario())
    assert [r.url.path for r in api.requests] == [
        "/api/v1/jobs",
        "/api/v1/jobs/job_9",
        "/api/v1/jobs/job_9",
        "/api/v1/jobs/job_9/result",
    ]
    assert "idempotency-key" in api.requests[0].headers


def test_batch_process_reports_each_image(tmp_path: Path) -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stats"):
            return json_response({})
        if multipart_parts(request)[0].filename == "bad.png":
            return error(400, "Invalid image format")
        return image_response()

    paths = []
    for name in ("a.png", "bad.png", "c.png"):
        (tmp_path / name).write_bytes(png_bytes())
        paths.append(tmp_path / name)
    api = FakeApi(default=reply)

    async def scenario() -> list[bool]:
        async with api.async_client() as client:
            results = await client.batch_process(paths, tmp_path / "out", progress=False)
            return [item.ok for item in results]

    assert run(scenario()) == [True, False, True]
    assert (tmp_path / "out" / "a.png").exists() and not (tmp_path / "out" / "bad.png").exists()


def test_batch_process_stops_on_a_spent_quota(tmp_path: Path) -> None:
    quota = error(429, "Daily quota of 10 requests exceeded", Retry_After="30000")
    api = FakeApi([json_response({}), image_response(), quota], default=lambda request: quota)

    async def scenario() -> list[bool]:
        async with api.async_client(max_concurrency=1) as client:
            results = await client.batch_process([png_bytes()] * 4, tmp_path / "out")
            assert all(isinstance(r.error, RateLimitError) for r in results[1:])
            return [item.ok for item in results]

    assert run(scenario()) == [True, False, False, False]
    assert len(api.requests) == 3  # stats, the first image, the refused one; no more
