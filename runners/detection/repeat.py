"""Tiled marks: a pattern repeated on a lattice, found from the image's self-similarity.

Stock sites stamp the same mark over the whole photo at fixed steps. Shifted by one step, the
image matches itself where the mark is and not elsewhere, so:

1. the high-pass grey image's autocorrelation (FFT, zero-padded, normalised per shift by the
   overlap) has peaks at the lattice steps; the strongest peak and the strongest one not in
   line with it are the two steps `u` and `v`;
2. the per-pixel median over the nine copies ``x + i·u + j·v`` (i, j in -1..1) keeps what
   repeats (the mark) and drops what does not (the photo);
3. pixels where that repeated part is strong against its own spread are the mark.

It all runs on a copy whose longer side is `long_side` pixels. Photos that are themselves
periodic (tiles, grass, rows of objects) also repeat; the combining detector therefore keeps
a pattern only where another detector confirms part of it (see `runners.detection.combined`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["RepeatDetector", "RepeatPattern"]


@dataclass(frozen=True)
class RepeatPattern:
    steps: tuple[tuple[float, float], tuple[float, float]]
    """The lattice's two steps (dy, dx) in image pixels."""
    strength: float
    """Whitened autocorrelation at the first step, 0..1."""
    mask: np.ndarray
    """(H, W) bool at the image's size: where the repeated part is strong."""
    scale: float
    """Size of the analysed copy relative to the image."""
    small_steps: tuple[tuple[int, int], tuple[int, int]]
    """The steps in the analysed copy's pixels."""

    def shift_union(self, mask: np.ndarray) -> np.ndarray:
        """`mask` copied to every lattice point: one detected copy of a tiled mark marks them
        all. Works on the analysed copy's grid, so the result is coarse (a cell of about
        1/scale pixels); (H, W) bool."""
        height, width = mask.shape
        small_size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        small = cv2.resize(mask.astype(np.uint8) * 255, small_size, interpolation=cv2.INTER_AREA)
        source = small > 0
        out = source.copy()
        (uy, ux), (vy, vx) = self.small_steps
        rows, cols = source.shape
        shortest = max(1.0, min(np.hypot(uy, ux), np.hypot(vy, vx)))
        reach = int(np.ceil(np.hypot(rows, cols) / shortest)) + 1
        for i in range(-reach, reach + 1):
            for j in range(-reach, reach + 1):
                dy, dx = i * uy + j * vy, i * ux + j * vx
                if (i, j) == (0, 0) or abs(dy) >= rows or abs(dx) >= cols:
                    continue
                out[max(0, dy) : rows + min(0, dy), max(0, dx) : cols + min(0, dx)] |= source[
                    max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)
                ]
        return cv2.resize(
            out.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
        ).astype(bool)


