"""remove-watermark's result formats and the precision headers, in process.

OpenCV for the formats (fast); a tiny LaMa for what only a model with a precision shows:
the `X-Precision` header and health's `compute` field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from runners.devices import ComputePlan, Hardware, Precision, PrecisionPlan
from runners.hd_strategy import HdInpainter
from runners.lama.configs import TINY
from runners.lama.prepare import prepare_inpainter
from runners.lama.weights import random_network
from settings import Settings
from tests.api.inprocess import InProcessService, running_in_process
from tests.api.requests import ROUTE, assert_error, upload
from tests.images import box_mask, decode, encode, photo


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    with running_in_process(tmp_path_factory.mktemp("formats")) as service:
        yield service


@pytest.fixture
def client(in_process: InProcessService) -> httpx.Client:
    return in_process.client


def _files(format_field: str | None = None, *, alpha: bool = False) -> dict:
    pixels = photo(96, 64)
    picture = (
        Image.fromarray(np.dstack([pixels, np.full((64, 96), 200, np.uint8)]), "RGBA")
        if alpha
        else Image.fromarray(pixels)
    )
    files: dict = upload(encode(picture, "PNG"), encode(box_mask(96, 64, (10, 10, 40, 30)), "PNG"))
    if format_field is not None:
        files["format"] = (None, format_field)
    return files


@pytest.mark.parametrize(
    ("accept", "form", "media_type", "pillow_format"),
    [
        (None, None, "image/png", "PNG"),
        ("image/webp", None, "image/webp", "WEBP"),
        ("image/jpeg;q=0.9, image/png;q=0.5", None, "image/jpeg", "JPEG"),
        ("image/png", "webp", "image/webp", "WEBP"),
        (None, "jpeg", "image/jpeg", "JPEG"),
        ("application/json", None, "image/png", "PNG"),
    ],
)
def test_the_result_comes_in_the_negotiated_format(
    client: httpx.Client, accept: str | None, form: str | None, media_type: str, pillow_format: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.post(ROUTE, files=_files(form), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    assert response.headers["vary"] == "Accept"
    decoded = decode(response.content)
    assert decoded.format == pillow_format and decoded.size == (96, 64)


def test_jpeg_drops_the_alpha_channel_that_png_and_webp_keep(client: httpx.Client) -> None:
    modes = {}
    for form in ("png", "webp", "jpeg"):
        response = client.post(ROUTE, files=_files(form, alpha=True))
        assert response.status_code == 200, response.text
        modes[form] = decode(response.content).mode
    assert modes == {"png": "RGBA", "webp": "RGBA", "jpeg": "RGB"}


def test_an_unknown_format_field_is_400(client: httpx.Client) -> None:
    response = client.post(ROUTE, files=_files("gif"))
    assert_error(
        response, 400, "Unknown output format 'gif' in the 'format' field: use png, webp or jpeg"
    )


def test_an_accept_that_refuses_every_format_is_406(client: httpx.Client) -> None:
    response = client.post(ROUTE, files=_files(), headers={"Accept": "image/png;q=0, text/*"})
    detail = assert_error(response, 406)
    assert "image/png, image/webp, image/jpeg" in detail


def test_opencv_results_say_no_precision(client: httpx.Client) -> None:
    response = client.post(ROUTE, files=_files())
    assert response.status_code == 200
    assert response.headers["x-model"] == "opencv"
    assert "x-precision" not in response.headers
    assert client.get("/api/v1/health").json()["compute"] is None


@pytest.fixture(scope="module")
def lama_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    network = random_network(TINY, seed=7, weight_scale=0.5)
    plan = ComputePlan("cpu", PrecisionPlan(Precision.BF16, "test: bf16"), 1, Hardware())
    lama = prepare_inpainter(copy.deepcopy(network), TINY, plan, requested_precision="auto")
    data_dir: Path = tmp_path_factory.mktemp("lama")
    settings = Settings(data_dir=data_dir, model="lama")
    with running_in_process(data_dir, settings, inpainter=HdInpainter(lama)) as service:
        yield service


def test_lama_results_and_health_say_the_precision(lama_service: InProcessService) -> None:
    response = lama_service.client.post(ROUTE, files=_files())
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "lama"
    assert response.headers["x-precision"] == "bf16"
    compute = lama_service.client.get("/api/v1/health").json()["compute"]
    assert compute["precision"] == "bf16" and compute["requested"] == "auto"
    assert compute["parity"]["passed"] is True and compute["fallback"] is None
    assert compute["runtime"] == "native" and compute["compile"] == "off"
