"""Placing a known mark: offset, scale, small rotation and opacity gain are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from runners.deblend import WatermarkTemplate
from runners.deblend.chroma import ChromaGrid
from runners.deblend.placement import Placement, find_placements, fit_gain, refine, render
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo, logo


def _centre(top: int, left: int, shape: tuple[int, int], scale: float) -> tuple[float, float]:
    """Where an area-resized copy puts the template's centre (pixel-centre convention)."""
    height, width = shape
    return left + (width * scale - 1) / 2, top + (height * scale - 1) / 2


@pytest.mark.parametrize(
    ("scale", "top", "left", "opacity"),
    [(1.0, 60, 50, 0.4), (0.6, 100, 120, 0.3), (1.7, 40, 20, 0.25)],
)
def test_offset_scale_and_gain_are_recovered(
    scale: float, top: int, left: int, opacity: float
) -> None:
    rgba = white_logo(40)
    clean = photos(2, height=224, width=256)[1]
    sample = blend_logo(clean, rgba, top=top, left=left, scale=scale, opacity=opacity)
    template = WatermarkTemplate.from_rgba(rgba)
    coarse = find_placements(sample.image, template)
    assert coarse, "the mark was not found"
    placement = refine(sample.image, template, coarse[0])
    x, y = _centre(top, left, template.shape, scale)
    assert abs(placement.x - x) < 1.0 and abs(placement.y - y) < 1.0, placement
    assert placement.scale == pytest.approx(scale, rel=0.03)
    assert placement.gain == pytest.approx(opacity, rel=0.08)
    assert abs(placement.angle) < 1.5


def test_a_copy_partly_outside_the_frame_is_found() -> None:
    rgba = white_logo(48)
    template = WatermarkTemplate.from_rgba(rgba)
    clean = photos(3, height=192, width=256)[2]
    # A third of the logo hangs over the right edge.
    left = 256 - round(template.shape[1] * 2 / 3)
    sample = blend_logo(clean, rgba, top=70, left=left, opacity=0.4)
    coarse = find_placements(sample.image, template)
    assert coarse
    placement = refine(sample.image, template, coarse[0])
    x, y = _centre(70, left, template.shape, 1.0)
    assert abs(placement.x - x) < 1.5 and abs(placement.y - y) < 1.5, placement


@pytest.mark.parametrize(("scale", "top", "left"), [(0.55, 51, 33), (1.45, 20, 18)])
def test_a_mark_pasted_as_editors_do_is_matched_pixel_for_pixel(
    scale: float, top: int, left: int
) -> None:
    rgba = white_logo(40)
    clean = photos(2, height=224, width=256)[1]
    sample = blend_logo(clean, rgba, top=top, left=left, scale=scale, opacity=0.5)
    template = WatermarkTemplate.from_rgba(rgba)
    placement = refine(sample.image, template, find_placements(sample.image, template)[0])
    height, width = template.shape
    assert placement.pixel_size == (round(width * scale), round(height * scale))
    assert placement.corner == (top, left)
    placed = render(template, [placement], sample.image.shape[:2])
    # Drawn the way it was blended: the same alpha, up to the gain's fit.
    assert np.abs(placed.alpha - sample.alpha).max() < 0.02


@pytest.mark.parametrize("colour", [(255, 255, 255), (214, 40, 60), (0, 0, 0)])
@pytest.mark.parametrize("first_guess", [0.2, 0.95])
def test_the_gain_of_a_jpeg_is_fitted_where_the_outline_vanishes(
    colour: tuple[int, int, int], first_guess: float
) -> None:
    rgba = logo("Norden", colour, height=36)
    clean = photos(3, height=224, width=256)[2]
    sample = blend_logo(clean, rgba, top=90, left=40, scale=0.8, opacity=0.6, encoding="jpeg")
    template = WatermarkTemplate.from_rgba(rgba)
    height, width = template.shape
    size = (round(width * 0.8), round(height * 0.8))
    where = Placement(
        x=40 + (size[0] - 1) / 2,
        y=90 + (size[1] - 1) / 2,
        scale=0.8,
        angle=0.0,
        gain=first_guess,
        score=1.0,
        pixel_size=size,
    )
    fitted = fit_gain(sample.image, template, where, chroma=ChromaGrid((2, 2)))
    assert fitted.gain == pytest.approx(0.6, rel=0.05)
