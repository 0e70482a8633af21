"""Photos with a known semi-transparent mark on them, for the watermark-profile tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import data

MARK_AT = (40, 60)
"""Where the mark's top-left corner lands on each photo (x, y)."""


def mark_rgba(opacity: float = 0.4, width: int = 150, height: int = 44) -> np.ndarray:
    """A white text mark on a transparent layer: colour white, alpha `opacity` on the text."""
    layer = Image.new("L", (width, height), 0)
    font = ImageFont.load_default(size=height - 8)
    ImageDraw.Draw(layer).text((4, 2), "STUDIO", fill=255, font=font)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.rint(np.asarray(layer, np.float32) * opacity).astype(np.uint8)
    return rgba


def clean_photo(seed: int = 0, width: int = 256, height: int = 192) -> np.ndarray:
    """A crop of a real photo (scikit-image's data), a different one per `seed`."""
    sources = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    source = sources[seed % len(sources)]
    top = (seed // len(sources)) * 17 % max(source.shape[0] - height, 1)
    left = (seed // len(sources)) * 29 % max(source.shape[1] - width, 1)
    return np.ascontiguousarray(source[top : top + height, left : left + width, :3])


def stamped(photo: np.ndarray, rgba: np.ndarray, at: tuple[int, int] = MARK_AT) -> np.ndarray:
    """`photo` with the mark alpha-blended on at `at`: I = a W + (1 - a) J, rounded."""
    out = photo.astype(np.float32)
    x, y = at
    height, width = rgba.shape[:2]
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    region = out[y : y + height, x : x + width]
    region[:] = alpha * rgba[..., :3] + (1.0 - alpha) * region
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def mark_mask(
    shape: tuple[int, int], rgba: np.ndarray, at: tuple[int, int] = MARK_AT
) -> np.ndarray:
    """The exact mask of the mark (white where its alpha is above zero)."""
    mask = np.zeros(shape, np.uint8)
    x, y = at
    height, width = rgba.shape[:2]
    mask[y : y + height, x : x + width] = np.where(rgba[..., 3] > 0, 255, 0)
    return mask


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR (dB) of `a` against `b` over the pixels where `where` is true."""
    error = (a.astype(np.float64) - b.astype(np.float64))[where]
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
