"""The API's routes as request descriptions, shared by the sync and async clients.

Each function returns a `Call`: what to send and how many rate-limit tokens it spends
(the pacer holds spending calls until the key's bucket has the tokens). Parsing the
answers lives in `results.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from iopaint_sdk.inputs import Upload

API = "/api/v1"
MAX_PREFER_WAIT_S = 60

# Polling a job or batch: the first pause, doubling up to the longest; and how long
# `wait` gives a job by default.
JOB_POLL_INITIAL_S = 0.5
JOB_POLL_MAX_S = 5.0
DEFAULT_JOB_WAIT_S = 600.0


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cost: int | None = None
    """Rate-limit tokens it spends; 0 = spends none but its headers teach the pacer;
    None = not paced at all."""
    retry: bool = True
    accept_statuses: frozenset[int] = frozenset()
    """Error statuses handed back as responses instead of raised (health's 503)."""


def remove_watermark(image: Upload, mask: Upload | None, *, watermark: str | None = None) -> Call:
    files = [("image", image.as_file())]
    if mask is not None:
        files.append(("mask", mask.as_file()))
    return Call("POST", f"{API}/remove-watermark", files=files, data=_watermark(watermark), cost=1)


def detect(image: Upload, *, as_mask: bool) -> Call:
    accept = "image/png" if as_mask else "application/json"
    return Call(
        "POST",
        f"{API}/detect",
        files=[("image", image.as_file())],
        headers={"Accept": accept},
        cost=1,
    )


def health() -> Call:
    return Call("GET", f"{API}/health", retry=False, accept_statuses=frozenset({503}))


def stats(*, observe: bool = False) -> Call:
    return Call("GET", f"{API}/stats", cost=0 if observe else None)


def submit_job(
    image: Upload,
    mask: Upload | None,
    *,
    callback_url: str | None,
    wait: float | None,
    idempotency_key: str | None,
    watermark: str | None = None,
) -> Call:
    files = [("image", image.as_file())]
    if mask is not None:
        files.append(("mask", mask.as_file()))
    return Call(
        "POST",
        f"{API}/jobs",
        files=files,
        data=_form_texts(callback_url, watermark),
        headers=_submit_headers(wait, idempotency_key),
        cost=1,
    )


def job(job_id: str) -> Call:
    return Call("GET", f"{API}/jobs/{_segment(job_id)}")


def job_result(job_id: str) -> Call:
    return Call("GET", f"{API}/jobs/{_segment(job_id)}/result")


def cancel_job(job_id: str) -> Call:
    # Cancelling twice is harmless, so a retried cancel is safe.
    return Call("POST", f"{API}/jobs/{_segment(job_id)}/cancel")


def delete_job(job_id: str) -> Call:
    return Call("DELETE", f"{API}/jobs/{_segment(job_id)}")


def submit_batch(
    images: list[Upload],
    masks: list[Upload] | None,
    *,
    callback_url: str | None,
    idempotency_key: str | None,
    watermark: str | None = None,
) -> Call:
    files = [("image", upload.as_file()) for upload in images]
    files += [("mask", upload.as_file()) for upload in masks or []]
    return Call(
        "POST",
        f"{API}/batch",
        files=files,
        data=_form_texts(callback_url, watermark),
        headers=_submit_headers(None, idempotency_key),
        cost=len(images),
    )


def batch(batch_id: str) -> Call:
    return Call("GET", f"{API}/batch/{_segment(batch_id)}")


def batch_result(batch_id: str) -> Call:
    return Call("GET", f"{API}/batch/{_segment(batch_id)}/result")


def create_watermark(mark: Upload | None, images: list[Upload] | None, *, name: str | None) -> Call:
    """A profile from the mark's RGBA PNG, or estimated from images carrying it (one
    request per image)."""
    if (mark is None) == (not images):
        raise ValueError("give either the watermark's PNG or images that carry it, not both")
    if mark is not None:
        files = [("watermark", mark.as_file())]
    else:
        files = [("image", upload.as_file()) for upload in images or []]
    # Not retried: a create whose answer was lost would otherwise keep two profiles.
    return Call(
        "POST",
        f"{API}/watermarks",
        files=files,
        data={"name": name} if name else None,
        cost=1 if mark is not None else len(files),
        retry=False,
    )


def list_watermarks() -> Call:
    return Call("GET", f"{API}/watermarks")


def watermark(profile_id: str, *, as_png: bool = False) -> Call:
    accept = "image/png" if as_png else "application/json"
    return Call("GET", f"{API}/watermarks/{_segment(profile_id)}", headers={"Accept": accept})


def delete_watermark(profile_id: str) -> Call:
    return Call("DELETE", f"{API}/watermarks/{_segment(profile_id)}")


def new_idempotency_key() -> str:
    return f"iopaint-sdk-{uuid.uuid4()}"


def _submit_headers(wait: float | None, idempotency_key: str | None) -> dict[str, str]:
    # One key per submit call, the same on every retry of it: a POST retried after a lost
    # answer finds the job it already made instead of making a second one.
    headers = {"Idempotency-Key": idempotency_key or new_idempotency_key()}
    if wait is not None:
        if not 0 <= wait <= MAX_PREFER_WAIT_S:
            raise ValueError(f"wait must lie in 0..{MAX_PREFER_WAIT_S} seconds")
        headers["Prefer"] = f"wait={int(wait)}"
    return headers


def _watermark(profile_id: str | None) -> dict[str, str] | None:
    return {"watermark": profile_id} if profile_id else None


def _form_texts(callback_url: str | None, watermark: str | None) -> dict[str, str] | None:
    texts = {"callback_url": callback_url or "", "watermark": watermark or ""}
    return {name: value for name, value in texts.items() if value} or None


def _segment(identifier: str) -> str:
    if not identifier or "/" in identifier:
        raise ValueError(f"not a job, batch or watermark id: {identifier!r}")
    return quote(identifier, safe="")
