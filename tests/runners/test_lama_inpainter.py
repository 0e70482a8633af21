"""`LamaInpainter`: padding, cropping, binarized masks, batching by padded size."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from runners.inpainter import Inpainter
from runners.lama.inpainter import LamaInpainter, pad_to_multiple, padded_size
from runners.lama.network import InpaintingNetwork
from tests.runners.conftest import CountingNetwork, inpainter_on
from tests.runners.images import rectangle_mask, textured_image


@pytest.fixture
def counting(tiny_network: InpaintingNetwork) -> CountingNetwork:
    return CountingNetwork(copy.deepcopy(tiny_network))


def test_is_an_inpainter(tiny_network: InpaintingNetwork) -> None:
    inpainter = inpainter_on(tiny_network)
    assert isinstance(inpainter, Inpainter)
    assert (inpainter.name, inpainter.device) == ("lama", "cpu")


def test_odd_sizes_come_back_at_their_size_with_unmasked_pixels_untouched(
    tiny_network: InpaintingNetwork,
) -> None:
    image = textured_image(301, 513)
    mask = rectangle_mask(301, 513, 100, 200, 180, 330)
    out = inpainter_on(tiny_network).inpaint(image, mask)
    assert out.shape == image.shape and out.dtype == np.uint8
    keep = mask == 0
    assert np.array_equal(out[keep], image[keep])
    assert np.abs(out[~keep].astype(int) - image[~keep]).mean() > 5  # the hole was filled


def test_padding_mirrors_the_bottom_and_right_edges() -> None:
    array = np.arange(11 * 13, dtype=np.uint8).reshape(11, 13)
    padded = pad_to_multiple(array)
    assert padded.shape == (16, 16)
    assert np.array_equal(padded[:11, :13], array)
    assert np.array_equal(padded[11, :13], array[10])  # symmetric: the edge row repeats first
    assert np.array_equal(padded[12, :13], array[9])
    assert np.array_equal(padded[:11, 13], array[:, 12])
    assert padded_size(24, 16) == (24, 16) and padded_size(17, 1) == (24, 16)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (8, 8), (5, 300)])
def test_images_smaller_than_the_network_minimum_still_work(
    tiny_network: InpaintingNetwork, height: int, width: int
) -> None:
    image = textured_image(height, width)
    mask = np.full((height, width), 255, np.uint8)
    assert inpainter_on(tiny_network).inpaint(image, mask).shape == image.shape


def test_result_is_the_padded_forward_cropped(tiny_network: InpaintingNetwork) -> None:
    image = textured_image(37, 50, seed=1)
    mask = rectangle_mask(37, 50, 5, 5, 30, 20)
    padded_image = pad_to_multiple(image)
    padded_mask = pad_to_multiple(mask)
    with torch.inference_mode():
        expected = tiny_network(
            torch.from_numpy(padded_image).permute(2, 0, 1)[None].float() / 255,
            torch.from_numpy(padded_mask > 0)[None, None].float(),
        )
    expected_pixels = (expected[0].permute(1, 2, 0) * 255).round().byte().numpy()[:37, :50]
    assert np.array_equal(inpainter_on(tiny_network).inpaint(image, mask), expected_pixels)


def test_any_nonzero_mask_value_means_fill(tiny_network: InpaintingNetwork) -> None:
    image = textured_image(40, 40)
    mask = rectangle_mask(40, 40, 10, 10, 30, 30)
    faint = np.where(mask > 0, 1, 0).astype(np.uint8)
    inpainter = inpainter_on(tiny_network)
    assert np.array_equal(inpainter.inpaint(image, mask), inpainter.inpaint(image, faint))


def test_same_padded_size_is_one_forward_and_equals_the_unbatched_result(
    counting: CountingNetwork,
) -> None:
    # 60x61 and 64x57 both pad to 64x64: one forward of 2. 100x30 is another forward.
    sizes = [(60, 61), (100, 30), (64, 57), (60, 61)]
    images = [textured_image(h, w, seed=i) for i, (h, w) in enumerate(sizes)]
    masks = [rectangle_mask(h, w, 5, 5, h // 2, w // 2) for h, w in sizes]
    inpainter = LamaInpainter(counting, stack_same_size=True)
    batched = inpainter.inpaint_batch(images, masks)
    assert sorted(counting.batch_sizes) == [1, 3]
    single = [inpainter.inpaint(image, mask) for image, mask in zip(images, masks, strict=True)]
    for one, other in zip(batched, single, strict=True):
        assert one.shape == other.shape
        # Tolerance: one grey level. A batched convolution may sum in another order, and a
        # float that lands on .5 can round either way; in practice the results are equal.
        assert np.abs(one.astype(int) - other).max() <= 1


def test_on_cpu_same_size_requests_run_one_at_a_time_by_default(
    counting: CountingNetwork,
) -> None:
    images = [textured_image(40, 40, seed=i) for i in range(3)]
    masks = [rectangle_mask(40, 40, 5, 5, 20, 20)] * 3
    LamaInpainter(counting).inpaint_batch(images, masks)
    assert counting.batch_sizes == [1, 1, 1]


def test_refuses_mismatched_inputs(tiny_network: InpaintingNetwork) -> None:
    inpainter = inpainter_on(tiny_network)
    with pytest.raises(ValueError, match="mask must be"):
        inpainter.inpaint(textured_image(8, 8), np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="image must be"):
        inpainter.inpaint(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="2 images but 1 masks"):
        inpainter.inpaint_batch([textured_image(8, 8)] * 2, [np.zeros((8, 8), np.uint8)])


def test_channels_last_gives_the_same_pixels(tiny_network: InpaintingNetwork) -> None:
    image = textured_image(64, 80, seed=3)
    mask = rectangle_mask(64, 80, 10, 10, 40, 60)
    # The inpainter converts the network it is given in place: give it a copy.
    plain = inpainter_on(tiny_network, channels_last=False).inpaint(image, mask)
    fast = inpainter_on(tiny_network, channels_last=True).inpaint(image, mask)
    assert np.abs(plain.astype(int) - fast).max() <= 1
