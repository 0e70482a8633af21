"""Refining a first α and W by the sparsity of the recovered photos' gradients."""

from __future__ import annotations

import numpy as np

from runners.deblend.refinement import _apply, _solve, refine_layers
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo


def test_the_stencil_solver_matches_a_dense_solve() -> None:
    rng = np.random.default_rng(3)
    height, width = 6, 7
    across = -rng.uniform(0.1, 1.0, (height, width - 1))
    down = -rng.uniform(0.1, 1.0, (height - 1, width))
    # Diagonally dominant: symmetric positive definite.
    diagonal = np.full((height, width), 5.0) + rng.uniform(0, 1, (height, width))
    rhs = rng.normal(size=(height, width))
    dense = np.zeros((height * width, height * width))
    for index in range(height * width):
        unit = np.zeros(height * width)
        unit[index] = 1.0
        dense[:, index] = _apply(unit.reshape(height, width), diagonal, across, down).ravel()
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    expected = np.linalg.solve(dense, rhs.ravel()).reshape(height, width)
    found = _solve(diagonal, across, down, rhs, np.zeros((height, width)))
    # The solver stops at a residual of 1e-4 of the start's (a few levels of α are 1e-2).
    np.testing.assert_allclose(found, expected, atol=1e-4)


def _eight_views() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rgba = white_logo(40)
    samples = [
        blend_logo(clean, rgba, top=50, left=40, opacity=0.35)
        for clean in photos(8, height=160, width=224)
    ]
    views = np.stack([sample.image.astype(np.float32) for sample in samples])
    truth = samples[0].alpha
    mark = truth > 0.03
    region = np.zeros(mark.shape, bool)
    rows, cols = np.flatnonzero(mark.any(axis=1)), np.flatnonzero(mark.any(axis=0))
    region[rows[0] - 4 : rows[-1] + 5, cols[0] - 4 : cols[-1] + 5] = True
    return views, truth, mark, region


def test_a_wrong_colour_is_pulled_to_the_marks_and_alpha_stays() -> None:
    views, truth, mark, region = _eight_views()
    valid = np.ones(views.shape[:3], bool)
    first = np.where(mark, truth, 0.0).astype(np.float32)
    refined = refine_layers(views, valid, first, np.array([225.0, 225.0, 225.0]), region)
    assert float(np.abs(refined.colour - 255.0).max()) < 5.0, refined.colour
    assert float(np.abs(refined.alpha - truth)[mark].mean()) < 0.02
    assert float(refined.alpha[~region].max()) == 0.0


def test_a_too_opaque_first_alpha_is_reduced() -> None:
    views, truth, mark, region = _eight_views()
    valid = np.ones(views.shape[:3], bool)
    # The kind of first fit a background guess gives: too opaque everywhere on the mark.
    first = np.where(mark, np.minimum(truth + 0.1, 1.0), 0.0).astype(np.float32)
    refined = refine_layers(views, valid, first, np.array([255.0, 255.0, 255.0]), region)
    before = float(np.abs(first - truth)[mark].mean())
    after = float(np.abs(refined.alpha - truth)[mark].mean())
    assert after < 0.85 * before, (before, after)
