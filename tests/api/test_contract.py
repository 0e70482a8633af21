"""The v1 contract, checked over HTTP against a real `bentoml serve` (OpenCV inpainter)."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.images import box_mask, decode, encode, photo
from tests.server import RunningService

pytestmark = pytest.mark.e2e

ROUTE = "/api/v1/remove-watermark"


def assert_error(response: httpx.Response, status: int, detail: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail", "status_code"}, body
    assert body["status_code"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    return str(body["detail"])


def upload(image: bytes, mask: bytes | None = None) -> dict[str, tuple[str, bytes, str]]:
    files = {"image": ("image", image, "application/octet-stream")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return files


# --- success -----------------------------------------------------------------------------


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


def test_alpha_channel_is_returned_unchanged(client: httpx.Client) -> None:
    alpha = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (48, 1))
    rgba = np.dstack([photo(64, 48), alpha])
    mask = box_mask(64, 48, (10, 10, 30, 30))
    response = client.post(
        ROUTE, files=upload(encode(Image.fromarray(rgba, "RGBA"), "PNG"), encode(mask, "PNG"))
    )
    assert response.status_code == 200, response.text
    out = decode(response.content)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_exif_orientation_is_applied_to_the_result(client: httpx.Client) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = encode(Image.fromarray(photo(80, 40)), "JPEG", exif=exif.tobytes())
    mask = box_mask(40, 80, (5, 5, 20, 20))  # drawn on the image as the user sees it
    response = client.post(ROUTE, files=upload(image, encode(mask, "PNG")))
    assert response.status_code == 200, response.text
    assert response.headers["x-image-size"] == "40x80"
    assert decode(response.content).size == (40, 80)


def test_mask_of_another_size_is_resized(client: httpx.Client) -> None:
    pixels = photo(120, 80)
    small_mask = box_mask(60, 40, (10, 10, 30, 20))
    response = client.post(ROUTE, files=upload(encode(pixels, "PNG"), encode(small_mask, "PNG")))
    assert response.status_code == 200, response.text
    out = np.asarray(decode(response.content))
    assert out.shape == (80, 120, 3)
    assert np.array_equal(out[70:, :], pixels[70:, :])  # far from the mask: untouched


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_every_accepted_format_is_processed(client: httpx.Client, fmt: str) -> None:
    mask = encode(box_mask(64, 64, (8, 8, 24, 24)), "PNG")
    response = client.post(ROUTE, files=upload(encode(photo(64, 64), fmt), mask))
    assert response.status_code == 200, response.text


# --- input errors ------------------------------------------------------------------------


def test_missing_mask_is_a_clear_400(client: httpx.Client) -> None:
    detail = assert_error(client.post(ROUTE, files=upload(encode(photo(), "JPEG"))), 400)
    assert "mask is required" in detail


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "Invalid image format: the image file is empty"),
        (b"just some text", "Invalid image format: cannot identify image file"),
        (
            encode(photo(), "GIF"),
            "Invalid image format: GIF is not supported (use JPEG, PNG or WebP)",
        ),
        (
            encode(photo(), "BMP"),
            "Invalid image format: BMP is not supported (use JPEG, PNG or WebP)",
        ),
        (
            encode(photo(), "TIFF"),
            "Invalid image format: TIFF is not supported (use JPEG, PNG or WebP)",
        ),
    ],
)
def test_invalid_images_are_400(client: httpx.Client, data: bytes, detail: str) -> None:
    mask = encode(box_mask(96, 64, (1, 1, 5, 5)), "PNG")
    assert_error(client.post(ROUTE, files=upload(data, mask)), 400, detail)


def test_truncated_image_is_400(client: httpx.Client) -> None:
    data = encode(photo(300, 300), "JPEG", quality=95)
    detail = assert_error(client.post(ROUTE, files=upload(data[: len(data) // 3])), 400)
    assert detail.startswith("Invalid image format:")


def test_file_over_10mb_is_400_with_the_documented_wording(client: httpx.Client) -> None:
    oversized = encode(photo(), "PNG") + b"\0" * (10 * 1024 * 1024)
    assert_error(
        client.post(ROUTE, files=upload(oversized)), 400, "Image too large. Max size: 10MB"
    )


def test_dimension_over_4096_is_400(client: httpx.Client) -> None:
    wide = encode(np.zeros((2, 4100, 3), np.uint8), "PNG")
    assert_error(
        client.post(ROUTE, files=upload(wide)), 400, "Image too large. Max dimension: 4096px"
    )


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


@pytest.mark.parametrize(
    ("files", "detail"),
    [
        ({"mask": ("m.png", b"x", "image/png")}, "Missing required form field 'image'"),
        (
            {"file": ("a.jpg", b"x", "image/jpeg")},
            "Unexpected form field 'file': send 'image' and optionally 'mask'",
        ),
    ],
)
def test_form_field_errors(client: httpx.Client, files: dict, detail: str) -> None:
    assert_error(client.post(ROUTE, files=files), 400, detail)


def test_duplicate_field_is_400(client: httpx.Client) -> None:
    image = encode(photo(), "PNG")
    response = client.post(ROUTE, files=[("image", ("a.png", image, "image/png"))] * 2)
    assert_error(response, 400, "Duplicate form field 'image': send it once")


def test_non_multipart_body_is_415(client: httpx.Client) -> None:
    assert_error(client.post(ROUTE, json={"image": "aGVsbG8="}), 415)


def test_unknown_route_and_wrong_method_use_the_envelope(client: httpx.Client) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "No route /api/v1/nothing-here")
    assert_error(client.get(ROUTE), 405, f"Method GET is not allowed on {ROUTE}")
    assert_error(client.delete("/api/v1/health"), 405)


# --- health, stats, auth -------------------------------------------------------------------


def test_health_is_public_and_truthful(service: RunningService) -> None:
    response = httpx.get(f"{service.base_url}/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "model": "opencv",
        "device": "cpu",
        "gpu_available": False,
    }
    # Healthy means warm: BentoML's batching was trained before traffic (api/model_client.py).
    log = service.log()
    assert "Runner warmed up: 12 calls" in log
    # ... and quietly: at the info level the warm-up is that one line, not one per call.
    assert "path=/inpaint" not in log
    assert log.count("Accounts: embedded SQLite store at ") == 1


def test_requests_without_a_key_are_401(service: RunningService) -> None:
    anonymous = httpx.post(f"{service.base_url}{ROUTE}", files=upload(encode(photo(), "PNG")))
    assert_error(anonymous, 401, "Missing API Key. Please provide X-API-Key header.")
    wrong = httpx.get(f"{service.base_url}/api/v1/stats", headers={"X-API-Key": "sk_live_nope"})
    assert_error(wrong, 401, "Invalid API Key")


def test_stats_count_remove_watermark_requests(client: httpx.Client) -> None:
    before = client.get("/api/v1/stats").json()
    mask = encode(box_mask(96, 64, (4, 4, 20, 20)), "PNG")
    assert client.post(ROUTE, files=upload(encode(photo(), "PNG"), mask)).status_code == 200
    assert client.post(ROUTE, files=upload(b"not an image", mask)).status_code == 400
    after = client.get("/api/v1/stats")
    assert after.status_code == 200
    stats = after.json()
    for field in ("total", "success", "failed", "total_processing_time", "avg_processing_time"):
        assert field in stats
    assert stats["total"] == before["total"] + 2
    assert stats["success"] == before["success"] + 1
    assert stats["failed"] == before["failed"] + 1
    assert stats["total_processing_time"] > before["total_processing_time"]


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
