"""Jobs and server-side batches, to the contract draft (the routes are not served yet)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_api import FakeApi, error, image_response, json_response, multipart_parts, png_bytes

from iopaint_sdk import ConflictError, GoneError, InvalidImageError, Job, JobTimeoutError


def job_body(status: str, job_id: str = "job_abc", **extra: object) -> dict[str, object]:
    return {
        "id": job_id,
        "status": status,
        "created_at": "2025-11-24T16:00:00Z",
        "started_at": None,
        "finished_at": None,
        "error": None,
        "batch_id": None,
        "urls": {
            "get": f"/api/v1/jobs/{job_id}",
            "result": f"/api/v1/jobs/{job_id}/result",
            "cancel": f"/api/v1/jobs/{job_id}/cancel",
        },
        **extra,
    }


def test_submit_sends_image_mask_callback_and_prefer() -> None:
    api = FakeApi([json_response(job_body("queued"), status=202, Location="/api/v1/jobs/job_abc")])
    with api.client() as client:
        job = client.jobs.submit(
            png_bytes(), png_bytes(), callback_url="https://example.test/hook", wait=30
        )
    request = api.requests[0]
    assert request.method == "POST" and request.url.path == "/api/v1/jobs"
    assert request.headers["prefer"] == "wait=30"
    parts = {part.name: part for part in multipart_parts(request)}
    assert set(parts) == {"image", "mask", "callback_url"}
    assert parts["callback_url"].content == b"https://example.test/hook"
    assert job.id == "job_abc" and job.status == "queued" and not job.done
    assert job.urls["result"] == "/api/v1/jobs/job_abc/result"


def test_prefer_wait_is_bounded_by_the_contract() -> None:
    with FakeApi().client() as client, pytest.raises(ValueError, match=r"0\.\.60"):
        client.jobs.submit(png_bytes(), wait=61)


def test_wait_polls_with_growing_pauses_until_final() -> None:
    api = FakeApi(
        [
            json_response(job_body("running")),
            json_response(job_body("running")),
            json_response(job_body("succeeded", finished_at="2025-11-24T16:00:03Z")),
        ]
    )
    with api.client() as client:
        pauses: list[float] = []
        client._sleep = pauses.append  # type: ignore[method-assign]
        queued = Job.from_json(job_body("queued"))
        done = client.jobs.wait(queued)
    assert done.status == "succeeded" and done.done
    assert [r.url.path for r in api.requests] == ["/api/v1/jobs/job_abc"] * 3
    assert pauses == [0.5, 1.0, 2.0]


def test_wait_gives_up_after_its_timeout() -> None:
    api = FakeApi(default=lambda request: json_response(job_body("running")))
    with api.client() as client:
        now = [0.0]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        client._sleep = sleep  # type: ignore[method-assign]
        client._clock = lambda: now[0]  # type: ignore[method-assign]
        with pytest.raises(JobTimeoutError, match="still running"):
            client.jobs.wait("job_abc", timeout=10)
    assert now[0] <= 10


def test_failed_job_carries_its_error() -> None:
    failure = {"error": "Bad Request", "detail": "Invalid image format", "status_code": 400}
    job = Job.from_json(job_body("failed", error=failure))
    assert job.done
    assert isinstance(job.error, InvalidImageError) and job.error.detail == "Invalid image format"


def test_result_cancel_and_delete(tmp_path: Path) -> None:
    api = FakeApi(
        [
            image_response(),
            error(409, "Job job_abc is still running"),
            error(410, "The result of job job_abc has expired"),
            json_response(job_body("canceled")),
            json_response(None, status=204),
        ]
    )
    with api.client() as client:
        result = client.jobs.result("job_abc", output=tmp_path / "out.png")
        assert (tmp_path / "out.png").read_bytes() == bytes(result)
        with pytest.raises(ConflictError):
            client.jobs.result("job_abc")
        with pytest.raises(GoneError):
            client.jobs.result(Job.from_json(job_body("succeeded")))
        assert client.jobs.cancel("job_abc").status == "canceled"
        client.jobs.delete("job_abc")
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/api/v1/jobs/job_abc/result"),
        ("GET", "/api/v1/jobs/job_abc/result"),
        ("GET", "/api/v1/jobs/job_abc/result"),
        ("POST", "/api/v1/jobs/job_abc/cancel"),
        ("DELETE", "/api/v1/jobs/job_abc"),
    ]


def test_job_ids_cannot_escape_the_route() -> None:
    with FakeApi().client() as client, pytest.raises(ValueError):
        client.jobs.get("../stats")


def test_server_batch_submit_get_and_zip(tmp_path: Path) -> None:
    batch = {
        "id": "batch_1",
        "status": "queued",
        "created_at": "2025-11-24T16:00:00Z",
        "jobs": [job_body("queued", "job_1"), job_body("queued", "job_2")],
        "urls": {"get": "/api/v1/batch/batch_1", "result": "/api/v1/batch/batch_1/result"},
    }
    finished = {
        **batch,
        "status": "succeeded",
        "jobs": [job_body("succeeded", "job_1"), job_body("failed", "job_2")],
        "summary": {"total": 2, "succeeded": 1, "failed": 1},
    }
    api = FakeApi(
        [
            json_response(batch, status=202),
            json_response(finished),
            json_response(None, status=200, Content_Type="application/zip"),
        ]
    )
    with api.client() as client:
        submitted = client.batches.submit(
            [png_bytes(), png_bytes()], masks=[png_bytes(), png_bytes()]
        )
        assert [job.id for job in submitted.jobs] == ["job_1", "job_2"] and not submitted.done
        client._sleep = lambda seconds: None  # type: ignore[method-assign]
        done = client.batches.wait(submitted)
        assert done.done and done.summary["failed"] == 1
        client.batches.result(done, output=tmp_path / "batch.zip")
    parts = multipart_parts(api.requests[0])
    assert [p.name for p in parts] == ["image", "image", "mask", "mask"]
    assert "idempotency-key" in api.requests[0].headers
    assert (tmp_path / "batch.zip").exists()
