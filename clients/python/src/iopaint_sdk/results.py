"""What the API returns, as typed objects (each keeps the raw JSON in ``raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from iopaint_sdk.errors import ERROR_CLASSES, APIError, IOPaintError
from iopaint_sdk.inputs import OutputTarget, open_pil, write_output

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of one response (None where absent)."""

    limit: int | None
    remaining: int | None
    reset: int | None  # Unix seconds

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit:
        return cls(
            limit=_int(headers.get("x-ratelimit-limit")),
            remaining=_int(headers.get("x-ratelimit-remaining")),
            reset=_int(headers.get("x-ratelimit-reset")),
        )


class ImageResult(bytes):
    """A PNG the API returned: it *is* the bytes, with the response's metadata attached.

    ``processing_time`` (seconds), ``image_size`` ((width, height)), ``model``,
    ``request_id``, ``mask_source`` (``"uploaded"``, ``"detected"`` or ``"profile"``),
    ``detected_regions``, ``removal`` (``"deblend"``, ``"inpaint"`` or ``"mixed"``: how the
    mark went), ``rate_limit``, and ``path`` when it was written to a file.
    """

    processing_time: float | None
    image_size: tuple[int, int] | None
    model: str | None
    request_id: str | None
    mask_source: str | None
    detected_regions: int | None
    removal: str | None
    rate_limit: RateLimit
    path: Path | None

    def __new__(cls, content: bytes, headers: httpx.Headers) -> ImageResult:
        result = super().__new__(cls, content)
        result.processing_time = _float(headers.get("x-processing-time"))
        result.image_size = _size(headers.get("x-image-size"))
        result.model = headers.get("x-model")
        result.request_id = headers.get("x-request-id")
        result.mask_source = headers.get("x-mask-source")
        result.detected_regions = _int(headers.get("x-detected-regions"))
        result.removal = headers.get("x-removal")
        result.rate_limit = RateLimit.from_headers(headers)
        result.path = None
        return result

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # bytes' own pickling would call __new__ without the headers.
        return (_restore_image_result, (bytes(self), dict(self.__dict__)))

    def save(self, target: OutputTarget) -> Path | None:
        """Write the PNG to a path or binary file; returns the path (None for a file)."""
        return write_output(bytes(self), target)

    def to_pil(self) -> Image.Image:
        """The image as a PIL image (needs Pillow)."""
        return open_pil(bytes(self))

    def __repr__(self) -> str:
        size = "x".join(map(str, self.image_size)) if self.image_size else "?"
        return f"<ImageResult {len(self)} bytes {size} model={self.model!r}>"


def _restore_image_result(content: bytes, state: dict[str, Any]) -> ImageResult:
    result = ImageResult(content, httpx.Headers())
    result.__dict__.update(state)
    return result


def image_result(
    response: httpx.Response, output: OutputTarget | None, as_pil: bool
) -> ImageResult | Image.Image:
    """A PNG response as `ImageResult` (or a PIL image), written to `output` when given."""
    result = ImageResult(response.content, response.headers)
    if output is not None:
        result.path = write_output(response.content, output)
    return open_pil(response.content) if as_pil else result


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Region:
    """One detected watermark region."""

    kind: str  # "text", "pattern" or "logo"
    box: Box
    outline: list[tuple[int, int]]
    score: float
    text: str | None


@dataclass(frozen=True)
class Detection:
    """The result of ``POST /api/v1/detect``."""

    regions: list[Region]
    coverage: float  # share of the image the mask covers, 0..1
    image_size: tuple[int, int]
    processing_time: float
    mask_url: str | None
    request_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, response: httpx.Response) -> Detection:
        body = response.json()
        regions = [
            Region(
                kind=str(item.get("kind")),
                box=Box(**{k: int(item["box"][k]) for k in ("x", "y", "width", "height")}),
                outline=[(int(x), int(y)) for x, y in item.get("outline") or []],
                score=float(item.get("score") or 0.0),
                text=item.get("text"),
            )
            for item in body.get("regions") or []
        ]
        size = body.get("image_size") or {}
        return cls(
            regions=regions,
            coverage=float(body.get("coverage") or 0.0),
            image_size=(int(size.get("width", 0)), int(size.get("height", 0))),
            processing_time=float(body.get("processing_time") or 0.0),
            mask_url=body.get("mask_url"),
            request_id=response.headers.get("x-request-id"),
            raw=body,
        )


TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "canceled", "expired"})


