"""Inverting I = α·W + (1 − α)·J: exact up to the rounding the blend itself did."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runners.deblend import DeblendError
from runners.deblend.chroma import ChromaGrid
from runners.deblend.inversion import invert
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo, logo


def _blend(clean: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(np.rint(a * colour + (1 - a) * clean.astype(np.float32)), 0, 255).astype(
        np.uint8
    )


@pytest.mark.parametrize("opacity", [0.15, 0.3, 0.5, 0.7, 0.85])
@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (200, 30, 90)])
def test_png_blend_inverts_to_the_clean_photo_within_rounding(
    opacity: float, colour: tuple[int, int, int]
) -> None:
    clean = photos(1, height=64, width=96)[0]
    rng = np.random.default_rng(3)
    alpha = (rng.random(clean.shape[:2]) * opacity).astype(np.float32)
    layer = np.broadcast_to(np.array(colour, np.float32), clean.shape).copy()
    image = _blend(clean, alpha, layer)
    result = invert(image, alpha, layer, max_alpha=0.9)
    # The blend rounded to ±0.5; inversion divides that by (1 − α), then rounds again.
    allowed = math.ceil(0.5 / (1 - opacity) + 0.5)
    error = np.abs(result.image.astype(int) - clean.astype(int))
    assert error.max() <= allowed
    assert not result.to_inpaint.any()
    untouched = alpha == 0
    np.testing.assert_array_equal(result.image[untouched], image[untouched])


def test_opaque_pixels_are_left_to_the_inpainter() -> None:
    clean = photos(1, height=32, width=32)[0]
    alpha = np.zeros(clean.shape[:2], np.float32)
    alpha[8:16, 8:16] = 0.95
    colour = np.full(clean.shape, 255.0, np.float32)
    result = invert(_blend(clean, alpha, colour), alpha, colour, max_alpha=0.9)
    assert result.to_inpaint[8:16, 8:16].all()
    assert result.to_inpaint.sum() == 64


def test_a_wrong_colour_clips_and_is_flagged() -> None:
    clean = np.full((16, 16, 3), 40, np.uint8)
    alpha = np.full((16, 16), 0.5, np.float32)
    white = np.full(clean.shape, 255.0, np.float32)
    image = _blend(clean, alpha, white)
    # Assuming a black mark, J = 2·I ≈ 295: beyond what an 8-bit photo can hold.
    result = invert(image, alpha, np.zeros_like(white))
    assert result.clipped.all() and result.to_inpaint.all()


def test_layers_that_do_not_fit_are_refused() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DeblendError):
        invert(image, np.zeros((8, 9), np.float32), np.zeros((8, 8, 3), np.float32))


def _psnr(result: np.ndarray, clean: np.ndarray, region: np.ndarray) -> float:
    error = result.astype(np.float64)[region] - clean.astype(np.float64)[region]
    return 10 * math.log10(255.0**2 / max(float((error**2).mean()), 1e-10))


@pytest.mark.parametrize("colour", [(255, 255, 255), (214, 40, 60)])
def test_a_420_jpeg_is_inverted_on_its_chroma_grid(colour: tuple[int, int, int]) -> None:
    clean = photos(1, height=96, width=160)[0]
    rgba = white_logo(32) if colour == (255, 255, 255) else logo("Mark", colour, height=32)
    sample = blend_logo(clean, rgba, top=31, left=17, opacity=0.45, encoding="jpeg")
    region = sample.alpha > 0.03
    plain = invert(sample.image, sample.alpha, sample.colour)
    on_grid = invert(sample.image, sample.alpha, sample.colour, chroma=ChromaGrid((2, 2)))
    # The decoder smeared the mark's colour edges over the blocks; inverting pixel by pixel
    # divides that smear by 1 - alpha, inverting on the grid follows it.
    assert _psnr(on_grid.image, clean, region) > _psnr(plain.image, clean, region) + 1.5


def test_the_full_grid_is_the_plain_inversion() -> None:
    clean = photos(1, height=64, width=96)[0]
    sample = blend_logo(clean, white_logo(24), top=10, left=10, opacity=0.4)
    plain = invert(sample.image, sample.alpha, sample.colour)
    full = invert(sample.image, sample.alpha, sample.colour, chroma=ChromaGrid((1, 1)))
    np.testing.assert_array_equal(plain.image, full.image)
