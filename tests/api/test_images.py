"""Decoding uploads: formats, limits, colour modes, orientation, masks."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from api.images import decode_image, decode_mask, encode_png
from errors import BadRequest
from tests.images import box_mask, decode, encode, photo

MAX = 4096


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_decode_to_rgb(fmt: str) -> None:
    decoded = decode_image(encode(photo(40, 30), fmt), max_dimension=MAX)
    assert decoded.rgb.shape == (30, 40, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.alpha is None
    assert decoded.size == (40, 30)


def test_png_pixels_survive_exactly() -> None:
    pixels = photo(33, 17, seed=3)
    assert np.array_equal(decode_image(encode(pixels, "PNG"), max_dimension=MAX).rgb, pixels)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "Invalid image format: the image file is empty"),
        (b"hello, this is text", "Invalid image format: cannot identify image file"),
        (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "Invalid image format: cannot identify image file",
        ),
        (
            encode(photo(20, 20), "GIF"),
            "Invalid image format: GIF is not supported (use JPEG, PNG or WebP)",
        ),
        (
            encode(photo(20, 20), "BMP"),
            "Invalid image format: BMP is not supported (use JPEG, PNG or WebP)",
        ),
        (
            encode(photo(20, 20), "TIFF"),
            "Invalid image format: TIFF is not supported (use JPEG, PNG or WebP)",
        ),
    ],
)
def test_unsupported_or_unreadable_files_are_refused(data: bytes, detail: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_image(data, max_dimension=MAX)
    assert caught.value.detail == detail
    assert caught.value.status_code == 400


def test_truncated_jpeg_is_refused() -> None:
    data = encode(photo(200, 200), "JPEG", quality=95)
    with pytest.raises(BadRequest) as caught:
        decode_image(data[: len(data) // 2], max_dimension=MAX)
    assert caught.value.detail.startswith("Invalid image format: ")
    assert "truncated" in caught.value.detail


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` but carries (almost) no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(4097, 10), (10, 4097), (100000, 1), (60000, 60000)])
def test_dimensions_are_checked_from_the_header(width: int, height: int) -> None:
    # The data could never decode; the dimension check must answer before decoding is tried.
    with pytest.raises(BadRequest) as caught:
        decode_image(_png_header_only(width, height), max_dimension=MAX)
    assert caught.value.detail == "Image too large. Max dimension: 4096px"


def test_dimension_limit_is_a_setting() -> None:
    with pytest.raises(BadRequest, match="Max dimension: 32px"):
        decode_image(encode(photo(40, 20), "PNG"), max_dimension=32)


def test_animated_webp_is_refused() -> None:
    frames = [Image.fromarray(photo(20, 20, seed=i)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(BadRequest, match="animated images are not supported"):
        decode_image(buffer.getvalue(), max_dimension=MAX)


def test_grayscale_becomes_rgb() -> None:
    gray = photo(20, 10)[..., 0]
    decoded = decode_image(encode(Image.fromarray(gray, "L"), "PNG"), max_dimension=MAX)
    assert decoded.rgb.shape == (10, 20, 3)
    assert np.array_equal(decoded.rgb[..., 1], gray)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"), max_dimension=MAX)
    assert np.array_equal(decoded.rgb[..., 0], (values >> 8).astype(np.uint8))


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.fromarray(photo(24, 16)).convert("CMYK")
    decoded = decode_image(encode(cmyk, "JPEG"), max_dimension=MAX)
    assert decoded.rgb.shape == (16, 24, 3)
    assert decoded.alpha is None


def test_rgba_keeps_its_alpha() -> None:
    alpha = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))
    rgba = np.dstack([photo(16, 4), alpha])
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"), max_dimension=MAX)
    assert np.array_equal(decoded.alpha, alpha)
    assert np.array_equal(decoded.rgb, rgba[..., :3])


def test_palette_with_transparency_gets_alpha() -> None:
    palette_image = Image.fromarray(photo(16, 16)).convert(
        "P", palette=Image.Palette.ADAPTIVE, colors=8
    )
    palette_image.info["transparency"] = 0
    decoded = decode_image(encode(palette_image, "PNG", transparency=0), max_dimension=MAX)
    assert decoded.alpha is not None
    assert set(np.unique(decoded.alpha)) <= {0, 255}


def test_exif_orientation_is_applied() -> None:
    pixels = photo(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: viewers rotate 90 degrees clockwise
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif.tobytes(), quality=100)
    decoded = decode_image(data, max_dimension=MAX)
    assert decoded.size == (20, 40)


def test_mask_any_format_to_gray_and_resized() -> None:
    mask = box_mask(20, 10, (5, 2, 15, 8))
    gif_mask = encode(Image.fromarray(mask).convert("P"), "GIF")
    resized = decode_mask(gif_mask, size=(40, 20), max_dimension=MAX)
    assert resized.shape == (20, 40)
    assert resized.dtype == np.uint8
    assert resized[10, 20] == 255 and resized[0, 0] == 0


def test_transparent_mask_pixels_count_as_keep() -> None:
    # White everywhere, but opaque only in the box: only the box is to be removed.
    rgba = np.full((10, 20, 4), 255, dtype=np.uint8)
    rgba[..., 3] = box_mask(20, 10, (5, 2, 15, 8))
    mask = decode_mask(
        encode(Image.fromarray(rgba, "RGBA"), "PNG"), size=(20, 10), max_dimension=MAX
    )
    assert np.array_equal(mask, box_mask(20, 10, (5, 2, 15, 8)))


def test_mask_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(BadRequest) as caught:
        decode_mask(b"not an image", size=(10, 10), max_dimension=MAX)
    assert caught.value.detail == "Invalid mask format: cannot identify image file"


def test_png_output_round_trips_rgb_and_alpha() -> None:
    pixels, alpha = photo(12, 9), box_mask(12, 9, (0, 0, 6, 9), value=77)
    assert np.array_equal(np.asarray(decode(encode_png(pixels, None, None))), pixels)
    out = decode(encode_png(pixels, alpha, None))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)
