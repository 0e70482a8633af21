"""Small synthetic images for the detector's tests: rendered text, tiled stamps, gradients."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def gradient(height: int, width: int) -> np.ndarray:
    """A smooth colour gradient: no edges, nothing that looks like a mark."""
    rows = np.linspace(40, 200, height, dtype=np.float32)[:, None]
    cols = np.linspace(60, 180, width, dtype=np.float32)[None, :]
    image = np.stack([rows + 0 * cols, cols + 0 * rows, (rows + cols) / 2], axis=2)
    return np.clip(image, 0, 255).astype(np.uint8)


def with_text(
    image: np.ndarray, text: str, *, xy: tuple[int, int], size: int, fill: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """`image` with `text` drawn opaque in Pillow's built-in font, and the text's solid pixels
    (glyph coverage over one half)."""
    canvas = Image.fromarray(image)
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(canvas).text(xy, text, fill=(fill, fill, fill), font=font)
    coverage = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(coverage).text(xy, text, fill=255, font=font)
    return np.asarray(canvas).copy(), np.asarray(coverage) > 127


def ink(image: np.ndarray, text: str, *, xy: tuple[int, int], size: int) -> np.ndarray:
    """Every pixel the text touches at all (antialiased fringes included)."""
    coverage = Image.new("L", (image.shape[1], image.shape[0]), 0)
    ImageDraw.Draw(coverage).text(xy, text, fill=255, font=ImageFont.load_default(size=size))
    return np.asarray(coverage) > 12


def noise_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Blurred noise: photo-like detail that does not repeat."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 40, size=(height // 4 + 1, width // 4 + 1, 3))
    big = np.asarray(
        Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
    )
    return big.copy()


def tiled(
    base: np.ndarray, step_y: int, step_x: int, *, opacity: float = 0.35
) -> tuple[np.ndarray, np.ndarray]:
    """`base` with a small glyph stamped white on a lattice of (step_y, 0) and (0, step_x)."""
    height, width = base.shape[:2]
    stamp = Image.new("L", (step_x, step_y), 0)
    font = ImageFont.load_default(size=max(8, step_y // 3))
    ImageDraw.Draw(stamp).text((2, 2), "WM", fill=255, font=font)
    tile = np.asarray(stamp, dtype=np.float32) / 255.0
    reps = (height // step_y + 1, width // step_x + 1)
    alpha = np.tile(tile, reps)[:height, :width] * opacity
    out = alpha[..., None] * 255.0 + (1 - alpha[..., None]) * base.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), alpha > 0.03
