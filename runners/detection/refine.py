"""From a region to the watermark's own pixels: stroke extraction, then a few pixels of margin.

A text box holds far more background than letters; inpainting the whole box costs several dB
inside the region against a mask tight to the strokes. Letters are thin against the line
they sit in, so a median filter about a line's height wide removes them and leaves the local
background; the strokes are the pixels that differ from it by more than Otsu's threshold of
those differences (times `otsu_share`, 0.5; never less than `min_contrast` levels), inside
the region. Half of Otsu's threshold keeps the faint antialiased edges (docs/detection.md
has the measurement).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["dilate", "fill_polygon", "stroke_mask"]


def fill_polygon(shape: tuple[int, int], outline: np.ndarray) -> np.ndarray:
    """(H, W) bool, True inside the polygon `outline` ((N, 2) x, y)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32).reshape(-1, 1, 2)], 1)
    return mask.astype(bool)


def stroke_mask(
    image: np.ndarray,
    region: np.ndarray,
    *,
    stroke_scale: float,
    min_contrast: float = 6.0,
    otsu_share: float = 0.5,
) -> np.ndarray:
    """The pixels of `region` that stand out from their local background.

    `image`: (H, W, 3) uint8. `region`: (H, W) bool, where to look. `stroke_scale`: a length
    in pixels larger than a stroke's width and about the size of a letter (a text line's
    height); the background is the median over that width. Returns (H, W) bool.
    """
    out = np.zeros(region.shape, bool)
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return out
    kernel = max(3, int(stroke_scale) | 1)
    margin = kernel
    top, bottom = max(0, rows[0] - margin), min(region.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(region.shape[1], cols[-1] + 1 + margin)
    window = np.ascontiguousarray(image[top:bottom, left:right])
    inside = region[top:bottom, left:right]
    background = cv2.medianBlur(window, _odd_cap(kernel))
    difference = cv2.absdiff(window, background).max(axis=2)
    values = difference[inside]
    if values.size == 0 or int(values.max()) <= min_contrast:
        return out
    otsu, _ = cv2.threshold(values.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = max(float(otsu) * otsu_share, min_contrast)
    strokes = (difference > threshold) & inside
    out[top:bottom, left:right] = strokes
    return out


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` in every direction (a disc), as uint8 0/255."""
    binary = np.where(mask, 255, 0).astype(np.uint8)
    if pixels <= 0:
        return binary
    size = 2 * pixels + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(binary, disc)


def _odd_cap(kernel: int) -> int:
    """cv2.medianBlur takes any odd size on uint8 images, but large ones are slow over a
    whole-image region (tiled marks); 31 px still spans several strokes' widths."""
    return min(kernel, 31) | 1
