"""Mask refinement: strokes inside a region, then a few pixels of dilation."""

from __future__ import annotations

import cv2
import numpy as np

from runners.detection.refine import dilate, fill_polygon, stroke_mask
from tests.runners.detection_images import ink, noise_texture, with_text


def test_strokes_are_found_inside_a_text_box_and_not_the_box() -> None:
    base = noise_texture(120, 360, seed=2)
    base = cv2.GaussianBlur(base, (0, 0), 3)
    image, strokes = with_text(base, "Credit Name", xy=(20, 40), size=36)
    touched = ink(base, "Credit Name", xy=(20, 40), size=36)
    box = np.zeros(strokes.shape, bool)
    ys, xs = np.nonzero(strokes)
    box[ys.min() - 6 : ys.max() + 7, xs.min() - 6 : xs.max() + 7] = True
    found = stroke_mask(image, box, stroke_scale=ys.max() - ys.min())
    recall = (found & strokes).sum() / strokes.sum()
    precision = (found & touched).sum() / found.sum()
    assert recall > 0.9
    assert precision > 0.8
    assert found.sum() < 0.6 * box.sum()
    assert not found[~box].any()


def test_no_strokes_in_a_flat_region() -> None:
    image = np.full((60, 80, 3), 120, np.uint8)
    region = np.zeros((60, 80), bool)
    region[10:50, 10:70] = True
    assert not stroke_mask(image, region, stroke_scale=15).any()


def test_dilate_grows_a_pixel_into_a_disc() -> None:
    mask = np.zeros((21, 21), bool)
    mask[10, 10] = True
    grown = dilate(mask, 3)
    assert grown.dtype == np.uint8 and set(np.unique(grown)) == {0, 255}
    ys, xs = np.nonzero(grown)
    assert ys.min() == 7 and ys.max() == 13 and xs.min() == 7 and xs.max() == 13
    assert grown[7, 7] == 0  # a disc, not a square
    assert np.array_equal(dilate(mask, 0) > 0, mask)


def test_fill_polygon_covers_its_inside() -> None:
    inside = fill_polygon((20, 30), np.array([[5, 5], [24, 5], [24, 14], [5, 14]], np.float32))
    assert inside.sum() == 20 * 10
    assert inside[5, 5] and inside[14, 24] and not inside[4, 5] and not inside[5, 25]
