"""Fixtures of the SDK end-to-end tests: clients of the session's real service, sample files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from iopaint_sdk import IOPaintClient

from tests.api.watermark_images import clean_photo, mark_rgba, stamped
from tests.images import box_mask, encode, text_on_photo
from tests.server import RunningService

WIDTH, HEIGHT = 160, 120
BOX = (40, 30, 100, 60)


@pytest.fixture
def sdk(service: RunningService, api_key: str) -> Iterator[IOPaintClient]:
    with IOPaintClient(api_key=api_key, base_url=service.base_url) as client:
        yield client


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    """A folder holding the files the documents' examples name: image.jpg, mask.png, ...

    The images carry a text watermark, so that the examples that send no mask find one;
    logo.png is a semi-transparent mark (RGBA) and marked.png a photo carrying it."""
    mask = encode(box_mask(WIDTH, HEIGHT, BOX), "PNG")
    (tmp_path / "mask.png").write_bytes(mask)
    for index, name in enumerate(["image.jpg", "img1.jpg", "img2.jpg", "photo.jpg"]):
        marked = text_on_photo(WIDTH * 3, HEIGHT * 3, f"PHOTO {index} STOCK")
        (tmp_path / name).write_bytes(encode(marked.resize((WIDTH, HEIGHT)), "JPEG"))
    logo = mark_rgba(width=WIDTH - 40, height=HEIGHT // 4)
    (tmp_path / "logo.png").write_bytes(encode(logo, "PNG"))
    photo = clean_photo(width=WIDTH, height=HEIGHT)
    (tmp_path / "marked.png").write_bytes(encode(stamped(photo, logo, at=(20, 40)), "PNG"))
    return tmp_path
