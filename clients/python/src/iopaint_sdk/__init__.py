"""Official Python client of the IOPaint watermark-removal API.

    from iopaint_sdk import IOPaintClient

    client = IOPaintClient(api_key="sk_live_...")     # or IOPAINT_API_KEY
    client.remove_watermark("image.jpg", mask="mask.png", output="result.png")

`IOPaintClient` (sync, thread-safe) and `AsyncIOPaintClient` (asyncio) have the same
methods: ``remove_watermark``, ``detect``, ``detect_mask``, ``batch_process``, ``stats``,
``health``, ``jobs.submit/get/wait/result/cancel/delete``,
``batches.submit/get/wait/result`` and ``watermarks.create/list/get/png/delete`` (the key's
watermark profiles: ``remove_watermark(..., watermark=profile)`` inverts the mark's
blend). Both retry what is worth retrying (`RetryPolicy`) and pace themselves by the
rate-limit headers (`pacing`).

The import name is ``iopaint_sdk``, not ``iopaint``: ``iopaint`` is the upstream IOPaint
application's package, and the two must be installable side by side.

Exceptions (``iopaint_sdk.errors``)::

    IOPaintError                      everything this package raises on purpose
    ├── APIConnectionError            no HTTP answer, after the retries
    │   └── APITimeoutError           the answer did not come within the timeout
    ├── JobTimeoutError               jobs.wait / batches.wait gave up (also a TimeoutError)
    └── APIError                      the server answered with an error:
        │                             status_code, error, detail, request_id, headers
        ├── InvalidImageError         400 bad image or mask (format, size, dimensions)
        │   └── PayloadTooLargeError  413 body far over the size limit
        ├── AuthenticationError       401 missing, unknown or revoked API key
        ├── NotFoundError             404 no such route, job, batch or watermark profile
        ├── ConflictError             409 the job has not finished
        ├── GoneError                 410 the job's result has expired
        ├── UnprocessableError        422 nothing detected; Idempotency-Key reused
        ├── RateLimitError            429 retry_after, limit, remaining, reset, quota_exceeded
        ├── InternalServerError       500 processing failed on this input
        └── ServiceUnavailableError   503 starting, overloaded or unreachable (retried first)

No exception, ``repr`` or log line of this package contains the API key.
"""

from iopaint_sdk.async_client import AsyncBatches, AsyncIOPaintClient, AsyncJobs, AsyncWatermarks
from iopaint_sdk.client import Batches, IOPaintClient, Jobs, Watermarks
from iopaint_sdk.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    GoneError,
    InternalServerError,
    InvalidImageError,
    IOPaintError,
    JobTimeoutError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableError,
)
from iopaint_sdk.pacing import RateLimitSnapshot
from iopaint_sdk.results import (
    Batch,
    BatchItem,
    Box,
    Detection,
    Health,
    ImageResult,
    Job,
    Quota,
    RateLimit,
    Region,
    Stats,
    WatermarkProfile,
)
from iopaint_sdk.retry import RetryPolicy
from iopaint_sdk.version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncBatches",
    "AsyncIOPaintClient",
    "AsyncJobs",
    "AsyncWatermarks",
    "AuthenticationError",
    "Batch",
    "BatchItem",
    "Batches",
    "Box",
    "ConflictError",
    "Detection",
    "GoneError",
    "Health",
    "IOPaintClient",
    "IOPaintError",
    "ImageResult",
    "InternalServerError",
    "InvalidImageError",
    "Job",
    "JobTimeoutError",
    "Jobs",
    "NotFoundError",
    "PayloadTooLargeError",
    "Quota",
    "RateLimit",
    "RateLimitError",
    "RateLimitSnapshot",
    "Region",
    "RetryPolicy",
    "ServiceUnavailableError",
    "Stats",
    "UnprocessableError",
    "WatermarkProfile",
    "Watermarks",
    "__version__",
]
