"""Small real photos and logos for the de-blending tests (scikit-image's bundled photos)."""

from __future__ import annotations

import cv2
import numpy as np
import skimage.data

from training.blends import logo

_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(count: int, *, height: int = 192, width: int = 256) -> list[np.ndarray]:
    """`count` different (height, width, 3) uint8 RGB photos: the bundled ones, cropped at
    different places and mirrored, so that no two share content at one pixel."""
    out = []
    for index in range(count):
        source = getattr(skimage.data, _PHOTOS[index % len(_PHOTOS)])()
        variant = index // len(_PHOTOS)
        if variant % 2:
            source = source[:, ::-1]
        if variant % 4 >= 2:
            source = source[::-1]
        scale = max(height / source.shape[0], width / source.shape[1]) * (1.0 + 0.15 * variant)
        size = (round(source.shape[1] * scale) + 1, round(source.shape[0] * scale) + 1)
        resized = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        top = (resized.shape[0] - height) * (variant % 3) // 2
        left = (resized.shape[1] - width) * ((variant + 1) % 3) // 2
        out.append(np.ascontiguousarray(resized[top : top + height, left : left + width]))
    return out


def white_logo(height: int = 40, text: str = "Studio") -> np.ndarray:
    """(h, w, 4) uint8: white text and a ring, the usual owner's mark."""
    return logo(text, (255, 255, 255), height=height)