@dataclass(frozen=True)
class WatermarkProfile:
    """One of the key's watermark profiles (``/api/v1/watermarks``): pass it (or its ``id``)
    as ``watermark=`` to have its blend inverted instead of painted over."""

    id: str
    name: str
    width: int
    height: int
    source: str  # upload or estimated
    created_at: str | None
    raw: dict[str, Any] = field(repr=False)
    seen_at: dict[str, int] | None = None
    """An estimated profile's place in the images it came from: ``x``, ``y``,
    ``image_width``, ``image_height`` (None for an upload)."""

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> WatermarkProfile:
        seen = body.get("seen_at")
        return cls(
            id=str(body["id"]),
            name=str(body.get("name", "")),
            width=int(body["width"]),
            height=int(body["height"]),
            source=str(body.get("source")),
            seen_at={k: int(v) for k, v in seen.items()} if isinstance(seen, dict) else None,
            created_at=body.get("created_at"),
            raw=body,
        )


@dataclass(frozen=True)
class Job:
    """An asynchronous job (``/api/v1/jobs``)."""

    id: str
    status: str  # queued, running, succeeded, failed, canceled, expired
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    error: APIError | None  # why it failed, when it did
    batch_id: str | None
    urls: dict[str, str]
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        """Whether the job has reached a final status (it will not change any more)."""
        return self.status in TERMINAL_JOB_STATUSES

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Job:
        error = body.get("error")
        failure: APIError | None = None
        if isinstance(error, dict):
            status = int(error.get("status_code") or 500)
            failure = ERROR_CLASSES.get(status, APIError)(
                status, str(error.get("error") or "Error"), str(error.get("detail") or "")
            )
        return cls(
            id=str(body["id"]),
            status=str(body.get("status")),
            created_at=body.get("created_at"),
            started_at=body.get("started_at"),
            finished_at=body.get("finished_at"),
            error=failure,
            batch_id=body.get("batch_id"),
            urls=dict(body.get("urls") or {}),
            raw=body,
        )


@dataclass(frozen=True)
class Batch:
    """A server-side batch (``/api/v1/batch``): its jobs and their summary."""

    id: str
    status: str
    created_at: str | None
    jobs: list[Job]
    summary: dict[str, int]
    urls: dict[str, str]
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        """Every job of the batch has reached a final status."""
        return bool(self.jobs) and all(job.done for job in self.jobs)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Batch:
        return cls(
            id=str(body["id"]),
            status=str(body.get("status")),
            created_at=body.get("created_at"),
            jobs=[Job.from_json(item) for item in body.get("jobs") or []],
            summary={str(k): int(v) for k, v in (body.get("summary") or {}).items()},
            urls=dict(body.get("urls") or {}),
            raw=body,
        )


@dataclass(frozen=True)
class Health:
    """``GET /api/v1/health``; ``status`` is ``"healthy"`` or ``"unhealthy"`` (then ``detail``)."""

    status: str
    model: str | None
    device: str | None
    gpu_available: bool | None
    detail: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Health:
        return cls(
            status=str(body.get("status")),
            model=body.get("model"),
            device=body.get("device"),
            gpu_available=body.get("gpu_available"),
            detail=body.get("detail"),
            raw=body,
        )


@dataclass(frozen=True)
class Quota:
    used: int
    limit: int
    period: str  # "day" or "month"
    resets_at: int  # Unix seconds


@dataclass(frozen=True)
class Stats:
    """``GET /api/v1/stats``: the calling key's usage."""

    total: int
    success: int
    failed: int
    total_processing_time: float
    avg_processing_time: float
    plan: str | None
    quota: Quota | None
    rate_limited: int | None
    rate_limit: RateLimit
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_response(cls, response: httpx.Response) -> Stats:
        body = response.json()
        quota = body.get("quota")
        return cls(
            total=int(body.get("total", 0)),
            success=int(body.get("success", 0)),
            failed=int(body.get("failed", 0)),
            total_processing_time=float(body.get("total_processing_time", 0.0)),
            avg_processing_time=float(body.get("avg_processing_time", 0.0)),
            plan=body.get("plan"),
            quota=Quota(
                used=int(quota["used"]),
                limit=int(quota["limit"]),
                period=str(quota["period"]),
                resets_at=int(quota["resets_at"]),
            )
            if isinstance(quota, dict)
            else None,
            rate_limited=body.get("rate_limited"),
            rate_limit=RateLimit.from_headers(response.headers),
            raw=body,
        )


@dataclass(frozen=True)
class BatchItem:
    """One image of `batch_process`: ``ok`` with ``output`` written, or ``error`` saying why not."""

    path: str  # the input's path, or "#N" (1-based) for an in-memory input
    ok: bool
    error: IOPaintError | Exception | None
    output: Path | None
    processing_time: float | None = None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _size(value: str | None) -> tuple[int, int] | None:
    if not value or "x" not in value:
        return None
    width, _, height = value.partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        return None
