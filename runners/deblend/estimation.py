"""Estimating the mark itself: across a batch of photos, or across the copies of a tiled mark."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from runners.deblend.inversion import invert
from runners.deblend.quality import outline_residual
from runners.deblend.refinement import refine_around
from runners.deblend.template import DeblendError, WatermarkTemplate
from runners.deblend.views import (
    WEAK_REACH,
    background_hole,
    fill_holes,
    fit_layers,
    fit_opacity,
    outline_support,
    without_specks,
)
from runners.detection.repeat import RepeatDetector

__all__ = [
    "MIN_IMAGES",
    "EstimatedTemplate",
    "TiledMark",
    "estimate_layers",
    "estimate_template",
    "estimate_template_at",
    "estimate_tiled",
]

MIN_IMAGES = 8
"""Fewest photos a shared mark is estimated from: from fewer, its α is too noisy for the
inversion (which multiplies α's error by 1/(1 − α)) to beat inpainting; the batch
benchmark's rows of 4 photos never did (docs/deblend.md)."""
MARGIN = 3
"""Pixels of empty border kept around an estimated template: its outline's gradients stay inside."""

MAX_RESIDUAL = 0.5
"""Median share of the outline an estimate may leave in the images it came from."""
VISIBLE_ALPHA = 0.05
"""Opacity from which an estimated pixel counts as part of the mark when cutting it out."""


def _check_images(images: Sequence[np.ndarray]) -> None:
    if len(images) < MIN_IMAGES:
        raise DeblendError(
            f"estimating a mark needs at least {MIN_IMAGES} images, got {len(images)}"
        )
    first = images[0].shape
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DeblendError(
                f"image {index} must be (H, W, 3) uint8, got {image.shape} {image.dtype}"
            )
        if image.shape != first:
            raise DeblendError(
                f"images must share one size: image 0 is {first[:2]}, "
                f"image {index} is {image.shape[:2]}"
            )


def _main_pieces(visible: np.ndarray) -> np.ndarray:
    """`visible` without specks: pieces of under 12 pixels or a twentieth of the largest."""
    binary = without_specks(visible.astype(np.uint8), 12)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return binary.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[1:] = areas >= 0.05 * float(areas.max())
    return keep[labels]


def _with_faint_parts(
    views: np.ndarray,
    valid: np.ndarray,
    clear: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    fill: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(support, α) with the mark's fainter parts near its clear outline added.

    W is kept from the clear part (the faint parts' backgrounds are guessed across a wider
    hole, and would blur it); their α is fitted with it, on backgrounds filled around the
    whole support so that they do not lean on the mark's own pixels. `fill` gives the views'
    backgrounds for a support."""
    support = outline_support(views, valid, reach=WEAK_REACH) | clear
    faint = support & ~clear
    if not faint.any():
        return clear, alpha
    faint_alpha = fit_opacity(views, fill(support), valid, faint, colour)
    return support, np.where(faint, faint_alpha, alpha).astype(np.float32)


def estimate_layers(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The shared mark's (α (H, W), W (H, W, 3)) at the images' size, float32.

    Raises DeblendError when there is no consistent mark: no shared outline, no opacity
    behind it, or layers whose inversion leaves the outline in most of the images."""
    _check_images(images)
    views = np.stack([image.astype(np.float32) for image in images])
    valid = np.ones(views.shape[:3], bool)
    clear = outline_support(views, valid)
    if not clear.any():
        raise DeblendError("no consistent mark: the images share no outline")
    hole = background_hole(clear)
    backgrounds = np.stack([fill_holes(view, hole) for view in views])
    alpha, colour = fit_layers(views, backgrounds, valid, clear)

    def fill(hole_support: np.ndarray) -> np.ndarray:
        hole = background_hole(hole_support)
        return np.stack([fill_holes(view, hole) for view in views])

    support, alpha = _with_faint_parts(views, valid, clear, alpha, colour, fill)
    alpha, colour = refine_around(views, valid, alpha, colour, support)
    # Chance agreements of the photos leave specks of faint α; the template is the mark.
    visible = _main_pieces(alpha > VISIBLE_ALPHA)
    near = cv2.dilate(visible.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    alpha = np.where(near, alpha, 0.0).astype(np.float32)
    if int(visible.sum()) < 8:
        raise DeblendError("no consistent mark: the shared outline has no opacity behind it")
    residuals = []
    for image in images:
        inversion = invert(image, alpha, colour)
        usable = ~inversion.to_inpaint
        contrast, residual = outline_residual(image, inversion.image, alpha, colour, usable)
        residuals.append(residual if contrast > 0 else 1.0)
    if float(np.median(residuals)) > MAX_RESIDUAL:
        raise DeblendError(
            "no consistent mark: the estimate leaves its outline in most images "
            f"(median residual {float(np.median(residuals)):.0%})"
        )
    return alpha, colour


@dataclass(frozen=True)
class EstimatedTemplate:
    """A mark estimated from several images, and where it sits in them."""

    template: WatermarkTemplate
    corner: tuple[int, int]
    """(row, col) of the template's top-left pixel in the images it came from."""


def estimate_template(images: Sequence[np.ndarray]) -> WatermarkTemplate:
    """The mark shared by `images` (RGB uint8, one size, the mark at the same place in each),
    cut to its bounding box. Raises DeblendError when there is no consistent mark."""
    return estimate_template_at(images).template


def estimate_template_at(images: Sequence[np.ndarray]) -> EstimatedTemplate:
    """`estimate_template`, and where the cut-out box lies in the images: removing the mark
    from those same images can start there rather than search for it."""
    alpha, colour = estimate_layers(images)
    visible = alpha > VISIBLE_ALPHA
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    top, bottom = max(0, rows[0] - MARGIN), min(alpha.shape[0], rows[-1] + 1 + MARGIN)
    left, right = max(0, cols[0] - MARGIN), min(alpha.shape[1], cols[-1] + 1 + MARGIN)
    window = np.s_[top:bottom, left:right]
    template = WatermarkTemplate(alpha=alpha[window], colour=colour[window])
    return EstimatedTemplate(template=template, corner=(int(top), int(left)))


# --- tiled marks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TiledMark:
    """A tiled mark's layers at the image's size, and the lattice they repeat on."""

    alpha: np.ndarray
    """(H, W) float32."""
    colour: np.ndarray
    """(H, W, 3) float32."""
    steps: tuple[tuple[int, int], tuple[int, int]]
    """The lattice's two steps (dy, dx), whole pixels."""
    copies: int
    """Views of the mark the estimate used."""


def _detail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 3.0)


def _shift_score(detail: np.ndarray, dy: int, dx: int) -> float:
    height, width = detail.shape
    if abs(dy) >= height or abs(dx) >= width:
        return -math.inf
    a = detail[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)]
    b = detail[max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
    return float((a * b).mean() / (np.sqrt((a * a).mean() * (b * b).mean()) + 1e-6))


def _refine_step(
    image: np.ndarray, step: tuple[float, float], uncertainty: float
) -> tuple[int, int]:
    """The whole-pixel step near `step` at which the image best matches itself."""
    height, width = image.shape[:2]
    factor = min(1.0, 3.0 / max(uncertainty, 1.0))
    radius = 3
    guess = (step[0], step[1])
    while True:
        size = (max(8, round(width * factor)), max(8, round(height * factor)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if factor < 1 else image
        detail = _detail(small)
        # The centre of the photo is enough to pin the step and keeps full-size work small.
        crop_h = min(detail.shape[0], max(4 * abs(round(guess[0] * factor)) + 64, 768))
        crop_w = min(detail.shape[1], max(4 * abs(round(guess[1] * factor)) + 64, 768))
        top, left = (detail.shape[0] - crop_h) // 2, (detail.shape[1] - crop_w) // 2
        detail = detail[top : top + crop_h, left : left + crop_w]
        centre = (round(guess[0] * factor), round(guess[1] * factor))
        best, best_score = centre, -math.inf
        for dy in range(centre[0] - radius, centre[0] + radius + 1):
            for dx in range(centre[1] - radius, centre[1] + radius + 1):
                score = _shift_score(detail, dy, dx)
                if score > best_score:
                    best, best_score = (dy, dx), score
        guess = (best[0] / factor, best[1] / factor)
        if factor >= 1.0:
            return best
        factor = min(1.0, factor * 2)
        radius = 2


def _lattice_offsets(
    shape: tuple[int, int], box: tuple[int, int, int, int], u: tuple[int, int], v: tuple[int, int]
) -> list[tuple[int, int]]:
    """Shifts i·u + j·v that bring `box` (top, left, height, width) at least partly inside."""
    height, width = shape
    top, left, box_h, box_w = box
    shortest = max(1.0, min(math.hypot(*u), math.hypot(*v)))
    reach = math.ceil(math.hypot(height, width) / shortest) + 2
    offsets = []
    for i in range(-reach, reach + 1):
        for j in range(-reach, reach + 1):
            dy, dx = i * u[0] + j * v[0], i * u[1] + j * v[1]
            if -box_h < top + dy < height and -box_w < left + dx < width:
                offsets.append((dy, dx))
    return offsets


def _take(
    array: np.ndarray, top: int, left: int, box_h: int, box_w: int
) -> tuple[np.ndarray, np.ndarray]:
    """A (box_h, box_w) window of `array` at (top, left), zero outside, and where it is inside."""
    height, width = array.shape[:2]
    out = np.zeros((box_h, box_w, *array.shape[2:]), np.float32)
    inside = np.zeros((box_h, box_w), bool)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(height, top + box_h), min(width, left + box_w)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = array[y0:y1, x0:x1]
        inside[y0 - top : y1 - top, x0 - left : x1 - left] = True
    return out, inside


def _paste(
    target: np.ndarray, patch: np.ndarray, offsets: list[tuple[int, int]], top: int, left: int
) -> None:
    height, width = target.shape[:2]
    box_h, box_w = patch.shape[:2]
    for dy, dx in offsets:
        y, x = top + dy, left + dx
        y0, x0 = max(0, y), max(0, x)
        y1, x1 = min(height, y + box_h), min(width, x + box_w)
        if y1 > y0 and x1 > x0:
            target[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


REPEAT_MIN_STRENGTH = 0.06
"""The service detector's lattice threshold: a weak lattice is kept, since the fit and the
removal's outline check reject a lattice that is really the photo's own."""


FAINT_REPEAT_STRENGTH = 0.01
"""The lattice threshold tried when the service's finds nothing."""


def estimate_tiled(
    image: np.ndarray, *, min_copies: int = 5, detector: RepeatDetector | None = None
) -> TiledMark:
    """A tiled mark's layers over the whole of `image` ((H, W, 3) uint8), estimated from its
    own copies. Raises DeblendError when nothing repeats or too few copies fit."""
    pattern = (detector or RepeatDetector(min_strength=REPEAT_MIN_STRENGTH)).find(image)
    if pattern is None and detector is None:
        # A faint mark's lattice peaks are low but still the highest: the views' coherent
        # outline, the fit and the removal's outline check reject a chance lattice.
        pattern = RepeatDetector(min_strength=FAINT_REPEAT_STRENGTH).find(image)
    if pattern is None:
        raise DeblendError("no repeated pattern found")
    uncertainty = 0.5 / pattern.scale + 1.0
    u = _refine_step(image, pattern.steps[0], uncertainty)
    v = _refine_step(image, pattern.steps[1], uncertainty)
    if abs(u[0] * v[1] - u[1] * v[0]) < 16:
        raise DeblendError(f"the lattice steps {u} and {v} are degenerate")
    height, width = image.shape[:2]
    box_h = abs(u[0]) + abs(v[0]) + 2 * MARGIN
    box_w = abs(u[1]) + abs(v[1]) + 2 * MARGIN
    if box_h > height or box_w > width:
        raise DeblendError("the lattice's cell is larger than the image")
    top, left = (height - box_h) // 2, (width - box_w) // 2
    offsets = _lattice_offsets((height, width), (top, left, box_h, box_w), u, v)
    pixels = image.astype(np.float32)
    taken = [_take(pixels, top + dy, left + dx, box_h, box_w) for dy, dx in offsets]
    views = np.stack([view for view, _ in taken])
    valid = np.stack([inside for _, inside in taken])
    copies = int((valid.mean(axis=(1, 2)) >= 0.5).sum())
    if copies < min_copies:
        raise DeblendError(f"too few copies of the tiled mark in the image ({copies})")
    cell_clear = outline_support(views, valid)
    if not cell_clear.any():
        raise DeblendError("the repeated pattern has no consistent outline")

    def fill(cell_hole: np.ndarray) -> np.ndarray:
        # The cell's copies tile the image: its hole is pasted on every copy and the photo
        # filled once, so each view's background comes from its own surroundings.
        support = np.zeros((height, width), bool)
        _paste(support, cell_hole, offsets, top, left)
        filled = fill_holes(pixels, background_hole(support))
        return np.stack([_take(filled, top + dy, left + dx, box_h, box_w)[0] for dy, dx in offsets])

    alpha_cell, colour_cell = fit_layers(views, fill(cell_clear), valid, cell_clear)
    cell_support, alpha_cell = _with_faint_parts(
        views, valid, cell_clear, alpha_cell, colour_cell, fill
    )
    alpha_cell, colour_cell = refine_around(views, valid, alpha_cell, colour_cell, cell_support)
    alpha = np.zeros((height, width), np.float32)
    colour = np.zeros((height, width, 3), np.float32)
    _paste(alpha, alpha_cell, offsets, top, left)
    _paste(colour, colour_cell, offsets, top, left)
    return TiledMark(alpha=alpha, colour=colour, steps=(u, v), copies=len(offsets))
