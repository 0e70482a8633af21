"""The mark's α and W from several views of it over different content.

Each view k of a pixel is I_k = α·W + (1 − α)·J_k with the same α and W and a different
photo J_k (several stock photos with one mark, or the copies of a tiled mark in one photo).
The steps, after Dekel et al. (CVPR 2017), in our own simplified form:

1. Outline: the median over views of the image gradients keeps the mark's gradients (the
   same in every view, for a mark lighter or darker than what it covers) and drops the
   photos' (sparse, and different in each view). Where that median is strong is the mark's
   outline; closing and filling it gives the mark's support.
2. Background: each view's photo under the support is guessed from the pixels around it
   (push-pull fill). The guess B_k is smooth but right on average.
3. Regression: per pixel, I_k − W = (1 − α)·(B_k − W) over views and channels is a line
   through W whose slope is 1 − α. The mark is taken to be of one colour (white, black or a
   brand colour: the usual case; a multi-coloured mark needs a profile from its RGBA file):
   W is the colour whose lines fit best, then each pixel's α is its line's slope.
"""

from __future__ import annotations

import cv2
import numpy as np

from runners.deblend.template import DeblendError

__all__ = [
    "background_hole",
    "fill_holes",
    "fit_layers",
    "fit_opacity",
    "outline_support",
    "without_specks",
]

MIN_ALPHA = 0.01
"""Fitted opacities below this are regression noise, not mark."""
HOLE_GROWTH = 0
COHERENCE = 0.75
"""Agreement of gradient directions across views (1: all alike) required on the outline."""
MIN_OUTLINE_PIECE = 12
"""Outline pieces of fewer pixels are chance agreements of photo edges."""
TRUSTED_ALPHA = 0.15
"""Free-fit opacity from which a pixel shows the mark clearly enough to fit its colour."""
FAINT_TRUSTED_ALPHA = 0.06
"""The least such opacity, for a faint mark."""
WEAK_SHARE = 0.5
"""Share of the outline's gradient level from which a piece near the outline also counts."""
WEAK_COHERENCE = 0.6
WEAK_REACH = 12
"""Pixels from the clear outline within which fainter outline pieces are kept."""


