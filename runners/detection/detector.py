"""The seam between the service and any watermark detector: its records and protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

RegionKind = Literal["text", "pattern", "logo"]
"""``text``: recognised text (credits, URLs, words); ``pattern``: a mark repeated across the
image (tiled stock watermarks); ``logo``: a graphic mark the segmenter found."""


@dataclass(frozen=True)
class Region:
    """One detected watermark region, in the image's pixel coordinates."""

    kind: RegionKind
    box: tuple[int, int, int, int]
    """left, top, width, height in pixels."""
    outline: tuple[tuple[int, int], ...]
    """Polygon (x, y) vertices, pixels."""
    score: float
    """0..1: the detector's confidence."""
    text: str | None = None
    """The recognised string, for text regions only."""


@dataclass(frozen=True)
class Detection:
    """What a detector found in one image."""

    regions: tuple[Region, ...]
    mask: np.ndarray
    """(H, W) uint8, 255 = remove: refined to the mark's pixels, then dilated a few pixels."""

    @property
    def coverage(self) -> float:
        """Share of the image's pixels the mask removes (0..1)."""
        if self.mask.size == 0:
            return 0.0
        return float(np.count_nonzero(self.mask)) / self.mask.size


@runtime_checkable
class Detector(Protocol):
    """Finds watermarks in RGB images.

    - `image`: ``(H, W, 3)`` ``uint8``, RGB channel order.
    - result: a `Detection` whose mask is ``(H, W)`` ``uint8``, the image's size.
    """

    name: str
    """Short id reported in headers and health."""
    device: str
    """Where it computes: ``cpu`` or ``cuda``."""

    def models(self) -> list[dict[str, str]]:
        """``[{"name", "version", "sha256"}]`` of every model file it runs, for health."""
        ...

    def detect(self, image: np.ndarray) -> Detection: ...

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detection]:
        """Several images at once; results in input order. Sizes may differ."""
        ...
