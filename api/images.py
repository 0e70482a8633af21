"""Turning uploaded bytes into pixels the model can use, and pixels back into PNG, WebP or JPEG.

Everything happens in memory. Sizes are checked from the file header before any
pixel is decoded, so a small file that claims huge dimensions costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from api.output_format import OutputFormat
from errors import BadRequest
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid

ACCEPTED_IMAGE_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
"""Pillow format name -> the name we report. MPO is how Pillow names multi-picture JPEGs
(many phone photos); their first picture is the photo itself."""

# zlib's fastest level: encoding is a large share of a big image's request, and the files
# grow only a little over the default level. No faster setting keeps every file within 10 %
# of this one's size: zlib's run-length strategy is faster and mostly smaller, but larger
# by more than that on JPEG-decoded noise (docs/testing.md, "Measured choices").
PNG_COMPRESS_LEVEL = 1
# libwebp's method 2 of 0-6: the default 4 spends about three times as long for files no
# more than a few percent smaller (docs/testing.md, "Measured choices").
WEBP_METHOD = 2

_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError)


@dataclass(frozen=True)
class DecodedImage:
    """An upload as the model sees it, plus what is needed to give it back faithfully."""

    rgb: np.ndarray
    """``(H, W, 3)`` ``uint8``, EXIF orientation applied."""
    alpha: np.ndarray | None
    """``(H, W)`` ``uint8`` when the upload had transparency; returned unchanged."""
    icc_profile: bytes | None
    """Colour profile of the RGB pixels, carried over into the result."""
    chroma: ChromaGrid = FULL_CHROMA
    """Where a JPEG kept its (subsampled) colour samples, on the oriented pixels: de-blending
    a mark follows the decoder's smearing of its colours."""

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the pixels, after orientation."""
        return self.rgb.shape[1], self.rgb.shape[0]


def decode_image(data: bytes, *, max_dimension: int) -> DecodedImage:
    """Decode an uploaded photo (JPEG, PNG or WebP) or raise `BadRequest`."""
    picture = _open_checked(data, max_dimension=max_dimension, formats=ACCEPTED_IMAGE_FORMATS)
    chroma = _chroma_grid(picture)
    oriented = _oriented(picture)
    if oriented is not picture:
        chroma = _reoriented(chroma, picture)
    icc_profile = oriented.info.get("icc_profile") if oriented.mode in ("RGB", "RGBA") else None
    rgb, alpha = _split_rgb_alpha(oriented)
    return DecodedImage(rgb=rgb, alpha=alpha, icc_profile=icc_profile, chroma=chroma)


def decode_mask(data: bytes, *, size: tuple[int, int], max_dimension: int) -> np.ndarray:
    """Decode any image Pillow can read into an 8-bit gray mask of `size` ``(width, height)``.

    Transparency counts as black (keep): a mask drawn as white strokes on a transparent
    layer means "remove the strokes", whatever colour the transparent pixels hold.
    A mask of another size is resized to the image (bilinear, so edges blend).
    """
    picture = _oriented(_open_checked(data, max_dimension=max_dimension, formats=None, what="mask"))
    gray = _to_gray_over_black(picture)
    if gray.size != size:
        gray = gray.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def encode_result(
    output: OutputFormat,
    rgb: np.ndarray,
    alpha: np.ndarray | None,
    icc_profile: bytes | None,
    *,
    webp_quality: int,
    jpeg_quality: int,
) -> bytes:
    """The response body in `output` (`api.output_format` chose it)."""
    if output is OutputFormat.WEBP:
        return encode_webp(rgb, alpha, icc_profile, quality=webp_quality)
    if output is OutputFormat.JPEG:
        return encode_jpeg(rgb, icc_profile, quality=jpeg_quality)
    return encode_png(rgb, alpha, icc_profile)


def encode_png(rgb: np.ndarray, alpha: np.ndarray | None, icc_profile: bytes | None) -> bytes:
    """The response body: RGB, or RGBA when the upload had an alpha channel."""
    return _save(_picture(rgb, alpha), "PNG", icc_profile, compress_level=PNG_COMPRESS_LEVEL)


def encode_webp(
    rgb: np.ndarray, alpha: np.ndarray | None, icc_profile: bytes | None, *, quality: int
) -> bytes:
    """Lossy WebP at `quality` (1-100); the alpha channel, when there is one, kept."""
    return _save(_picture(rgb, alpha), "WEBP", icc_profile, quality=quality, method=WEBP_METHOD)


def encode_jpeg(rgb: np.ndarray, icc_profile: bytes | None, *, quality: int) -> bytes:
    """Baseline JPEG at `quality` (1-100). JPEG has no alpha: callers drop it knowingly."""
    return _save(_picture(rgb, None), "JPEG", icc_profile, quality=quality)


def _picture(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    pixels = rgb if alpha is None else np.dstack([rgb, alpha])
    return Image.fromarray(pixels, mode="RGB" if alpha is None else "RGBA")


def _save(picture: Image.Image, fmt: str, icc_profile: bytes | None, **options: object) -> bytes:
    buffer = io.BytesIO()
    if icc_profile:
        options["icc_profile"] = icc_profile
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A ``(H, W)`` uint8 mask as an 8-bit gray PNG (white = remove), ready to be sent back
    as the `mask` of a remove-watermark request."""
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def decode_watermark_png(data: bytes, *, max_dimension: int, max_pixels: int) -> np.ndarray:
    """A watermark profile's PNG as ``(h, w, 4)`` uint8 RGBA, or `BadRequest`: it must be a
    PNG with transparency (the mark's opacity), within the size caps, and not fully clear."""
    picture = _open_checked(
        data, max_dimension=max_dimension, formats=None, what="watermark", max_pixels=max_pixels
    )
    if picture.format != "PNG":
        raise BadRequest(
            f"Invalid watermark format: {picture.format} is not supported (send a PNG with "
            "transparency)"
        )
    if not _has_alpha(picture):
        raise BadRequest(
            "Invalid watermark format: the PNG has no alpha channel; the mark's opacity must "
            "be its transparency (RGBA)"
        )
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.uint8)
    if not rgba[..., 3].any():
        raise BadRequest("Invalid watermark format: every pixel is fully transparent")
    return np.ascontiguousarray(rgba)


