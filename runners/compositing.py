"""Mask semantics shared by every model: what the client's mask means for each pixel.

White (255) takes the inpainted pixel, black (0) keeps the original, and gray blends::

    out = a * inpainted + (1 - a) * original,    a = mask / 255

Integer arithmetic keeps the two ends exact: where the mask is 0 the original pixel
comes back bit-identical, where it is 255 the inpainted one does.
"""

from __future__ import annotations

import numpy as np


def blend(original: np.ndarray, inpainted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Composite `inpainted` over `original` with the gray `mask`.

    `original`, `inpainted`: ``(H, W, C)`` ``uint8``; `mask`: ``(H, W)`` ``uint8``.
    Returns ``(H, W, C)`` ``uint8``, rounded to nearest.
    """
    if original.shape != inpainted.shape or original.shape[:2] != mask.shape:
        raise ValueError(
            f"shapes differ: original {original.shape}, inpainted {inpainted.shape}, "
            f"mask {mask.shape}"
        )
    out = original.copy()
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return out
    # Arithmetic only inside the mask's bounding box: watermarks are usually a small share.
    window = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    weight = mask[window].astype(np.uint32)[..., None]
    mixed = inpainted[window].astype(np.uint32) * weight
    mixed += original[window].astype(np.uint32) * (255 - weight)
    # +127 then floor-divide rounds to nearest; at weight 0 or 255 it is exact.
    out[window] = ((mixed + 127) // 255).astype(np.uint8)
    return out
