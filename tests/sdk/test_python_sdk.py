"""The Python SDK against a real `bentoml serve` (OpenCV inpainter, its own stores)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from iopaint_sdk import (
    AsyncIOPaintClient,
    AuthenticationError,
    InvalidImageError,
    IOPaintClient,
    RateLimitError,
    UnprocessableError,
)
from PIL import Image

from tests.images import box_mask, decode, encode, photo
from tests.sdk.conftest import BOX, HEIGHT, WIDTH
from tests.server import RunningService, create_key

pytestmark = pytest.mark.e2e


def counting_http(counts: dict[int, int]) -> httpx.Client:
    def count(response: httpx.Response) -> None:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1

    return httpx.Client(timeout=120, event_hooks={"response": [count]})


def test_health_and_stats(sdk: IOPaintClient) -> None:
    health = sdk.health()
    assert health.healthy and health.model == "opencv" and health.device == "cpu"
    stats = sdk.stats()
    assert stats.plan == "enterprise"
    assert stats.total == stats.success + stats.failed
    assert stats.rate_limit.limit is not None


def test_remove_watermark_keeps_every_unmasked_pixel(sdk: IOPaintClient, tmp_path: Path) -> None:
    pixels = photo(WIDTH, HEIGHT, seed=11)
    mask = box_mask(WIDTH, HEIGHT, BOX)
    (tmp_path / "photo.png").write_bytes(encode(pixels, "PNG"))
    (tmp_path / "mask.png").write_bytes(encode(mask, "PNG"))
    result = sdk.remove_watermark(
        tmp_path / "photo.png", mask=tmp_path / "mask.png", output=tmp_path / "result.png"
    )
    assert result.image_size == (WIDTH, HEIGHT) and result.model == "opencv"
    assert result.processing_time is not None and result.request_id
    assert result.rate_limit.limit is not None
    assert (tmp_path / "result.png").read_bytes() == bytes(result)
    out = np.asarray(decode(bytes(result)))
    assert np.array_equal(out[mask == 0], pixels[mask == 0])
    assert not np.array_equal(out[mask == 255], pixels[mask == 255])


def test_pil_numpy_file_and_bytes_inputs_give_the_same_result(sdk: IOPaintClient) -> None:
    pixels = photo(64, 48, seed=4)
    mask = box_mask(64, 48, (10, 10, 30, 30))
    png = encode(pixels, "PNG")
    outputs = [
        sdk.remove_watermark(png, encode(mask, "PNG")),
        sdk.remove_watermark(io.BytesIO(png), mask > 0),
        sdk.remove_watermark(Image.fromarray(pixels), Image.fromarray(mask)),
        sdk.remove_watermark(pixels, mask),
    ]
    decoded = [np.asarray(decode(bytes(out))) for out in outputs]
    for other in decoded[1:]:
        assert np.array_equal(decoded[0], other)
    picture = sdk.remove_watermark(pixels, mask, as_pil=True)
    assert isinstance(picture, Image.Image) and np.array_equal(np.asarray(picture), decoded[0])


def test_documented_errors_become_their_classes(
    service: RunningService, sdk: IOPaintClient, samples: Path, api_key: str
) -> None:
    with pytest.raises(InvalidImageError) as caught:
        sdk.remove_watermark(b"this is not an image", mask=samples / "mask.png")
    assert caught.value.status_code == 400 and caught.value.request_id
    assert "Invalid image format" in caught.value.detail
    wrong = "sk_live_" + "A" * 38
    with (
        IOPaintClient(api_key=wrong, base_url=service.base_url) as stranger,
        pytest.raises(AuthenticationError) as refused,
    ):
        stranger.stats()
    assert refused.value.detail == "Invalid API Key"
    assert wrong not in str(refused.value) and api_key not in str(refused.value)


def test_the_key_stays_out_of_logs_and_errors(
    service: RunningService, api_key: str, samples: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    with IOPaintClient(api_key=api_key, base_url=service.base_url) as client:
        texts.append(repr(client))
        client.remove_watermark(samples / "image.jpg", mask=samples / "mask.png")
        with pytest.raises(InvalidImageError) as caught:
            client.remove_watermark(b"junk", mask=samples / "mask.png")
        texts += [str(caught.value), repr(caught.value), repr(vars(caught.value))]
    texts += [record.getMessage() for record in caplog.records]
    assert any("remove-watermark" in text for text in texts)  # httpx did log the requests
    assert all(api_key not in text and api_key[8:24] not in text for text in texts)


def test_batch_reports_each_image(sdk: IOPaintClient, samples: Path, tmp_path: Path) -> None:
    (samples / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    images = [samples / "img1.jpg", samples / "broken.jpg", samples / "img2.jpg"]
    results = sdk.batch_process(images, tmp_path / "out", masks=samples / "mask.png")
    assert [item.ok for item in results] == [True, False, True]
    assert isinstance(results[1].error, InvalidImageError)
    assert [item.output.name for item in results if item.output] == ["img1.png", "img2.png"]
    for item in results:
        if item.output:
            assert decode(item.output.read_bytes()).size == (WIDTH, HEIGHT)


def test_batch_paces_itself_on_a_tight_limit(
    service: RunningService, e2e_env: dict[str, str], samples: Path, tmp_path: Path
) -> None:
    """Burst 2, 120/min (a token every 0.5 s): 8 images, none refused to the caller."""
    key = create_key(
        e2e_env,
        plan="enterprise",
        name="sdk-pacing",
        limits=("--rate", "120", "--burst", "2", "--quota", "1000"),
    )
    counts: dict[int, int] = {}
    images = [samples / "img1.jpg"] * 8
    with counting_http(counts) as http:
        client = IOPaintClient(api_key=key, base_url=service.base_url, http_client=http)
        started = time.monotonic()
        results = client.batch_process(images, tmp_path / "out", masks=samples / "mask.png")
        wall = time.monotonic() - started
    assert all(item.ok for item in results), [str(item.error) for item in results]
    assert counts.get(200, 0) >= 8 + 1  # 8 images and the stats read
    print(
        f"8 images, burst 2, 120/min: {wall:.1f} s (minimum 3.0 s); "
        f"429s seen by the transport {counts.get(429, 0)}, surfaced 0"
    )


def test_spent_quota_is_raised_at_once_not_waited(
    service: RunningService, e2e_env: dict[str, str], samples: Path
) -> None:
    key = create_key(
        e2e_env,
        plan="enterprise",
        name="sdk-quota",
        limits=("--rate", "6000", "--burst", "100", "--quota", "2"),
    )
    counts: dict[int, int] = {}
    with counting_http(counts) as http:
        client = IOPaintClient(api_key=key, base_url=service.base_url, http_client=http)
        for _ in range(2):
            client.remove_watermark(samples / "image.jpg", mask=samples / "mask.png")
        with pytest.raises(RateLimitError) as caught:
            client.remove_watermark(samples / "image.jpg", mask=samples / "mask.png")
    refusal = caught.value
    assert refusal.quota_exceeded and "quota" in refusal.detail.lower()
    assert refusal.retry_after is not None and refusal.retry_after > 60
    assert refusal.limit == 100 and refusal.remaining == 0 and refusal.reset is not None
    assert counts.get(429) == 1  # not retried


def test_async_client_end_to_end(service: RunningService, api_key: str, samples: Path) -> None:
    async def scenario() -> tuple[str, bytes]:
        async with AsyncIOPaintClient(api_key=api_key, base_url=service.base_url) as client:
            health = await client.health()
            result = await client.remove_watermark(samples / "image.jpg", samples / "mask.png")
            results = await client.batch_process(
                [samples / "img1.jpg", samples / "img2.jpg"],
                samples / "async-out",
                masks=samples / "mask.png",
            )
            assert [item.ok for item in results] == [True, True]
            return health.status, bytes(result)

    status, png = asyncio.run(scenario())
    assert status == "healthy" and decode(png).size == (WIDTH, HEIGHT)


# --- detection, jobs and batches ---------------------------------------------------------


def test_remove_without_mask_detects(sdk: IOPaintClient, samples: Path, tmp_path: Path) -> None:
    reference = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "samples"
    image = reference / "watermark.jpg"
    if not image.exists():
        image = samples / "image.jpg"  # a generated photo with a text watermark
    try:
        result = sdk.remove_watermark(image, output=tmp_path / "result.png")
    except UnprocessableError as exc:  # nothing detected is a valid answer, but not for this photo
        pytest.fail(f"no watermark detected on the stock-photo sample: {exc}")
    assert result.mask_source == "detected" and (result.detected_regions or 0) > 0


def test_detect(sdk: IOPaintClient, samples: Path) -> None:
    detection = sdk.detect(samples / "image.jpg")
    assert detection.image_size == (WIDTH, HEIGHT)
    assert 0.0 <= detection.coverage <= 1.0
    mask = sdk.detect_mask(samples / "image.jpg", as_pil=True)
    assert mask.size == (WIDTH, HEIGHT)


def test_jobs(sdk: IOPaintClient, samples: Path, tmp_path: Path) -> None:
    job = sdk.jobs.submit(samples / "image.jpg", mask=samples / "mask.png", idempotency_key="e2e-1")
    again = sdk.jobs.submit(
        samples / "image.jpg", mask=samples / "mask.png", idempotency_key="e2e-1"
    )
    assert again.id == job.id  # the same key never makes a second job
    done = sdk.jobs.wait(job, timeout=120)
    assert done.status == "succeeded", done.error
    result = sdk.jobs.result(done, output=tmp_path / "job.png")
    assert decode(bytes(result)).size == (WIDTH, HEIGHT)
    with pytest.raises(UnprocessableError):
        sdk.jobs.submit(samples / "img2.jpg", mask=samples / "mask.png", idempotency_key="e2e-1")


def test_server_batch(sdk: IOPaintClient, samples: Path, tmp_path: Path) -> None:
    batch = sdk.batches.submit(
        [samples / "img1.jpg", samples / "img2.jpg"], masks=[samples / "mask.png"] * 2
    )
    done = sdk.batches.wait(batch, timeout=120)
    assert done.summary.get("succeeded") == 2
    archive = sdk.batches.result(done, output=tmp_path / "batch.zip")
    assert archive[:2] == b"PK"
