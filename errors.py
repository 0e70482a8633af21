"""Errors the service reports to clients, and the one function that shapes their body.

Every error response of the API, whoever raises it (our code, Starlette or BentoML),
has the body documented in `docs/openapi.yaml`::

    {"error": "Bad Request", "detail": "Invalid image format: ...", "status_code": 400}

`error` is the reason phrase of `status_code` (the API document's names, the same on every
Python version); `detail` is for humans.

Exception tree (each class carries its HTTP status)::

    ServiceError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── NotFound (404)
    ├── NotAcceptable (406)
    ├── RequestTimeout (408)
    ├── Conflict (409)
    ├── Gone (410)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    ├── UnprocessableEntity (422)
    ├── TooManyRequests (429)
    └── ServiceUnavailable (503)
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import ClassVar

from starlette.responses import JSONResponse


class ServiceError(Exception):
    """Root of every error that becomes an HTTP response."""

    status_code: ClassVar[int] = 500

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})

    def to_response(self) -> JSONResponse:
        return error_response(self.status_code, self.detail, headers=self.headers)


class BadRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401


class NotFound(ServiceError):
    status_code = 404


class NotAcceptable(ServiceError):
    """The client's `Accept` refuses every format the answer can be sent in."""

    status_code = 406


class RequestTimeout(ServiceError):
    status_code = 408


class Conflict(ServiceError):
    """Not in this state (a job's result asked for before the job ended)."""

    status_code = 409


class Gone(ServiceError):
    """It existed, and is no more (a job's result past its retention)."""

    status_code = 410


class PayloadTooLarge(ServiceError):
    status_code = 413


class UnsupportedMediaType(ServiceError):
    status_code = 415


class UnprocessableEntity(ServiceError):
    """Well-formed, but nothing can be done with it (a photo with no watermark found)."""

    status_code = 422


class TooManyRequests(ServiceError):
    status_code = 429


class ServiceUnavailable(ServiceError):
    status_code = 503


# Python 3.13 renamed these (RFC 9110): "Content Too Large", "Unprocessable Content". Clients
# match on `error`, so it must not change with the interpreter the service runs on.
_PHRASES = {413: "Payload Too Large", 422: "Unprocessable Entity"}


def error_body(status_code: int, detail: str) -> dict[str, object]:
    """The documented error envelope for `status_code`."""
    try:
        phrase = _PHRASES.get(status_code) or HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    return {"error": phrase, "detail": detail, "status_code": status_code}


def error_response(
    status_code: int, detail: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Every error response of the service is built here."""
    return JSONResponse(error_body(status_code, detail), status_code=status_code, headers=headers)
