"""What a client sees of a job or a batch: the JSON bodies of the job routes and webhooks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from jobs.records import JOB_STATUSES, Batch, Job

BatchStatus = Literal["queued", "running", "completed"]
JOBS_PATH = "/api/v1/jobs"
BATCH_PATH = "/api/v1/batch"


def iso(moment: float | None) -> str | None:
    """ISO 8601 in UTC, milliseconds: ``2026-12-01T22:09:05.123Z``."""
    if moment is None:
        return None
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def job_urls(job_id: str, base: str = "") -> dict[str, str]:
    path = f"{base}{JOBS_PATH}/{job_id}"
    return {"get": path, "result": f"{path}/result", "cancel": f"{path}/cancel"}


def batch_urls(batch_id: str, base: str = "") -> dict[str, str]:
    path = f"{base}{BATCH_PATH}/{batch_id}"
    return {"get": path, "result": f"{path}/result"}


def job_json(job: Job, now: float, base: str = "") -> dict[str, Any]:
    """A job as `GET /api/v1/jobs/{id}` shows it; links start with `base` (empty: paths)."""
    return {
        "id": job.id,
        "status": job.status_at(now),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "expires_at": iso(job.result_expires_at),
        "processing_time": (
            None if job.processing_seconds is None else round(job.processing_seconds, 3)
        ),
        "attempts": job.attempts,
        "error": job.error,
        "batch_id": job.batch_id,
        "filename": job.filename,
        "urls": job_urls(job.id, base),
    }


def batch_status(jobs: Sequence[Job]) -> BatchStatus:
    if all(job.ended for job in jobs):
        return "completed"
    if all(job.status == "queued" for job in jobs):
        return "queued"
    return "running"


def batch_summary(jobs: Sequence[Job], now: float) -> dict[str, int]:
    counted = Counter(job.status_at(now) for job in jobs)
    return {"total": len(jobs), **{status: counted.get(status, 0) for status in JOB_STATUSES}}


def batch_json(batch: Batch, jobs: Sequence[Job], now: float, base: str = "") -> dict[str, Any]:
    """A batch as `GET /api/v1/batch/{id}` shows it: its jobs, in upload order, and a summary."""
    return {
        "id": batch.id,
        "status": batch_status(jobs),
        "created_at": iso(batch.created_at),
        "finished_at": iso(batch.finished_at),
        "summary": batch_summary(jobs, now),
        "jobs": [job_json(job, now, base) for job in jobs],
        "urls": batch_urls(batch.id, base),
    }
