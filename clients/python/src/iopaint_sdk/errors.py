"""Exceptions raised by the SDK: one class per documented error.

Every error body of the API is ``{"error", "detail", "status_code"}``; `APIError` carries
those fields and the response's ``X-Request-Id`` (quote it when reporting a problem).
The class tree is drawn in the package docstring (``help(iopaint_sdk)``).

No exception ever holds the API key: messages are built from the response body, the
status and the URL path only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

import httpx


class IOPaintError(Exception):
    """Root of everything this package raises on purpose."""


class APIConnectionError(IOPaintError):
    """No HTTP answer: the server could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class JobTimeoutError(IOPaintError, TimeoutError):
    """`jobs.wait` gave up before the job finished (the job itself goes on)."""


class APIError(IOPaintError):
    """The server answered with an error status.

    Attributes: ``status_code``, ``error`` (the reason phrase), ``detail`` (for humans),
    ``request_id`` (``X-Request-Id``, when the response had one) and ``headers``.
    """

    status: ClassVar[int | None] = None

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        *,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.request_id = request_id
        self.headers: dict[str, str] = dict(headers or {})
        message = f"{status_code} {error}: {detail}"
        if hint:
            message += f" ({hint})"
        if request_id:
            message += f" [request {request_id}]"
        super().__init__(message)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keeps pickling (multiprocessing, concurrent.futures) working with keyword fields.
        return (
            _rebuild,
            (type(self), self.status_code, self.error, self.detail, self.request_id, self.headers),
        )


def _rebuild(
    cls: type[APIError],
    status_code: int,
    error: str,
    detail: str,
    request_id: str | None,
    headers: dict[str, str],
) -> APIError:
    return cls(status_code, error, detail, request_id=request_id, headers=headers)


class InvalidImageError(APIError):
    """400: the image or mask was refused (format, dimensions, file size, no mask)."""

    status = 400


class PayloadTooLargeError(InvalidImageError):
    """413: the request body is far over the size limit and was not read."""

    status = 413


class AuthenticationError(APIError):
    """401: the API key is missing, malformed, unknown, revoked or expired."""

    status = 401


class NotFoundError(APIError):
    """404: no such route, or no such job or batch for this key."""

    status = 404


class ConflictError(APIError):
    """409: the job has not finished yet, so it has no result."""

    status = 409


class GoneError(APIError):
    """410: the job's result has expired."""

    status = 410


class UnprocessableError(APIError):
    """422: nothing to remove was detected, or an Idempotency-Key was reused for another body."""

    status = 422


class RateLimitError(APIError):
    """429: the rate limit or the quota refused the request.

    ``retry_after`` (seconds), ``limit``, ``remaining`` and ``reset`` (Unix seconds) come
    from the response headers; each is None when the header was absent.
    """

    status = 429

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        *,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            status_code, error, detail, request_id=request_id, headers=headers, hint=hint
        )
        lowered = {name.lower(): value for name, value in self.headers.items()}
        self.retry_after = _number(lowered.get("retry-after"))
        self.limit = _integer(lowered.get("x-ratelimit-limit"))
        self.remaining = _integer(lowered.get("x-ratelimit-remaining"))
        self.reset = _integer(lowered.get("x-ratelimit-reset"))

    @property
    def quota_exceeded(self) -> bool:
        """True when the quota (not the rate) refused: waiting means hours, not seconds."""
        return "quota" in self.detail.lower()


class InternalServerError(APIError):
    """500: the model failed on this input (``detail`` starts with ``Processing failed:``)."""

    status = 500


class ServiceUnavailableError(APIError):
    """503: the model is starting, overloaded or unreachable; retried before it is raised."""

    status = 503


ERROR_CLASSES: dict[int, type[APIError]] = {
    cls.status: cls
    for cls in (
        InvalidImageError,
        PayloadTooLargeError,
        AuthenticationError,
        NotFoundError,
        ConflictError,
        GoneError,
        UnprocessableError,
        RateLimitError,
        InternalServerError,
        ServiceUnavailableError,
    )
    if cls.status is not None
}


def error_from_response(response: httpx.Response, *, hint: str | None = None) -> APIError:
    """The exception for an error response, from its JSON envelope (or what there is)."""
    status = response.status_code
    reason = response.reason_phrase or "Error"
    detail = ""
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        reason = str(body.get("error") or reason)
        detail = str(body.get("detail") or "")
    if not detail:
        # Not our envelope (a proxy, a load balancer): a short, printable excerpt.
        text = response.content[:200].decode("utf-8", "replace").strip()
        detail = text or f"{response.request.method} {response.request.url.path}"
    cls = ERROR_CLASSES.get(status, APIError)
    return cls(
        status,
        reason,
        detail,
        request_id=response.headers.get("x-request-id"),
        headers=dict(response.headers),
        hint=hint,
    )


def is_quota_refusal(response: httpx.Response) -> bool:
    """Whether a 429 came from the quota (its detail says so), not from the rate."""
    if response.status_code != 429:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and "quota" in str(body.get("detail", "")).lower()


def connection_error(exc: httpx.TransportError, where: str) -> APIConnectionError:
    """The SDK's error for a failed connection, built from the failure's type and text only.

    (httpx's own exception carries the request, headers and API key included; raising ours
    `from None` keeps it out of tracebacks and error reporters.)
    """
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{where}: timed out ({type(exc).__name__}: {reason})")
    return APIConnectionError(f"{where}: could not connect ({type(exc).__name__}: {reason})")


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None  # an HTTP-date Retry-After: the API sends seconds, proxies rarely dates
    return number if number >= 0 else None


def _integer(value: str | None) -> int | None:
    number = _number(value)
    return None if number is None else int(number)
