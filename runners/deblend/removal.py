"""Removing a semi-transparent mark by inverting its blend, inpainting only what cannot be.

The result must never be worse than inpainting the mark's mask, yet the photo's truth is
unknown. The check used instead: a correct α and W remove the mark's outline from the
photo, a wrong one leaves it or draws its negative. So the gradient contrast along the
placed mark's outline is measured before and after; if more than `MAX_OUTLINE_RESIDUAL` of it
remains, or too many pixels clip, the estimate is not trusted and the mask is inpainted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np

from runners.compositing import blend
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.deblend.estimation import estimate_tiled
from runners.deblend.inversion import DEFAULT_MAX_ALPHA, Inversion, invert
from runners.deblend.placement import (
    Layers,
    Placement,
    deblended_gradient_energy,
    find_hypotheses,
    placement_window,
    refine,
    render,
)
from runners.deblend.quality import JUDGED_ALPHA, outline_contrast, outline_residual
from runners.deblend.template import DeblendError, WatermarkTemplate
from runners.inpainter import Inpainter

__all__ = ["Deblended", "Removal", "remove_blended"]

Removal = Literal["deblend", "inpaint", "mixed"]

MARK_ALPHA = 0.03
"""Placed opacity above which a pixel belongs to the mark (for fallback masks and shares)."""
MAX_OUTLINE_RESIDUAL = 0.3
"""Share of the outline's gradient contrast that may remain after inversion."""
MAX_GRADIENT_RATIO = 1.0
"""Inverting a real mark removes its outline: the window's mean gradient must fall."""
PROVEN_RESIDUAL, PROVEN_CONTRAST = 0.05, 60.0
"""A placement that removes all but this share of an outline this strong (Sobel levels) is
the mark: on a textured JPEG its inversion may still raise the mean gradient a little (the
compression noise it multiplies), and is allowed up to PROVEN_GRADIENT_RATIO."""
PROVEN_GRADIENT_RATIO = 1.1
FLAT_ESTIMATE_GRADIENT = 8.0
"""Mean gradient (`GradientChange.after`) below which an estimated mark (not one its owner
supplied) sat over flat content: there an inpainter's smooth fill is near the truth, closer
than inverting an estimate whose own α error is multiplied by 1/(1 − α). Chosen on the
training photos' batch samples (docs/deblend.md)."""
UNEXPLAINED_RESIDUAL = 0.6
"""Above this share the placement is taken for a chance match, not the mark."""
MIN_OUTLINE_CONTRAST = 6.0
"""Gradient (Sobel levels, along α's) the placed outline must show in the photo at all:
below it the placement explains nothing visible."""
OPAQUE_SHARE = 0.25
"""Share of the mark's pixels at or above max_alpha from which it counts as mostly opaque."""
MAX_CLIPPED_SHARE = 0.2
"""Share of the mark's pixels whose inversion may clip before the estimate is rejected."""
MIN_GAIN = 0.05
"""Weaker placements are chance: a mark at 5% opacity changes a pixel by a dozen levels at most."""
LOSSY_MAX_ALPHA = 0.6
"""Opacity above which a JPEG's pixels are inpainted rather than inverted: its compression
error, a few levels, is multiplied by 1/(1 − α), and past this an inpainter's guess at thin
strokes is closer."""
CORE_QUANTILE = 0.9
"""The mark's strokes' opacity is taken as this quantile of its placed α (the rest is the
antialiased fringe)."""
COPY_EVALUATIONS = 60
"""Cost evaluations spent polishing each further copy of a repeated mark."""
MAX_MIXED_SHARE = 0.4
"""Share of the mark that may be inpainted inside a de-blended result; past it, all of it is.
Chosen on the training photos' mixed samples (docs/deblend.md): past it the seams between
recovered and inpainted strokes lost to inpainting the whole mark more often than not."""
SEAM = 2
"""Pixels the inpainted area grows into the recovered one, feathered, so no edge shows."""
MIN_SHARE_IN_MASK = 0.5
"""Share of a placed mark's pixels that must lie inside the mask sent with it (grown by
MASK_REACH): a mask says where the mark is, so a placement mostly elsewhere is another
thing the template happens to match, and removing it would leave the mark."""
MASK_REACH = 4
"""Pixels a sent mask is grown by before a placement is checked against it: a hand-drawn
mask may fall short of the mark's antialiased fringe."""


