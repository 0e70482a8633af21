"""Jobs on the real service with the embedded store: submit, webhook, result.

The shared `bentoml serve` of the session (tests/conftest.py) runs them: every HTTP worker
process runs jobs through the model runner, as in production. Its callback policy allows
loopback, where the test's receiver listens.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.jobs.e2e import BATCH, JOBS, SMALL, counted, finished
from tests.jobs.webhook_receiver import WebhookReceiver
from tests.server import UNLIMITED, RunningService, create_key, create_webhook_secret

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def jobs_key(e2e_env: dict[str, str]) -> tuple[str, str]:
    key = create_key(e2e_env, plan="enterprise", name="jobs-e2e", limits=UNLIMITED)
    return key, create_webhook_secret(e2e_env, key)


@pytest.fixture
def jobs_client(service: RunningService, jobs_key: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=service.base_url, headers={"X-API-Key": jobs_key[0]}, timeout=120
    ) as http:
        yield http


def test_a_job_ends_with_a_verified_webhook_and_its_result(
    jobs_client: httpx.Client, jobs_key: tuple[str, str]
) -> None:
    with WebhookReceiver() as receiver:
        accepted = jobs_client.post(JOBS, files=SMALL, data={"callback_url": receiver.url})
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        (delivery,) = receiver.wait_for(1, timeout_s=60)
    event = delivery.verified(jobs_key[1])  # standardwebhooks accepts our signature
    assert event["type"] == "job.succeeded"  # type: ignore[index]
    assert event["data"]["id"] == job_id  # type: ignore[index]
    assert delivery.headers["webhook-id"] == f"msg_{job_id}"
    result = jobs_client.get(event["data"]["urls"]["result"])  # type: ignore[index]
    assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
    assert result.headers["x-image-size"] == "64x48"
    assert finished(jobs_client, job_id)["attempts"] == 1
    counted(jobs_client, 1)


def test_a_batch_through_the_real_service(jobs_client: httpx.Client) -> None:
    files = [("image", ("a.png", *SMALL["image"][1:])), ("image", ("b.png", *SMALL["image"][1:]))]
    files += [("mask", ("m1.png", *SMALL["mask"][1:])), ("mask", ("m2.png", *SMALL["mask"][1:]))]
    accepted = jobs_client.post(BATCH, files=files, headers={"Idempotency-Key": "e2e-batch-1"})
    assert accepted.status_code == 202, accepted.text
    batch = accepted.json()
    for job in batch["jobs"]:
        assert finished(jobs_client, job["id"])["status"] == "succeeded"
    replay = jobs_client.post(BATCH, files=files, headers={"Idempotency-Key": "e2e-batch-1"})
    assert replay.json()["id"] == batch["id"]
    archive = jobs_client.get(f"{BATCH}/{batch['id']}/result")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert sorted(opened.namelist()) == ["001-a.png", "002-b.png", "manifest.json"]
