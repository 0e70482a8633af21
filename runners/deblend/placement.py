"""Where a known mark sits in a photo: position, scale, small rotation and opacity gain.

Search in two steps:

1. Coarse: the image's gradient magnitude is matched (normalised cross-correlation) against
   the template's, over a log-spaced range of scales and a few angles, on a reduced copy. A
   semi-transparent mark shows in a photo mainly as its outline (α's edges times the colour
   difference to what lies under it), whatever the photo's colours, so gradients match where
   raw pixels would not. Repeated copies are the other strong peaks at the best scale.
2. Fine: each copy's position, scale, angle and gain are polished by pattern search on the
   photo itself, minimising the L1 norm of the de-blended result's gradients over the copy's
   window. A natural photo has sparse gradients; a misplaced or wrongly strong mark leaves
   (or adds) its outline, which costs gradient energy, so the minimum is where the mark is
   removed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np

from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.deblend.inversion import DEFAULT_MAX_ALPHA, invert, unblend
from runners.deblend.quality import JUDGED_ALPHA, outline_contrast
from runners.deblend.template import MIN_VISIBLE_ALPHA, WatermarkTemplate

__all__ = [
    "Layers",
    "Placement",
    "ResizedCopies",
    "find_hypotheses",
    "find_placements",
    "fit_gain",
    "refine",
    "render",
]

MIN_SCALE, MAX_SCALE = 0.25, 4.0
SCALE_STEPS_PER_OCTAVE = 8
FINE_SCALE_STEPS = (0.0, -0.5, -0.25, 0.25, 0.5)
"""Fractions of a scale step around the coarse search's best scale (0: that scale itself),
scored again on a copy twice as fine."""
ANGLES = (-3.0, 3.0)
"""Degrees tried, besides 0, at the best scale of the coarse search; the fine search reaches
the ±5° between and beyond, up to MAX_ANGLE."""
MAX_ANGLE = 10.0
"""Largest rotation (degrees) a placement may take: marks are put down about upright, and
a search free to turn far fits chance texture instead."""
COARSE_TEMPLATE_SIDE = 96
"""Length (pixels) of the mark's longer side on the copy each scale is matched on."""
MIN_COARSE_SIDE = 8
"""The mark's shorter side is at least this long on the matched copy."""
COARSE_MAX_PIXELS = 2_000_000
"""Pixels of the largest copy matched on: a small mark in a larger photo is matched on a copy
where it is shorter than COARSE_TEMPLATE_SIDE (its candidates are still judged on the copy
it wanted), since matching costs the copy's every pixel at every scale."""
MIN_SCORE = 0.06
"""Lowest gradient correlation counted as the mark: unrelated photo texture stays below it."""
COPY_ENERGY = 0.3
"""A further copy must remove this share of the gradient energy the best one removes."""
COPY_RATIO = 0.6
"""A further copy of a repeated mark must score this share of the best one."""
EDGE_KNEE = 24.0
"""Sobel response (about six grey levels of step) at which an edge counts half."""
SIGN_MARGIN = 4.0
"""Levels within which a channel is taken to be at the mark's colour: its sign says nothing."""
FLAT_SPREAD = 0.02
"""Orientation spread below which a window is flat: it scores nothing."""
BLUR = 1.5
"""Gaussian sigma (pixels) of the copies a first gain and position are found on."""
REFINE_LONG_SIDE = 384
"""Windows larger than this are refined on a reduced copy first, then polished at full size."""
FINE_TILE = 96
"""Side (pixels) of the tiles a large window's full-size polish is judged on."""
FINE_TILES = 8
"""Tiles, spread along the mark's outline, a window larger than this many is judged on: after
the reduced copy's search only sub-pixel detail is left, which every stretch of outline shows."""
FAINTEST_GAIN = 0.02
"""Gain below which a mark changes nothing visible: the outline's crossing is not looked for
below it, and a placement this faint on the reduced copy is not polished at full size."""
GAIN_BISECTIONS = 16
SNAP_ANGLE = 1.0
"""Degrees from upright within which a pixel-sized (unrotated) placement is tried."""


FeatureKind = Literal["orientation", "signed"]
"""`_orientation` (any mark) or `_towards_colour` (a mark of one colour)."""


@dataclass(frozen=True)
class Placement:
    """One copy of the template in the image (image pixel coordinates)."""

    x: float
    """Column of the template's centre."""
    y: float
    """Row of the template's centre."""
    scale: float
    angle: float
    """Degrees, counter-clockwise."""
    gain: float
    """Opacity in the image = gain · the template's α (clipped to 1)."""
    score: float
    """Gradient correlation found by the coarse search, 0..1."""
    kind: FeatureKind = "orientation"
    """The edge feature the coarse search found it with."""
    pixel_size: tuple[int, int] | None = None
    """(width, height) when the mark sits as an editor puts a layer: resized once to whole
    pixels and pasted unrotated at a whole-pixel corner. None: any scale, angle and sub-pixel
    position (a warp), e.g. after the marked photo itself was resized."""

    @property
    def corner(self) -> tuple[int, int]:
        """(row, col) of a pixel-sized placement's top-left pixel."""
        assert self.pixel_size is not None
        width, height = self.pixel_size
        return round(self.y - (height - 1) / 2), round(self.x - (width - 1) / 2)


@dataclass(frozen=True)
class Layers:
    """The placed mark's α and W over a window of the image."""

    top: int
    left: int
    alpha: np.ndarray
    """(h, w) float32."""
    colour: np.ndarray
    """(h, w, 3) float32."""

    @property
    def window(self) -> tuple[slice, slice]:
        height, width = self.alpha.shape
        return slice(self.top, self.top + height), slice(self.left, self.left + width)


