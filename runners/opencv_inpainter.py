"""Classical inpainting (Telea's fast marching method): the fallback when no LaMa weights exist."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


class OpenCVInpainter:
    """`Inpainter` backed by `cv2.inpaint` with the Telea method; CPU only."""

    name = "opencv"
    device = "cpu"

    def __init__(self, radius: int = 5) -> None:
        self.radius = radius

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        binary_mask = np.where(mask > 0, 255, 0).astype(np.uint8)
        # cv2 works in BGR, but Telea treats channels independently, so RGB in gives RGB out.
        return cv2.inpaint(np.ascontiguousarray(image), binary_mask, self.radius, cv2.INPAINT_TELEA)

    def inpaint_batch(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        return [self.inpaint(image, mask) for image, mask in zip(images, masks, strict=True)]