@dataclass(frozen=True)
class GradientChange:
    """The mark's window's mean L1 gradient (levels per pixel pair, summed over channels)
    before and after inversion: a real mark's outline comes out, so the window gets
    smoother; a chance match only amplifies the photo's texture by 1/(1 − α)."""

    before: float
    after: float

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before > 0 else math.inf

    def __str__(self) -> str:
        return f"gradient x{self.ratio:.2f} ({self.before:.1f} -> {self.after:.1f})"


@dataclass(frozen=True)
class Deblended:
    image: np.ndarray
    """(H, W, 3) uint8 RGB, the same size as the input."""
    removal: Removal
    inpainted: np.ndarray
    """(H, W) bool: pixels inpainted rather than recovered."""
    detail: str
    """One line: how the mark was found, or why it fell back to inpainting."""


@dataclass(frozen=True)
class _Verdict:
    """One placed (or estimated) mark, judged: its inversion is taken, or why not."""

    layers: Layers
    how: str
    """How it was found, for `Deblended.detail`."""
    change: GradientChange
    residual: float
    inversion: Inversion
    refusal: str | None = None
    """Why the inversion is not taken (the mark is then inpainted); None when it is."""
    placed_is_mark: bool = False
    """On a refusal: the placed mark is there, so without a mask it is what is inpainted."""
    trusted: bool = False
    """Inverting it took its outline out of the photo without roughening or clipping it: the
    placement is the mark, whether it is then inverted or (too opaque) inpainted."""
    inpainted_share: float = 0.0
    """Of a taken inversion: the share of the mark too opaque to invert (`_mixed_share`)."""


def _check_inputs(image: np.ndarray, mask: np.ndarray | None) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DeblendError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if mask is not None and mask.shape != image.shape[:2]:
        raise DeblendError(f"mask is {mask.shape}, the image {image.shape[:2]}")


