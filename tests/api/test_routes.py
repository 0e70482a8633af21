"""The v1 routes' contract, in process: the real app, middleware and OpenCV inpainter
(tests/api/inprocess.py), no `bentoml serve`. What needs the real server is in
tests/api/test_contract.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import WatermarkApi, create_app
from api.capacity import UploadSlots
from api.model_client import InProcessModels
from api.routing import (
    AUTHENTICATED,
    CHARGED_BY_HANDLER,
    PUBLIC,
    MissingRoutePolicy,
    Policy,
    PolicyTable,
    routes_of,
)
from auth.plans import PLANS
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings
from tests.api.inprocess import InProcessService, running_in_process
from tests.api.requests import ROUTE, assert_error, upload
from tests.images import box_mask, decode, encode, photo


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    with running_in_process(tmp_path_factory.mktemp("in-process")) as service:
        yield service


@pytest.fixture
def client(in_process: InProcessService) -> httpx.Client:
    return in_process.client


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


def test_missing_mask_is_a_clear_400_when_detection_is_off(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model="opencv", detection=False)
    with running_in_process(tmp_path, settings) as service:
        maskless = service.client.post(ROUTE, files=upload(encode(photo(), "JPEG")))
        detail = assert_error(maskless, 400)
        assert "mask is required" in detail
        image_only = {"image": ("a.png", encode(photo(), "PNG"), "image/png")}
        detect = service.client.post("/api/v1/detect", files=image_only)
        assert_error(detect, 404, "Detection disabled")
        assert service.client.get("/api/v1/health").json()["detector"] is None


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


@pytest.mark.parametrize(
    ("files", "detail"),
    [
        ({"mask": ("m.png", b"x", "image/png")}, "Missing required form field 'image'"),
        (
            {"file": ("a.jpg", b"x", "image/jpeg")},
            "Unexpected form field 'file': send 'image' and optionally 'mask', 'format', "
            "'watermark'",
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


def test_requests_without_a_key_are_401(in_process: InProcessService) -> None:
    anonymous = in_process.anonymous.post(ROUTE, files=upload(encode(photo(), "PNG")))
    assert_error(anonymous, 401, "Missing API Key. Please provide X-API-Key header.")
    wrong = in_process.anonymous.get("/api/v1/stats", headers={"X-API-Key": "sk_live_nope"})
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


def test_a_mistyped_route_is_404_before_any_key_is_asked_for(in_process: InProcessService) -> None:
    response = in_process.anonymous.post("/api/v1/remove-watermarks", files=upload(b"x"))
    assert_error(response, 404, "No route /api/v1/remove-watermarks")
    assert "X-RateLimit-Limit" not in response.headers


def test_every_route_declares_its_policy_beside_its_handler() -> None:
    app = create_app(InProcessModels(OpenCVInpainter()), accounts=None, settings=Settings())  # type: ignore[arg-type]
    declared = {
        (method, route.path): route.policy  # type: ignore[attr-defined]
        for route in app.routes
        for method in route.methods - {"HEAD"}  # type: ignore[attr-defined]
    }
    assert declared == {
        ("POST", "/api/v1/remove-watermark"): Policy(cost=1),
        ("POST", "/api/v1/detect"): Policy(cost=1),
        ("GET", "/api/v1/health"): PUBLIC,
        ("GET", "/api/v1/stats"): AUTHENTICATED,
        ("GET", "/api/v1/openapi.json"): PUBLIC,
        # Jobs: a submission spends what it queues (N for a batch of N), charged by its
        # handler once the form is read; jobs are counted when they end, not here.
        ("POST", "/api/v1/jobs"): Policy(cost=CHARGED_BY_HANDLER, counted=False),
        ("POST", "/api/v1/batch"): Policy(cost=CHARGED_BY_HANDLER, counted=False),
        ("GET", "/api/v1/jobs/{job_id}"): AUTHENTICATED,
        ("GET", "/api/v1/jobs/{job_id}/result"): AUTHENTICATED,
        ("POST", "/api/v1/jobs/{job_id}/cancel"): AUTHENTICATED,
        ("DELETE", "/api/v1/jobs/{job_id}"): AUTHENTICATED,
        ("GET", "/api/v1/batch/{batch_id}"): AUTHENTICATED,
        ("GET", "/api/v1/batch/{batch_id}/result"): AUTHENTICATED,
        # Watermark profiles: a new one costs 1 (a PNG) or one per image it is estimated
        # from, charged once the form is read; a 201 is no image processed, so not counted.
        ("POST", "/api/v1/watermarks"): Policy(cost=CHARGED_BY_HANDLER, counted=False),
        ("GET", "/api/v1/watermarks"): AUTHENTICATED,
        ("GET", "/api/v1/watermarks/{profile_id}"): AUTHENTICATED,
        ("DELETE", "/api/v1/watermarks/{profile_id}"): AUTHENTICATED,
        # The playground and the docs pages (api/pages.py).
        ("GET", "/"): PUBLIC,
        ("GET", "/docs"): PUBLIC,
        ("GET", "/docs/{file}"): PUBLIC,
        ("GET", "/playground"): PUBLIC,
        ("GET", "/playground/{file}"): PUBLIC,
    }


def test_an_api_whose_route_has_no_policy_does_not_start() -> None:
    class Careless(WatermarkApi):
        async def forgotten(self, request: Request) -> Response:
            return Response(b"")

    api = Careless(
        InProcessModels(OpenCVInpainter()),
        accounts=None,  # type: ignore[arg-type]
        settings=Settings(),
        profiles=None,  # type: ignore[arg-type]
        slots=UploadSlots(1),
    )
    routes = [*routes_of(api), Route("/api/v1/forgotten", api.forgotten)]
    with pytest.raises(MissingRoutePolicy, match="/api/v1/forgotten"):
        PolicyTable(routes)


def test_rate_limit_reset_means_full_again_on_a_200_and_admitted_again_on_a_429(
    in_process: InProcessService,
) -> None:
    headers = {"X-API-Key": in_process.new_key(PLANS["free"])}
    files = upload(encode(photo(), "PNG"), encode(box_mask(96, 64, (4, 4, 20, 20)), "PNG"))
    passed = [in_process.anonymous.post(ROUTE, files=files, headers=headers) for _ in range(5)]
    assert [response.status_code for response in passed] == [200] * 5
    now = time.time()
    # Five tokens spent at one token per 30 s: full again about 150 s from now.
    assert now + 140 <= int(passed[-1].headers["X-RateLimit-Reset"]) <= now + 151
    refused = in_process.anonymous.post(ROUTE, files=files, headers=headers)
    assert_error(refused, 429)
    retry_after = int(refused.headers["Retry-After"])
    assert abs(int(refused.headers["X-RateLimit-Reset"]) - (time.time() + retry_after)) <= 1.5
