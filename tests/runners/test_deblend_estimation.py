"""Estimating a mark's α and W from several photos that carry it, and refusing when none do."""

from __future__ import annotations

import numpy as np
import pytest

from runners.deblend import DeblendError, estimate_template, estimate_template_at, remove_blended
from runners.deblend.estimation import estimate_layers, estimate_tiled
from runners.opencv_inpainter import OpenCVInpainter
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo, logo, tile_logo


def test_eight_photos_with_one_mark_give_its_alpha_and_colour() -> None:
    rgba = white_logo(40)
    samples = [
        blend_logo(clean, rgba, top=70, left=60, opacity=0.35)
        for clean in photos(8, height=192, width=256)
    ]
    images = [sample.image for sample in samples]
    alpha, colour = estimate_layers(images)
    truth = samples[0].alpha
    mark = truth > 0.03
    assert float(np.abs(alpha[mark] - truth[mark]).mean()) < 0.08
    assert float(np.abs(alpha[~mark]).mean()) < 0.01
    strong = alpha > 0.2
    np.testing.assert_allclose(np.median(colour[strong], axis=0), 255, atol=20)
    template = estimate_template(images)
    rows, cols = np.flatnonzero(mark.any(axis=1)), np.flatnonzero(mark.any(axis=0))
    # Cut to the mark's box, give or take its margin and a faint fringe.
    assert abs(template.shape[0] - (rows[-1] - rows[0] + 1)) <= 10
    assert abs(template.shape[1] - (cols[-1] - cols[0] + 1)) <= 10


def test_fewer_than_eight_images_are_refused() -> None:
    rgba = white_logo(40)
    seven = [blend_logo(clean, rgba, top=70, left=60, opacity=0.35) for clean in photos(7)]
    with pytest.raises(DeblendError, match="at least 8 images, got 7"):
        estimate_template([sample.image for sample in seven])


def test_images_of_different_sizes_are_refused() -> None:
    small, large = photos(4, height=64, width=64), photos(4, height=96, width=64)
    with pytest.raises(DeblendError, match="one size"):
        estimate_template(small + large)


def test_photos_without_a_shared_mark_are_refused() -> None:
    with pytest.raises(DeblendError, match=r"no consistent mark|do not share"):
        estimate_template(photos(8, height=128, width=160))


def test_a_faint_tiled_mark_is_estimated_from_its_copies() -> None:
    clean = photos(4, height=256, width=320)[1]
    rgba = logo("Stock", (255, 255, 255), height=20)
    sample = tile_logo(clean, rgba, step=(52, 100), shear=50, offset=(7, 11), opacity=0.15)
    tiled = estimate_tiled(sample.image)
    mark = sample.alpha > 0.03
    assert float(np.abs(tiled.alpha[mark] - sample.alpha[mark]).mean()) < 0.03
    np.testing.assert_allclose(np.median(tiled.colour[tiled.alpha > 0.08], axis=0), 255, atol=10)


def test_an_estimate_says_where_it_was_seen_and_removal_starts_there() -> None:
    rgba = white_logo(40)
    samples = [
        blend_logo(clean, rgba, top=70, left=60, opacity=0.35)
        for clean in photos(8, height=192, width=256)
    ]
    estimate = estimate_template_at([sample.image for sample in samples])
    mark = samples[0].alpha > 0.03
    rows, cols = np.flatnonzero(mark.any(axis=1)), np.flatnonzero(mark.any(axis=0))
    # The box's corner, give or take its margin and a faint fringe.
    assert abs(estimate.corner[0] - rows[0]) <= 6 and abs(estimate.corner[1] - cols[0]) <= 6
    sample = samples[3]
    result = remove_blended(
        sample.image,
        template=estimate.template,
        inpainter=OpenCVInpainter(),
        mask=sample.mask,
        seen_at=estimate.corner,
    )
    assert result.removal != "inpaint", result.detail
    height, width = estimate.template.shape
    centre = (estimate.corner[1] + (width - 1) / 2, estimate.corner[0] + (height - 1) / 2)
    assert f"at ({centre[0]:.1f}, {centre[1]:.1f}) scale 1.000" in result.detail