def _inpaint(
    image: np.ndarray, region: np.ndarray, inpainter: Inpainter, *, feather: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`image` with `region` ((H, W) bool) inpainted, composited so the rest is untouched;
    and the pixels that took any inpainted value (the region, plus its seam if feathered)."""
    mask = region.astype(np.uint8) * 255
    filled = inpainter.inpaint(image, mask)
    if feather:
        grown = cv2.dilate(mask, np.ones((2 * SEAM + 1,) * 2, np.uint8))
        weight = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), SEAM / 2)
        weight = np.maximum(weight, mask.astype(np.float32))
        mask = np.clip(np.rint(weight), 0, 255).astype(np.uint8)
    return blend(image, filled, mask), mask > 0


def _fallback(
    image: np.ndarray,
    mask: np.ndarray | None,
    placed: np.ndarray | None,
    inpainter: Inpainter,
    reason: str,
) -> Deblended:
    if mask is not None:
        region = mask > 0
    elif placed is not None and placed.any():
        # The placed mark's own footprint (α above MARK_ALPHA, its fringe included), not
        # grown: a wider mask is filled from farther away, and on the training photos
        # growing it by two pixels cost more than the fringe a misplacement leaves
        # (docs/deblend.md).
        region = placed
    else:
        raise DeblendError(f"no mark found to remove: {reason}")
    result, _ = _inpaint(image, region, inpainter, feather=False)
    return Deblended(
        image=result, removal="inpaint", inpainted=region, detail=f"inpainted: {reason}"
    )


def _place(
    image: np.ndarray,
    template: WatermarkTemplate,
    chroma: ChromaGrid,
    max_alpha: float,
    seen_at: tuple[int, int] | None,
    mask: np.ndarray | None,
    estimated: bool,
) -> _Verdict | str:
    """The best-placed copies, judged; or why there are none. With a `mask`, only placements
    that lie in it (`MIN_SHARE_IN_MASK`) are candidates. A placement the judging trusts beats
    one it does not: the likeliest-looking guess may be chance texture that explains nothing,
    and the mark another guess."""
    hypotheses = find_hypotheses(image, template)
    if seen_at is not None:
        height, width = template.shape
        hypotheses.insert(0, [_pasted_at(seen_at, (width, height))])
    if not hypotheses:
        return "the template was not found in the image"
    reach = None
    if mask is not None:
        side = 2 * MASK_REACH + 1
        reach = cv2.dilate((mask > 0).astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    best: _Verdict | None = None
    outside: list[str] = []
    for coarse in hypotheses:
        placed = _placed(image, template, coarse, chroma)
        if placed is None:
            continue
        layers, how = placed
        if reach is not None:
            share = _share_in(layers, reach)
            if share < MIN_SHARE_IN_MASK:
                outside.append(f"{how} ({share:.0%} inside the mask)")
                continue
        verdict = _judge(image, layers, how, chroma, max_alpha, estimated)
        if best is None or _preference(verdict) < _preference(best):
            best = verdict
    if best is None and outside:
        return "the template was found only outside the mask sent: " + "; ".join(outside)
    if best is None:
        return "the template was found but with no opacity"
    return best


def _preference(verdict: _Verdict) -> tuple[bool, float]:
    """Sort key of judged guesses, best first: trusted, then the smoothest inversion."""
    return not verdict.trusted, verdict.change.ratio


def _share_in(layers: Layers, region: np.ndarray) -> float:
    """Share of the placed mark's pixels (α above MARK_ALPHA) that lie in `region` ((H, W) bool)."""
    marked = layers.alpha > MARK_ALPHA
    total = int(marked.sum())
    return int((marked & region[layers.window]).sum()) / total if total else 0.0


def _pasted_at(corner: tuple[int, int], size: tuple[int, int]) -> Placement:
    """The template at its own size with its top-left pixel at `corner` (row, col)."""
    width, height = size
    return Placement(
        x=corner[1] + (width - 1) / 2,
        y=corner[0] + (height - 1) / 2,
        scale=1.0,
        angle=0.0,
        gain=1.0,
        score=1.0,
        pixel_size=size,
    )


def _placed(
    image: np.ndarray, template: WatermarkTemplate, coarse: list[Placement], chroma: ChromaGrid
) -> tuple[Layers, str] | None:
    first = refine(image, template, coarse[0], chroma=chroma)
    if first.gain < MIN_GAIN:
        return None  # the strongest copy has no opacity: its weaker peaks are chance too
    # Copies of a repeated mark share its scale, angle and opacity: each further copy
    # starts from the first one's and only needs a short polish of its position.
    placements = [first] + [
        refine(
            image,
            template,
            replace(copy, scale=first.scale, angle=first.angle, gain=first.gain),
            chroma=chroma,
            max_evaluations=COPY_EVALUATIONS,
        )
        for copy in coarse[1:]
    ]
    placements = [p for p in placements if p.gain >= MIN_GAIN]
    if placements:
        # Copies of one repeated mark share its opacity: a "copy" far weaker or stronger
        # than the best one is a chance match.
        first = placements[0]
        placements = [p for p in placements if 0.5 <= p.gain / first.gain <= 2.0]
    if not placements:
        return None
    window = placement_window(template, placements, image.shape[:2], margin=SEAM + 2)
    if window is None:
        return None
    layers = render(template, placements, image.shape[:2], window=window)
    first = placements[0]
    copies = f"{len(placements)} copies, first" if len(placements) > 1 else "placed"
    return layers, (
        f"{copies} at ({first.x:.1f}, {first.y:.1f}) scale {first.scale:.3f} "
        f"angle {first.angle:.1f} gain {first.gain:.3f} score {first.score:.2f}"
    )


def _gradient_change(
    image: np.ndarray, layers: Layers, chroma: ChromaGrid, max_alpha: float
) -> GradientChange:
    grid = chroma.shifted(layers.top, layers.left)
    before, _ = deblended_gradient_energy(image, layers, invert=False, max_alpha=max_alpha)
    after, _ = deblended_gradient_energy(image, layers, max_alpha=max_alpha, chroma=grid)
    return GradientChange(before, after)


def _tiled(image: np.ndarray) -> tuple[Layers | None, str]:
    try:
        tiled = estimate_tiled(image)
    except DeblendError as error:
        return None, f"tiled estimate failed: {error}"
    (uy, ux), (vy, vx) = tiled.steps
    return Layers(top=0, left=0, alpha=tiled.alpha, colour=tiled.colour), (
        f"tiled mark estimated from {tiled.copies} copies on steps ({uy}, {ux}) and ({vy}, {vx})"
    )


def _judge(
    image: np.ndarray,
    layers: Layers,
    how: str,
    chroma: ChromaGrid,
    max_alpha: float,
    estimated: bool,
) -> _Verdict:
    """Invert the placed mark and judge the result: taken, or refused (and why)."""
    window = image[layers.window]
    grid = chroma.shifted(layers.top, layers.left)
    inversion = invert(window, layers.alpha, layers.colour, max_alpha=max_alpha, chroma=grid)
    # Judged where inversion is reliable: not next to inpainted pixels, and not so opaque
    # that the image's own noise, magnified by 1/(1 − α), outweighs what is measured.
    grown = cv2.dilate(inversion.to_inpaint.astype(np.uint8), np.ones((3, 3), np.uint8))
    usable = (grown == 0) & (layers.alpha < JUDGED_ALPHA)
    contrast, residual = outline_residual(
        window, inversion.image, layers.alpha, layers.colour, usable
    )
    change = _gradient_change(image, layers, chroma, max_alpha)
    judged = _Verdict(layers, how, change, residual, inversion)

    def refused(reason: str, *, placed_is_mark: bool, trusted: bool = False) -> _Verdict:
        return replace(
            judged, refusal=f"{how}; {reason}", placed_is_mark=placed_is_mark, trusted=trusted
        )

    mark_pixels = int((layers.alpha > MARK_ALPHA).sum())
    clipped_share = int(inversion.clipped.sum()) / max(1, mark_pixels)
    # A placement whose outline is not in the photo, or that removes next to none of it,
    # found nothing: without a mask there is then nothing to inpaint either. (A mostly
    # opaque mark is the exception: its thin invertible fringe magnifies any error, but it
    # is there, and is inpainted.)
    marked = layers.alpha[layers.alpha > MARK_ALPHA]
    opaque = float((marked >= max_alpha).mean()) if marked.size else 0.0
    if contrast < MIN_OUTLINE_CONTRAST:
        if opaque >= OPAQUE_SHARE:
            # Too opaque to leave an invertible fringe to judge by: the mark is there if its
            # whole outline shows in the image, and then it is inpainted.
            shown = outline_contrast(window, window, layers.alpha, layers.colour, layers.alpha > 0)
            if shown >= MIN_OUTLINE_CONTRAST:
                return refused(
                    f"too opaque to invert (outline contrast {shown:.1f})", placed_is_mark=True
                )
        return refused(
            f"its outline is not visible (contrast {contrast:.1f})", placed_is_mark=False
        )
    if residual > UNEXPLAINED_RESIDUAL and opaque < OPAQUE_SHARE:
        return refused(
            f"{residual:.0%} of its outline (contrast {contrast:.1f}) remains",
            placed_is_mark=False,
        )
    proven = residual <= PROVEN_RESIDUAL and contrast >= PROVEN_CONTRAST
    if change.ratio >= (PROVEN_GRADIENT_RATIO if proven else MAX_GRADIENT_RATIO):
        return refused(
            f"inverting it roughens the image ({change}; outline residual {residual:.0%}, "
            f"contrast {contrast:.1f})",
            placed_is_mark=True,
        )
    if residual > MAX_OUTLINE_RESIDUAL:
        return refused(
            f"{residual:.0%} of its outline remains after inversion", placed_is_mark=True
        )
    if clipped_share > MAX_CLIPPED_SHARE:
        return refused(f"{clipped_share:.0%} of its pixels clip when inverted", placed_is_mark=True)
    # Past here the placement is the mark; what is left is whether inverting it is the
    # better way to remove it.
    if estimated and change.after < FLAT_ESTIMATE_GRADIENT:
        return refused(
            f"an estimated mark over flat content ({change})", placed_is_mark=True, trusted=True
        )
    # On a JPEG, a mark whose strokes are too opaque to invert is inpainted whole: what its
    # antialiased fringe would give back is less than the compression noise that inversion
    # multiplies there, and seams run along every stroke.
    core = float(np.quantile(marked, CORE_QUANTILE)) if marked.size else 0.0
    if chroma.subsampled and core >= max_alpha:
        return refused(
            f"too opaque to invert on a JPEG (strokes at opacity {core:.2f})",
            placed_is_mark=True,
            trusted=True,
        )
    share = _mixed_share(inversion, layers)
    if share > MAX_MIXED_SHARE:
        # Little is left to recover, and seams between recovered and inpainted strokes cost
        # more than it gains: inpainting the whole mark is the better answer.
        return refused(
            f"{share:.0%} of the mark is too opaque to invert", placed_is_mark=True, trusted=True
        )
    return replace(judged, trusted=True, inpainted_share=share)


def _mixed_share(inversion: Inversion, layers: Layers) -> float:
    """Share of the mark (α above MARK_ALPHA) that is inpainted, its seam included."""
    mark = layers.alpha > MARK_ALPHA
    to_inpaint = cv2.dilate(
        (inversion.to_inpaint & mark).astype(np.uint8), np.ones((3, 3), np.uint8)
    )
    return int(to_inpaint.sum()) / max(1, int(mark.sum()))


def remove_blended(
    image: np.ndarray,
    *,
    template: WatermarkTemplate | None,
    inpainter: Inpainter,
    mask: np.ndarray | None = None,
    max_alpha: float | None = None,
    chroma: ChromaGrid = FULL_CHROMA,
    seen_at: tuple[int, int] | None = None,
    estimated: bool = False,
) -> Deblended:
    """Remove a blended mark from `image` ((H, W, 3) uint8 RGB).

    With `template`: place it (position, scale 0.25 to 4, ±5°, repeated copies), fit its
    opacity gain, and invert. Without: estimate a tiled mark from its own copies. Pixels above
    `max_alpha` (by default 0.9, or 0.6 for a JPEG with subsampled chroma) or that clip are
    inpainted with `inpainter`; a poor estimate falls back to inpainting `mask` (or,
    without one, the placed mark). `mask` also says where the mark is: a template placed
    mostly outside it is not taken (`MIN_SHARE_IN_MASK`). `chroma`: how the image's chroma was
    sampled (`ChromaGrid((2, 2))` for a 4:2:0 JPEG). `seen_at`: (row, col) where the template,
    at its own size, was estimated from this image among others (`estimate_template_at`):
    tried first, beside what the search finds. `estimated`: the template was estimated from
    photos, not supplied, so over flat content inpainting is preferred (`FLAT_ESTIMATE_GRADIENT`).
    Raises DeblendError when there is nothing to remove and no mask.
    """
    _check_inputs(image, mask)
    if max_alpha is None:
        max_alpha = LOSSY_MAX_ALPHA if chroma.subsampled else DEFAULT_MAX_ALPHA
    if template is not None:
        verdict = _place(image, template, chroma, max_alpha, seen_at, mask, estimated)
    else:
        layers, how = _tiled(image)
        verdict = (
            how if layers is None else _judge(image, layers, how, chroma, max_alpha, estimated)
        )
    if isinstance(verdict, str):
        return _fallback(image, mask, None, inpainter, verdict)
    layers = verdict.layers
    full_mark = np.zeros(image.shape[:2], bool)
    full_mark[layers.window] = layers.alpha > MARK_ALPHA
    if verdict.refusal is not None:
        placed = full_mark if verdict.placed_is_mark else None
        return _fallback(image, mask, placed, inpainter, verdict.refusal)
    recovered = image.copy()
    recovered[layers.window] = verdict.inversion.image
    to_inpaint = np.zeros(image.shape[:2], bool)
    to_inpaint[layers.window] = verdict.inversion.to_inpaint & (layers.alpha > MARK_ALPHA)
    found = f"{verdict.how}; outline residual {verdict.residual:.0%}, {verdict.change}"
    if not to_inpaint.any():
        return Deblended(
            image=recovered, removal="deblend", inpainted=to_inpaint, detail=f"de-blended: {found}"
        )
    grown = cv2.dilate(to_inpaint.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    result, touched = _inpaint(recovered, grown, inpainter, feather=True)
    return Deblended(
        image=result,
        removal="mixed",
        inpainted=touched,
        detail=f"de-blended, {verdict.inpainted_share:.0%} of the mark inpainted: {found}",
    )
