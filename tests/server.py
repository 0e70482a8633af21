"""Starting the real service (`bentoml serve`) for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_env(workdir: Path, **overrides: str) -> dict[str, str]:
    """Environment of a test service: its own stores, OpenCV unless told otherwise."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IOPAINT_")}
    env.update(
        BENTOML_HOME=str(workdir / "bentoml"),
        IOPAINT_DATA_DIR=str(workdir / "data"),
        IOPAINT_MODEL="opencv",
        BENTOML_DO_NOT_TRACK="true",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_service(
    workdir: Path,
    env: dict[str, str],
    port: int | None = None,
    *,
    project_root: Path = PROJECT_ROOT,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> RunningService:
    """Run `bentoml serve` and wait until health answers 200 (or fail with its log).

    `project_root`: the checkout whose `service.py` is served (benchmarks compare another
    commit's); `timeout_s`: how long the start may take (a compile at start-up takes minutes).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                "service:WatermarkRemoval",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ],
            cwd=project_root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = RunningService(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{service.log()}")
        try:
            if httpx.get(f"{service.base_url}/api/v1/health", timeout=2).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    service.stop()
    raise RuntimeError(f"service not healthy after {timeout_s}s:\n{service.log()}")


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run `iopaint-api ARGS` with `env`; its stdout, or fail with its output."""
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "cli.py"), *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"iopaint-api {' '.join(args)} failed:\n{completed.stdout}{completed.stderr}"
        )
    return completed.stdout


UNLIMITED = ("--rate", "100000", "--burst", "10000", "--quota", "100000000")
"""Enterprise limits no test or benchmark reaches, for traffic that must never see 429."""


def create_key(env: dict[str, str], *, plan: str, name: str, limits: tuple[str, ...] = ()) -> str:
    """A new API key made by `iopaint-api keys create` in the stores `env` points at."""
    created = run_cli(env, "keys", "create", "--plan", plan, "--name", name, *limits, "--json")
    return str(json.loads(created)["key"])


def create_webhook_secret(env: dict[str, str], key: str) -> str:
    """The key's webhook secret, made by `iopaint-api keys webhook-secret create`."""
    prefix = key[: len("sk_live_") + 8]
    created = run_cli(env, "keys", "webhook-secret", "create", prefix, "--json")
    return str(json.loads(created)[0]["secret"])
