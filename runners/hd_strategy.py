"""Large images: inpaint only the regions that need it, or a downscaled copy.

A forward over the full image grows with its area (docs/testing.md has the figures), while
a watermark usually covers a small part of it. Three strategies:

- ``original``: the whole image in one forward;
- ``crop``: one forward per *region*: the mask's connected components, each grown by a
  context margin, with regions that overlap merged — so a line of text costs about one
  forward over its span, not one per glyph. A region longer than the resize limit is
  itself downscaled;
- ``resize``: the whole image downscaled so its long side is at most the limit, then
  upscaled back.

Whatever the strategy, only masked pixels are taken from the model: every pixel outside the
mask comes back bit-identical. `HdInpainter` wraps any `Inpainter` and is one itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from runners.devices import ComputeReport
from runners.inpainter import Inpainter
from settings import HdStrategyChoice

logger = logging.getLogger(__name__)

CROP_AREA_SHARE = 0.5
"""Under `auto`, crop only while the regions cover at most this share of the image: beyond
it a crop saves little time and loses the global context LaMa's Fourier branch uses."""

MAX_REGIONS = 1000
"""More connected components than this (speckle masks) get one box around all of them,
rather than a quadratic merge."""


class HdStrategy(StrEnum):
    ORIGINAL = "original"
    CROP = "crop"
    RESIZE = "resize"


@dataclass(frozen=True)
class Box:
    """A half-open pixel rectangle: rows ``top:bottom``, columns ``left:right``."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def area(self) -> int:
        return self.height * self.width

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def overlaps(self, other: Box) -> bool:
        return (
            self.top < other.bottom
            and other.top < self.bottom
            and self.left < other.right
            and other.left < self.right
        )

    def union(self, other: Box) -> Box:
        return Box(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )


@dataclass(frozen=True)
class Region:
    """One forward of the plan: `box` of the image, inpainted at `scaled_size` if set."""

    box: Box
    scaled_size: tuple[int, int] | None = None
    """(height, width) the box is resized to before the forward, or None for full size."""


@dataclass(frozen=True)
class ForwardPlan:
    strategy: HdStrategy
    regions: tuple[Region, ...]


def region_boxes(mask: np.ndarray, margin: int) -> list[Box]:
    """Disjoint boxes covering every masked pixel with `margin` pixels of context around it.

    Each connected component's bounding box is grown by `margin` (clamped to the image);
    overlapping boxes are merged until none overlap.
    """
    height, width = mask.shape
    binary = (mask > 0).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    boxes: list[Box] = []
    for left, top, box_width, box_height, _ in stats[1:]:  # label 0 is the background
        boxes.append(
            Box(
                max(int(top) - margin, 0),
                max(int(left) - margin, 0),
                min(int(top + box_height) + margin, height),
                min(int(left + box_width) + margin, width),
            )
        )
    if len(boxes) > MAX_REGIONS:
        merged = boxes[0]
        for box in boxes[1:]:
            merged = merged.union(box)
        return [merged]
    return _merge_overlapping(boxes)


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    pending = sorted(boxes, key=lambda box: (box.top, box.left))
    changed = True
    while changed:
        changed = False
        merged: list[Box] = []
        for box in pending:
            for index, kept in enumerate(merged):
                if kept.overlaps(box):
                    merged[index] = kept.union(box)
                    changed = True
                    break
            else:
                merged.append(box)
        pending = merged
    return pending


def scaled_size(height: int, width: int, limit: int) -> tuple[int, int] | None:
    """(height, width) with the long side at most `limit`, or None if it already is."""
    longest = max(height, width)
    if longest <= limit:
        return None
    ratio = limit / longest
    return max(1, round(height * ratio)), max(1, round(width * ratio))


def plan_forwards(
    mask: np.ndarray,
    *,
    strategy: HdStrategyChoice,
    trigger: int,
    crop_margin: int,
    resize_limit: int,
) -> ForwardPlan:
    """Which forwards to run for one image, from its size and its mask's geometry."""
    height, width = mask.shape
    whole = Box(0, 0, height, width)

    def crop_plan(boxes: list[Box]) -> ForwardPlan:
        regions = tuple(
            Region(box, scaled_size(box.height, box.width, resize_limit)) for box in boxes
        )
        return ForwardPlan(HdStrategy.CROP, regions)

    def resize_plan() -> ForwardPlan:
        size = scaled_size(height, width, resize_limit)
        chosen = HdStrategy.RESIZE if size is not None else HdStrategy.ORIGINAL
        return ForwardPlan(chosen, (Region(whole, size),))

    if strategy == "original":
        return ForwardPlan(HdStrategy.ORIGINAL, (Region(whole),))
    if strategy == "crop":
        return crop_plan(region_boxes(mask, crop_margin))
    if strategy == "resize":
        return resize_plan()
    if max(height, width) <= trigger:
        return ForwardPlan(HdStrategy.ORIGINAL, (Region(whole),))
    boxes = region_boxes(mask, crop_margin)
    if sum(box.area for box in boxes) <= CROP_AREA_SHARE * whole.area:
        return crop_plan(boxes)
    return resize_plan()