def outline_support(views: np.ndarray, valid: np.ndarray, *, reach: int = 0) -> np.ndarray:
    """(h, w) bool: where the mark is, from the median of the views' gradients.

    `views`: (K, h, w, 3) float32; `valid`: (K, h, w) bool, False where a view has no pixel.
    With `reach`, fainter outline pieces within that many pixels of the clear outline count
    too (see `WEAK_SHARE`)."""
    gx = np.stack([cv2.Sobel(view, cv2.CV_32F, 1, 0, ksize=3) for view in views])
    gy = np.stack([cv2.Sobel(view, cv2.CV_32F, 0, 1, ksize=3) for view in views])
    enough = valid.sum(axis=0) >= 2
    if valid.all():
        mx, my = np.median(gx, axis=0), np.median(gy, axis=0)
    else:
        inside = valid[..., None]
        with np.errstate(all="ignore"):
            mx = np.nan_to_num(np.nanmedian(np.where(inside, gx, np.nan), axis=0))
            my = np.nan_to_num(np.nanmedian(np.where(inside, gy, np.nan), axis=0))
    magnitude = np.sqrt(mx * mx + my * my).max(axis=2) * enough
    # The mark's gradient points the same way in every view, a photo's anywhere: the length
    # of the views' mean gradient over their mean length is near 1 only on the mark.
    weight = valid[..., None].astype(np.float32)
    sum_x, sum_y = (gx * weight).sum(axis=0), (gy * weight).sum(axis=0)
    lengths = (np.sqrt(gx * gx + gy * gy) * weight).sum(axis=0)
    coherence = (np.sqrt(sum_x * sum_x + sum_y * sum_y) / np.maximum(lengths, 1e-6)).max(axis=2)
    # The photos' median gradient is small but not nil: the threshold sits well above it.
    level = max(12.0, 5.0 * float(np.median(magnitude)))
    outline = ((magnitude > level) & (coherence > COHERENCE)).astype(np.uint8)
    outline = without_specks(outline, MIN_OUTLINE_PIECE)
    if int(outline.sum()) < 12:
        return np.zeros(outline.shape, bool)
    if reach > 0:
        # Where the mark's colour is close to the photos' (a red mark over red photos) its
        # outline is fainter and less coherent: weaker evidence is kept, but only near the
        # clear outline, where a mark's further letters are, not anywhere in the photos.
        weak = ((magnitude > WEAK_SHARE * level) & (coherence > WEAK_COHERENCE)).astype(np.uint8)
        weak = without_specks(weak, MIN_OUTLINE_PIECE)
        side = 2 * reach + 1
        near = cv2.dilate(outline, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
        outline = outline | (weak & near)
    closed = cv2.morphologyEx(outline, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(closed)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return cv2.dilate(filled, np.ones((5, 5), np.uint8)).astype(bool)


def without_specks(binary: np.ndarray, smallest: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = np.zeros(count, np.uint8)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= smallest
    return keep[labels]


def background_hole(support: np.ndarray, grow: int = HOLE_GROWTH) -> np.ndarray:
    """The pixels a background guess must not use: the support and a rim around it, since
    the faint antialiased fringe of a mark reaches past its outline."""
    side = 2 * grow + 1
    return cv2.dilate(support.astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool)


def fill_holes(image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """`image` ((h, w, 3) float32) with `holes` ((h, w) bool) filled smoothly from around
    them: push-pull, averaging known pixels down a pyramid and pulling them back up."""
    weight = (~holes).astype(np.float32)
    if weight.sum() == 0:
        return np.full_like(image, float(image.mean()))
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    values, known = image * weight[..., None], weight
    while True:
        levels.append((values, known))
        if (known > 0).all() or min(known.shape) <= 2:
            break
        size = ((known.shape[1] + 1) // 2, (known.shape[0] + 1) // 2)
        values = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        known = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    estimate = levels[-1][0] / np.maximum(levels[-1][1], 1e-6)[..., None]
    for values, known in reversed(levels[:-1]):
        up = cv2.resize(estimate, (known.shape[1], known.shape[0]), interpolation=cv2.INTER_LINEAR)
        mine = values / np.maximum(known, 1e-6)[..., None]
        share = np.clip(known, 0.0, 1.0)[..., None]
        estimate = share * mine + (1.0 - share) * up
    return np.where(holes[..., None], estimate, image).astype(np.float32)


def _one_colour(
    views: np.ndarray, backgrounds: np.ndarray, weight: np.ndarray, trusted: np.ndarray
) -> np.ndarray:
    """The single colour W that best explains the views where the mark is clearly present.

    For the right W every pixel's views lie on a line through W (slope 1 − α); for a wrong one
    they miss it by (1 − s)·(W − W'), the same in every view, so the line fit's residual is
    least at the right W. Coarse grid, then finer steps around the best.
    """
    rows, cols = np.nonzero(trusted)
    if rows.size > 3000:
        pick = np.linspace(0, rows.size - 1, 3000).astype(int)
        rows, cols = rows[pick], cols[pick]
    i = views[:, rows, cols]  # (K, n, 3)
    b = backgrounds[:, rows, cols]
    w = weight[:, rows, cols]

    def residual(candidates: np.ndarray) -> np.ndarray:
        out = np.empty(len(candidates))
        for index, candidate in enumerate(candidates):
            ci, cb = (i - candidate) * w, (b - candidate) * w
            cross = (ci * cb).sum(axis=(0, 2))
            power = np.maximum((cb * cb).sum(axis=(0, 2)), 1e-6)
            out[index] = float(((ci * ci).sum(axis=(0, 2)) - cross * cross / power).sum())
        return out

    levels = np.arange(0.0, 256.0, 32.0)
    levels = np.append(levels, 255.0)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    best = grid[int(np.argmin(residual(grid)))]
    step = 16.0
    offsets = np.stack(np.meshgrid(*([np.array([-1.0, 0.0, 1.0])] * 3), indexing="ij"), -1)
    offsets = offsets.reshape(-1, 3)
    while step >= 0.5:
        candidates = np.clip(best + offsets * step, 0, 255)
        choice = candidates[int(np.argmin(residual(candidates)))]
        if np.array_equal(choice, best):
            step /= 2
        best = choice
    return best.astype(np.float32)


def fit_layers(
    views: np.ndarray, backgrounds: np.ndarray, valid: np.ndarray, support: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(α (h, w) float32, W (h, w, 3) float32) from `views` and their `backgrounds` (both
    (K, h, w, 3) float32), `valid` (K, h, w) bool, inside `support` (h, w) bool."""
    weight = (valid & support[None]).astype(np.float32)[..., None]
    count = weight.sum(axis=0)
    safe_count = np.maximum(count, 1.0)
    mean_i = (views * weight).sum(axis=0) / safe_count
    mean_b = (backgrounds * weight).sum(axis=0) / safe_count
    di = (views - mean_i) * weight
    db = (backgrounds - mean_b) * weight
    covariance = (di * db).sum(axis=(0, 3))
    variance = (db * db).sum(axis=(0, 3))
    observable = (variance > 50.0 * 3) & (count[..., 0] >= 2) & support
    slope = np.where(observable, covariance / np.maximum(variance, 1e-6), 1.0)
    free_alpha = np.clip(1.0 - slope, 0.0, 1.0)
    # Clearly present: above `TRUSTED_ALPHA`, or for a faint mark (at 15 % no pixel reaches
    # it) half of its own strongest opacity, still above regression noise.
    strongest = float(np.percentile(free_alpha[observable], 99)) if observable.any() else 0.0
    level = min(TRUSTED_ALPHA, max(FAINT_TRUSTED_ALPHA, 0.5 * strongest))
    trusted = observable & (free_alpha > level)
    if int(trusted.sum()) < 8:
        raise DeblendError("the views do not share a visible mark: no consistent opacity")
    colour_value = _one_colour(views, backgrounds, weight, trusted)
    colour = np.broadcast_to(colour_value, views.shape[1:]).astype(np.float32)
    return fit_opacity(views, backgrounds, valid, support, colour), colour


def fit_opacity(
    views: np.ndarray,
    backgrounds: np.ndarray,
    valid: np.ndarray,
    support: np.ndarray,
    colour: np.ndarray,
) -> np.ndarray:
    """α (h, w) float32 inside `support` for a known W (`colour`, (h, w, 3)): with W known,
    I − W = (1 − α)(B − W) is a line through the origin, one slope per pixel."""
    weight = (valid & support[None]).astype(np.float32)[..., None]
    ci = (views - colour) * weight
    cb = (backgrounds - colour) * weight
    numerator = (ci * cb).sum(axis=(0, 3))
    denominator = (cb * cb).sum(axis=(0, 3))
    known = support & (denominator > 1.0)
    alpha = np.where(known, 1.0 - numerator / np.maximum(denominator, 1e-6), 0.0)
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < MIN_ALPHA] = 0.0
    return alpha.astype(np.float32)
