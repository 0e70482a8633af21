"""Whether an estimated mark explains the photo: its outline must vanish when it is inverted.

A correct α and W remove the mark's outline from the photo; a wrong one leaves it or draws its
negative. The gradient contrast along the placed mark's outline (against flat parts of α
nearby) is measured before and after inversion; what share remains says how good the
estimate is, without knowing the photo under the mark.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["outline_contrast", "outline_residual"]

RING = 9
"""Width (pixels) of the neighbourhood the outline is compared with."""


def _gradient(pixels: np.ndarray) -> np.ndarray:
    data = pixels.astype(np.float32)
    gx = cv2.Sobel(data, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(data, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)
    return magnitude.max(axis=2) if magnitude.ndim == 3 else magnitude


def outline_contrast(pixels: np.ndarray, alpha: np.ndarray, usable: np.ndarray) -> float:
    """Median gradient on the mark's outline minus that on a ring just beside it (levels).

    The ring is a few pixels wide, so the photo's own texture is about the same on both and
    cancels; only what follows α's edges is left."""
    edges = _gradient(alpha)
    peak = float(edges.max())
    if peak <= 0:
        return 0.0
    outline = edges > 0.25 * peak
    grown = cv2.dilate(outline.astype(np.uint8), np.ones((RING, RING), np.uint8)) > 0
    inner = cv2.dilate(outline.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ring = grown & ~inner & (edges < 0.05 * peak) & usable
    outline &= usable
    if not outline.any() or not ring.any():
        return 0.0
    gradient = _gradient(pixels)
    # Medians: a few strong photo edges crossing the mark must not decide.
    return float(np.median(gradient[outline]) - np.median(gradient[ring]))


def outline_residual(
    before: np.ndarray, after: np.ndarray, alpha: np.ndarray, usable: np.ndarray
) -> tuple[float, float]:
    """(contrast before in levels, share of it left after), over pixels `usable`."""
    contrast = outline_contrast(before, alpha, usable)
    if contrast <= 0:
        return contrast, 1.0
    return contrast, max(0.0, outline_contrast(after, alpha, usable)) / contrast
