"""The seam between the service and any inpainting model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Inpainter(Protocol):
    """Fills the masked pixels of RGB images.

    Shapes and types are the same for every implementation:
    - `image`: ``(H, W, 3)`` ``uint8``, RGB channel order.
    - `mask`: ``(H, W)`` ``uint8``; any non-zero pixel is to be filled.
    - result: ``(H, W, 3)`` ``uint8`` RGB, same size as `image`.

    An implementation may change pixels outside the mask; the caller composites
    (see `runners.compositing`) so that unmasked pixels come back untouched.
    """

    name: str
    """Model name reported to clients (`X-Model`, health): ``lama`` or ``opencv``."""
    device: str
    """Where it computes: ``cpu`` or ``cuda``."""

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def inpaint_batch(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Several requests at once; results in input order. Sizes may differ."""
        ...
