"""Does a faster way of running the model give the pixels the plain fp32 forward gives?

Checked once, as the runner starts, on a small fixed input: the candidate (a reduced
precision, a converted network) and the reference inpaint the same seeded image and mask,
and their uint8 results are compared over the masked pixels, which are all the model
decides. The tolerance is the issue's goal for bf16 (docs/models.md, "Precision"):

- no masked pixel more than `MAX_LEVELS` grey levels off in any channel;
- at most `MAX_SHARE_OVER_ONE_LEVEL` of the masked pixels more than one level off.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from runners.inpainter import Inpainter

logger = logging.getLogger(__name__)

MAX_LEVELS = 2
MAX_SHARE_OVER_ONE_LEVEL = 0.001

PARITY_SIZE = (184, 248)
"""(height, width): multiples of 8 whose bottleneck sides (23, 31) are primes, so an FFT
that only handles powers of two fails here rather than on a request."""
PARITY_SEED = 20_240_917


@dataclass(frozen=True)
class ParityReport:
    candidate: str
    """What was compared against the reference (``bf16``, ``converted network``, …)."""
    max_levels: int
    """Largest |difference| over the masked pixels, in grey levels (0-255)."""
    share_over_one_level: float
    """Share of masked pixels with some channel more than one level off."""
    masked_pixels: int
    size: tuple[int, int]
    """(height, width) of the input."""
    error: str | None = None
    """Set when the candidate raised instead of answering."""
    max_levels_allowed: int = MAX_LEVELS
    share_allowed: float = MAX_SHARE_OVER_ONE_LEVEL

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.max_levels <= self.max_levels_allowed
            and self.share_over_one_level <= self.share_allowed
        )

    def summary(self) -> str:
        if self.error is not None:
            return f"{self.candidate} failed: {self.error}"
        verdict = "passed" if self.passed else "failed"
        return (
            f"{self.candidate} {verdict} parity: max Δ {self.max_levels}/255, "
            f"{100 * self.share_over_one_level:.3f} % of masked pixels over one level "
            f"(allowed {self.max_levels_allowed}/255, {100 * self.share_allowed:.1f} %)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def parity_inputs(
    size: tuple[int, int] = PARITY_SIZE, seed: int = PARITY_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded photo-like image (gradients, edges, texture, noise) and a mask over a quarter.

    Structure matters: on flat noise every implementation predicts a mean colour and agrees.
    """
    height, width = size
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for phase in rng.uniform(0, 2 * np.pi, size=3):
        smooth = 0.5 + 0.3 * np.sin(rows / 23 + phase) * np.cos(cols / 31 - phase)
        texture = 0.1 * np.sin(rows / 3.1 + cols / 4.7 + phase)
        channels.append(smooth + texture)
    image = np.stack(channels, axis=-1)
    image[height // 5 : height // 2, width // 6 : width // 3] = rng.uniform(0, 1, size=3)
    image[(rows + cols) % 41 < 3] *= 0.4  # hard diagonal lines
    image += rng.normal(0, 0.03, size=image.shape)
    pixels = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 3 : 2 * height // 3, width // 4 : 3 * width // 4] = 255
    stroke = np.abs(rows - 0.6 * cols - height * 0.1) < 4
    mask[stroke] = 255
    return pixels, mask


def compare(reference: np.ndarray, candidate: np.ndarray, mask: np.ndarray) -> tuple[int, float]:
    """(largest |difference| in levels, share of pixels over one level), over `mask > 0`."""
    masked = mask > 0
    if not masked.any():
        return 0, 0.0
    difference = np.abs(reference.astype(np.int16) - candidate.astype(np.int16)).max(axis=-1)
    inside = difference[masked]
    return int(inside.max()), float((inside > 1).mean())


def check_parity(
    reference: Inpainter,
    candidate: Inpainter,
    *,
    label: str,
    inputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> ParityReport:
    """Run both on the fixed input and compare; a candidate that raises fails the check."""
    image, mask = inputs if inputs is not None else parity_inputs()
    size = (int(image.shape[0]), int(image.shape[1]))
    masked_pixels = int((mask > 0).sum())
    expected = reference.inpaint(image, mask)
    try:
        produced = candidate.inpaint(image, mask)
    except Exception as exc:  # whatever breaks it, the reference is what gets served
        logger.warning("Parity check: %s raised %s: %s", label, type(exc).__name__, exc)
        error = f"{type(exc).__name__}: {exc}"
        return ParityReport(label, -1, 1.0, masked_pixels, size, error=error)
    if produced.shape != expected.shape:
        error = f"output shape {produced.shape}, expected {expected.shape}"
        return ParityReport(label, -1, 1.0, masked_pixels, size, error=error)
    max_levels, share = compare(expected, produced, mask)
    return ParityReport(label, max_levels, share, masked_pixels, size)
