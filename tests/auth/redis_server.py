"""A private `redis-server` for tests: its own port and directory, stopped afterwards.

Never the shared Redis on 6379: every test server gets a free port and no persistence.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.server import free_port

REDIS_BINARY = shutil.which("redis-server")
STARTUP_TIMEOUT_S = 10.0


class RedisServer:
    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        if REDIS_BINARY is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir = workdir
        # Persistent: an append-only file in `workdir`, so data survives a restart.
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        assert REDIS_BINARY is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_BINARY,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.workdir),
                "--save", "",
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            if self._answers_ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within the timeout")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash: only what the append-only file holds survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def flush(self) -> None:
        self._command(b"FLUSHALL\r\n", expect=b"+OK")

    def _answers_ping(self) -> bool:
        try:
            self._command(b"PING\r\n", expect=b"+PONG")
        except OSError:
            return False
        return True

    def _command(self, command: bytes, *, expect: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall(command)
            reply = connection.recv(64)
        if not reply.startswith(expect):
            raise OSError(f"redis-server answered {reply!r} to {command!r}")
