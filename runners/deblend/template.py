"""A watermark as the two layers of its blend: opacity α and colour W."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["DeblendError", "WatermarkTemplate"]

MIN_VISIBLE_ALPHA = 1.0 / 255.0
"""Below one grey level of opacity a template pixel changes nothing in an 8-bit image."""


SOLID_ALPHA = 0.5
"""Share of the template's peak opacity from which a pixel's colour is clearly the mark's."""
SINGLE_COLOUR_SPREAD = 12.0
"""Mean distance (levels, largest channel) from the median colour within which a mark counts
as being of one colour."""


class DeblendError(ValueError):
    """An input the de-blending code cannot use: no mark, mismatched sizes, too few images."""


@dataclass(frozen=True)
class WatermarkTemplate:
    """The mark's layers at the template's own size (not the photo's)."""

    alpha: np.ndarray
    """(h, w) float32 in [0, 1]: the mark's opacity."""
    colour: np.ndarray
    """(h, w, 3) float32 in [0, 255]: the mark's colour W; meaningful where alpha > 0."""

    def __post_init__(self) -> None:
        alpha, colour = self.alpha, self.colour
        if alpha.ndim != 2 or colour.shape != (*alpha.shape, 3):
            raise DeblendError(
                f"template layers do not fit: alpha {alpha.shape}, colour {colour.shape}"
            )
        if min(alpha.shape) < 1:
            raise DeblendError("the template is empty")
        if not (np.isfinite(alpha).all() and np.isfinite(colour).all()):
            raise DeblendError("the template holds non-finite values")
        if float(alpha.max()) < MIN_VISIBLE_ALPHA:
            raise DeblendError("the template's alpha is empty: the mark is fully transparent")
        # Frozen dataclass: normalise dtype and range once, here, so every user can rely on them.
        object.__setattr__(self, "alpha", np.clip(alpha, 0.0, 1.0).astype(np.float32))
        object.__setattr__(self, "colour", np.clip(colour, 0.0, 255.0).astype(np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        height, width = self.alpha.shape
        return height, width

    @classmethod
    def from_rgba(cls, rgba: np.ndarray) -> WatermarkTemplate:
        """From an (h, w, 4) uint8 RGBA image (the logo file the owner stamps on photos)."""
        if rgba.ndim != 3 or rgba.shape[2] != 4:
            raise DeblendError(f"a template must be (h, w, 4) RGBA, got shape {rgba.shape}")
        if rgba.dtype != np.uint8:
            raise DeblendError(f"a template must be uint8, got {rgba.dtype}")
        alpha = rgba[..., 3].astype(np.float32) / 255.0
        return cls(alpha=alpha, colour=rgba[..., :3].astype(np.float32))

    def to_rgba(self) -> np.ndarray:
        """(h, w, 4) uint8 RGBA; colour is rounded, alpha quantised to 1/255."""
        out = np.empty((*self.alpha.shape, 4), np.uint8)
        out[..., :3] = np.rint(self.colour).astype(np.uint8)
        out[..., 3] = np.rint(self.alpha * 255.0).astype(np.uint8)
        return out

    @cached_property
    def premultiplied(self) -> np.ndarray:
        """α·W, (h, w, 3) float32: what resizing and warping the mark interpolate."""
        premultiplied = self.alpha[..., None] * self.colour
        premultiplied.flags.writeable = False  # shared by every search over this template
        return premultiplied

    def single_colour(self) -> np.ndarray | None:
        """(3,) float32: the mark's colour if it has one (within a few levels where it is
        clearly visible), else None (a multi-coloured logo)."""
        solid = self.alpha >= SOLID_ALPHA * float(self.alpha.max())
        colours = self.colour[solid]
        centre = np.median(colours, axis=0)
        if float(np.abs(colours - centre).max(axis=1).mean()) > SINGLE_COLOUR_SPREAD:
            return None
        return centre.astype(np.float32)

    def cropped(self) -> WatermarkTemplate:
        """The same mark cut to the bounding box of its visible pixels."""
        visible = self.alpha >= MIN_VISIBLE_ALPHA
        rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
        window = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return WatermarkTemplate(alpha=self.alpha[window], colour=self.colour[window])
