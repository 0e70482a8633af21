"""A webhook receiver for tests: a tiny HTTP server on 127.0.0.1 that keeps what it got.

    with WebhookReceiver(answers=[500, 200]) as receiver:   # first attempt 500, then 200
        ... receiver.url ...
        (first, second) = receiver.wait_for(2)          # or: await receiver.arrived(2)

Answers are given in turn (the last one repeats); an answer of 302 redirects to
`redirect_to`. A request cut off before its Content-Length (its sender killed mid-send)
is not kept. Runs in a thread, so both the in-process tier and
end-to-end tests use it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    arrived_at: float
    """Unix time it was received."""

    def verified(self, secret: str) -> object:
        """The payload, once `standardwebhooks` (a verifier written by others) accepts it."""
        return Webhook(secret).verify(self.body, self.headers)


class WebhookReceiver:
    def __init__(self, answers: Sequence[int] = (200,), *, redirect_to: str = "") -> None:
        self.answers = list(answers)
        self.redirect_to = redirect_to
        self.deliveries: list[Delivery] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (a replica killed while delivering):
                    # no receiver would take a truncated body as a delivery.
                    return
                with receiver._lock:
                    turn = len(receiver.deliveries)
                    answer = receiver.answers[min(turn, len(receiver.answers) - 1)]
                    receiver.deliveries.append(
                        Delivery(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            answer,
                            time.time(),
                        )
                    )
                    receiver._lock.notify_all()
                self.send_response(answer)
                if answer in (301, 302, 307, 308):
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Delivery]:
        """The first `count` deliveries, once they have arrived (or fail after the timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.deliveries)} webhook deliveries within {timeout_s} s, "
                        f"expected {count}"
                    )
                self._lock.wait(left)
            return list(self.deliveries[:count])

    async def arrived(self, count: int, timeout_s: float = 20.0) -> list[Delivery]:
        """`wait_for` from async code, without blocking the event loop the sender runs on."""
        return await asyncio.to_thread(self.wait_for, count, timeout_s)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
