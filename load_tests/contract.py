"""Whether a response keeps the API's contract: expected status, error envelope, result image.

A broken contract raises `Verdict`; the locustfile turns it into a locust failure, so that
locust's failure count means "the service broke its contract".
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from http import HTTPStatus
from typing import Any

from load_tests.traffic import NO_KEY_PLAN, UNLIMITED_PLANS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Verdict(Exception):
    """Why a response breaks the contract (becomes the locust failure message)."""


def envelope_problem(response: Any) -> str | None:
    """None if the body is the documented error envelope for this status, else why not."""
    try:
        body = response.json()
    except ValueError:
        return f"non-JSON error body: {response.text[:120]!r}"
    if not isinstance(body, dict) or not {"error", "detail", "status_code"} <= set(body):
        return f"not the error envelope: {json.dumps(body)[:160]}"
    if body["status_code"] != response.status_code:
        return f"envelope status_code {body['status_code']} != HTTP {response.status_code}"
    phrase = HTTPStatus(response.status_code).phrase
    if body["error"] != phrase:
        return f"envelope error {body['error']!r} != {phrase!r}"
    if not isinstance(body["detail"], str) or not body["detail"]:
        return f"envelope detail is not a message: {body['detail']!r}"
    return None


def detail_of(response: Any) -> str:
    try:
        return str(response.json().get("detail", ""))[:160]
    except (ValueError, AttributeError):
        return response.text[:160]


def judge(response: Any, expected: set[int], *, hint: str = "") -> None:
    """Raise `Verdict` unless the status is expected and the body fits it."""
    status = response.status_code
    if not status:
        raise Verdict(f"no response: {response.error!r}"[:200])
    if status not in expected:
        want = "/".join(str(s) for s in sorted(expected))
        raise Verdict(f"HTTP {status} (expected {want}): {detail_of(response)}")
    if "X-Request-Id" not in response.headers:
        raise Verdict(f"HTTP {status} without X-Request-Id")
    if status >= 400:
        problem = envelope_problem(response)
        if problem:
            raise Verdict(f"HTTP {status} {problem}")
        if hint and status not in (401, 429) and hint not in detail_of(response).lower():
            raise Verdict(f"HTTP {status} detail lacks {hint!r}: {detail_of(response)}")
    if status == 429:
        retry_after = response.headers.get("Retry-After", "")
        if not retry_after.isdigit():
            raise Verdict(f"HTTP 429 without a whole-second Retry-After ({retry_after!r})")


def judge_image(response: Any, size: tuple[int, int]) -> None:
    """Raise `Verdict` unless a 200 carries a PNG of the uploaded `size`."""
    if response.status_code != 200:
        return
    if response.headers.get("Content-Type") != "image/png" or not response.content.startswith(
        PNG_MAGIC
    ):
        raise Verdict(f"200 but not a PNG ({response.headers.get('Content-Type')})")
    expected = f"{size[0]}x{size[1]}"
    if response.headers.get("X-Image-Size") != expected:
        raise Verdict(f"X-Image-Size {response.headers.get('X-Image-Size')} != {expected}")
    # The PNG's own header (IHDR), not only the service's word: a result that belongs to
    # another request would still carry this request's X-Image-Size.
    width, height = struct.unpack(">II", response.content[16:24])
    if (width, height) != size:
        raise Verdict(f"result PNG is {width}x{height}, upload was {expected}")


JOB_FIELDS = {"id", "status", "created_at", "finished_at", "attempts", "error", "urls"}
JOB_STATUSES = {"queued", "running", "succeeded", "failed", "canceled", "expired"}


def judge_job(response: Any, *, submitted: bool = False) -> dict[str, Any]:
    """The job body of a 200/202, checked; with `submitted`, a new job and its `Location`."""
    body = response.json()
    if not isinstance(body, dict) or not set(body) >= JOB_FIELDS:
        raise Verdict(f"not a job body: {json.dumps(body)[:160]}")
    if body["status"] not in JOB_STATUSES:
        raise Verdict(f"job status {body['status']!r} is not a documented one")
    location = response.headers.get("Location")
    if submitted and response.status_code == 202 and location != body["urls"]["get"]:
        raise Verdict(f"Location {location!r} is not the job's URL")
    return body  # type: ignore[no-any-return]


def judge_batch(response: Any, images: int) -> dict[str, Any]:
    """A batch body with one job per image and a summary that adds up."""
    body = response.json()
    if not isinstance(body, dict) or not {"id", "status", "summary", "jobs"} <= set(body):
        raise Verdict(f"not a batch body: {json.dumps(body)[:160]}")
    if len(body["jobs"]) != images or body["summary"].get("total") != images:
        raise Verdict(f"batch of {images} images lists {len(body['jobs'])} jobs")
    counted = sum(value for name, value in body["summary"].items() if name != "total")
    if counted != images:
        raise Verdict(f"batch summary counts {counted} jobs, not {images}")
    return body  # type: ignore[no-any-return]


def judge_zip(response: Any, expected_pngs: int) -> None:
    """A batch result: a ZIP of `expected_pngs` PNGs and its manifest."""
    if response.status_code != 200:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            names = archive.namelist()
            pngs = [name for name in names if name.endswith(".png")]
            if any(not archive.read(name).startswith(PNG_MAGIC) for name in pngs):
                raise Verdict("a batch result entry is not a PNG")
    except zipfile.BadZipFile as exc:
        raise Verdict(f"batch result is not a ZIP: {exc}") from None
    if "manifest.json" not in names or len(pngs) != expected_pngs:
        raise Verdict(f"batch ZIP holds {sorted(names)}, expected {expected_pngs} PNGs + manifest")


def allowed_statuses(plan: str, wanted: int) -> set[int]:
    """`wanted`, plus 429 for keys whose plan is rate limited."""
    return {wanted} if plan in UNLIMITED_PLANS or plan == NO_KEY_PLAN else {wanted, 429}
