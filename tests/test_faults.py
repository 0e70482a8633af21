"""Faults on a real service: a runner that dies, more load than capacity, shutdown.

Each test starts its own `bentoml serve` (the faults would disturb the shared one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.images import box_mask, encode, photo
from tests.server import UNLIMITED, RunningService, create_key, service_env, start_service

pytestmark = pytest.mark.e2e

ROUTE = "/api/v1/remove-watermark"
# OpenCV's Telea takes seconds on this: long enough to kill or stop the runner mid-request.
HEAVY = {
    "image": ("big.jpg", encode(photo(1536, 1536, seed=2), "JPEG"), "image/jpeg"),
    "mask": ("mask.png", encode(box_mask(1536, 1536, (100, 100, 1430, 1430)), "PNG"), "image/png"),
}


@pytest.fixture
def own_service(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[RunningService, str]]:
    overrides: dict[str, str] = getattr(request, "param", {})
    env = service_env(tmp_path, **overrides)
    key = create_key(env, plan="enterprise", name="faults", limits=UNLIMITED)
    service = start_service(tmp_path, env)
    yield service, key
    service.stop()


def runner_pids(service: RunningService) -> list[int]:
    listing = subprocess.run(
        ["pgrep", "-f", "--", "--service-name model-runner"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    ours = []
    for pid in map(int, listing.split()):
        # Only the runner under this test's own `bentoml serve`.
        status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}").exists() else ""
        parent = next(
            (line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), ""
        )
        if parent == str(service.process.pid):
            ours.append(pid)
    return ours


def post_in_background(
    client: httpx.Client, files: dict, results: list[httpx.Response]
) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(client.post(ROUTE, files=files)))
    thread.start()
    return thread


def test_runner_killed_mid_request_gives_503_then_recovers(
    own_service: tuple[RunningService, str],
) -> None:
    service, key = own_service
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": key}, timeout=120) as client:
        results: list[httpx.Response] = []
        worker = post_in_background(client, HEAVY, results)
        time.sleep(2.5)  # upload done, runner busy
        pids = runner_pids(service)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        killed_at = time.monotonic()
        worker.join(timeout=60)
        answered_after = time.monotonic() - killed_at
        assert not worker.is_alive(), "the request hung after its runner died"
        (response,) = results
        assert response.status_code == 503, response.text
        body = response.json()
        assert set(body) == {"error", "detail", "status_code"} and body["status_code"] == 503

        # The supervisor restarts the runner: the service heals without a hand.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if httpx.get(f"{service.base_url}/api/v1/health", timeout=5).status_code == 200:
                break
            time.sleep(1)
        healthy_after = time.monotonic() - killed_at
        small = {
            "image": ("a.png", encode(photo(), "PNG"), "image/png"),
            "mask": ("m.png", encode(box_mask(96, 64, (5, 5, 30, 30)), "PNG"), "image/png"),
        }
        assert client.post(ROUTE, files=small).status_code == 200
        assert runner_pids(service) and runner_pids(service) != pids
    print(
        f"runner killed: 503 after {answered_after:.2f} s, healthy again after "
        f"{healthy_after:.1f} s"
    )


@pytest.mark.parametrize("own_service", [{"IOPAINT_MAX_PENDING_REQUESTS": "2"}], indirect=True)
def test_overload_is_refused_quickly_with_503(own_service: tuple[RunningService, str]) -> None:
    service, key = own_service
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": key}, timeout=120) as client:
        results: list[httpx.Response] = []
        busy = [post_in_background(client, HEAVY, results) for _ in range(2)]
        time.sleep(1.5)
        started = time.monotonic()
        refused = client.post(ROUTE, files=HEAVY)
        refused_after = time.monotonic() - started
        for worker in busy:
            worker.join(timeout=120)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["detail"] == "Server is at capacity, retry later"
    assert refused_after < 10  # answered at once, not after the queue drained (which takes ~10 s)
    print(f"overload: 503 after {refused_after * 1000:.0f} ms")
    assert sorted(response.status_code for response in results) == [200, 200]


def test_shutdown_lets_in_flight_requests_finish(own_service: tuple[RunningService, str]) -> None:
    service, key = own_service
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": key}, timeout=120) as client:
        results: list[httpx.Response] = []
        worker = post_in_background(client, HEAVY, results)
        time.sleep(2.5)
        os.kill(service.process.pid, signal.SIGTERM)
        stopped_at = time.monotonic()
        worker.join(timeout=120)
        finished_after = time.monotonic() - stopped_at
    assert [response.status_code for response in results] == [200]
    print(f"shutdown: the in-flight request got 200, {finished_after:.1f} s after SIGTERM")
    service.process.wait(timeout=60)