class ResizedCopies:
    """A template's α and premultiplied colour, resized to whole-pixel sizes once each: a
    search renders the same few sizes hundreds of times."""

    def __init__(self, template: WatermarkTemplate) -> None:
        self.alpha = template.alpha
        self.premultiplied = template.premultiplied
        self._sizes: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def at(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(α, premultiplied) at ``size = (width, height)``: area-averaged when shrinking,
        cubic when enlarging, as image editors resize a layer."""
        if size == (self.alpha.shape[1], self.alpha.shape[0]):
            return self.alpha, self.premultiplied
        if size not in self._sizes:
            if len(self._sizes) >= 64:
                self._sizes.clear()
            shrinking = size[0] * size[1] < self.alpha.size
            method = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
            self._sizes[size] = (
                cv2.resize(self.alpha, size, interpolation=method),
                cv2.resize(self.premultiplied, size, interpolation=method),
            )
        return self._sizes[size]


def render(
    template: WatermarkTemplate,
    placements: list[Placement],
    shape: tuple[int, int],
    *,
    window: tuple[int, int, int, int] | None = None,
    copies: ResizedCopies | None = None,
) -> Layers:
    """The mark's layers where `placements` put it, over ``window = (top, left, bottom,
    right)`` of an image of `shape` (H, W); the whole image by default. `copies`: the
    template's resized copies, kept between calls (made afresh if None)."""
    top, left, bottom, right = window if window is not None else (0, 0, *shape)
    height, width = bottom - top, right - left
    copies = copies if copies is not None else ResizedCopies(template)
    alpha = np.zeros((height, width), np.float32)
    premultiplied = np.zeros((height, width, 3), np.float32)
    for index, placement in enumerate(placements):
        a, p = _warp(copies, placement, top, left, height, width)
        a = np.minimum(a * placement.gain, 1.0)
        p = p * placement.gain
        if index == 0:
            alpha, premultiplied = a, p
            continue
        # "Over": a later copy covers an earlier one where they overlap.
        premultiplied = p + (1.0 - a[..., None]) * premultiplied
        alpha = a + (1.0 - a) * alpha
    # Interpolation tails below one grey level of opacity would change pixels by rounding only.
    alpha = np.where(alpha >= MIN_VISIBLE_ALPHA, alpha, 0.0).astype(np.float32)
    colour = premultiplied / np.maximum(alpha, 1e-6)[..., None]
    colour[alpha <= 1e-6] = 0.0
    return Layers(
        top=top, left=left, alpha=alpha, colour=np.clip(colour, 0, 255).astype(np.float32)
    )


