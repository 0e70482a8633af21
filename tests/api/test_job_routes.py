"""The job and batch routes in process: the real app, middleware, worker and OpenCV
(tests/api/inprocess.py), webhooks to a local receiver verified with `standardwebhooks`.

Three services: one that runs jobs (callbacks to loopback allowed, short webhook retries),
one whose worker runs none (jobs stay queued: caps, cancel, 409s; default callback policy:
the hostile URL table), both on embedded stores in temporary folders.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.plans import PLANS, Plan
from settings import Settings
from tests.api.contract_schemas import contract_validator
from tests.api.inprocess import UNLIMITED_PLAN, InProcessService, running_in_process
from tests.api.requests import ROUTE, assert_error
from tests.images import box_mask, encode, photo
from tests.jobs.webhook_receiver import WebhookReceiver

JOBS = "/api/v1/jobs"
BATCH = "/api/v1/batch"
IMAGE = encode(photo(64, 48), "PNG")
MASK = encode(box_mask(64, 48, (8, 8, 24, 24)), "PNG")
OTHER_IMAGE = encode(photo(64, 48, seed=3), "JPEG")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    data = tmp_path_factory.mktemp("jobs-running")
    settings = Settings(
        data_dir=data,
        model="opencv",
        callback_allowed_networks="127.0.0.0/8",
        webhook_retry_schedule="0.1s,0.1s",
        job_lease_s=5,
    )
    with running_in_process(data, settings) as service:
        yield service


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    data = tmp_path_factory.mktemp("jobs-paused")
    settings = Settings(
        data_dir=data, model="opencv", job_concurrency=0, job_queue_per_account=3, batch_max_mb=1
    )
    with running_in_process(data, settings) as service:
        yield service


class Caller:
    """A key of its own on one service, with its webhook secret."""

    def __init__(self, service: InProcessService, plan: Plan = UNLIMITED_PLAN) -> None:
        created = service.portal.call(lambda: service.admin.create(name="jobs", plan=plan))
        self.prefix = created.prefix
        self.secret = service.portal.call(
            lambda: service.admin.create_webhook_secret(created.prefix)
        ).value
        self.http = service.anonymous
        self.headers = {"X-API-Key": created.key}

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.http.get(path, headers=self.headers, **options)

    def post(
        self, path: str, *, headers: dict[str, str] | None = None, **options: Any
    ) -> httpx.Response:
        return self.http.post(path, headers={**self.headers, **(headers or {})}, **options)

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path, headers=self.headers)

    def submit(
        self,
        image: bytes = IMAGE,
        mask: bytes | None = MASK,
        *,
        callback_url: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("image", ("photo.png", image, "image/png"))
        ]
        if mask is not None:
            files.append(("mask", ("mask.png", mask, "image/png")))
        data = {} if callback_url is None else {"callback_url": callback_url}
        return self.post(JOBS, files=files, data=data, headers=headers)

    def finished(self, job_id: str, timeout_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.get(f"{JOBS}/{job_id}").json()
            if body["status"] not in ("queued", "running"):
                return body  # type: ignore[no-any-return]
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not finish within {timeout_s} s")

    def stats(self) -> dict[str, Any]:
        return self.get("/api/v1/stats").json()  # type: ignore[no-any-return]

    def counted(self, total: int, timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats["total"] >= total:
                return stats
            time.sleep(0.02)
        raise AssertionError(f"stats total {self.stats()['total']}, expected {total}")


def batch_files(
    images: list[tuple[str, bytes]],
    masks: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (name, data, "image/png")) for name, data in images] + [
        ("mask", (name, data, "image/png")) for name, data in masks
    ]


# --- one job -----------------------------------------------------------------------------------


def test_a_job_gives_what_the_synchronous_route_gives(running: InProcessService) -> None:
    caller = Caller(running)
    accepted = caller.submit()
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    job_id = body["id"]
    assert job_id.startswith("job_") and body["status"] == "queued"
    assert accepted.headers["location"] == f"{JOBS}/{job_id}"
    assert body["urls"] == {
        "get": f"{JOBS}/{job_id}",
        "result": f"{JOBS}/{job_id}/result",
        "cancel": f"{JOBS}/{job_id}/cancel",
    }
    assert body["created_at"].endswith("Z") and body["error"] is None
    done = caller.finished(job_id)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert done["started_at"] and done["finished_at"] and done["expires_at"]
    result = caller.get(f"{JOBS}/{job_id}/result")
    synchronous = caller.post(ROUTE, files={"image": ("p.png", IMAGE), "mask": ("m.png", MASK)})
    assert result.status_code == synchronous.status_code == 200
    assert result.headers["content-type"] == "image/png"
    assert result.content == synchronous.content  # the same work, the same pixels
    for header in ("X-Image-Size", "X-Model", "X-Mask-Source"):
        assert result.headers[header] == synchronous.headers[header]
    assert float(result.headers["X-Processing-Time"]) >= 0


def test_a_job_is_counted_once_when_it_ends_not_when_submitted(paused: InProcessService) -> None:
    caller = Caller(paused)
    job_id = caller.submit().json()["id"]
    time.sleep(0.2)
    assert caller.stats()["total"] == 0  # queued: not counted yet
    assert caller.stats()["quota"]["used"] == 1  # but its quota unit is spent
    assert caller.post(f"{JOBS}/{job_id}/cancel").status_code == 200
    stats = caller.counted(1)
    assert (stats["total"], stats["failed"]) == (1, 1)
    time.sleep(0.3)
    assert caller.stats()["total"] == 1


def test_prefer_wait_returns_the_finished_job(running: InProcessService) -> None:
    caller = Caller(running)
    waited = caller.submit(headers={"Prefer": "respond-async, wait=20"})
    assert waited.status_code == 200, waited.text
    assert waited.json()["status"] == "succeeded"
    assert waited.headers["preference-applied"] == "wait=20"
    capped = caller.submit(headers={"Prefer": "wait=600"})
    assert capped.headers["preference-applied"] == "wait=60"


def test_a_failed_job_answers_with_the_synchronous_routes_error(running: InProcessService) -> None:
    caller = Caller(running)
    job_id = caller.submit(image=b"not an image").json()["id"]
    done = caller.finished(job_id)
    expected = {
        "error": "Bad Request",
        "detail": "Invalid image format: cannot identify image file",
        "status_code": 400,
    }
    assert (done["status"], done["error"]) == ("failed", expected)
    assert_error(caller.get(f"{JOBS}/{job_id}/result"), 400, expected["detail"])
    synchronous = caller.post(ROUTE, files={"image": ("p", b"not an image"), "mask": ("m", MASK)})
    assert synchronous.json() == expected
    stats = caller.counted(2)
    assert (stats["success"], stats["failed"]) == (0, 2)


def test_a_job_that_is_not_finished_has_no_result_yet(paused: InProcessService) -> None:
    caller = Caller(paused)
    job_id = caller.submit().json()["id"]
    waiting = caller.get(f"{JOBS}/{job_id}/result")
    assert_error(waiting, 409, f"Job {job_id} is queued: its result is not ready yet")
    assert waiting.headers["retry-after"] == "1"
    canceled = caller.post(f"{JOBS}/{job_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert caller.post(f"{JOBS}/{job_id}/cancel").json()["status"] == "canceled"
    assert_error(
        caller.get(f"{JOBS}/{job_id}/result"), 409, f"Job {job_id} was canceled: it has no result"
    )


def test_a_finished_job_cannot_be_canceled_and_delete_drops_its_result(
    running: InProcessService,
) -> None:
    caller = Caller(running)
    job_id = caller.submit(headers={"Prefer": "wait=20"}).json()["id"]
    assert_error(caller.post(f"{JOBS}/{job_id}/cancel"), 409, f"Job {job_id} has succeeded already")
    deleted = caller.delete(f"{JOBS}/{job_id}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert caller.get(f"{JOBS}/{job_id}").json()["status"] == "expired"
    gone = assert_error(caller.get(f"{JOBS}/{job_id}/result"), 410)
    assert "kept for 3600 s" in gone


def test_another_keys_jobs_and_batches_do_not_exist_for_it(running: InProcessService) -> None:
    owner, stranger = Caller(running), Caller(running)
    job_id = owner.submit().json()["id"]
    batch_id = owner.post(BATCH, files=batch_files([("a.png", IMAGE)])).json()["id"]
    for request in (
        lambda: stranger.get(f"{JOBS}/{job_id}"),
        lambda: stranger.get(f"{JOBS}/{job_id}/result"),
        lambda: stranger.post(f"{JOBS}/{job_id}/cancel"),
        lambda: stranger.delete(f"{JOBS}/{job_id}"),
    ):
        assert_error(request(), 404, f"No job {job_id}")
    assert_error(stranger.get(f"{BATCH}/{batch_id}"), 404, f"No batch {batch_id}")
    assert_error(stranger.get(f"{BATCH}/{batch_id}/result"), 404, f"No batch {batch_id}")
    assert_error(owner.get(f"{JOBS}/job_{'0' * 32}"), 404)
    assert_error(owner.get(f"{JOBS}/not-an-id"), 404, "No job not-an-id")
    assert owner.get(f"{JOBS}/{job_id}").status_code == 200  # still there for its owner
    assert_error(running.anonymous.get(f"{JOBS}/{job_id}"), 401)


def test_submission_errors_are_clear_and_cost_nothing(paused: InProcessService) -> None:
    caller = Caller(paused, PLANS["free"])
    assert_error(
        caller.post(JOBS, files={"mask": ("m.png", MASK)}),
        400,
        "Missing required form field 'image'",
    )
    assert_error(
        caller.post(JOBS, files={"file": ("a.png", IMAGE)}),
        400,
        "Unexpected form field 'file': send 'image' and optionally 'mask', 'callback_url', "
        "'watermark'",
    )
    assert_error(caller.post(JOBS, json={"image": "x"}), 415)
    assert_error(
        caller.post(JOBS, files=[("image", ("a", IMAGE)), ("image", ("b", IMAGE))]),
        400,
        "Duplicate form field 'image': send it once",
    )
    assert caller.get("/api/v1/stats").headers["x-ratelimit-remaining"] == "5"


# --- idempotency ------------------------------------------------------------------------------


def test_an_idempotency_key_gives_the_same_job_once_and_is_charged_once(
    paused: InProcessService,
) -> None:
    caller = Caller(paused, PLANS["free"])
    key = {"Idempotency-Key": "order-4711"}
    first = caller.submit(headers=key)
    assert first.status_code == 202 and first.headers["x-ratelimit-remaining"] == "4"
    again = caller.submit(headers=key)  # another multipart boundary, the same form
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-ratelimit-remaining"] == "4"  # the replay spent nothing
    other = caller.submit(image=OTHER_IMAGE, headers=key)
    detail = assert_error(other, 422)
    assert "already used with a different request" in detail
    assert_error(caller.post(BATCH, files=batch_files([("photo.png", IMAGE)]), headers=key), 422)
    assert_error(caller.submit(headers={"Idempotency-Key": "x" * 256}), 400)
    assert caller.get("/api/v1/stats").json()["quota"]["used"] == 1


# --- limits ---------------------------------------------------------------------------------------


def test_the_queue_cap_per_account_is_429_and_spends_nothing(paused: InProcessService) -> None:
    caller = Caller(paused, PLANS["basic"])
    for _ in range(3):
        assert caller.submit().status_code == 202
    refused = caller.submit()
    detail = assert_error(refused, 429)
    assert "may have 3 queued or running" in detail
    assert refused.headers["retry-after"] == "10"
    assert refused.headers["x-ratelimit-remaining"] == "17"  # 20 - 3: the refusal spent nothing


def test_a_batch_body_over_its_limit_is_413(paused: InProcessService) -> None:
    caller = Caller(paused)
    big = [(f"{n}.png", encode(photo(300, 300, seed=n), "PNG")) for n in range(6)]
    detail = assert_error(caller.post(BATCH, files=batch_files(big)), 413)
    assert detail == "Request body too large. Max size: 1MB (each image or mask up to 10MB)"


# --- batches -------------------------------------------------------------------------------------


def test_a_batch_runs_every_image_and_zips_the_results(running: InProcessService) -> None:
    caller = Caller(running, PLANS["basic"])
    images = [("beach.png", IMAGE), ("broken.png", b"not an image"), ("city.png", OTHER_IMAGE)]
    masks = [("city.png", MASK), ("beach.png", MASK)]  # matched by filename
    accepted = caller.post(BATCH, files=batch_files(images, masks))
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["x-ratelimit-remaining"] == "17"  # three images, three tokens
    body = accepted.json()
    batch_id = body["id"]
    assert accepted.headers["location"] == f"{BATCH}/{batch_id}"
    assert [job["filename"] for job in body["jobs"]] == ["beach.png", "broken.png", "city.png"]
    assert {job["batch_id"] for job in body["jobs"]} == {batch_id}
    for job in body["jobs"]:
        caller.finished(job["id"])
    done = caller.get(f"{BATCH}/{batch_id}").json()
    assert done["status"] == "completed" and done["finished_at"]
    assert done["summary"] == {
        "total": 3,
        "queued": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "canceled": 0,
        "expired": 0,
    }
    archive = caller.get(f"{BATCH}/{batch_id}/result")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        assert sorted(opened.namelist()) == ["001-beach.png", "003-city.png", "manifest.json"]
        manifest = json.loads(opened.read("manifest.json"))
        single = caller.get(f"{JOBS}/{body['jobs'][0]['id']}/result").content
        assert opened.read("001-beach.png") == single
    assert [entry["status"] for entry in manifest] == ["succeeded", "failed", "succeeded"]
    assert manifest[1]["error"]["status_code"] == 400
    assert caller.counted(3)["total"] == 3


def test_masks_match_by_position_when_their_names_do_not(running: InProcessService) -> None:
    caller = Caller(running)
    images = [("a.png", IMAGE), ("b.png", IMAGE)]
    by_position = caller.post(
        BATCH, files=batch_files(images, [("m1.png", MASK), ("m2.png", b"?")])
    )
    jobs = by_position.json()["jobs"]
    outcomes = [caller.finished(job["id"]) for job in jobs]
    assert outcomes[0]["status"] == "succeeded"
    assert outcomes[1]["error"]["detail"].startswith(
        "Invalid mask format"
    )  # the 2nd mask, 2nd image
    refused = caller.post(BATCH, files=batch_files(images, [("m1.png", MASK)]))
    assert_error(
        refused,
        400,
        "1 masks for 2 images: send one mask per image (matched by position), or give each "
        "mask the filename of its image",
    )


def test_a_batch_over_the_plans_cap_is_400_and_one_over_the_tokens_429_spending_nothing(
    running: InProcessService,
) -> None:
    caller = Caller(running, PLANS["free"])  # burst 5, at most 5 per batch
    six = [(f"{n}.png", IMAGE) for n in range(6)]
    assert_error(
        caller.post(BATCH, files=batch_files(six)),
        400,
        "Too many images: the free plan takes at most 5 per batch",
    )
    assert caller.post(BATCH, files=batch_files(six[:3])).status_code == 202
    refused = caller.post(BATCH, files=batch_files(six[:3]))  # 2 tokens left, 3 needed
    assert_error(refused, 429)
    assert refused.headers["x-ratelimit-remaining"] == "2"
    assert int(refused.headers["retry-after"]) >= 1
    stats = caller.stats()
    assert (stats["quota"]["used"], stats["rate_limited"]) == (3, 1)


def test_a_batch_has_no_result_until_every_job_ended(paused: InProcessService) -> None:
    caller = Caller(paused)
    batch_id = caller.post(BATCH, files=batch_files([("a.png", IMAGE)] * 2)).json()["id"]
    assert_error(
        caller.get(f"{BATCH}/{batch_id}/result"),
        409,
        f"Batch {batch_id} has 2 of 2 jobs unfinished: its result is not ready yet",
    )
    assert caller.get(f"{BATCH}/{batch_id}").json()["status"] == "queued"


# --- webhooks ------------------------------------------------------------------------------------


def test_a_jobs_webhook_is_signed_thin_and_verifiable(running: InProcessService) -> None:
    caller = Caller(running)
    with WebhookReceiver() as receiver:
        job_id = caller.submit(callback_url=receiver.url).json()["id"]
        (delivery,) = receiver.wait_for(1)
    event = delivery.verified(caller.secret)
    assert event["type"] == "job.succeeded"  # type: ignore[index]
    data = event["data"]  # type: ignore[index]
    assert (data["id"], data["status"]) == (job_id, "succeeded")
    assert data["urls"]["result"] == f"http://in-process{JOBS}/{job_id}/result"
    assert delivery.headers["webhook-id"] == f"msg_{job_id}"
    assert delivery.headers["webhook-signature"].startswith("v1,")
    assert len(delivery.body) < 2000


def test_a_batch_sends_one_batch_completed_event(running: InProcessService) -> None:
    caller = Caller(running)
    with WebhookReceiver() as receiver:
        files = batch_files(
            [("a.png", IMAGE), ("b.png", IMAGE)], [("a.png", MASK), ("b.png", MASK)]
        )
        batch_id = caller.post(BATCH, files=files, data={"callback_url": receiver.url}).json()["id"]
        (delivery,) = receiver.wait_for(1)
        time.sleep(0.3)
        assert len(receiver.deliveries) == 1
    event = delivery.verified(caller.secret)
    assert event["type"] == "batch.completed"  # type: ignore[index]
    assert event["data"]["id"] == batch_id  # type: ignore[index]
    assert event["data"]["summary"]["succeeded"] == 2  # type: ignore[index]


def test_a_callback_url_needs_a_webhook_secret(running: InProcessService) -> None:
    created = running.portal.call(
        lambda: running.admin.create(name="no-secret", plan=UNLIMITED_PLAN)
    )
    response = running.anonymous.post(
        JOBS,
        headers={"X-API-Key": created.key},
        files={"image": ("a.png", IMAGE)},
        data={"callback_url": "http://127.0.0.1:9/hooks"},
    )
    assert_error(
        response,
        400,
        "A callback_url needs a webhook secret to sign its deliveries; create one: "
        f"iopaint-api keys webhook-secret create {created.prefix}",
    )


# Every hostile callback URL, and its documented answer (docs/jobs.md, "Callback URLs").
HOSTILE_CALLBACKS = [
    ("http://127.0.0.1/hooks", "not a loopback address (127.0.0.0/8)"),
    ("http://[::1]/hooks", "not a loopback address (::1/128)"),
    ("http://169.254.169.254/latest/meta-data", "not a link-local address (169.254.0.0/16)"),
    ("http://10.0.0.1/", "not a private address (10.0.0.0/8)"),
    ("http://192.168.1.1:8080/", "not a private address (192.168.0.0/16)"),
    ("http://[::ffff:10.0.0.1]/", "private address (10.0.0.0/8), 10.0.0.1 inside an IPv6 address"),
    ("http://[64:ff9b::a00:1]/", "private address (10.0.0.0/8), 10.0.0.1 inside an IPv6 address"),
    ("http://[2002:a00:1::]/", "private address (10.0.0.0/8), 10.0.0.1 inside an IPv6 address"),
    ("http://0.0.0.0/", "not a 'this network' address (0.0.0.0/8)"),
    ("http://100.64.0.1/", "not a shared (CGNAT) address (100.64.0.0/10)"),
    ("http://224.0.0.1/", "not a multicast address (224.0.0.0/4)"),
    ("http://[fe80::1]/", "not a link-local address (fe80::/10)"),
    ("http://[fd00::1]/", "not a unique-local address (fc00::/7)"),
    ("http://localhost:8080/hooks", "localhost resolves to"),
    ("http://2130706433/", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("file:///etc/passwd", "callback_url must be an http:// or https:// URL"),
    ("ftp://example.com/hooks", "callback_url must be an http:// or https:// URL"),
    ("gopher://example.com/", "callback_url must be an http:// or https:// URL"),
    ("http://user:secret@example.com/", "callback_url must not carry a user name or password"),
    ("http:///hooks", "callback_url has no host"),
    ("http://exa mple.com/", "callback_url contains spaces or control characters"),
    ("https://" + "a" * 2050 + ".com/", "callback_url is longer than 2048 characters"),
]


@pytest.fixture(scope="module")
def guarded_caller(paused: InProcessService) -> Caller:
    return Caller(paused)


@pytest.mark.parametrize(
    ("url", "detail"), HOSTILE_CALLBACKS, ids=[url[:40] for url, _ in HOSTILE_CALLBACKS]
)
def test_a_hostile_callback_url_is_refused_at_submission(
    guarded_caller: Caller, url: str, detail: str
) -> None:
    answer = assert_error(guarded_caller.submit(callback_url=url), 400)
    assert detail in answer
    if "localhost" in url:
        assert "loopback" in answer


def test_a_redirecting_callback_is_accepted_and_its_redirect_never_followed(
    running: InProcessService,
) -> None:
    caller = Caller(running)
    with WebhookReceiver() as internal, WebhookReceiver([302, 200]) as redirecting:
        redirecting.redirect_to = internal.url
        job_id = caller.submit(callback_url=redirecting.url).json()["id"]
        first, second = redirecting.wait_for(2)
    assert (first.answered, second.answered) == (302, 200)  # the 302 was a failed attempt
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{job_id}"
    assert internal.deliveries == []


def test_job_stores_hold_images_only_in_their_database(tmp_path: Path) -> None:
    """Embedded path: the input lives in jobs.sqlite3 until the job ends, then is gone."""
    settings = Settings(data_dir=tmp_path, model="opencv")
    with running_in_process(tmp_path, settings) as service:
        caller = Caller(service)
        marker = encode(photo(64, 48, seed=77), "PNG")
        job_id = caller.submit(image=marker, headers={"Prefer": "wait=20"}).json()["id"]
        assert caller.get(f"{JOBS}/{job_id}").json()["status"] == "succeeded"
    files = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    assert [
        name for name in files if not name.startswith(("accounts.sqlite3", "jobs.sqlite3"))
    ] == []
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("jobs.sqlite3*"))
    assert marker[-200:] not in raw  # the input was deleted (and overwritten) when the job ended


# --- the contract ---------------------------------------------------------------------------------


def test_job_and_batch_bodies_match_the_contract(running: InProcessService) -> None:
    caller = Caller(running)
    job = caller.submit()
    contract_validator("Job").validate(job.json())
    contract_validator("Job").validate(caller.finished(job.json()["id"]))
    failed = caller.finished(caller.submit(image=b"broken").json()["id"])
    contract_validator("Job").validate(failed)
    batch = caller.post(BATCH, files=batch_files([("a.png", IMAGE)], [("a.png", MASK)])).json()
    contract_validator("Batch").validate(batch)
    caller.finished(batch["jobs"][0]["id"])
    contract_validator("Batch").validate(caller.get(f"{BATCH}/{batch['id']}").json())
    with WebhookReceiver() as receiver:
        caller.submit(callback_url=receiver.url)
        (delivery,) = receiver.wait_for(1)
    contract_validator("WebhookEvent").validate(delivery.verified(caller.secret))
