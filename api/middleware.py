"""ASGI middleware that holds for every response of the service, whatever route produced it.

- `RequestIdMiddleware`: every response carries `X-Request-Id` (the client's, if sane).
- `ErrorEnvelopeMiddleware`: every 4xx/5xx body is the documented error envelope, also
  when BentoML or Starlette produced it (unknown route, wrong method, crashes), and no
  traceback ever reaches a client. Each error is logged once, as one line with the request
  id, route, status and reason (never a key or image bytes), so that a client's
  `X-Request-Id` leads to why it was refused.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errors import error_body

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_MAX_FOREIGN_ERROR_BODY = 64 * 1024


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", "-"))


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


class ErrorEnvelopeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rewriter = _ErrorRewriter(scope, send)
        try:
            await self.app(scope, receive, rewriter.send)
        except Exception:
            logger.exception(
                "Unhandled error on %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                request_id_of(scope),
            )
            if not rewriter.response_started:
                await rewriter.send_envelope(500, _internal_error_detail(scope))


class _ErrorRewriter:
    """Passes successes through; buffers error responses and re-sends them enveloped."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self.scope = scope
        self._send = send
        self.response_started = False
        self._held_start: Message | None = None
        self._held_body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
            if message["status"] >= 400:
                self._held_start = message
                return
        elif message["type"] == "http.response.body" and self._held_start is not None:
            if len(self._held_body) < _MAX_FOREIGN_ERROR_BODY:
                self._held_body += message.get("body", b"")
            if not message.get("more_body", False):
                await self._release()
            return
        await self._send(message)

    async def _release(self) -> None:
        assert self._held_start is not None  # only called while holding a start message
        start, self._held_start = self._held_start, None
        status = int(start["status"])
        body = _parse_json(bytes(self._held_body))
        if isinstance(body, dict) and set(body) >= {"error", "detail", "status_code"}:
            payload = bytes(self._held_body)  # already ours
            detail = str(body["detail"])
        else:
            detail = _foreign_detail(self.scope, status, body, bytes(self._held_body))
            payload = json.dumps(error_body(status, detail)).encode()
        log_error(self.scope, status, detail)
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(payload))
        await self._send({**start, "headers": headers.raw})
        await self._send({"type": "http.response.body", "body": payload})

    async def send_envelope(self, status: int, detail: str) -> None:
        log_error(self.scope, status, detail)
        payload = json.dumps(error_body(status, detail)).encode()
        self.response_started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": payload})


def log_error(scope: Scope, status: int, detail: str) -> None:
    """One line per error response: 4xx at info (the client's mistake), 5xx at warning,
    500 at error."""
    level = logging.INFO if status < 500 else logging.ERROR if status == 500 else logging.WARNING
    logger.log(
        level,
        "%s %s -> %d %s (request %s)",
        scope.get("method", "-"),
        scope.get("path", "-"),
        status,
        detail,
        request_id_of(scope),
    )


def _foreign_detail(scope: Scope, status: int, body: Any, raw: bytes) -> str:
    """A human sentence for an error some other layer produced."""
    method, path = scope.get("method", ""), scope.get("path", "")
    if status == 404:
        return f"No route {path}"
    if status == 405:
        return f"Method {method} is not allowed on {path}"
    if status >= 500 and status != 503:
        return _internal_error_detail(scope)
    message = ""
    if isinstance(body, dict):
        candidate = body.get("detail") or body.get("error") or body.get("message")
        if isinstance(candidate, list):  # pydantic validation errors
            candidate = "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
                if isinstance(item, dict)
                else str(item)
                for item in candidate
            )
        message = str(candidate or "")
    elif raw:
        message = raw.decode("utf-8", "replace")
    message = " ".join(message.split())[:300]
    if status == 503 and not message:
        message = "Service is overloaded, retry later"
    return message or error_body(status, "")["error"]  # type: ignore[return-value]


def _internal_error_detail(scope: Scope) -> str:
    return f"Internal server error (request id {request_id_of(scope)})"


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
