"""Undo the blend I = α·W + (1 − α)·J where it can be undone.

Solving for the photo gives J = (I − α·W) / (1 − α). The image's own error (rounding, JPEG)
is divided by (1 − α) too, so the recovered pixel gets worse as the mark gets more opaque;
above `max_alpha` the photo is left to the inpainter. A recovered value far outside 0..255
means the α or W used is wrong there (or the photo was clipped under the mark): those pixels
are inpainted as well.

A JPEG with subsampled chroma is inverted in YCbCr instead (`runners.deblend.chroma`): luma
with the sharp α, chroma with α smeared as the decoder smeared the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runners.deblend.chroma import FULL_CHROMA, ChromaGrid, from_ycbcr, subsampled, to_ycbcr
from runners.deblend.template import DeblendError

__all__ = ["DEFAULT_MAX_ALPHA", "Inversion", "invert", "unblend"]

DEFAULT_MAX_ALPHA = 0.9
"""Opacity above which a pixel is inpainted instead of inverted: at 0.9 one level of image
error becomes ten in the result, about what a good inpainting gets wrong in smooth areas."""

CLIP_TOLERANCE = 6.0
"""Levels a recovered value may fall outside 0..255 (besides the rounding error magnified by
1/(1 − α)) before the pixel counts as clipped: JPEG q90 moves pixels by a few levels."""


@dataclass(frozen=True)
class Inversion:
    image: np.ndarray
    """(H, W, 3) uint8: the recovered photo (unchanged where α is 0 or the pixel is inpainted)."""
    to_inpaint: np.ndarray
    """(H, W) bool: α ≥ max_alpha, or the inversion clipped."""
    clipped: np.ndarray
    """(H, W) bool: pixels where the recovered value fell outside 0..255 by more than noise."""


def invert(
    image: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    *,
    max_alpha: float = DEFAULT_MAX_ALPHA,
    tolerance: float = CLIP_TOLERANCE,
    chroma: ChromaGrid = FULL_CHROMA,
) -> Inversion:
    """Recover J from `image` ((H, W, 3) uint8) given the mark's layers at the image's size:
    `alpha` (H, W) in 0..1 and `colour` (H, W, 3) in 0..255; `chroma` says how the image's
    chroma was sampled (a JPEG's grid, as seen from this array)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DeblendError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if alpha.shape != image.shape[:2] or colour.shape != image.shape:
        raise DeblendError(
            f"layers do not fit the image: image {image.shape}, alpha {alpha.shape}, "
            f"colour {colour.shape}"
        )
    if not 0.0 < max_alpha < 1.0:
        raise DeblendError(f"max_alpha must be in (0, 1), got {max_alpha}")
    a = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    reached = a > 0
    if chroma.subsampled:
        # The decoder spread the mark's chroma into the blocks' neighbours too.
        reached |= subsampled(a, chroma) > 0
    invertible = reached & (a < max_alpha)
    out = image.copy()
    clipped = np.zeros(a.shape, bool)
    if invertible.any():
        a_in = a[invertible][:, None]
        recovered = unblend(image, a, colour, chroma=chroma, max_alpha=max_alpha)[invertible]
        # The image's own error (rounding, compression) is magnified like the photo.
        slack = (tolerance + 0.5) / (1.0 - a_in)
        outside = ((recovered < -slack) | (recovered > 255.0 + slack)).any(axis=1)
        clipped[invertible] = outside
        out[invertible] = np.clip(np.rint(recovered), 0, 255).astype(np.uint8)
    to_inpaint = (a >= max_alpha) | clipped
    return Inversion(image=out, to_inpaint=to_inpaint, clipped=clipped)


def unblend(
    image: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    *,
    chroma: ChromaGrid = FULL_CHROMA,
    max_alpha: float = DEFAULT_MAX_ALPHA,
) -> np.ndarray:
    """(H, W, 3) float32: J solved for at every pixel, neither rounded nor clipped; pixels
    at or above `max_alpha` are divided by 1 − max_alpha instead (their values are
    meaningless: they are inpainted). With subsampled chroma, luma is solved with the sharp
    α and chroma with α smeared as the decoder smeared the image."""
    if not chroma.subsampled:
        a = np.minimum(alpha, max_alpha)[..., None]
        return (image.astype(np.float32) - a * colour) / (1.0 - a)
    pixels = to_ycbcr(image)
    premultiplied = alpha[..., None] * to_ycbcr(colour)
    out = np.empty_like(pixels)
    out[..., 0] = (pixels[..., 0] - premultiplied[..., 0]) / np.maximum(1.0 - alpha, 1 - max_alpha)
    smeared_alpha = subsampled(alpha, chroma)
    smeared_premultiplied = subsampled(np.ascontiguousarray(premultiplied[..., 1:]), chroma)
    # Where the smeared α reaches past max_alpha the pixel's chroma comes from an opaque
    # neighbour's block; the division is bounded there rather than blown up.
    denominator = np.maximum(1.0 - smeared_alpha, 1.0 - max_alpha)[..., None]
    out[..., 1:] = (pixels[..., 1:] - smeared_premultiplied) / denominator
    return from_ycbcr(out)
