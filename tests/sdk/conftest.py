"""Fixtures of the SDK end-to-end tests: clients of the session's real service, sample files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from iopaint_sdk import IOPaintClient

from tests.images import box_mask, encode, photo
from tests.server import RunningService

WIDTH, HEIGHT = 160, 120
BOX = (40, 30, 100, 60)


@pytest.fixture
def sdk(service: RunningService, api_key: str) -> Iterator[IOPaintClient]:
    with IOPaintClient(api_key=api_key, base_url=service.base_url) as client:
        yield client


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A folder holding the files the documents' examples name: image.jpg, mask.png, ..."""
    mask = encode(box_mask(WIDTH, HEIGHT, BOX), "PNG")
    (tmp_path / "mask.png").write_bytes(mask)
    for index, name in enumerate(["image.jpg", "img1.jpg", "img2.jpg", "photo.jpg"]):
        (tmp_path / name).write_bytes(encode(photo(WIDTH, HEIGHT, seed=index), "JPEG"))
    return tmp_path


def route_served(service: RunningService, api_key: str, path: str) -> bool:
    """Whether the service has `path` at all: a GET answers 404 "No route ..." when not.

    A GET spends nothing: on a POST-only route it is a 405, on a missing one a 404.
    """
    response = httpx.get(service.base_url + path, headers={"X-API-Key": api_key}, timeout=30)
    if response.status_code != 404:
        return True
    return not str(response.json().get("detail", "")).startswith("No route")


def detection_served(service: RunningService, api_key: str) -> bool:
    """Whether remove-watermark runs without a mask (400 "A mask is required" until it does)."""
    image = encode(photo(32, 24), "PNG")
    response = httpx.post(
        service.base_url + "/api/v1/remove-watermark",
        headers={"X-API-Key": api_key},
        files={"image": ("image.png", image, "image/png")},
        timeout=120,
    )
    return not (response.status_code == 400 and "mask is required" in response.text)


NOT_SERVED = "{path} is not served by this build (404 No route); covered by MockTransport tests"
NO_DETECTION = (
    "this build requires a mask (400 'A mask is required'): automatic detection is not deployed"
)


@pytest.fixture
def require_route(service: RunningService, api_key: str):  # type: ignore[no-untyped-def]
    def check(path: str) -> None:
        if not route_served(service, api_key, path):
            pytest.skip(NOT_SERVED.format(path=path))

    return check


@pytest.fixture
def require_detection(service: RunningService, api_key: str) -> None:
    if not detection_served(service, api_key):
        pytest.skip(NO_DETECTION)
