"""WatermarkTemplate: the RGBA file round trip and the inputs it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from runners.deblend import DeblendError, WatermarkTemplate
from training.blends import logo


def test_rgba_round_trip_is_exact() -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(13, 21, 4), dtype=np.uint8)
    template = WatermarkTemplate.from_rgba(rgba)
    assert template.alpha.dtype == np.float32 and template.colour.dtype == np.float32
    assert template.alpha.max() <= 1.0
    np.testing.assert_array_equal(template.to_rgba(), rgba)


def test_cropped_keeps_only_the_visible_box() -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:9, 10:17] = (255, 255, 255, 200)
    cropped = WatermarkTemplate.from_rgba(rgba).cropped()
    assert cropped.shape == (4, 7)


@pytest.mark.parametrize(
    "rgba",
    [
        np.zeros((10, 10, 4), np.uint8),  # fully transparent
        np.zeros((10, 10, 3), np.uint8),  # no alpha channel
        np.zeros((0, 10, 4), np.uint8),  # empty
        np.full((10, 10, 4), 255, np.uint16),  # not 8-bit
    ],
)
def test_unusable_templates_are_refused(rgba: np.ndarray) -> None:
    with pytest.raises(DeblendError):
        WatermarkTemplate.from_rgba(rgba)


def test_layers_of_different_sizes_are_refused() -> None:
    with pytest.raises(DeblendError):
        WatermarkTemplate(alpha=np.ones((4, 4), np.float32), colour=np.zeros((4, 5, 3), np.float32))


def test_a_mark_of_one_colour_says_so() -> None:
    rgba = logo("Mono", (214, 40, 60), height=30)
    colour = WatermarkTemplate.from_rgba(rgba).single_colour()
    assert colour is not None
    np.testing.assert_allclose(colour, (214, 40, 60), atol=4)
    two = rgba.copy()
    two[:, : two.shape[1] // 2, :3] = (0, 90, 255)
    assert WatermarkTemplate.from_rgba(two).single_colour() is None
