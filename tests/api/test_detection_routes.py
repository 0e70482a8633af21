"""Detection through the routes, in process, with the real detector (its packaged models):
`/api/v1/detect` and remove-watermark without a mask."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.api.contract_schemas import contract_validator
from tests.api.inprocess import InProcessService, running_in_process
from tests.api.requests import ROUTE, assert_error, upload
from tests.images import box_mask, decode, encode, photo, text_on_photo

DETECT = "/api/v1/detect"
MARKED = encode(text_on_photo(480, 320, "STOCK PHOTO"), "PNG")
CLEAN = encode(photo(480, 320, seed=3), "PNG")


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    with running_in_process(tmp_path_factory.mktemp("detection")) as service:
        yield service


@pytest.fixture
def client(in_process: InProcessService) -> httpx.Client:
    return in_process.client


def image_only(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("photo.png", data, "image/png")}


def test_detect_finds_text_and_answers_in_the_documented_shape(client: httpx.Client) -> None:
    response = client.post(DETECT, files=image_only(MARKED))
    assert response.status_code == 200, response.text
    body = response.json()
    contract_validator("DetectResponse").validate(body)
    assert body["image_size"] == {"width": 480, "height": 320}
    texts = [region for region in body["regions"] if region["kind"] == "text"]
    assert texts, body
    region = texts[0]
    assert "STOCK" in (region["text"] or "").upper()
    box = region["box"]
    assert 0 <= box["x"] < 480 and 0 <= box["y"] < 320 and box["width"] > 0
    assert 0 < body["coverage"] < 0.5
    assert response.headers["X-Detected-Regions"] == str(len(body["regions"]))
    assert response.headers["X-Image-Size"] == "480x320"
    assert response.headers["X-Detector"] == "watermark-detector"
    assert float(response.headers["X-Processing-Time"]) >= 0


def test_the_png_mask_is_the_mask_remove_watermark_takes(client: httpx.Client) -> None:
    answer = client.post(DETECT, files=image_only(MARKED), headers={"Accept": "image/png"})
    assert (answer.status_code, answer.headers["content-type"]) == (200, "image/png")
    mask = decode(answer.content)
    assert (mask.mode, mask.size) == ("L", (480, 320))
    pixels = np.asarray(mask)
    assert set(np.unique(pixels)) <= {0, 255} and pixels.any()
    with_json = client.post(f"{DETECT}?include=mask", files=image_only(MARKED)).json()
    assert np.array_equal(np.asarray(decode(base64.b64decode(with_json["mask_png"]))), pixels)
    removed = client.post(ROUTE, files=upload(MARKED, answer.content))
    assert removed.status_code == 200, removed.text
    assert removed.headers["X-Mask-Source"] == "uploaded"
    assert "X-Detected-Regions" not in removed.headers
    original = np.asarray(decode(MARKED).convert("RGB"))
    result = np.asarray(decode(removed.content))
    assert np.array_equal(result[pixels == 0], original[pixels == 0])
    assert not np.array_equal(result[pixels > 0], original[pixels > 0])


def test_remove_watermark_without_a_mask_detects_then_removes(client: httpx.Client) -> None:
    removed = client.post(ROUTE, files=upload(MARKED))
    assert removed.status_code == 200, removed.text
    assert removed.headers["content-type"] == "image/png"
    assert removed.headers["X-Mask-Source"] == "detected"
    assert int(removed.headers["X-Detected-Regions"]) >= 1
    mask_png = client.post(DETECT, files=image_only(MARKED), headers={"Accept": "image/png"})
    detected = np.asarray(decode(mask_png.content))
    original = np.asarray(decode(MARKED).convert("RGB"))
    result = np.asarray(decode(removed.content))
    assert np.array_equal(result[detected == 0], original[detected == 0])
    assert not np.array_equal(result[detected > 0], original[detected > 0])


def test_without_a_mask_a_photo_with_no_watermark_is_422_not_a_copy(client: httpx.Client) -> None:
    found = client.post(DETECT, files=image_only(CLEAN))
    assert (found.status_code, found.json()["regions"], found.json()["coverage"]) == (200, [], 0.0)
    refused = client.post(ROUTE, files=upload(CLEAN))
    detail = assert_error(refused, 422)
    assert detail == (
        "No watermark was found in the image. Send a 'mask' file (white = remove, "
        "black = keep) to say what to remove."
    )
    tiny = client.post(ROUTE, files=upload(encode(photo(6, 5), "PNG")))
    assert_error(tiny, 422)


def test_detect_refuses_what_it_cannot_read_in_the_envelope(client: httpx.Client) -> None:
    assert_error(client.post(DETECT, files=image_only(b"not an image")), 400)
    mask = encode(box_mask(8, 8, (1, 1, 4, 4)), "PNG")
    with_mask = {**image_only(MARKED), "mask": ("m.png", mask, "image/png")}
    refused = client.post(DETECT, files=with_mask)
    assert_error(refused, 400, "Unexpected form field 'mask': send 'image'")
    assert_error(client.post(DETECT, files={"file": ("a.png", MARKED, "image/png")}), 400)
    assert_error(client.post(DETECT, json={"image": "x"}), 415)


def test_detection_is_a_counted_request_of_the_plan(in_process: InProcessService) -> None:
    before = in_process.client.get("/api/v1/stats").json()
    assert in_process.client.post(DETECT, files=image_only(CLEAN)).status_code == 200
    after = in_process.client.get("/api/v1/stats").json()
    assert (after["total"], after["success"]) == (before["total"] + 1, before["success"] + 1)
    assert after["quota"]["used"] == before["quota"]["used"] + 1
    anonymous = in_process.anonymous.post(DETECT, files=image_only(CLEAN))
    assert_error(anonymous, 401)


def test_health_names_the_detector_and_its_checked_model_files(client: httpx.Client) -> None:
    detector = client.get("/api/v1/health").json()["detector"]
    assert detector["name"] == "watermark-detector" and detector["device"] == "cpu"
    names = {model["name"] for model in detector["models"]}
    assert {"PP-OCRv6_det_small", "PP-OCRv6_rec_small", "mark-segmenter"} <= names
    assert all(len(model["sha256"]) == 64 for model in detector["models"])
