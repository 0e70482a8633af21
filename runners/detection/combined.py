"""The detector the service runs: text, segmenter and repeat evidence joined into one mask.

1. Text lines (DB detector + recogniser confidence) become text regions; their mask is the
   strokes inside each line's box (`refine.stroke_mask`).
2. The segmenter's probability map marks logos, badges and the other marks it learned;
   its components above `segmenter_threshold` whose mean probability reaches
   `segmenter_min_score` become logo regions, unless they lie mostly inside read text lines
   (whose strokes are the mask there) or the photo shows no mark there (`mark_evidence`), and
   their probability, scaled to the image and thresholded again, is their mask.
3. The repeat detector looks for a lattice. A lattice counts only where text or segmenter
   evidence confirms it (a periodic photo repeats too); then every detected piece is copied
   to all lattice points, and the strokes of the repeated part are added.
4. The union is dilated by `dilate_px` and specks under `min_component_px` are dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from runners.detection.detector import Detection, Region
from runners.detection.model_files import resolve_device
from runners.detection.refine import dilate, fill_polygon, stroke_mask
from runners.detection.repeat import RepeatDetector, RepeatPattern
from runners.detection.segmenter import INPUT_LONG_SIDE, MarkSegmenter
from runners.detection.text import TextDetector, TextLine

__all__ = ["CombinedDetector", "DetectorConfig", "load_detector", "mark_evidence"]


@dataclass(frozen=True)
class DetectorConfig:
    """Everything `load_detector` needs; the service fills it from its settings."""

    device: str = "auto"
    """``auto``, ``cpu`` or ``cuda`` (CUDA needs onnxruntime-gpu)."""
    threads: int | None = None
    """onnxruntime CPU threads per model; default: the machine's cores."""
    text: bool = True
    segmenter: bool = True
    repeat: bool = True
    text_long_side: int = 960
    """The text detector's input size (longer side, px)."""
    text_min_confidence: float = 0.8
    """A text box is kept when the recogniser reads it at least this sure..."""
    text_min_characters: int = 2
    """...and reads at least this many letters or digits in it."""
    segmenter_long_side: int = INPUT_LONG_SIDE
    segmenter_threshold: float = 0.5
    segmenter_min_score: float = 0.85
    """A segmenter component is kept when its mean probability reaches this..."""
    segmenter_min_evidence: float = 1.2
    """...and its `mark_evidence` reaches this (1: no more edges than the photo around it)."""
    repeat_long_side: int = 512
    repeat_min_strength: float = 0.06
    dilate_px: int = 1
    min_component_px: int = 12


