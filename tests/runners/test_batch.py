"""What crosses to the model process: an image and its mask packed as one array."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra.numpy import arrays

from runners.batch import inpaint_items, pack_detection, pack_item, unpack_detection, unpack_item
from runners.detection.detector import Detection, Region
from runners.opencv_inpainter import OpenCVInpainter
from tests.images import box_mask, photo


@given(image=arrays(np.uint8, (6, 5, 3)), mask=arrays(np.uint8, (6, 5)))
def test_pack_and_unpack_are_inverse(image: np.ndarray, mask: np.ndarray) -> None:
    back_image, back_mask = unpack_item(pack_item(image, mask))
    assert np.array_equal(back_image, image) and np.array_equal(back_mask, mask)


def test_unpack_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="expected an"):
        unpack_item(np.zeros((4, 4, 3), np.uint8))


def test_a_batch_step_returns_each_item_composited_in_order() -> None:
    images = [photo(40, 30, seed=1), photo(24, 20, seed=2)]
    masks = [box_mask(40, 30, (5, 5, 20, 15)), box_mask(24, 20, (2, 2, 10, 10), value=128)]
    results = inpaint_items(
        OpenCVInpainter(), [pack_item(i, m) for i, m in zip(images, masks, strict=True)]
    )
    for image, mask, result in zip(images, masks, results, strict=True):
        assert result.shape == image.shape
        assert np.array_equal(result[mask == 0], image[mask == 0])
        assert not np.array_equal(result[mask > 0], image[mask > 0])


def test_a_detection_crosses_as_plain_data_and_comes_back_whole() -> None:
    mask = box_mask(40, 30, (5, 5, 20, 15))
    found = Detection(
        regions=(
            Region("text", (5, 5, 15, 10), ((5, 5), (20, 5), (20, 15), (5, 15)), 0.97, "© me"),
            Region("logo", (1, 2, 3, 4), ((1, 2), (4, 2), (4, 6)), 0.5),
        ),
        mask=mask,
    )
    packed = pack_detection(found)
    assert all(isinstance(region, dict) for region in packed["regions"])
    back = unpack_detection(packed)
    assert back.regions == found.regions and np.array_equal(back.mask, mask)
