"""A real HTTP server on 127.0.0.1 serving one file, with Range support and scripted faults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FileServer:
    """Serves `payload` at any path.

    `faults` is consumed one entry per request: an int N sends the headers for the whole
    answer, then only N bytes, then closes the connection; a string such as ``"503"``
    answers with that status.
    `ranges` records the Range header of every request (None when absent).
    """

    payload: bytes
    faults: list[int | str] = field(default_factory=list)
    honour_range: bool = True
    ranges: list[str | None] = field(default_factory=list)
    url: str = ""


@contextmanager
def serve_file(server_state: FileServer) -> Iterator[FileServer]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read `server_state.ranges` instead."""

        def do_GET(self) -> None:
            header = self.headers.get("Range")
            server_state.ranges.append(header)
            fault = server_state.faults.pop(0) if server_state.faults else None
            if isinstance(fault, str):
                self.send_response(int(fault))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = server_state.payload
            start = 0
            if header and server_state.honour_range:
                start = int(header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            rest = body[start:]
            self.send_header("Content-Length", str(len(rest)))
            self.end_headers()
            if isinstance(fault, int):
                self.wfile.write(rest[:fault])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(rest)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}/big-lama.pt"
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
