"""The result's format: the `format` field, else `Accept` with q-values, else PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from api.images import encode_jpeg, encode_png, encode_result, encode_webp
from api.output_format import OutputFormat, choose_output_format, negotiate, parse_accept
from errors import BadRequest, NotAcceptable

PNG, WEBP, JPEG = OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.JPEG


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, PNG),
        ("", PNG),
        ("*/*", PNG),
        ("image/*", PNG),
        ("image/png", PNG),
        ("image/webp", WEBP),
        ("image/jpeg", JPEG),
        ("IMAGE/WEBP", WEBP),
        ("image/webp, image/png", PNG),  # equal q, both named: the server's preference
        ("image/webp, image/*", WEBP),  # named outright beats reached by a wildcard
        ("image/webp,image/apng,image/*,*/*;q=0.8", WEBP),  # a browser's image Accept
        ("image/png;q=0.5, image/jpeg", JPEG),
        ("image/png;q=0.5, image/jpeg;q=0.4", PNG),
        ("image/*;q=0.5, image/webp;q=0.9", WEBP),
        ("image/*, image/png;q=0", WEBP),  # PNG refused, the wildcard allows the others
        ("application/json", PNG),  # names none of ours: the contract's default
        ("image/avif", PNG),
        ("application/json, image/jpeg;q=0.1", JPEG),
        ("image/webp;q=abc, image/jpeg;q=0.2", JPEG),  # a broken q counts as 0
        ("garbage, ;;, /, image/webp", WEBP),  # malformed items are skipped
    ],
)
def test_accept_negotiation(accept: str | None, expected: OutputFormat) -> None:
    assert negotiate(accept) is expected


@pytest.mark.parametrize("accept", ["image/png;q=0", "*/*;q=0", "image/*;q=0, text/html"])
def test_an_accept_refusing_every_format_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable, match="image/png, image/webp, image/jpeg"):
        negotiate(accept)


def test_the_form_field_wins_over_accept() -> None:
    assert choose_output_format("image/png", "webp") is WEBP
    assert choose_output_format("image/png;q=0", "png") is PNG
    assert choose_output_format(None, " JPG ") is JPEG
    assert choose_output_format("image/webp", None) is WEBP


def test_an_unknown_form_value_is_a_400_that_names_the_choices() -> None:
    with pytest.raises(BadRequest, match=r"Unknown output format 'gif'.*png, webp or jpeg"):
        choose_output_format(None, "gif")
    with pytest.raises(BadRequest) as raised:
        choose_output_format(None, "x" * 500)
    assert len(raised.value.detail) < 150


def test_parse_accept_reads_q_values() -> None:
    ranges = parse_accept("image/webp;q=0.7, image/*;Q=0.2, */*")
    assert [(r.type, r.subtype, r.q) for r in ranges] == [
        ("image", "webp", 0.7),
        ("image", "*", 0.2),
        ("*", "*", 1.0),
    ]


def _pixels(height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(4)
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([rows * 4, cols * 3, (rows + cols) * 2], axis=-1)
    return np.clip(base + rng.integers(0, 8, size=(height, width, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("output", list(OutputFormat))
def test_every_format_decodes_to_the_image_it_encoded(output: OutputFormat) -> None:
    rgb = _pixels()
    body = encode_result(output, rgb, None, None, webp_quality=90, jpeg_quality=90)
    decoded = Image.open(io.BytesIO(body))
    assert decoded.format == {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}[output.value]
    assert decoded.size == (64, 48)
    difference = np.abs(np.asarray(decoded.convert("RGB"), dtype=int) - rgb)
    assert difference.max() == 0 if output is PNG else difference.mean() < 4


def test_quality_is_applied() -> None:
    rgb = _pixels(96, 128)
    assert len(encode_jpeg(rgb, None, quality=30)) < len(encode_jpeg(rgb, None, quality=95))
    assert len(encode_webp(rgb, None, None, quality=30)) < len(
        encode_webp(rgb, None, None, quality=95)
    )


def test_webp_and_png_keep_alpha_and_the_colour_profile() -> None:
    rgb = _pixels()
    alpha = np.full(rgb.shape[:2], 77, np.uint8)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for body in (encode_png(rgb, alpha, profile), encode_webp(rgb, alpha, profile, quality=90)):
        decoded = Image.open(io.BytesIO(body))
        assert decoded.mode == "RGBA"
        assert np.asarray(decoded)[..., 3].max() == 77
        assert decoded.info.get("icc_profile") == profile
    jpeg = Image.open(io.BytesIO(encode_jpeg(rgb, profile, quality=90)))
    assert jpeg.mode == "RGB" and jpeg.info.get("icc_profile") == profile