class CombinedDetector:
    """`Detector` joining `TextDetector`, `MarkSegmenter` and `RepeatDetector`."""

    name = "watermark-detector"

    def __init__(
        self,
        config: DetectorConfig,
        *,
        text: TextDetector | None,
        segmenter: MarkSegmenter | None,
        repeat: RepeatDetector | None,
        device: str,
    ) -> None:
        self.config = config
        self.device = device
        self._text = text
        self._segmenter = segmenter
        self._repeat = repeat

    def models(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        if self._text is not None:
            found += self._text.models()
        if self._segmenter is not None:
            found += self._segmenter.models()
        return found

    def detect(self, image: np.ndarray) -> Detection:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detection]:
        for image in images:
            _check_image(image)
        # An image too small to hold a readable mark has nothing to find: an empty answer,
        # which the service turns into "no watermark found", not a failure.
        searched = [image for image in images if min(image.shape[:2]) >= MIN_SIDE]
        probabilities: list[np.ndarray | None] = [None] * len(searched)
        if self._segmenter is not None and searched:
            probabilities = list(self._segmenter.probabilities(searched))
        found = iter(
            self._detect_one(image, probability)
            for image, probability in zip(searched, probabilities, strict=True)
        )
        return [
            next(found) if min(image.shape[:2]) >= MIN_SIDE else _nothing_in(image)
            for image in images
        ]

    def _detect_one(self, image: np.ndarray, probability: np.ndarray | None) -> Detection:
        config = self.config
        height, width = image.shape[:2]
        regions: list[Region] = []
        text_mask = np.zeros((height, width), bool)
        text_boxes = np.zeros((height, width), bool)
        lines = self._text.find(image) if self._text is not None else []
        for line in lines:
            area = fill_polygon((height, width), line.corners)
            text_boxes |= area
            text_mask |= stroke_mask(image, area, stroke_scale=_line_height(line))
            regions.append(_text_region(line))

        logo_mask = np.zeros((height, width), bool)
        if probability is not None:
            logo_mask, logo_regions = self._segmenter_regions(image, probability, text_boxes)
            regions += logo_regions

        mask = text_mask | logo_mask
        # What a lattice copies: the text strokes when there are any (tight), else the
        # segmenter's regions.
        evidence = text_mask if text_mask.any() else logo_mask
        if self._repeat is not None and evidence.any():
            pattern = self._repeat.find(image)
            if pattern is not None:
                step = min(np.hypot(*pattern.steps[0]), np.hypot(*pattern.steps[1]))
                heights = [_line_height(line) for line in lines]
                scale = float(np.median(heights)) if heights else max(7.0, step / 8)
                repeated, region = self._pattern(image, pattern, evidence, scale)
                if region is not None:
                    mask |= repeated
                    regions.append(region)

        final = _drop_specks(dilate(mask, config.dilate_px), config.min_component_px)
        return Detection(regions=tuple(regions), mask=final)

    def _segmenter_regions(
        self, image: np.ndarray, probability: np.ndarray, text_boxes: np.ndarray
    ) -> tuple[np.ndarray, list[Region]]:
        """Components of the segmenter's map, judged at its own (small) scale; the kept ones
        are scaled to the image's size and thresholded again there, for smooth edges."""
        config = self.config
        shape = height, width = image.shape[:2]
        small_h, small_w = probability.shape
        small_gray = cv2.cvtColor(
            cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA),
            cv2.COLOR_RGB2GRAY,
        )
        ratio_x, ratio_y = width / small_w, height / small_h
        binary = (probability > config.segmenter_threshold).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        scores = _mean_per_label(probability, labels, count)
        keep = np.zeros(count, bool)
        regions: list[Region] = []
        small_text = cv2.resize(
            text_boxes.astype(np.uint8), (small_w, small_h), interpolation=cv2.INTER_AREA
        )
        min_area = config.min_component_px / (ratio_x * ratio_y)
        for label in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[label])
            if area < min_area or scores[label] < config.segmenter_min_score:
                continue
            component = labels[y : y + h, x : x + w] == label
            if small_text[y : y + h, x : x + w][component].mean() > 0.5:
                # Mostly inside read text lines: their strokes are the mask there, and the
                # segmenter's coarser blob would only widen the hole to fill. A component
                # reaching well beyond the text (a badge around its initials) stays.
                continue
            if mark_evidence(small_gray, labels == label) < config.segmenter_min_evidence:
                continue
            keep[label] = True
            outline = tuple(
                (round(px * ratio_x), round(py * ratio_y)) for px, py in _outline(component, x, y)
            )
            regions.append(
                Region(
                    kind="logo",
                    box=(
                        round(x * ratio_x),
                        round(y * ratio_y),
                        max(1, round(w * ratio_x)),
                        max(1, round(h * ratio_y)),
                    ),
                    outline=outline,
                    score=round(float(scores[label]), 4),
                )
            )
        if not keep.any():
            return np.zeros(shape, bool), regions
        kept = np.where(keep[labels], probability, 0).astype(np.float32)
        full = cv2.resize(kept, (width, height), interpolation=cv2.INTER_LINEAR)
        return full > config.segmenter_threshold, regions

    def _pattern(
        self, image: np.ndarray, pattern: RepeatPattern, evidence: np.ndarray, stroke_scale: float
    ) -> tuple[np.ndarray, Region | None]:
        """The repeated mark's strokes, if other evidence confirms the lattice; else nothing."""
        confirmed = (pattern.mask & evidence).sum() >= 0.2 * max(1, evidence.sum())
        if not confirmed:
            return np.zeros_like(evidence), None
        # Copies are on the repeat detector's coarse grid: look for strokes around them, where
        # the image also repeats (fewer texture strokes; measured in docs/detection.md).
        copies = dilate(pattern.shift_union(evidence), 2) > 0
        copies &= dilate(pattern.mask, 2) > 0
        repeated = stroke_mask(image, copies, stroke_scale=stroke_scale)
        ys, xs = np.nonzero(repeated)
        if ys.size == 0:
            return repeated, None
        hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32)).reshape(-1, 2)
        left, top = int(xs.min()), int(ys.min())
        region = Region(
            kind="pattern",
            box=(left, top, int(xs.max()) - left + 1, int(ys.max()) - top + 1),
            outline=tuple((int(x), int(y)) for x, y in hull),
            score=round(min(1.0, pattern.strength * 4), 4),
        )
        return repeated, region


