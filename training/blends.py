"""Known marks blended over photos, for the de-blending tests and benchmark.

A mark here is an RGBA logo (the file an owner stamps on photos). It is resized to the size it
appears at, given an opacity, and blended at a position, once or on a lattice:

    I = α·W + (1 − α)·J,     α = opacity · the resized logo's alpha

Every sample keeps J, α and W at the photo's size, so a test can check that inverting the
blend gives J back, and a benchmark can score any removal against J.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.watermarks import Encoding, encode_round_trip

__all__ = ["Blended", "blend_logo", "logo", "tile_logo"]


@dataclass(frozen=True)
class Blended:
    image: np.ndarray
    """(H, W, 3) uint8: the blend after the encoding's round trip."""
    clean: np.ndarray
    """(H, W, 3) uint8: J."""
    alpha: np.ndarray
    """(H, W) float32: α as blended."""
    colour: np.ndarray
    """(H, W, 3) float32: W."""

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8, 255 where α > 0.03 (the mark's region)."""
        return np.where(self.alpha > 0.03, 255, 0).astype(np.uint8)


def logo(
    text: str,
    colour: tuple[int, int, int],
    *,
    height: int = 96,
    font: Path | None = None,
    ring: bool = True,
) -> np.ndarray:
    """(h, w, 4) uint8 RGBA: `text` in `colour` (opaque) with an optional ring beside it, on a
    transparent ground; drawn four times larger and reduced, so edges are antialiased."""
    big = height * 4
    face = (
        ImageFont.truetype(str(font), size=round(big * 0.6))
        if font is not None
        else ImageFont.load_default(size=round(big * 0.6))
    )
    left, top, right, bottom = face.getbbox(text)
    ring_side = round(big * 0.7) if ring else 0
    width = right - left + ring_side + big // 2
    canvas = Image.new("RGBA", (width, big), (*colour, 0))
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (big // 8 - left, (big - (bottom - top)) // 2 - top), text, fill=(*colour, 255), font=face
    )
    if ring:
        x0 = width - ring_side - big // 8
        y0 = (big - ring_side) // 2
        draw.ellipse(
            (x0, y0, x0 + ring_side, y0 + ring_side), outline=(*colour, 255), width=big // 12
        )
    small = canvas.resize((max(1, width // 4), height), Image.Resampling.LANCZOS)
    return np.asarray(small).copy()


def _resized(rgba: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, premultiplied colour) of `rgba` at `scale`, area-averaged when shrinking."""
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    premultiplied = rgba[..., :3].astype(np.float32) * alpha[..., None]
    if scale != 1.0:
        h, w = alpha.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        method = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        alpha = np.clip(cv2.resize(alpha, size, interpolation=method), 0, 1)
        premultiplied = np.clip(cv2.resize(premultiplied, size, interpolation=method), 0, 255)
    return alpha, premultiplied


def _compose(
    clean: np.ndarray,
    alpha_patch: np.ndarray,
    premultiplied_patch: np.ndarray,
    positions: Sequence[tuple[int, int]],
    opacity: float,
    encoding: Encoding,
) -> Blended:
    height, width = clean.shape[:2]
    alpha = np.zeros((height, width), np.float32)
    premultiplied = np.zeros((height, width, 3), np.float32)
    ph, pw = alpha_patch.shape
    for top, left in positions:
        y0, x0 = max(0, top), max(0, left)
        y1, x1 = min(height, top + ph), min(width, left + pw)
        if y1 <= y0 or x1 <= x0:
            continue
        alpha[y0:y1, x0:x1] = alpha_patch[y0 - top : y1 - top, x0 - left : x1 - left]
        premultiplied[y0:y1, x0:x1] = premultiplied_patch[
            y0 - top : y1 - top, x0 - left : x1 - left
        ]
    colour = np.where(
        alpha[..., None] > 1e-6, premultiplied / np.maximum(alpha, 1e-6)[..., None], 0
    )
    colour = np.clip(colour, 0, 255).astype(np.float32)
    alpha = (alpha * opacity).astype(np.float32)
    mixed = alpha[..., None] * colour + (1 - alpha[..., None]) * clean.astype(np.float32)
    image = encode_round_trip(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), encoding)
    return Blended(image=image, clean=clean, alpha=alpha, colour=colour)


def blend_logo(
    clean: np.ndarray,
    rgba: np.ndarray,
    *,
    top: int,
    left: int,
    scale: float = 1.0,
    opacity: float = 0.4,
    encoding: Encoding = "png",
) -> Blended:
    """`rgba` resized by `scale`, its top-left corner at (top, left) (may be outside)."""
    alpha, premultiplied = _resized(rgba, scale)
    return _compose(clean, alpha, premultiplied, [(top, left)], opacity, encoding)


def tile_logo(
    clean: np.ndarray,
    rgba: np.ndarray,
    *,
    step: tuple[int, int],
    shear: int = 0,
    offset: tuple[int, int] = (0, 0),
    scale: float = 1.0,
    opacity: float = 0.3,
    encoding: Encoding = "png",
) -> Blended:
    """`rgba` at `scale` stamped on a lattice of whole-pixel steps (step_y, 0) and
    (0, step_x); each row shifted right by `shear` more than the one above."""
    alpha, premultiplied = _resized(rgba, scale)
    height, width = clean.shape[:2]
    step_y, step_x = step
    positions = []
    for row in range(-2, height // step_y + 3):
        for column in range(-2, width // step_x + 3):
            positions.append(
                (offset[0] + row * step_y, offset[1] + column * step_x + (row * shear) % step_x)
            )
    return _compose(clean, alpha, premultiplied, positions, opacity, encoding)
