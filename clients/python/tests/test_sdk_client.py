"""The sync client against a scripted API on httpx.MockTransport: requests, results, errors."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest
from fake_api import (
    BASE_URL,
    KEY,
    PNG_SIGNATURE,
    FakeApi,
    error,
    image_response,
    json_response,
    multipart_parts,
    png_bytes,
)
from PIL import Image

import iopaint_sdk
from iopaint_sdk import (
    APIError,
    AuthenticationError,
    ConflictError,
    GoneError,
    ImageResult,
    InternalServerError,
    InvalidImageError,
    IOPaintClient,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    UnprocessableError,
)

# --- requests ------------------------------------------------------------------------------


def test_remove_watermark_sends_image_mask_and_key(tmp_path: Path) -> None:
    image, mask = tmp_path / "photo.jpg", tmp_path / "mask.png"
    image.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    mask.write_bytes(png_bytes())
    api = FakeApi([image_response()])
    with api.client() as client:
        result = client.remove_watermark(image, mask=mask)
    (request,) = api.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}/api/v1/remove-watermark"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["user-agent"].startswith("iopaint-sdk-python/")
    parts = multipart_parts(request)
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("image", "photo.jpg", "image/jpeg"),
        ("mask", "mask.png", "image/png"),
    ]
    assert parts[0].content == image.read_bytes()
    assert parts[1].content == mask.read_bytes()
    assert isinstance(result, ImageResult) and isinstance(result, bytes)
    assert result.startswith(PNG_SIGNATURE)
    assert result.processing_time == 0.125
    assert result.image_size == (8, 6)
    assert result.model == "opencv"
    assert result.request_id == "req-ok"


def test_without_mask_only_the_image_is_sent() -> None:
    api = FakeApi([image_response(X_Mask_Source="detected", X_Detected_Regions="3")])
    with api.client() as client:
        result = client.remove_watermark(png_bytes())
    assert [part.name for part in multipart_parts(api.requests[0])] == ["image"]
    assert result.mask_source == "detected" and result.detected_regions == 3


@pytest.mark.parametrize("kind", ["bytes", "file", "pil", "numpy", "numpy-bool-mask"])
def test_every_input_kind_is_uploaded(kind: str, tmp_path: Path) -> None:
    pixels = np.zeros((6, 8, 3), np.uint8)
    pixels[:, :, 0] = 200
    png = png_bytes(8, 6, (200, 0, 0))
    mask: object = None
    if kind == "bytes":
        image: object = png
    elif kind == "file":
        path = tmp_path / "named.png"
        path.write_bytes(png)
        image = path.open("rb")
    elif kind == "pil":
        image = Image.fromarray(pixels)
    else:
        image = pixels
        if kind == "numpy-bool-mask":
            mask = np.zeros((6, 8), bool)
            mask[1:3, 2:5] = True
    api = FakeApi([image_response()])
    with api.client() as client:
        client.remove_watermark(image, mask)
    parts = multipart_parts(api.requests[0])
    sent = Image.open(io.BytesIO(parts[0].content))
    assert sent.size == (8, 6)
    assert np.array_equal(np.asarray(sent.convert("RGB")), pixels)
    assert parts[0].content_type == "image/png"
    if kind == "file":
        assert parts[0].filename == "named.png"
        image.close()  # type: ignore[attr-defined]
    if kind == "numpy-bool-mask":
        sent_mask = np.asarray(Image.open(io.BytesIO(parts[1].content)))
        assert set(np.unique(sent_mask)) == {0, 255}
        assert sent_mask[1:3, 2:5].min() == 255 and sent_mask.sum() == 255 * 6


def test_unsupported_inputs_are_refused_before_sending() -> None:
    api = FakeApi()
    with api.client() as client:
        with pytest.raises(TypeError, match="cannot send int"):
            client.remove_watermark(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="8-bit"):
            client.remove_watermark(np.zeros((4, 4), np.float32))
        with pytest.raises(TypeError, match="binary mode"):
            client.remove_watermark(io.StringIO("text"))  # type: ignore[arg-type]
        with pytest.raises(FileNotFoundError):
            client.remove_watermark("does-not-exist.jpg")
    assert api.requests == []


def test_outputs_bytes_file_path_file_object_and_pil(tmp_path: Path) -> None:
    png = png_bytes(8, 6, (10, 200, 10))
    api = FakeApi(default=lambda request: image_response(png))
    target = tmp_path / "deep" / "result.png"
    with api.client() as client:
        written = client.remove_watermark(png, output=target)
        assert target.read_bytes() == png == bytes(written)
        assert written.path == target
        buffer = io.BytesIO()
        client.remove_watermark(png, output=buffer)
        assert buffer.getvalue() == png
        picture = client.remove_watermark(png, as_pil=True)
        assert isinstance(picture, Image.Image) and picture.size == (8, 6)
        assert picture.getpixel((0, 0)) == (10, 200, 10)
        assert client.remove_watermark(png).to_pil().size == (8, 6)


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOPAINT_API_KEY", KEY)
    monkeypatch.setenv("IOPAINT_BASE_URL", "http://env.test:9000/")
    api = FakeApi([json_response({"status": "healthy"})])
    client = IOPaintClient(http_client=httpx.Client(transport=httpx.MockTransport(api)))
    client.health()
    assert str(api.requests[0].url) == "http://env.test:9000/api/v1/health"
    assert api.requests[0].headers["x-api-key"] == KEY
    explicit = IOPaintClient(api_key="sk_test_other", base_url="http://arg.test")
    assert explicit.base_url == "http://arg.test"
    explicit.close()
    monkeypatch.delenv("IOPAINT_BASE_URL")
    assert IOPaintClient().base_url == "http://localhost:8080"


def test_a_missing_key_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IOPAINT_API_KEY", raising=False)
    api = FakeApi([error(401, "Missing API Key. Please provide X-API-Key header.")])
    with api.client(api_key=None) as client, pytest.raises(AuthenticationError) as caught:
        client.stats()
    assert "x-api-key" not in api.requests[0].headers
    assert "IOPAINT_API_KEY" in str(caught.value)


# --- the key stays secret -------------------------------------------------------------------


def test_the_key_is_in_no_repr_exception_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = FakeApi(
        [
            error(401, "Invalid API Key"),
            error(429, "Daily quota of 10 requests exceeded", Retry_After="28800"),
            httpx.ConnectError("connection refused"),
            httpx.ConnectError("connection refused"),
            httpx.ConnectError("connection refused"),
            httpx.ConnectError("connection refused"),
        ]
    )
    client = api.client()
    texts = [repr(client), str(client)]
    for call in (client.stats, lambda: client.remove_watermark(b"x"), client.stats):
        with pytest.raises(iopaint_sdk.IOPaintError) as caught:
            call()
        error_ = caught.value
        texts += [str(error_), repr(error_), repr(error_.__dict__), repr(error_.__cause__)]
        texts += [repr(error_.__context__)] if error_.__suppress_context__ is False else []
    texts += [record.getMessage() for record in caplog.records]
    assert len(api.requests) == 6
    assert "sk_live_***" in repr(client)
    for text in texts:
        assert KEY not in text
        assert KEY[8:20] not in text


def test_async_client_repr_hides_the_key() -> None:
    client = iopaint_sdk.AsyncIOPaintClient(api_key=KEY)
    assert KEY not in repr(client) and "sk_live_***" in repr(client)


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidImageError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (410, GoneError),
        (413, PayloadTooLargeError),
        (422, UnprocessableError),
        (500, InternalServerError),
    ],
)
def test_each_documented_status_raises_its_class_without_retry(
    status: int, cls: type[APIError]
) -> None:
    api = FakeApi(default=lambda request: error(status, f"detail for {status}"))
    with api.client() as client, pytest.raises(cls) as caught:
        client.remove_watermark(png_bytes())
    assert len(api.requests) == 1  # 4xx other than 429, and 500, are never retried
    exc = caught.value
    assert exc.status_code == status
    assert exc.detail == f"detail for {status}"
    assert exc.request_id == f"req-{status}"
    assert exc.error and str(status) in str(exc)
    assert isinstance(exc, APIError) and isinstance(exc, iopaint_sdk.IOPaintError)


def test_payload_too_large_is_an_invalid_image_error() -> None:
    assert issubclass(PayloadTooLargeError, InvalidImageError)


def test_rate_limit_error_carries_the_headers() -> None:
    api = FakeApi(
        [
            error(
                429,
                "Daily quota of 10 requests exceeded; resets at 2025-11-25T00:00:00Z.",
                Retry_After="28800",
                X_RateLimit_Limit="5",
                X_RateLimit_Remaining="0",
                X_RateLimit_Reset="1764028800",
            )
        ]
    )
    with api.client() as client, pytest.raises(RateLimitError) as caught:
        client.remove_watermark(png_bytes())
    exc = caught.value
    assert (exc.retry_after, exc.limit, exc.remaining, exc.reset) == (28800, 5, 0, 1764028800)
    assert exc.quota_exceeded
    assert len(api.requests) == 1  # a quota refusal is not waited out


def test_an_error_body_that_is_not_the_envelope_still_makes_a_readable_error() -> None:
    api = FakeApi([httpx.Response(502, text="<html>bad gateway</html>")] * 5)
    with api.client() as client, pytest.raises(APIError) as caught:
        client.stats()
    assert caught.value.status_code == 502
    assert "bad gateway" in caught.value.detail


def test_errors_survive_pickling() -> None:
    import pickle

    original = RateLimitError(429, "Too Many Requests", "slow down", headers={"Retry-After": "3"})
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is RateLimitError and copy.retry_after == 3 and str(copy) == str(original)


# --- health, stats, detect ---------------------------------------------------------------------


def test_health_reports_unhealthy_without_retrying() -> None:
    body = {
        "status": "unhealthy",
        "model": "lama",
        "device": "cpu",
        "gpu_available": False,
        "detail": "Warming up the model runner",
    }
    api = FakeApi([json_response(body, status=503)])
    with api.client() as client:
        health = client.health()
    assert len(api.requests) == 1
    assert not health.healthy and health.detail == "Warming up the model runner"
    assert health.raw == body


def test_stats_are_typed() -> None:
    body = {
        "total": 12,
        "success": 10,
        "failed": 2,
        "total_processing_time": 15.5,
        "avg_processing_time": 1.55,
        "plan": "free",
        "quota": {"used": 12, "limit": 10, "period": "day", "resets_at": 1764028800},
        "rate_limited": 3,
    }
    api = FakeApi([json_response(body, X_RateLimit_Limit="5", X_RateLimit_Remaining="4")])
    with api.client() as client:
        stats = client.stats()
    assert api.requests[0].url.path == "/api/v1/stats"
    assert (stats.total, stats.success, stats.failed, stats.plan) == (12, 10, 2, "free")
    assert stats.quota is not None and stats.quota.period == "day"
    assert stats.rate_limit.limit == 5 and stats.rate_limit.remaining == 4


DETECTION = {
    "regions": [
        {
            "kind": "text",
            "box": {"x": 4, "y": 5, "width": 30, "height": 8},
            "outline": [[4, 5], [34, 5], [34, 13], [4, 13]],
            "score": 0.91,
            "text": "SAMPLE",
        }
    ],
    "coverage": 0.042,
    "image_size": {"width": 64, "height": 48},
    "processing_time": 0.2,
    "mask_url": None,
}


def test_detect_parses_regions_and_detect_mask_asks_for_png(tmp_path: Path) -> None:
    mask_png = png_bytes(64, 48, (255, 255, 255))
    api = FakeApi(
        [
            json_response(DETECTION),
            httpx.Response(200, content=mask_png, headers={"Content-Type": "image/png"}),
        ]
    )
    with api.client() as client:
        detection = client.detect(png_bytes())
        mask = client.detect_mask(png_bytes(), output=tmp_path / "mask.png")
    first, second = api.requests
    assert first.url.path == second.url.path == "/api/v1/detect"
    assert first.headers["accept"] == "application/json"
    assert second.headers["accept"] == "image/png"
    (region,) = detection.regions
    assert region.kind == "text" and region.box.width == 30 and region.text == "SAMPLE"
    assert region.outline[1] == (34, 5)
    assert detection.coverage == 0.042 and detection.image_size == (64, 48)
    assert (tmp_path / "mask.png").read_bytes() == mask_png == bytes(mask)


def test_image_results_survive_pickling() -> None:
    import pickle

    api = FakeApi([image_response()])
    with api.client() as client:
        result = client.remove_watermark(png_bytes())
    copy = pickle.loads(pickle.dumps(result))
    assert bytes(copy) == bytes(result) and copy.image_size == (8, 6) and copy.model == "opencv"


def test_the_error_tree_in_the_docstring_names_every_error_class() -> None:
    import inspect

    from iopaint_sdk import errors

    tree = iopaint_sdk.__doc__ or ""
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.IOPaintError) and cls.__module__ == errors.__name__
    ]
    assert len(classes) >= 15
    assert "\n    IOPaintError " in tree  # the root
    for cls in classes:
        if cls is not errors.IOPaintError:
            assert f"── {cls.__name__} " in tree, cls.__name__
        assert getattr(iopaint_sdk, cls.__name__) is cls  # exported at the top