class HdInpainter:
    """An `Inpainter` that runs another one under a large-image strategy.

    All the forwards of a batch — every region of every image — go to the wrapped
    inpainter in one `inpaint_batch` call, so it can still group same-size inputs.
    """

    def __init__(
        self,
        inner: Inpainter,
        *,
        strategy: HdStrategyChoice = "auto",
        trigger: int = 1024,
        crop_margin: int = 128,
        resize_limit: int = 2048,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.device = inner.device
        self.compute: ComputeReport | None = getattr(inner, "compute", None)
        self.strategy: HdStrategyChoice = strategy
        self.trigger = trigger
        self.crop_margin = crop_margin
        self.resize_limit = resize_limit

    def plan_forwards(self, mask: np.ndarray) -> ForwardPlan:
        return plan_forwards(
            mask,
            strategy=self.strategy,
            trigger=self.trigger,
            crop_margin=self.crop_margin,
            resize_limit=self.resize_limit,
        )

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.inpaint_batch([image], [mask])[0]

    def inpaint_batch(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        plans = [self.plan_forwards(mask) for mask in masks]
        job_images: list[np.ndarray] = []
        job_masks: list[np.ndarray] = []
        for image, mask, image_plan in zip(images, masks, plans, strict=True):
            logger.debug(
                "%s strategy for %dx%d: %d forward(s)",
                image_plan.strategy,
                image.shape[1],
                image.shape[0],
                len(image_plan.regions),
            )
            for region in image_plan.regions:
                region_image, region_mask = _region_inputs(image, mask, region)
                job_images.append(region_image)
                job_masks.append(region_mask)
        outputs = iter(self.inner.inpaint_batch(job_images, job_masks) if job_images else [])
        results = []
        for image, mask, image_plan in zip(images, masks, plans, strict=True):
            result = image.copy()
            for region in image_plan.regions:
                _paste_masked(result, mask, region, next(outputs))
            results.append(result)
        return results


def _region_inputs(
    image: np.ndarray, mask: np.ndarray, region: Region
) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = region.box.window
    region_image = np.ascontiguousarray(image[rows, cols])
    region_mask = np.where(mask[rows, cols] > 0, 255, 0).astype(np.uint8)
    if region.scaled_size is None:
        return region_image, region_mask
    height, width = region.scaled_size
    small_image = cv2.resize(region_image, (width, height), interpolation=cv2.INTER_AREA)
    # Area averaging then "any coverage counts": no masked pixel vanishes when shrunk.
    small_mask = cv2.resize(region_mask, (width, height), interpolation=cv2.INTER_AREA)
    return small_image, np.where(small_mask > 0, 255, 0).astype(np.uint8)


def _paste_masked(result: np.ndarray, mask: np.ndarray, region: Region, output: np.ndarray) -> None:
    """Copy the masked pixels of `output` (the region's forward) into `result`, in place."""
    box = region.box
    if region.scaled_size is not None:
        output = cv2.resize(output, (box.width, box.height), interpolation=cv2.INTER_CUBIC)
    rows, cols = box.window
    masked = mask[rows, cols] > 0
    result[rows, cols][masked] = output[masked]
