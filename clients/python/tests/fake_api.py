"""A scripted stand-in for the API on `httpx.MockTransport`, recording every request."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx

from iopaint_sdk import AsyncIOPaintClient, IOPaintClient, RetryPolicy

KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dcX9qLm2Pb0a3ZkQ"
BASE_URL = "http://api.test"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST_RETRY = RetryPolicy(max_attempts=4, max_wait=30.0, backoff_initial=0.001, backoff_max=0.004)


def png_bytes(
    width: int = 8, height: int = 6, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def error(status: int, detail: str, **headers: str) -> httpx.Response:
    phrase = {
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        409: "Conflict",
        410: "Gone",
        413: "Payload Too Large",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }[status]
    return httpx.Response(
        status,
        json={"error": phrase, "detail": detail, "status_code": status},
        headers={
            "X-Request-Id": f"req-{status}",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )


def image_response(content: bytes | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(
        200,
        content=content if content is not None else png_bytes(),
        headers={
            "Content-Type": "image/png",
            "X-Processing-Time": "0.125",
            "X-Image-Size": "8x6",
            "X-Model": "opencv",
            "X-Request-Id": "req-ok",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes


def multipart_parts(request: httpx.Request) -> list[Part]:
    """The form parts of a multipart request, in order."""
    content_type = request.headers["content-type"]
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.content
    )
    parts = []
    for part in message.iter_parts():
        parts.append(
            Part(
                name=str(part.get_param("name", header="content-disposition")),
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("content-type") else None,
                content=part.get_payload(decode=True) or b"",
            )
        )
    return parts


@dataclass
class FakeApi:
    """Answers each request with the next scripted reply (a Response, an exception, or a
    function of the request); records the requests."""

    replies: list[httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]] = field(
        default_factory=list
    )
    default: Callable[[httpx.Request], httpx.Response] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            self.requests.append(request)
            reply = self.replies.pop(0) if self.replies else self.default
        if reply is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client(self, **options: Any) -> IOPaintClient:
        options.setdefault("retry", FAST_RETRY)
        return IOPaintClient(
            api_key=options.pop("api_key", KEY),
            base_url=BASE_URL,
            http_client=httpx.Client(transport=httpx.MockTransport(self)),
            **options,
        )

    def async_client(self, **options: Any) -> AsyncIOPaintClient:
        options.setdefault("retry", FAST_RETRY)
        return AsyncIOPaintClient(
            api_key=options.pop("api_key", KEY),
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self)),
            **options,
        )


def json_response(body: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
    )
