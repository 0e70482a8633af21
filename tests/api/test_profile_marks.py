"""An estimated profile's PNG carries where its mark was seen; nothing else reads as a position."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from api.profile_marks import (
    ProfileMark,
    SeenAt,
    decode_profile_mark,
    encode_profile_png,
    seen_at_of,
)

RGBA = np.zeros((20, 30, 4), np.uint8)
RGBA[5:15, 5:25] = (250, 20, 30, 160)


def _png_with_text(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("seen-at", text)
    buffer = io.BytesIO()
    Image.fromarray(RGBA, mode="RGBA").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_the_position_and_the_pixels_travel_in_the_png() -> None:
    seen = SeenAt(x=120, y=48, image_width=640, image_height=480)
    mark = decode_profile_mark(encode_profile_png(RGBA, seen), max_dimension=4096, max_pixels=10**6)
    assert mark.seen_at == seen
    np.testing.assert_array_equal(mark.rgba, RGBA)


def test_an_uploaded_mark_has_no_position() -> None:
    assert seen_at_of(encode_profile_png(RGBA)) is None


@pytest.mark.parametrize("text", ["", "1,2,3", "a,b,c,d", "1,2,0,5", "1.5,2,3,4", "1,2,3,4,5"])
def test_a_chunk_that_does_not_parse_is_no_position(text: str) -> None:
    assert seen_at_of(_png_with_text(text)) is None


def test_a_chunk_that_parses_is_read_from_any_png() -> None:
    assert seen_at_of(_png_with_text("-3,7,800,600")) == SeenAt(-3, 7, 800, 600)


def test_the_corner_is_given_only_for_photos_of_the_size_it_was_seen_in() -> None:
    mark = ProfileMark(RGBA, SeenAt(x=10, y=20, image_width=300, image_height=200))
    assert mark.corner_in((300, 200)) == (20, 10)
    assert mark.corner_in((200, 300)) is None
    assert ProfileMark(RGBA).corner_in((300, 200)) is None
