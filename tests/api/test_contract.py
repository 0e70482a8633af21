"""The v1 contract where it needs a real `bentoml serve` (OpenCV inpainter): the model runner
in its own process, raw sockets, the service's log. The route's other contract cases run in
process, in milliseconds (tests/api/test_routes.py)."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.api.requests import ROUTE, upload
from tests.images import box_mask, decode, encode, photo
from tests.server import RunningService

pytestmark = pytest.mark.e2e


def test_remove_watermark_returns_png_with_documented_headers(client: httpx.Client) -> None:
    pixels = photo(160, 120)
    mask = box_mask(160, 120, (40, 30, 100, 60))
    response = client.post(ROUTE, files=upload(encode(pixels, "JPEG"), encode(mask, "PNG")))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert float(response.headers["x-processing-time"]) >= 0
    assert response.headers["x-image-size"] == "160x120"
    assert response.headers["x-model"] == "opencv"
    assert len(response.headers["x-request-id"]) >= 8
    out = decode(response.content)
    assert out.format == "PNG" and out.size == (160, 120) and out.mode == "RGB"


def test_unmasked_pixels_come_back_bit_identical_and_gray_blends(client: httpx.Client) -> None:
    pixels = photo(128, 96, seed=5)
    mask = np.zeros((96, 128), np.uint8)
    mask[20:60, 30:90] = 255
    mask[60:70, 30:90] = 128  # partial
    response = client.post(ROUTE, files=upload(encode(pixels, "PNG"), encode(mask, "PNG")))
    assert response.status_code == 200, response.text
    out = np.asarray(decode(response.content))
    keep = mask == 0
    assert np.array_equal(out[keep], pixels[keep])
    assert not np.array_equal(out[mask == 255], pixels[mask == 255])


def test_body_far_over_the_limit_is_413_before_it_is_sent(
    service: RunningService, api_key: str
) -> None:
    host = urlsplit(service.base_url)
    head = (
        f"POST {ROUTE} HTTP/1.1\r\nHost: {host.netloc}\r\nX-API-Key: {api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {500 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host.hostname, host.port), timeout=10) as raw:
        raw.sendall(head.encode())  # and no body at all: the answer must not wait for it
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
        reply = received.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"status_code": 413' in reply or '"status_code":413' in reply


def test_health_is_public_and_truthful(service: RunningService) -> None:
    response = httpx.get(f"{service.base_url}/api/v1/health")
    assert response.status_code == 200
    health = response.json()
    # Extra fields; the documented ones stay as they were.
    detector = health.pop("detector")
    assert health.pop("compute") is None  # OpenCV has no precision, parity or threads to tell
    assert health == {
        "status": "healthy",
        "model": "opencv",
        "device": "cpu",
        "gpu_available": False,
    }
    assert detector["name"] == "watermark-detector"
    assert [model["name"] for model in detector["models"]] == [
        "PP-OCRv6_det_small",
        "PP-OCRv6_rec_small",
        "mark-segmenter",
    ]
    # Healthy means warm: BentoML's batching was trained before traffic (api/model_client.py),
    # the detector's as well as the inpainter's.
    log = service.log()
    assert "Runner warmed up: 12 calls" in log
    assert "Detector warmed up: 12 calls" in log
    # ... and quietly: at the info level the warm-up is that one line, not one per call.
    assert "path=/inpaint" not in log
    assert log.count("Accounts: embedded SQLite at ") == 1


def test_health_answers_while_the_runner_is_saturated(
    service: RunningService, client: httpx.Client
) -> None:
    """Four large requests in flight must not stall health (the model runs in its own process)."""
    big = encode(photo(1536, 1536, seed=1), "JPEG", quality=90)
    big_mask = encode(box_mask(1536, 1536, (150, 150, 1380, 1380)), "PNG")
    results: list[int] = []

    def heavy() -> None:
        results.append(client.post(ROUTE, files=upload(big, big_mask), timeout=300).status_code)

    workers = [threading.Thread(target=heavy) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # let the uploads land and the runner start working
    latencies = []
    for _ in range(5):
        started = time.perf_counter()
        response = httpx.get(f"{service.base_url}/api/v1/health", timeout=10)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200
    busy_during_probe = any(worker.is_alive() for worker in workers)
    for worker in workers:
        worker.join(timeout=300)
    assert results == [200] * 4
    assert busy_during_probe, "the heavy requests finished before health was probed"
    print(f"health latency under load: max {max(latencies) * 1000:.1f} ms")
