"""Graphic marks (logos, badges) and any other mark the segmenter learned: a small U-Net.

Trained by `training/train_segmenter.py` on synthetic composites over the training photos;
the ONNX file is committed beside this module (`weights/`) with its training record. It runs
on a copy of the image whose longer side is `input_long_side` pixels, and its probability map
is scaled back to the image's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from runners.detection.model_files import ModelFile, onnx_session

__all__ = ["SEGMENTER_FILE", "MarkSegmenter"]

SEGMENTER_FILE = ModelFile(
    name="mark-segmenter",
    package=None,
    relative_path="weights/mark_segmenter.onnx",
    sha256="a28be38b92254127b5f625595420a4c25c7424db86d0c4eb1358b5c1c46214c7",
    version="1",
)

INPUT_LONG_SIDE = 384
"""The scale the network was trained at (training draws 320-448)."""
STRIDE = 16


class MarkSegmenter:
    def __init__(
        self,
        *,
        threads: int = 1,
        device: str = "cpu",
        input_long_side: int = INPUT_LONG_SIDE,
        model_file: ModelFile = SEGMENTER_FILE,
    ) -> None:
        self.input_long_side = input_long_side
        self.model_file = model_file
        self._session = onnx_session(model_file.read_verified(), threads=threads, device=device)

    def models(self) -> list[dict[str, str]]:
        return [self.model_file.describe()]

    def probability(self, image: np.ndarray) -> np.ndarray:
        """(h, w) float32 probability of 'watermark' at network scale. `image`: RGB uint8."""
        return self.probabilities([image])[0]

    def probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One map per image at its network scale; same-size inputs share a forward."""
        resized = [self._resize(image) for image in images]
        results: list[np.ndarray | None] = [None] * len(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, small in enumerate(resized):
            by_shape.setdefault(small.shape, []).append(index)
        for indices in by_shape.values():
            height, width = resized[indices[0]].shape[:2]
            pad = ((0, (-height) % STRIDE), (0, (-width) % STRIDE), (0, 0))
            batch = np.stack([np.pad(resized[i], pad, mode="reflect") for i in indices])
            x = (batch.astype(np.float32) / 255.0 - 0.5).transpose(0, 3, 1, 2)
            logits = self._session.run(None, {"image": np.ascontiguousarray(x)})[0]
            for row, index in enumerate(indices):
                results[index] = _sigmoid(logits[row, 0, :height, :width])
        return [r for r in results if r is not None]

    def _resize(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = self.input_long_side / max(height, width)
        size = (max(STRIDE, round(width * scale)), max(STRIDE, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return cv2.resize(image, size, interpolation=interpolation)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)
