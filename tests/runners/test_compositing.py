"""The mask blend: exact at black and white, proportional in between."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays

from runners.compositing import blend

pixels = arrays(np.uint8, (6, 5, 3))
masks = arrays(np.uint8, (6, 5))


@settings(max_examples=200, deadline=None)
@given(original=pixels, inpainted=pixels, mask=masks)
def test_blend_is_exact_at_the_ends_and_between_in_the_middle(
    original: np.ndarray, inpainted: np.ndarray, mask: np.ndarray
) -> None:
    out = blend(original, inpainted, mask)
    keep, take = mask == 0, mask == 255
    assert np.array_equal(out[keep], original[keep])
    assert np.array_equal(out[take], inpainted[take])
    low = np.minimum(original, inpainted)
    high = np.maximum(original, inpainted)
    assert np.all(out >= low) and np.all(out <= high)


@pytest.mark.parametrize(
    ("original", "inpainted", "mask", "expected"),
    [(0, 255, 128, 128), (200, 100, 51, 180), (10, 20, 255, 20), (10, 20, 0, 10), (0, 255, 1, 1)],
)
def test_blend_rounds_to_nearest(original: int, inpainted: int, mask: int, expected: int) -> None:
    out = blend(
        np.full((1, 1, 3), original, np.uint8),
        np.full((1, 1, 3), inpainted, np.uint8),
        np.full((1, 1), mask, np.uint8),
    )
    assert out[0, 0, 0] == expected
    a = mask / 255
    assert abs(out[0, 0, 0] - (a * inpainted + (1 - a) * original)) <= 0.5


def test_blend_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        blend(
            np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8)
        )
