"""`mark_evidence`: a segmenter region counts only where the photo shows a mark of its own."""

from __future__ import annotations

import cv2
import numpy as np

from runners.detection.combined import mark_evidence
from tests.images import photo


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    region = np.zeros(shape, np.uint8)
    cv2.circle(region, centre, radius, 1, thickness=-1)
    return region.astype(bool)


def test_plain_photo_texture_shows_no_mark() -> None:
    image = photo(240, 160, seed=3)
    region = _disc((160, 240), (120, 80), 30)
    assert 0.8 < mark_evidence(_gray(image), region) < 1.2


def test_a_semi_transparent_mark_shows_its_outline_and_letters() -> None:
    image = photo(240, 160, seed=3).astype(np.float64)
    region = _disc((160, 240), (120, 80), 30)
    letters = np.zeros(image.shape, np.uint8)
    cv2.putText(letters, "AB", (95, 92), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    marked = np.where(region[..., None], 0.7 * image + 0.3 * 255, image)
    marked = np.where(letters > 0, 0.5 * marked, marked)
    assert mark_evidence(_gray(marked.astype(np.uint8)), region) > 1.5


def test_a_region_filling_the_image_has_no_surroundings_to_compare() -> None:
    image = photo(64, 48)
    assert mark_evidence(_gray(image), np.ones((48, 64), bool)) == 1.0
    assert mark_evidence(_gray(image), np.zeros((48, 64), bool)) == 0.0