class RepeatDetector:
    def __init__(
        self,
        *,
        long_side: int = 512,
        min_strength: float = 0.12,
        min_step: int = 12,
        contrast: float = 3.0,
    ) -> None:
        self.long_side = long_side
        self.min_strength = min_strength
        self.min_step = min_step
        self.contrast = contrast

    def find(self, image: np.ndarray) -> RepeatPattern | None:
        """The repeated pattern of `image` (RGB uint8), or None when nothing repeats."""
        height, width = image.shape[:2]
        scale = min(1.0, self.long_side / max(height, width))
        small = cv2.resize(
            image,
            (max(8, round(width * scale)), max(8, round(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
        detail = grey - cv2.GaussianBlur(grey, (0, 0), 4.0)
        correlation = _autocorrelation(detail)
        steps = self._lattice(correlation)
        if steps is None:
            return None
        (u, v), strength = steps
        repeated = _median_over_copies(detail, u, v)
        # What does not repeat is the photo; a median of nine of its samples still varies by
        # about a third of its spread, so the repeated part must stand above that.
        residual = 1.4826 * float(np.median(np.abs(detail - repeated))) + 1e-3
        strong = (np.abs(repeated) > self.contrast * residual / 3).astype(np.uint8)
        mask = cv2.resize(strong, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
        full = ((u[0] / scale, u[1] / scale), (v[0] / scale, v[1] / scale))
        return RepeatPattern(
            steps=full, strength=strength, mask=mask, scale=scale, small_steps=(u, v)
        )

    def _lattice(
        self, correlation: np.ndarray
    ) -> tuple[tuple[tuple[int, int], tuple[int, int]], float] | None:
        height, width = correlation.shape
        cy, cx = height // 2, width // 2
        ys, xs = np.mgrid[-cy : height - cy, -cx : width - cx]
        radius = np.hypot(ys, xs)
        # At least two copies along the step must fit in the image: shifts up to half of it.
        usable = (radius >= self.min_step) & (np.abs(ys) <= cy) & (np.abs(xs) <= cx)
        peaks = (correlation == cv2.dilate(correlation, np.ones((5, 5), np.uint8))) & usable
        candidates = np.argwhere(peaks)
        if candidates.size == 0:
            return None
        values = correlation[peaks]
        order = np.argsort(values)[::-1]
        first = candidates[order[0]] - (cy, cx)
        strength = float(values[order[0]])
        if strength < self.min_strength:
            return None
        for index in order[1:]:
            value = float(values[index])
            if value < self.min_strength * 0.6:
                break
            other = candidates[index] - (cy, cx)
            cross = abs(int(first[0]) * int(other[1]) - int(first[1]) * int(other[0]))
            sine = cross / (np.hypot(*first) * np.hypot(*other))
            if sine > 0.35:
                pair = ((int(first[0]), int(first[1])), (int(other[0]), int(other[1])))
                return pair, strength
        return None


def _autocorrelation(detail: np.ndarray) -> np.ndarray:
    """Autocorrelation of the spectrally whitened image, zero shift at the centre, 1.0 there.

    Dividing the power spectrum by its own local average flattens the broad spectrum of
    photo content (edges, lines) and leaves the narrow spikes of a periodic pattern, whose
    inverse transform peaks at the lattice steps.
    """
    height, width = detail.shape
    size = (cv2.getOptimalDFTSize(2 * height), cv2.getOptimalDFTSize(2 * width))
    padded = np.zeros(size, np.float32)
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    padded[:height, :width] = (detail - detail.mean()) * window
    power = np.abs(np.fft.fft2(padded)) ** 2
    shifted_power = np.fft.fftshift(power).astype(np.float32)
    envelope = cv2.GaussianBlur(shifted_power, (0, 0), 6.0)
    whitened = np.fft.ifftshift(shifted_power / (envelope + 1e-6 * envelope.mean() + 1e-12))
    correlation = np.real(np.fft.ifft2(whitened))
    correlation /= max(correlation[0, 0], 1e-12)
    centred = np.fft.fftshift(correlation)
    cy, cx = size[0] // 2, size[1] // 2
    top, left = cy - height // 2, cx - width // 2
    return np.ascontiguousarray(centred[top : top + height, left : left + width]).astype(np.float32)


def _median_over_copies(detail: np.ndarray, u: tuple[int, int], v: tuple[int, int]) -> np.ndarray:
    height, width = detail.shape
    copies = []
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            dy, dx = i * u[0] + j * v[0], i * u[1] + j * v[1]
            shifted = np.full((height, width), np.nan, np.float32)
            ys = slice(max(0, -dy), min(height, height - dy))
            xs = slice(max(0, -dx), min(width, width - dx))
            yd = slice(max(0, dy), min(height, height + dy))
            xd = slice(max(0, dx), min(width, width + dx))
            if ys.stop > ys.start and xs.stop > xs.start:
                shifted[ys, xs] = detail[yd, xd]
            copies.append(shifted)
    stack = np.stack(copies)
    valid = np.isfinite(stack).sum(axis=0)
    median = np.nanmedian(stack, axis=0)
    # Where fewer than three copies fall inside the image, a median says nothing.
    return np.where(valid >= 3, median, 0.0).astype(np.float32)