def _open_checked(
    data: bytes,
    *,
    max_dimension: int,
    formats: dict[str, str] | None,
    what: str = "image",
    max_pixels: int | None = None,
) -> Image.Image:
    """Open, check format and dimensions from the header, then decode the pixels.

    `what` ("image" or "mask") names the upload in every error, so a client sending
    both knows which file was wrong.
    """
    invalid = f"Invalid {what} format"
    too_large = f"{what.capitalize()} too large. Max dimension: {max_dimension}px"
    if not data:
        raise BadRequest(f"{invalid}: the {what} file is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns (rather than raises) on some malformed files; treat that as a failure.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadRequest(f"{invalid}: cannot identify image file") from None
    except Image.DecompressionBombError:
        # Pillow refuses at open beyond ~179M pixels, which is always over our dimension limit.
        raise BadRequest(too_large) from None
    except (*_DECODE_ERRORS, Image.DecompressionBombWarning) as exc:
        raise BadRequest(f"{invalid}: {_error_text(exc)}") from None

    if formats is not None and picture.format not in formats:
        raise BadRequest(f"{invalid}: {picture.format} is not supported (use JPEG, PNG or WebP)")
    width, height = picture.size
    if width > max_dimension or height > max_dimension:
        raise BadRequest(too_large)
    if max_pixels is not None and width * height > max_pixels:
        raise BadRequest(
            f"{what.capitalize()} too large: {width}x{height} is over {max_pixels} pixels; "
            f"crop it to the mark"
        )
    if width == 0 or height == 0:
        raise BadRequest(f"{invalid}: the {what} has no pixels")
    if picture.format != "MPO" and getattr(picture, "n_frames", 1) > 1:
        raise BadRequest(f"{invalid}: animated images are not supported")
    try:
        picture.load()
    except _DECODE_ERRORS as exc:
        raise BadRequest(f"{invalid}: {_error_text(exc)}") from None
    return picture


def _chroma_grid(picture: Image.Image) -> ChromaGrid:
    """The colour samples' grid of a YCbCr JPEG, from its components' sampling factors
    (luma's over chroma's); every pixel its own for any other file."""
    layers = getattr(picture, "layer", None)
    if picture.format not in ("JPEG", "MPO") or picture.mode != "RGB" or not layers:
        return FULL_CHROMA
    if len(layers) != 3:
        return FULL_CHROMA
    (_, luma_h, luma_v, _), (_, cb_h, cb_v, _) = layers[0], layers[1]
    if cb_h <= 0 or cb_v <= 0 or luma_h % cb_h or luma_v % cb_v:
        return FULL_CHROMA
    return ChromaGrid(step=(luma_v // cb_v, luma_h // cb_h))


def _reoriented(chroma: ChromaGrid, stored: Image.Image) -> ChromaGrid:
    """`chroma` (on the stored pixels) as seen after the EXIF orientation is applied: a
    flip moves the blocks' start by the length's remainder, a transposition swaps axes."""
    if not chroma.subsampled:
        return chroma
    try:
        orientation = int(stored.getexif().get(0x0112, 1))
    except _DECODE_ERRORS:
        return chroma
    # Orientation -> (transpose first, then flip columns, flip rows), on the transposed axes.
    moves = {
        2: (False, True, False),
        3: (False, True, True),
        4: (False, False, True),
        5: (True, False, False),
        6: (True, True, False),
        7: (True, True, True),
        8: (True, False, True),
    }
    if orientation not in moves:
        return chroma
    transpose, flip_columns, flip_rows = moves[orientation]
    (step_y, step_x), (height, width) = chroma.step, (stored.height, stored.width)
    if transpose:
        step_y, step_x, height, width = step_x, step_y, width, height
    return ChromaGrid(
        step=(step_y, step_x),
        origin=(height % step_y if flip_rows else 0, width % step_x if flip_columns else 0),
    )


def _oriented(picture: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so pixels are as the user sees them."""
    try:
        return ImageOps.exif_transpose(picture)
    except _DECODE_ERRORS:
        # A broken EXIF block says nothing reliable about orientation; keep the stored pixels.
        return picture


def _split_rgb_alpha(picture: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if picture.mode in _WIDE_GRAY_MODES:
        picture = Image.fromarray(_sixteen_bit_to_eight(picture), mode="L")
    if _has_alpha(picture):
        rgba = np.asarray(picture.convert("RGBA"), dtype=np.uint8)
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    return np.asarray(picture.convert("RGB"), dtype=np.uint8), None


def _to_gray_over_black(picture: Image.Image) -> Image.Image:
    if picture.mode in _WIDE_GRAY_MODES:
        return Image.fromarray(_sixteen_bit_to_eight(picture), mode="L")
    if not _has_alpha(picture):
        return picture.convert("L")
    rgba = picture.convert("RGBA")
    gray = np.asarray(rgba.convert("L"), dtype=np.uint16)
    opacity = np.asarray(rgba.getchannel("A"), dtype=np.uint16)
    return Image.fromarray(((gray * opacity + 127) // 255).astype(np.uint8), mode="L")


def _has_alpha(picture: Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        picture.mode == "P" and "transparency" in picture.info
    )


def _sixteen_bit_to_eight(picture: Image.Image) -> np.ndarray:
    """Scale 16-bit (or 32-bit integer/float holding 16-bit) gray to 8 bits.

    Pillow's own conversion clips everything above 255 to white.
    """
    values = np.asarray(picture)
    if picture.mode == "F":
        peak = 1.0 if float(values.max(initial=0.0)) <= 1.0 else 65535.0
        return np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return (np.clip(values.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)


def _error_text(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message[:200]