def load_detector(config: DetectorConfig | None = None, **overrides: object) -> CombinedDetector:
    """Build the combined detector; model files are checked (SHA-256) as they load.

    ``load_detector(DetectorConfig(threads=1))`` or ``load_detector(threads=1, repeat=False)``.
    Raises `runners.detection.model_files.ModelFileError` when a file is missing or altered.
    """
    config = config or DetectorConfig()
    if overrides:
        config = DetectorConfig(**{**config.__dict__, **overrides})  # type: ignore[arg-type]
    device = resolve_device(config.device)
    threads = config.threads or os.cpu_count() or 1
    text = (
        TextDetector(
            threads=threads,
            device=device,
            long_side=config.text_long_side,
            min_confidence=config.text_min_confidence,
            min_characters=config.text_min_characters,
        )
        if config.text
        else None
    )
    segmenter = (
        MarkSegmenter(threads=threads, device=device, input_long_side=config.segmenter_long_side)
        if config.segmenter
        else None
    )
    repeat = (
        RepeatDetector(long_side=config.repeat_long_side, min_strength=config.repeat_min_strength)
        if config.repeat
        else None
    )
    return CombinedDetector(config, text=text, segmenter=segmenter, repeat=repeat, device=device)


MIN_SIDE = 8
"""Images with a shorter side than this are not searched."""


def _nothing_in(image: np.ndarray) -> Detection:
    return Detection(regions=(), mask=np.zeros(image.shape[:2], dtype=np.uint8))


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("the detector takes uint8 RGB arrays")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")


def _line_height(line: TextLine) -> float:
    corners = line.corners
    return float(
        min(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[0] - corners[1]))
    )


def _text_region(line: TextLine) -> Region:
    corners = np.round(line.corners).astype(int)
    left, top = corners.min(axis=0)
    right, bottom = corners.max(axis=0)
    return Region(
        kind="text",
        box=(int(left), int(top), int(right - left + 1), int(bottom - top + 1)),
        outline=tuple((int(x), int(y)) for x, y in corners),
        score=round(line.confidence, 4),
        text=line.text,
    )


def mark_evidence(gray: np.ndarray, component: np.ndarray, ring_px: int = 8) -> float:
    """How much more edge a region shows than the photo just around it.

    A mark blended into a photo brings edges of its own: at its outline (where the blend
    starts) or within it (its letters and shapes). The larger of two ratios, outline band
    over surrounding ring (gradient magnitude) and inside over ring (Laplacian), each + 1 to
    steady flat regions; about 1 where the segmenter fires on plain photo texture. Rings cut
    off by the image border shrink, and a region without any ring at all counts as 1.
    """
    ys, xs = np.nonzero(component)
    if ys.size == 0:
        return 0.0
    margin = ring_px + 3
    top, left = max(0, ys.min() - margin), max(0, xs.min() - margin)
    bottom = min(gray.shape[0], ys.max() + margin + 1)
    right = min(gray.shape[1], xs.max() + margin + 1)
    patch = gray[top:bottom, left:right].astype(np.float32)
    inside = component[top:bottom, left:right].astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(inside, kernel, iterations=2).astype(bool)
    band = grown & ~cv2.erode(inside, kernel, iterations=2).astype(bool)
    ring = cv2.dilate(inside, kernel, iterations=ring_px).astype(bool) & ~grown
    if not ring.any():
        return 1.0
    gradient = np.hypot(cv2.Sobel(patch, cv2.CV_32F, 1, 0), cv2.Sobel(patch, cv2.CV_32F, 0, 1))
    laplacian = np.abs(cv2.Laplacian(patch, cv2.CV_32F))
    outline = (gradient[band].mean() + 1) / (gradient[ring].mean() + 1)
    within = (laplacian[inside.astype(bool)].mean() + 1) / (laplacian[ring].mean() + 1)
    return float(max(outline, within))


def _mean_per_label(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    sums = np.bincount(labels.ravel(), weights=values.ravel(), minlength=count)
    sizes = np.bincount(labels.ravel(), minlength=count)
    return sums / np.maximum(sizes, 1)


def _outline(component: np.ndarray, x: int, y: int) -> tuple[tuple[int, int], ...]:
    contours, _ = cv2.findContours(
        component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    largest = max(contours, key=cv2.contourArea)
    approx = cv2.approxPolyDP(largest, 1.5, True).reshape(-1, 2)
    return tuple((int(px) + x, int(py) + y) for px, py in approx)


def _drop_specks(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_pixels
    keep[0] = False
    return np.where(keep[labels], 255, 0).astype(np.uint8)
