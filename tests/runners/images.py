"""Deterministic test images and masks."""

from __future__ import annotations

import cv2
import numpy as np


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise: every pixel differs from its neighbours."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    base = np.concatenate([rows + 0 * cols, cols + 0 * rows, (rows + cols) / 2], axis=2)
    noise = rng.normal(0, 12, size=(height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def rectangle_mask(
    height: int, width: int, top: int, left: int, bottom: int, right: int
) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[top:bottom, left:right] = 255
    return mask


def text_mask(height: int, width: int, glyphs: int, *, top: int, left: int) -> np.ndarray:
    """A line of `glyphs` separate blobs, like a text watermark (one component per glyph)."""
    mask = np.zeros((height, width), np.uint8)
    for index in range(glyphs):
        x = left + index * 10
        cv2.rectangle(mask, (x, top), (x + 6, top + 14), 255, thickness=-1)
    return mask
