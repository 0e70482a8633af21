"""How a JPEG's chroma subsampling smears a blended mark, so its inversion can follow suit.

Most JPEGs (cameras, and Pillow by default) keep the colour-difference
channels Cb and Cr at half resolution: each 2x2 block is averaged when saving and
interpolated back when decoding. A sharp mark's colour edges are smeared over a couple of
pixels, and inverting the blend pixel by pixel with the sharp α divides that smear by
(1 − α): bright fringes along every stroke. Since the blend is linear, it holds in YCbCr as in
RGB; luma is kept at full resolution and is inverted with the sharp α, and chroma is inverted
with α and α·W smeared the way the decoder smeared the image. The photo's own chroma is
smooth at that scale (which is why JPEG subsamples it), so this is close to exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["FULL_CHROMA", "ChromaGrid", "from_ycbcr", "subsampled", "to_ycbcr"]

# JFIF's full-range BT.601 transform, offsets left out: the blend is affine, so they cancel.
_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    np.float32,
)
_FROM_YCBCR = np.linalg.inv(_TO_YCBCR).astype(np.float32)


@dataclass(frozen=True)
class ChromaGrid:
    """Where the image's chroma samples lie: one per `step` (rows, cols) block, the blocks
    starting at `origin` (rows, cols) of the array at hand (a window of the image starts
    elsewhere than the image's own grid)."""

    step: tuple[int, int] = (1, 1)
    origin: tuple[int, int] = (0, 0)

    @property
    def subsampled(self) -> bool:
        return self.step != (1, 1)

    def shifted(self, top: int, left: int) -> ChromaGrid:
        """The same grid seen from a window whose corner is at (top, left)."""
        return ChromaGrid(
            self.step,
            ((self.origin[0] - top) % self.step[0], (self.origin[1] - left) % self.step[1]),
        )


FULL_CHROMA = ChromaGrid()
"""PNG, WebP lossless, JPEG 4:4:4: every pixel has its own chroma."""


def to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _TO_YCBCR.T


def from_ycbcr(ycbcr: np.ndarray) -> np.ndarray:
    return ycbcr @ _FROM_YCBCR.T


def subsampled(values: np.ndarray, grid: ChromaGrid) -> np.ndarray:
    """`values` ((h, w) or (h, w, c) float32) averaged over the grid's blocks and interpolated
    back (linear, sample-centred: libjpeg's "fancy" upsampling), at the same size."""
    if not grid.subsampled:
        return values
    height, width = values.shape[:2]
    step_y, step_x = grid.step
    lead_y = (step_y - grid.origin[0]) % step_y
    lead_x = (step_x - grid.origin[1]) % step_x
    blocks_y = -(-(height + lead_y) // step_y)
    blocks_x = -(-(width + lead_x) // step_x)
    padded = cv2.copyMakeBorder(
        values,
        lead_y,
        blocks_y * step_y - height - lead_y,
        lead_x,
        blocks_x * step_x - width - lead_x,
        cv2.BORDER_REPLICATE,
    )
    low = cv2.resize(padded, (blocks_x, blocks_y), interpolation=cv2.INTER_AREA)
    up = cv2.resize(low, (blocks_x * step_x, blocks_y * step_y), interpolation=cv2.INTER_LINEAR)
    return up[lead_y : lead_y + height, lead_x : lead_x + width]
