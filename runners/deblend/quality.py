"""Whether an estimated mark explains the photo: its outline must vanish when it is inverted.

A correct α and W remove the mark's outline from the photo; a wrong one leaves it (too weak)
or draws its negative (too strong). Along the mark's outline, the photo's gradient is
projected on α's gradient, signed by which side of the photo the mark's colour lies: the
mark pushes every channel towards W where α rises, so in the marked image that projection is
large and positive. After a correct inversion what is left is the photo's own texture and
JPEG ringing, which point any way and average out; a wrong estimate leaves a mean of either
sign. The share that remains says how good the estimate is, without knowing the photo.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["JUDGED_ALPHA", "outline_contrast", "outline_residual"]

OUTLINE = 0.25
"""Share of α's steepest gradient from which a pixel counts as outline."""
JUDGED_ALPHA = 0.75
"""Placed opacity above which pixels are left out of the outline check: there the image's
own noise, magnified by 1/(1 − α), outweighs what is measured."""


def _gradients(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = pixels.astype(np.float32)
    return cv2.Sobel(data, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(data, cv2.CV_32F, 0, 1, ksize=3)


def outline_contrast(
    pixels: np.ndarray,
    reference: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    usable: np.ndarray,
) -> float:
    """Mean over the outline of `pixels`' gradient along α's, signed towards the mark's
    colour as seen from `reference` (the marked image), in Sobel levels."""
    ax, ay = _gradients(alpha)
    length = np.sqrt(ax * ax + ay * ay)
    peak = float(length.max())
    if peak <= 0:
        return 0.0
    # Only where the mark has a colour: beside it, W is undefined and says no direction.
    outline = (length > OUTLINE * peak) & usable & (alpha > 0)
    if not outline.any():
        return 0.0
    ux, uy = ax[outline] / length[outline], ay[outline] / length[outline]
    towards = colour[outline].astype(np.float32) - reference[outline].astype(np.float32)
    sign = np.sign(towards)
    gx, gy = _gradients(pixels)
    along = gx[outline] * ux[:, None] + gy[outline] * uy[:, None]
    return float((along * sign).sum(axis=1).mean() / 3.0)


def outline_residual(
    before: np.ndarray,
    after: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    usable: np.ndarray,
) -> tuple[float, float]:
    """(contrast of the mark in `before`, share of it left in `after`, either sign), over
    pixels `usable`."""
    contrast = outline_contrast(before, before, alpha, colour, usable)
    if contrast <= 0:
        return contrast, 1.0
    return contrast, abs(outline_contrast(after, before, alpha, colour, usable)) / contrast
