"""Placing a known mark: offset, scale, small rotation and opacity gain are recovered."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from runners.deblend import WatermarkTemplate, placement
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


def _naive_correlation(feature: np.ndarray, patch: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """Normalised cross-correlation over the zero-padded feature, window by window, in float64,
    weighed by the share of the patch's energy inside the frame."""
    pad_y, pad_x = pad
    padded = np.pad(feature.astype(np.float64), ((pad_y, pad_y), (pad_x, pad_x), (0, 0)))
    frame = np.pad(np.ones(feature.shape[:2]), ((pad_y, pad_y), (pad_x, pad_x)))
    ph, pw = patch.shape[:2]
    centred = patch.astype(np.float64) - patch.mean(axis=(0, 1))
    energy = (patch.astype(np.float64) ** 2).sum(axis=2)
    rows, cols = padded.shape[0] - ph + 1, padded.shape[1] - pw + 1
    scores = np.zeros((rows, cols))
    for row in range(rows):
        for col in range(cols):
            window = padded[row : row + ph, col : col + pw]
            spread = np.sqrt(((window - window.mean(axis=(0, 1))) ** 2).sum())
            if spread <= placement.FLAT_SPREAD * np.sqrt(ph * pw):
                continue
            score = (window * centred).sum() / (spread * np.sqrt((centred**2).sum()))
            inside = (frame[row : row + ph, col : col + pw] * energy).sum() / energy.sum()
            scores[row, col] = np.clip(score, -1, 1) * np.sqrt(inside)
    return scores


def test_the_coarse_correlation_is_the_normalised_one_for_any_padding() -> None:
    rng = np.random.default_rng(3)
    values = rng.uniform(-1, 1, (23, 31, 2)).astype(np.float32)
    values[:6, :9] = 0.25  # a flat corner: it scores nothing
    feature = placement._Feature(values)
    for patch_shape, pad in [((7, 9), (3, 4)), ((5, 11), (2, 5)), ((9, 13), (4, 6))]:
        patch = rng.uniform(-1, 1, (*patch_shape, 2)).astype(np.float32)
        np.testing.assert_allclose(
            feature.correlation(patch, pad), _naive_correlation(values, patch, pad), atol=1e-5
        )


def test_a_long_marks_full_size_polish_is_judged_on_tiles_along_its_outline() -> None:
    template = WatermarkTemplate.from_rgba(white_logo(160))
    height, width = template.shape
    shape = (3 * height, 4 * width)
    mark = Placement(x=2 * width, y=1.5 * height, scale=1.6, angle=0.0, gain=0.4, score=1.0)
    window = placement.placement_window(template, [mark], shape, margin=8)
    assert window is not None
    tiles = placement._outline_tiles(template, mark, shape, window)
    assert 1 < len(tiles) <= placement.FINE_TILES
    alpha = render(template, [mark], shape, window=window).alpha
    top, left = window[0], window[1]
    for tile_top, tile_left, tile_bottom, tile_right in tiles:
        assert window[0] <= tile_top < tile_bottom <= window[2]
        assert window[1] <= tile_left < tile_right <= window[3]
        inside = alpha[tile_top - top : tile_bottom - top, tile_left - left : tile_right - left]
        assert inside.max() > inside.min()  # the outline crosses it
    # Spread from one end of the mark to the other, not bunched in one stretch.
    lefts = [tile[1] for tile in tiles]
    assert max(lefts) - min(lefts) > 0.6 * (window[3] - window[1])
    small = placement.placement_window(template, [replace(mark, scale=0.3)], shape, margin=8)
    assert small is not None
    assert placement._outline_tiles(template, replace(mark, scale=0.3), shape, small) == [small]
