"""Small images made in memory for tests: photos, masks, and broken files."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def photo(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth RGB gradient with noise: compresses like a photo, never uniform."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            xs * 255 // max(width - 1, 1),
            ys * 255 // max(height - 1, 1),
            (xs + ys) * 127 // max(width + height - 2, 1),
        ],
        axis=-1,
    )
    noise = rng.integers(-12, 13, size=base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def box_mask(
    width: int, height: int, box: tuple[int, int, int, int], value: int = 255
) -> np.ndarray:
    """Zeros with `value` inside ``box = (left, top, right, bottom)``."""
    mask = np.zeros((height, width), dtype=np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = value
    return mask


def encode(pixels: np.ndarray | Image.Image, fmt: str, **options: object) -> bytes:
    picture = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def text_on_photo(width: int, height: int, text: str = "SAMPLE WATERMARK") -> Image.Image:
    """Dark, large, opaque text on a light photo: what any text detector finds."""
    picture = Image.fromarray(photo(width, height, seed=6) // 4 + 180)
    font = ImageFont.load_default(size=height // 8)
    ImageDraw.Draw(picture).text((width // 10, height // 2), text, fill=(10, 10, 10), font=font)
    return picture
