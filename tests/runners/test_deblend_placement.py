"""Placing a known mark: offset, scale, small rotation and opacity gain are recovered."""

from __future__ import annotations

import pytest

from runners.deblend import WatermarkTemplate
from runners.deblend.placement import find_placements, refine
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo


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