def _warp(
    copies: ResizedCopies,
    placement: Placement,
    top: int,
    left: int,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    if placement.pixel_size is not None:
        return _pasted(copies, placement, top, left, height, width)
    scale = placement.scale
    stretch = scale * np.eye(2)
    alpha, premultiplied = copies.alpha, copies.premultiplied
    if scale < 1.0:
        # Shrinking as editors scale a layer: an area resize of the whole file to whole
        # pixels; the warp then does only the leftover sub-pixel shift, scale and rotation
        # (a warp alone would alias thin strokes).
        size = (max(1, round(alpha.shape[1] * scale)), max(1, round(alpha.shape[0] * scale)))
        stretch = np.diag([scale * alpha.shape[1] / size[0], scale * alpha.shape[0] / size[1]])
        alpha, premultiplied = copies.at(size)
    theta = math.radians(placement.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    h, w = alpha.shape
    # Template pixel (u, v) relative to its centre -> image (x, y); the window moves the origin.
    linear = np.array([[cos, sin], [-sin, cos]]) @ stretch
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    offset = np.array([placement.x - left, placement.y - top]) - linear @ centre
    matrix = np.hstack([linear, offset[:, None]]).astype(np.float64)
    a = cv2.warpAffine(alpha, matrix, (width, height), flags=cv2.INTER_CUBIC, borderValue=0)
    p = cv2.warpAffine(premultiplied, matrix, (width, height), flags=cv2.INTER_CUBIC, borderValue=0)
    return np.clip(a, 0.0, 1.0), np.maximum(p, 0.0)


def _pasted(
    copies: ResizedCopies,
    placement: Placement,
    top: int,
    left: int,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    assert placement.pixel_size is not None
    size = placement.pixel_size
    alpha, premultiplied = copies.at(size)
    row, col = placement.corner
    row, col = row - top, col - left
    a = np.zeros((height, width), np.float32)
    p = np.zeros((height, width, 3), np.float32)
    y0, x0 = max(0, row), max(0, col)
    y1, x1 = min(height, row + size[1]), min(width, col + size[0])
    if y1 > y0 and x1 > x0:
        a[y0:y1, x0:x1] = alpha[y0 - row : y1 - row, x0 - col : x1 - col]
        p[y0:y1, x0:x1] = premultiplied[y0 - row : y1 - row, x0 - col : x1 - col]
    return np.clip(a, 0.0, 1.0), np.maximum(p, 0.0)


def footprint(template: WatermarkTemplate, placement: Placement) -> tuple[float, float]:
    """Half extents (rows, cols) of the placed template's bounding box."""
    h, w = template.shape
    theta = math.radians(placement.angle)
    half_w, half_h = w * placement.scale / 2, h * placement.scale / 2
    cols = abs(math.cos(theta)) * half_w + abs(math.sin(theta)) * half_h
    rows = abs(math.sin(theta)) * half_w + abs(math.cos(theta)) * half_h
    return rows, cols


def placement_window(
    template: WatermarkTemplate,
    placements: list[Placement],
    shape: tuple[int, int],
    margin: int = 4,
) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) inside the image covering every placement, or None if
    none of them falls inside it."""
    tops, lefts, bottoms, rights = [], [], [], []
    for placement in placements:
        rows, cols = footprint(template, placement)
        tops.append(math.floor(placement.y - rows) - margin)
        bottoms.append(math.ceil(placement.y + rows) + margin + 1)
        lefts.append(math.floor(placement.x - cols) - margin)
        rights.append(math.ceil(placement.x + cols) + margin + 1)
    top, left = max(0, min(tops)), max(0, min(lefts))
    bottom, right = min(shape[0], max(bottoms)), min(shape[1], max(rights))
    if bottom <= top or right <= left:
        return None
    return top, left, bottom, right


# --- coarse search ------------------------------------------------------------------------------


def _orientation(pixels: np.ndarray) -> np.ndarray:
    """Edge orientation as a doubled-angle vector, (h, w, 2) float32, length 0..1.

    From the structure tensor summed over channels: (Jxx − Jyy, 2·Jxy) points along twice the
    edge angle whichever side is brighter, so a mark lighter than one part of the photo and
    darker than another still matches its template. Dividing by the tensor's trace plus a
    knee makes every clear edge count about the same: strong photo edges do not outvote the
    mark's fainter outline, and only their orientation has to agree.
    """
    data = pixels.astype(np.float32)
    gx = cv2.Sobel(data, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(data, cv2.CV_32F, 0, 1, ksize=3)
    if gx.ndim == 2:
        gx, gy = gx[..., None], gy[..., None]
    jxx, jyy, jxy = (gx * gx).sum(axis=2), (gy * gy).sum(axis=2), (gx * gy).sum(axis=2)
    scale = jxx + jyy + EDGE_KNEE**2
    return np.stack([(jxx - jyy) / scale, 2.0 * jxy / scale], axis=2).astype(np.float32)


def _towards_colour(pixels: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Edges signed towards the mark's colour, (h, w, 2) float32, length 0..1.

    Where α rises, a blend pushes every channel towards W: each channel's gradient, signed by
    which side of the pixel W lies, points up α's slope on the mark's outline whatever the
    photo's colours, while a photo's own edges point any way. Signed, a match needs the
    mark's edges to face the right way, which chance texture seldom does.
    """
    data = pixels.astype(np.float32)
    gx = cv2.Sobel(data, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(data, cv2.CV_32F, 0, 1, ksize=3)
    difference = colour.astype(np.float32) - data
    sign = np.where(np.abs(difference) > SIGN_MARGIN, np.sign(difference), 0.0)
    vx, vy = (gx * sign).sum(axis=2), (gy * sign).sum(axis=2)
    scale = np.sqrt(vx * vx + vy * vy) + EDGE_KNEE
    return np.stack([vx / scale, vy / scale], axis=2).astype(np.float32)


def _edge_feature(pixels: np.ndarray, kind: FeatureKind, colour: np.ndarray | None) -> np.ndarray:
    if kind == "signed":
        assert colour is not None
        return _towards_colour(pixels, colour)
    return _orientation(pixels)


def _alpha_slope(alpha: np.ndarray) -> np.ndarray:
    """The template side of `_towards_colour`: α's own gradient, same normalisation."""
    data = alpha * 255.0
    gx = cv2.Sobel(data, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(data, cv2.CV_32F, 0, 1, ksize=3)
    scale = np.sqrt(gx * gx + gy * gy) + EDGE_KNEE
    return np.stack([gx / scale, gy / scale], axis=2).astype(np.float32)


class _Feature:
    """An edge feature of a reduced copy, zero-padded so a copy of the mark may stand partly
    outside the frame, with its integral tables (float64): every scale matched on that copy
    shares them."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self._pad = (-1, -1)

    def _pad_to(self, pad: tuple[int, int]) -> None:
        # Patches grow with the scale: room for the rest of the copy's scales is made at once.
        pad_y, pad_x = (math.ceil(1.5 * need) + 2 for need in pad)
        self._pad = (pad_y, pad_x)
        self._padded = cv2.copyMakeBorder(
            self.values, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_CONSTANT, value=0
        )
        data = self._padded.astype(np.float64)
        sums = cv2.integral(data)
        sums = sums if sums.ndim == 3 else sums[..., None]
        self._sums = [np.ascontiguousarray(sums[..., channel]) for channel in range(sums.shape[2])]
        self._squares = cv2.integral((data * data).sum(axis=2))

    def correlation(self, patch: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
        """Normalised cross-correlation of `patch` at every position of the feature padded
        with `pad` (rows, cols) of zeros on each side (valid part), weighed by the share of
        the patch's energy inside the frame: a window mostly over the padding correlates
        well with anything after normalisation.

        OpenCV's own normalised mode computes window variances in single precision, which
        turns flat windows into spurious high scores; the variances here come from float64
        sums, and nearly flat windows score nothing.
        """
        if pad[0] > self._pad[0] or pad[1] > self._pad[1]:
            self._pad_to(pad)
        ph, pw = patch.shape[:2]
        height, width = self.values.shape[:2]
        top, left = self._pad[0] - pad[0], self._pad[1] - pad[1]
        rows, cols = height + 2 * pad[0], width + 2 * pad[1]
        view = (slice(top, top + rows), slice(left, left + cols))
        centred = (patch - patch.mean(axis=(0, 1))).astype(np.float32)
        norm = float(np.sqrt((centred.astype(np.float64) ** 2).sum()))
        numerator = cv2.matchTemplate(self._padded[view], centred, cv2.TM_CCORR)
        out_h, out_w = rows - ph + 1, cols - pw + 1

        def window_sum(table: np.ndarray) -> np.ndarray:
            def at(dy: int, dx: int) -> np.ndarray:
                return table[top + dy : top + dy + out_h, left + dx : left + dx + out_w]

            return at(ph, pw) - at(0, pw) - at(ph, 0) + at(0, 0)

        count = ph * pw
        variance = window_sum(self._squares)
        for table in self._sums:
            sums = window_sum(table)
            variance -= sums * sums / count
        spread = np.sqrt(np.maximum(variance, 0.0)).astype(np.float32)
        floor = FLAT_SPREAD * np.sqrt(count)
        scores = np.where(spread > floor, numerator / np.maximum(spread * norm, 1e-9), 0.0)
        inside = _share_inside((patch * patch).sum(axis=2), pad, (height, width), scores.shape)
        scores = np.clip(scores, -1.0, 1.0) * np.sqrt(np.clip(inside, 0.0, 1.0))
        return scores.astype(np.float32)


def _share_inside(
    energy: np.ndarray,
    pad: tuple[int, int],
    frame: tuple[int, int],
    shape: tuple[int, int],
) -> np.ndarray:
    """Share of the patch's `energy` ((ph, pw)) that lies over the frame ((height, width),
    padded with `pad`) at every position of a correlation map of `shape`: 1 except within a
    patch of the padding, so only those bands are summed (from the patch's integral table)."""
    ph, pw = energy.shape
    table = cv2.integral(energy.astype(np.float64))
    total = float(table[-1, -1])
    every_row, every_col = np.arange(shape[0]), np.arange(shape[1])
    # Patch rows (cols) [low, high) fall inside the frame at each map row (col).
    low_y = np.clip(pad[0] - every_row, 0, ph)
    high_y = np.clip(pad[0] + frame[0] - every_row, 0, ph)
    low_x = np.clip(pad[1] - every_col, 0, pw)
    high_x = np.clip(pad[1] + frame[1] - every_col, 0, pw)

    def band(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        y0, y1 = low_y[rows][:, None], high_y[rows][:, None]
        x0, x1 = low_x[cols][None, :], high_x[cols][None, :]
        return (table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]) / total

    share = np.ones(shape, np.float32)
    if total <= 0:
        return share
    edge_rows = np.flatnonzero((low_y > 0) | (high_y < ph))
    edge_cols = np.flatnonzero((low_x > 0) | (high_x < pw))
    share[edge_rows, :] = band(edge_rows, every_col)
    share[:, edge_cols] = band(every_row, edge_cols)
    return share


def _template_feature(
    template: WatermarkTemplate, scale: float, angle: float, kind: FeatureKind = "orientation"
) -> np.ndarray:
    rows, cols = footprint(template, Placement(0, 0, scale, angle, 1.0, 0.0))
    height, width = 2 * math.ceil(rows) + 3, 2 * math.ceil(cols) + 3
    centre = Placement((width - 1) / 2, (height - 1) / 2, scale, angle, 1.0, 0.0)
    layers = render(template, [centre], (height, width))
    if kind == "signed":
        return _alpha_slope(layers.alpha)
    stacked = np.concatenate(
        [layers.alpha[..., None] * 255.0, layers.alpha[..., None] * layers.colour], axis=2
    )
    return _orientation(stacked)


def _reduced(image: np.ndarray, factor: float) -> np.ndarray:
    """`image` area-resized by `factor` (at least one pixel a side)."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _shared_size(factor: float) -> float:
    """`factor` rounded down to a power of √2: a few reduced copies serve every scale."""
    return 2.0 ** (math.floor(math.log2(factor) * 2) / 2)


def _scales() -> list[float]:
    low = round(math.log2(MIN_SCALE) * SCALE_STEPS_PER_OCTAVE)
    high = round(math.log2(MAX_SCALE) * SCALE_STEPS_PER_OCTAVE)
    return [2.0 ** (k / SCALE_STEPS_PER_OCTAVE) for k in range(low, high + 1)]


Scored = tuple[float, float, float, float, np.ndarray, tuple[int, int], FeatureKind]
"""(evidence, scale, angle, factor, score map, padding, feature kind)."""


def _score(
    feature: _Feature,
    template: WatermarkTemplate,
    scale: float,
    angle: float,
    factor: float,
    min_score: float,
    kind: FeatureKind,
) -> Scored | None:
    patch = _template_feature(template, scale * factor, angle, kind)
    if float(patch.std()) <= 1e-6:
        return None
    ph, pw = patch.shape[:2]
    # Padding lets a copy stand partly outside the frame (up to about half of it).
    pad_y, pad_x = ph // 2, pw // 2
    height, width = feature.values.shape[:2]
    if height + 2 * pad_y < ph or width + 2 * pad_x < pw:
        return None
    scores = feature.correlation(patch, (pad_y, pad_x))
    top = float(scores.max())
    if top < min_score:
        return None
    # A small template correlates well with photo texture by chance: the spread of chance
    # scores shrinks as the square root of the outline's pixel count, so candidates are
    # ranked by score times that root.
    length = np.sqrt((patch * patch).sum(axis=2))
    outline = float(np.count_nonzero(length > 0.1 * float(length.max())))
    return top * math.sqrt(outline), scale, angle, factor, scores, (pad_y, pad_x), kind


def _peak(scored: Scored, template: WatermarkTemplate) -> Placement:
    """The best-scoring position of a coarse candidate, in image pixels."""
    _, scale, angle, factor, scores, (pad_y, pad_x), kind = scored
    patch_h, patch_w = _template_feature(template, scale * factor, angle, kind).shape[:2]
    row, col = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return Placement(
        x=float((col + (patch_w - 1) / 2 - pad_x + 0.5) / factor - 0.5),
        y=float((row + (patch_h - 1) / 2 - pad_y + 0.5) / factor - 0.5),
        scale=scale,
        angle=angle,
        gain=1.0,
        score=float(scores[row, col]),
    )


def _placement_energy(
    small: np.ndarray, template: WatermarkTemplate, placement: Placement, factor: float
) -> float:
    image = small
    placement = _scaled(placement, factor)
    window = placement_window(template, [placement], image.shape[:2], margin=8)
    if window is None:
        return -math.inf
    soft = _blurred(image, window)
    cost = _cost(soft, template, window, blur=BLUR)
    tuned = _best_gain(placement, cost, float(template.alpha.max()), steps=8)
    layers = _soft_layers(render(template, [tuned], image.shape[:2], window=window), BLUR)
    return _energy_removed(soft, layers)


def _energy_removed(image: np.ndarray, layers: Layers) -> float:
    """Gradient energy over the window before inversion minus after. Pixels too opaque to
    invert will be inpainted: they are counted at the inverted pixels' mean gradient, so an
    opaque mark is not outscored by a faint chance match that inverts everything."""
    height, width = layers.alpha.shape
    total = height * (width - 1) + (height - 1) * width
    before, _ = deblended_gradient_energy(image, layers, invert=False, max_alpha=2.0)
    after, pairs = deblended_gradient_energy(image, layers)
    if pairs == 0:
        return 0.0
    return before * total - after * total


def find_placements(
    image: np.ndarray,
    template: WatermarkTemplate,
    *,
    min_score: float = MIN_SCORE,
    max_copies: int = 64,
) -> list[Placement]:
    """Coarse placements of `template` in `image` ((H, W, 3) uint8), best first; empty when
    nothing correlates above `min_score`. Gains are a first guess (refine them)."""
    hypotheses = find_hypotheses(image, template, min_score=min_score, max_copies=max_copies)
    return hypotheses[0] if hypotheses else []


def find_hypotheses(
    image: np.ndarray,
    template: WatermarkTemplate,
    *,
    min_score: float = MIN_SCORE,
    max_copies: int = 64,
) -> list[list[Placement]]:
    """A few different guesses at where `template` is, each a list of copies (best first),
    the likeliest guess first: one per edge feature that found a candidate. Telling them
    apart needs the full-size inversion (the caller's), which the reduced copies here
    cannot afford for every scale."""
    height, width = image.shape[:2]
    visible = template.cropped().shape
    long_side, short_side = max(visible), min(visible)
    features: dict[tuple[float, FeatureKind], _Feature] = {}
    shrunk: dict[float, np.ndarray] = {}
    colour = template.single_colour()
    kinds: tuple[FeatureKind, ...] = (
        ("orientation",) if colour is None else ("orientation", "signed")
    )
    largest = math.sqrt(COARSE_MAX_PIXELS / (height * width))
    groups: dict[float, list[float]] = {}
    judged_on: dict[float, float] = {}
    for scale in _scales():
        # Each scale is matched on a copy where the mark is about COARSE_TEMPLATE_SIDE long:
        # a scale step then shifts its ends by a pixel or two whatever its size, and small
        # and large scales meet chance correlations on equal terms.
        wanted = min(1.0, COARSE_TEMPLATE_SIDE / (long_side * scale))
        wanted = _shared_size(min(1.0, max(wanted, MIN_COARSE_SIDE / (short_side * scale))))
        factor = min(wanted, _shared_size(min(1.0, largest)))
        if short_side * scale * factor < 3 or max(height, width) * factor < 16:
            continue
        groups.setdefault(factor, []).append(scale)
        # A small mark in a large photo is matched on the capped copy, where it is short,
        # but judged on the copy it wanted (judging reads only the mark's window).
        judged_on[scale] = wanted
    for factor in {*groups, *judged_on.values()}:
        shrunk[factor] = _reduced(image, factor)

    def matched(factor: float, kind: FeatureKind) -> list[tuple[float, Scored]]:
        small = shrunk[factor]
        feature = _Feature(_edge_feature(small, kind, colour))
        features[factor, kind] = feature
        scored = [
            _score(feature, template, scale, 0.0, factor, min_score, kind)
            for scale in groups[factor]
        ]
        return [(judged(s), s) for s in scored if s is not None]

    def judged(scored: Scored) -> float:
        # Correlation alone favours small scales (chance agreement with photo texture):
        # every scale's peak is tried with its best gain on blurred copies (cheap, and
        # forgiving of the coarse peak's pixel or two of error); the one that removes most
        # gradient wins, for each feature.
        factor = judged_on[scored[1]]
        return _placement_energy(shrunk[factor], template, _peak(scored, template), factor)

    def polished(best: Scored) -> list[Placement]:
        kind = best[6]
        # The winning scale, and half and quarter steps around it, on a copy twice as fine
        # (up to a quarter of the largest coarse copy's pixels): a coarse scale a few per
        # cent off puts a long mark's ends too far out for the refinement to pull in, and on
        # the coarse copy the scores of neighbouring scales are too jagged to tell.
        finer = _finer(best, largest)
        if finer is not None:
            if (finer, kind) not in features:
                features[finer, kind] = _Feature(_edge_feature(shrunk[finer], kind, colour))
            rescored = [
                _score(
                    features[finer, kind],
                    template,
                    best[1] * 2.0 ** (step / SCALE_STEPS_PER_OCTAVE),
                    0.0,
                    finer,
                    min_score,
                    kind,
                )
                for step in FINE_SCALE_STEPS
            ]
            found = [scored for scored in rescored if scored is not None]
            if found:
                best = max(found, key=lambda scored: float(scored[4].max()))
        # Angles only at the winning scale: a few degrees barely move the scale's score.
        for angle in ANGLES:
            feature = features[best[3], kind]
            scored = _score(feature, template, best[1], angle, best[3], min_score, kind)
            if scored is not None and float(scored[4].max()) > float(best[4].max()):
                best = scored
        return _copies(best, template, shrunk[best[3]], min_score, max_copies)

    # Each copy and feature is matched on its own thread, and each feature's winner polished
    # on its own (OpenCV and NumPy let go of the GIL).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        jobs = [pool.submit(matched, factor, kind) for factor in groups for kind in kinds]
        judged = [pair for job in jobs for pair in job.result()]
        ranked = [scored for _, scored in sorted(judged, key=lambda pair: -pair[0])]
        bests = [best for kind in kinds if (best := _first_of(ranked, kind)) is not None]
        for best in bests:
            finer = _finer(best, largest)
            if finer is not None and finer not in shrunk:
                shrunk[finer] = _reduced(image, finer)
        found = list(pool.map(polished, bests))
    hypotheses: list[list[Placement]] = []
    for copies in found:
        if copies and not any(_same_place(copies[0], other[0]) for other in hypotheses):
            hypotheses.append(copies)
    first_kind = ranked[0][6] if ranked else None
    hypotheses.sort(key=lambda copies: copies[0].kind != first_kind)
    return hypotheses


def _first_of(ranked: list[Scored], kind: FeatureKind) -> Scored | None:
    return next((scored for scored in ranked if scored[6] == kind), None)


def _finer(best: Scored, largest: float) -> float | None:
    """The copy a coarse winner's scale is polished on, twice as fine as its own (at most
    a quarter of the largest copy's pixels); None when that is not finer."""
    finer = min(1.0, 2.0 * best[3], largest / 2)
    return finer if finer > best[3] * 1.2 else None


def _same_place(one: Placement, other: Placement) -> bool:
    return (
        abs(one.x - other.x) < 4
        and abs(one.y - other.y) < 4
        and abs(math.log(one.scale / other.scale)) < 0.1
    )


def _copies(
    best: Scored,
    template: WatermarkTemplate,
    small: np.ndarray,
    min_score: float,
    max_copies: int,
) -> list[Placement]:
    """The copies of a repeated mark at the candidate's scale: its other strong peaks."""
    _, scale, angle, factor, scores, (pad_y, pad_x), kind = best
    top_score = float(scores.max())
    patch_h, patch_w = _template_feature(template, scale * factor, angle, kind).shape[:2]
    radius = max(1, min(patch_h, patch_w) // 2)
    threshold = max(min_score, COPY_RATIO * top_score)
    peaks = (scores == cv2.dilate(scores, np.ones((2 * radius + 1,) * 2, np.uint8))) & (
        scores >= threshold
    )
    copies = []
    for row, col in np.argwhere(peaks):
        centre_x = (col + (patch_w - 1) / 2 - pad_x + 0.5) / factor - 0.5
        centre_y = (row + (patch_h - 1) / 2 - pad_y + 0.5) / factor - 0.5
        copies.append(
            Placement(
                x=float(centre_x),
                y=float(centre_y),
                scale=scale,
                angle=angle,
                gain=1.0,
                score=float(scores[row, col]),
                kind=kind,
            )
        )
    copies.sort(key=lambda placement: -placement.score)
    copies = copies[:max_copies]
    if len(copies) > 1:
        # Other peaks are copies of a repeated mark only if they too remove the outline.
        energies = [_placement_energy(small, template, c, factor) for c in copies]
        strongest = max(energies)
        copies = [c for c, e in zip(copies, energies, strict=True) if e >= COPY_ENERGY * strongest]
    return copies


# --- fine search --------------------------------------------------------------------------------


def deblended_gradient_energy(
    image: np.ndarray,
    layers: Layers,
    *,
    max_alpha: float = 0.9,
    invert: bool = True,
    chroma: ChromaGrid = FULL_CHROMA,
) -> tuple[float, int]:
    """(Mean L1 gradient of the de-blended window, pixel pairs it was taken over): low where
    the mark is cleanly removed. Pixels at or above `max_alpha` will be inpainted, so they
    and their neighbours are left out; a too strong gain still costs, on the fringe it
    over-inverts. With `invert` False, the same pixels of the image as it is. `chroma`: the
    image's chroma grid, as seen from the window."""
    patch = image[layers.window]
    usable = layers.alpha < max_alpha
    if invert:
        recovered = unblend(patch, layers.alpha, layers.colour, chroma=chroma, max_alpha=max_alpha)
    else:
        recovered = patch.astype(np.float32)
    dx = np.abs(np.diff(recovered, axis=1))
    dy = np.abs(np.diff(recovered, axis=0))
    if usable.all():
        height, width = usable.shape
        count = height * (width - 1) + (height - 1) * width
        total = float(dx.sum()) + float(dy.sum())
    else:
        pairs_x = usable[:, 1:] & usable[:, :-1]
        pairs_y = usable[1:] & usable[:-1]
        count = int(pairs_x.sum() + pairs_y.sum())
        total = float(dx.sum(axis=2)[pairs_x].sum()) + float(dy.sum(axis=2)[pairs_y].sum())
    if count == 0:
        return math.inf, 0
    return total / count, count


def refine(
    image: np.ndarray,
    template: WatermarkTemplate,
    placement: Placement,
    *,
    max_evaluations: int = 400,
    chroma: ChromaGrid = FULL_CHROMA,
) -> Placement:
    """`placement` polished (position, scale, angle, gain) on `image` ((H, W, 3) uint8);
    `chroma`: how the image's chroma was sampled (a JPEG's grid)."""
    height, width = image.shape[:2]
    window = placement_window(template, [placement], (height, width), margin=8)
    if window is None:
        return placement
    long_side = max(window[2] - window[0], window[3] - window[1])
    if long_side > REFINE_LONG_SIDE:
        factor = REFINE_LONG_SIDE / long_side
        small = _reduced(image, factor)
        shrunk = _scaled(placement, factor)
        shrunk = _search(small, template, shrunk, coarse=True, budget=max_evaluations)
        placement = _scaled(shrunk, 1.0 / factor)
        if placement.gain < FAINTEST_GAIN:
            return placement  # no mark here: polishing it at full size would find none either
        placement = _search(
            image,
            template,
            placement,
            coarse=False,
            budget=max_evaluations // 3,
            chroma=chroma,
            sampled=True,
        )
    else:
        placement = _search(
            image, template, placement, coarse=True, budget=max_evaluations, chroma=chroma
        )
        if placement.gain < FAINTEST_GAIN:
            return placement
    placement = _snapped(image, template, placement, chroma)
    if chroma.subsampled:
        # A JPEG's noise, divided by 1 − α, pulls the gradient cost's gain low; on a
        # lossless image that cost is the better judge (the outline's crossing also
        # answers to the photo's own texture along the outline).
        placement = fit_gain(image, template, placement, chroma=chroma)
    return placement


def fit_gain(
    image: np.ndarray,
    template: WatermarkTemplate,
    placement: Placement,
    *,
    chroma: ChromaGrid = FULL_CHROMA,
    max_alpha: float = DEFAULT_MAX_ALPHA,
) -> Placement:
    """`placement` with the gain at which the mark's outline vanishes from the inverted image.

    The gradient search's cost leans towards weaker gains: inverting divides the image's own
    noise (JPEG's above all) by 1 − α, which a weaker mark amplifies less. The outline's
    signed contrast (`quality.outline_contrast`) has no such lean: noise and texture
    average out in it, and it changes sign exactly where the mark is removed, too weak on one
    side and drawn negative on the other. The gain is where it crosses zero (bisection).
    """
    shape = image.shape[:2]
    window = placement_window(template, [placement], shape, margin=8)
    if window is None or placement.gain <= 0:
        return placement
    unit = render(template, [replace(placement, gain=1.0)], shape, window=window)
    peak = float(unit.alpha.max())
    if peak <= 0:
        return placement
    patch = image[unit.window]
    grid = chroma.shifted(unit.top, unit.left)
    near = np.ones((3, 3), np.uint8)

    def remaining(log_gain: float) -> float:
        alpha = np.minimum(unit.alpha * math.exp(log_gain), 1.0)
        # Judged where inversion is reliable at this gain, as `remove_blended` judges it.
        opaque = cv2.dilate((alpha >= max_alpha).astype(np.uint8), near)
        judged = (opaque == 0) & (alpha < JUDGED_ALPHA)
        recovered = invert(patch, alpha, unit.colour, max_alpha=max_alpha, chroma=grid).image
        return outline_contrast(recovered, patch, unit.alpha, unit.colour, judged)

    low, high = math.log(FAINTEST_GAIN), math.log(1.0 / peak)
    if low >= high or not remaining(low) > 0 > remaining(high):
        return placement
    for _ in range(GAIN_BISECTIONS):
        middle = (low + high) / 2
        if remaining(middle) > 0:
            low = middle
        else:
            high = middle
    return replace(placement, gain=math.exp((low + high) / 2))


def _snapped(
    image: np.ndarray, template: WatermarkTemplate, placement: Placement, chroma: ChromaGrid
) -> Placement:
    """The pixel-sized placement (`Placement.pixel_size`) nearest `placement`, if it removes
    the mark better: a warp resamples the resized mark, which blurs thin strokes, so a mark
    put down as editors do is matched exactly only by being drawn the same way."""
    if abs(placement.angle) > SNAP_ANGLE:
        return placement
    window = placement_window(template, [placement], image.shape[:2], margin=8)
    if window is None:
        return placement
    cost = _cost(
        image,
        template,
        window,
        chroma=chroma,
        tiles=_outline_tiles(template, placement, image.shape[:2], window),
    )
    best, best_cost = placement, cost(placement)
    height, width = template.shape
    for size_x in _whole_near(width * placement.scale):
        for size_y in _whole_near(height * placement.scale):
            for col in _whole_near(placement.x - (size_x - 1) / 2, lowest=None):
                for row in _whole_near(placement.y - (size_y - 1) / 2, lowest=None):
                    candidate = replace(
                        placement,
                        x=col + (size_x - 1) / 2,
                        y=row + (size_y - 1) / 2,
                        scale=size_x / width,
                        angle=0.0,
                        pixel_size=(size_x, size_y),
                    )
                    value = cost(candidate)
                    if value < best_cost:
                        best, best_cost = candidate, value
    return best


def _whole_near(value: float, *, lowest: int | None = 1) -> tuple[int, ...]:
    low = math.floor(value)
    if lowest is not None and low < lowest:
        return (lowest,)
    return low, low + 1


def _scaled(placement: Placement, factor: float) -> Placement:
    return replace(
        placement,
        x=(placement.x + 0.5) * factor - 0.5,
        y=(placement.y + 0.5) * factor - 0.5,
        scale=placement.scale * factor,
    )


def _search(
    image: np.ndarray,
    template: WatermarkTemplate,
    placement: Placement,
    *,
    coarse: bool,
    budget: int,
    chroma: ChromaGrid = FULL_CHROMA,
    sampled: bool = False,
) -> Placement:
    """`placement` polished by pattern search; `sampled`: the sharp cost is judged on
    `_outline_tiles` of a large window, not all of it."""
    shape = image.shape[:2]
    window = placement_window(template, [placement], shape, margin=8)
    if window is None:
        return placement
    peak = float(template.alpha.max())
    if coarse:
        # First on blurred copies: a coarse peak a pixel or two off makes any sharp
        # inversion look worse than none, so gain and position are found where a small
        # offset costs little, then polished sharp.
        soft = _blurred(image, window)
        soft_cost = _cost(soft, template, window, blur=BLUR)
        placement = _best_gain(placement, soft_cost, peak)
        if placement.gain < 1.05 * FAINTEST_GAIN:
            # The best gain is the faintest tried: any inversion here only roughens the
            # image, so nothing is here to polish.
            return replace(placement, gain=0.0)
        placement = _pattern(placement, soft_cost, [2.0, 2.0, 0.08, 2.5, 0.15], budget // 2, peak)
        steps = [0.5, 0.5, 0.01, 0.5, 0.04]
    else:
        steps = [0.4, 0.4, 0.005, 0.4, 0.04]
    tiles = _outline_tiles(template, placement, shape, window) if sampled else None
    sharp = _cost(image, template, window, chroma=chroma, tiles=tiles)
    if coarse:
        placement = _best_gain(placement, sharp, peak, around=0.3)
    return _pattern(placement, sharp, steps, budget - budget // 2, peak)


def _cost(
    image: np.ndarray,
    template: WatermarkTemplate,
    window: tuple[int, int, int, int],
    *,
    blur: float = 0.0,
    chroma: ChromaGrid = FULL_CHROMA,
    tiles: list[tuple[int, int, int, int]] | None = None,
) -> Callable[[Placement], float]:
    """The mean gradient of the image de-blended with a candidate, over `window`, or over
    `tiles` of it only."""
    parts = tiles if tiles is not None else [window]
    grids = [chroma.shifted(part[0], part[1]) for part in parts]
    copies = ResizedCopies(template)

    def cost(candidate: Placement) -> float:
        if candidate.gain <= 0 or candidate.scale <= 0:
            return math.inf
        total, count = 0.0, 0
        for part, grid in zip(parts, grids, strict=True):
            layers = render(template, [candidate], image.shape[:2], window=part, copies=copies)
            if blur > 0:
                layers = _soft_layers(layers, blur)
            mean, pairs = deblended_gradient_energy(image, layers, chroma=grid)
            if pairs:
                total, count = total + mean * pairs, count + pairs
        return total / count if count else math.inf

    return cost


def _outline_tiles(
    template: WatermarkTemplate,
    placement: Placement,
    shape: tuple[int, int],
    window: tuple[int, int, int, int],
) -> list[tuple[int, int, int, int]]:
    """`window` as it is when it holds at most FINE_TILES tiles; else that many of its tiles,
    spread evenly over those the placed mark's outline crosses."""
    top, left, bottom, right = window
    rows = list(range(top, bottom, FINE_TILE))
    cols = list(range(left, right, FINE_TILE))
    if len(rows) * len(cols) <= FINE_TILES:
        return [window]
    alpha = render(template, [replace(placement, gain=1.0)], shape, window=window).alpha
    edges = np.abs(np.diff(alpha, axis=0))[:, :-1] + np.abs(np.diff(alpha, axis=1))[:-1]
    tiles, energies = [], []
    for row in rows:
        for col in cols:
            tile = (row, col, min(row + FINE_TILE, bottom), min(col + FINE_TILE, right))
            tiles.append(tile)
            energies.append(
                float(edges[row - top : tile[2] - top, col - left : tile[3] - left].sum())
            )
    strongest = max(energies)
    if strongest <= 0:
        return [window]
    crossed = [
        tile for tile, energy in zip(tiles, energies, strict=True) if energy >= 0.25 * strongest
    ]
    if len(crossed) <= FINE_TILES:
        return crossed
    picks = np.linspace(0, len(crossed) - 1, FINE_TILES).round().astype(int)
    return [crossed[index] for index in picks]


def _blurred(image: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """`image` with its `window` blurred (the rest is not read)."""
    top, left, bottom, right = window
    soft = np.empty_like(image)
    soft[top:bottom, left:right] = cv2.GaussianBlur(image[top:bottom, left:right], (0, 0), BLUR)
    return soft


def _soft_layers(layers: Layers, blur: float) -> Layers:
    premultiplied = cv2.GaussianBlur(layers.alpha[..., None] * layers.colour, (0, 0), blur)
    alpha = cv2.GaussianBlur(layers.alpha, (0, 0), blur)
    colour = premultiplied / np.maximum(alpha, 1e-6)[..., None]
    return Layers(layers.top, layers.left, alpha, np.clip(colour, 0, 255).astype(np.float32))


def _pattern(
    placement: Placement,
    cost: Callable[[Placement], float],
    steps: list[float],
    budget: int,
    peak: float,
) -> Placement:
    """Pattern search over (x, y, log-scale, angle, log-gain); steps halve when stuck."""
    floor = [0.05, 0.05, 0.0005, 0.05, 0.003]
    current, current_cost = placement, cost(placement)
    evaluations = 1
    while evaluations < budget and any(s > f for s, f in zip(steps, floor, strict=True)):
        improved = False
        for index in range(5):
            if steps[index] <= floor[index]:
                continue
            for sign in (1.0, -1.0):
                candidate = _moved(current, index, sign * steps[index], peak)
                value = cost(candidate)
                evaluations += 1
                if value < current_cost:
                    current, current_cost, improved = candidate, value, True
                    break
        if not improved:
            steps = [s / 2 for s in steps]
    return current


def _moved(placement: Placement, index: int, step: float, peak: float) -> Placement:
    if index < 4:
        placement = replace(placement, pixel_size=None)
    if index == 0:
        return replace(placement, x=placement.x + step)
    if index == 1:
        return replace(placement, y=placement.y + step)
    if index == 2:
        return replace(placement, scale=placement.scale * math.exp(step))
    if index == 3:
        return replace(placement, angle=min(MAX_ANGLE, max(-MAX_ANGLE, placement.angle + step)))
    gain = placement.gain * math.exp(step)
    return replace(placement, gain=min(gain, 1.0 / peak))


def _best_gain(
    placement: Placement,
    cost: Callable[[Placement], float],
    peak: float,
    *,
    steps: int = 14,
    around: float | None = None,
) -> Placement:
    """Golden-section search for the gain alone, over the whole range or within a factor
    exp(±`around`) of the current gain; a first guess for the joint search."""
    low, high = math.log(FAINTEST_GAIN), math.log(1.0 / peak)
    if around is not None:
        centre = math.log(placement.gain)
        low, high = max(low, centre - around), min(high, centre + around)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa = cost(replace(placement, gain=math.exp(a)))
    fb = cost(replace(placement, gain=math.exp(b)))
    for _ in range(steps):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = cost(replace(placement, gain=math.exp(a)))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = cost(replace(placement, gain=math.exp(b)))
    return replace(placement, gain=math.exp((low + high) / 2))
