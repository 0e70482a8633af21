"""Large-image strategies: regions, choices, bit-identity outside the mask, forward counts."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from runners.hd_strategy import Box, HdInpainter, HdStrategy, plan_forwards, region_boxes
from runners.inpainter import Inpainter
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.opencv_inpainter import OpenCVInpainter
from tests.runners.conftest import CountingNetwork, inpainter_on
from tests.runners.images import rectangle_mask, text_mask, textured_image


def _lama(network: InpaintingNetwork) -> tuple[LamaInpainter, CountingNetwork]:
    counting = CountingNetwork(copy.deepcopy(network))
    return LamaInpainter(counting, stack_same_size=True), counting


def test_glyphs_of_a_text_line_merge_into_one_region() -> None:
    mask = text_mask(1024, 1024, glyphs=80, top=900, left=100)
    boxes = region_boxes(mask, margin=32)
    assert boxes == [Box(900 - 32, 100 - 32, 915 + 32, 100 + 79 * 10 + 7 + 32)]


def test_distant_regions_stay_apart_and_boxes_never_overlap() -> None:
    mask = rectangle_mask(1000, 1000, 10, 10, 20, 20) | rectangle_mask(
        1000, 1000, 900, 900, 950, 990
    )
    # An L of two boxes whose grown boxes overlap only after a first merge.
    mask |= rectangle_mask(1000, 1000, 400, 400, 410, 600) | rectangle_mask(
        1000, 1000, 420, 590, 600, 600
    )
    boxes = region_boxes(mask, margin=16)
    assert len(boxes) == 3
    assert Box(0, 0, 36, 36) in boxes
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    covered = np.zeros_like(mask, dtype=bool)
    for box in boxes:
        covered[box.window] = True
    assert covered[mask > 0].all()


def test_speckle_masks_get_one_box() -> None:
    mask = np.zeros((400, 400), np.uint8)
    mask[::4, ::4] = 255  # 10,000 separate pixels
    assert region_boxes(mask, margin=1) == [Box(0, 0, 398, 398)]


@pytest.mark.parametrize(
    ("shape", "mask_box", "setting", "expected"),
    [
        ((800, 600), (10, 10, 50, 50), "auto", HdStrategy.ORIGINAL),  # small image
        ((3072, 4096), (2900, 3400, 3050, 4000), "auto", HdStrategy.CROP),  # corner logo
        ((3072, 4096), (100, 100, 3000, 4000), "auto", HdStrategy.RESIZE),  # most of it
        ((1500, 1900), (100, 100, 1400, 1800), "auto", HdStrategy.ORIGINAL),  # large, < limit
        ((3072, 4096), (2900, 3400, 3050, 4000), "original", HdStrategy.ORIGINAL),
        ((800, 600), (10, 10, 50, 50), "crop", HdStrategy.CROP),  # forced below the trigger
        ((3072, 4096), (2900, 3400, 3050, 4000), "resize", HdStrategy.RESIZE),
        ((800, 600), (10, 10, 50, 50), "resize", HdStrategy.ORIGINAL),  # nothing to shrink
    ],
)
def test_strategy_choice(
    shape: tuple[int, int], mask_box: tuple[int, int, int, int], setting: str, expected: HdStrategy
) -> None:
    mask = rectangle_mask(*shape, *mask_box)
    chosen = plan_forwards(mask, strategy=setting, trigger=1024, crop_margin=128, resize_limit=2048)  # type: ignore[arg-type]
    assert chosen.strategy is expected


@pytest.mark.parametrize("strategy", ["original", "crop", "resize"])
@pytest.mark.parametrize("model", ["lama", "opencv"])
def test_pixels_outside_the_mask_are_bit_identical(
    tiny_network: InpaintingNetwork, strategy: str, model: str
) -> None:
    image = textured_image(600, 900, seed=11)
    mask = text_mask(600, 900, glyphs=12, top=500, left=600) | rectangle_mask(
        600, 900, 30, 40, 90, 70
    )
    inner: Inpainter = inpainter_on(tiny_network) if model == "lama" else OpenCVInpainter()
    hd = HdInpainter(inner, strategy=strategy, trigger=256, crop_margin=24, resize_limit=300)  # type: ignore[arg-type]
    out = hd.inpaint(image, mask)
    keep = mask == 0
    assert np.array_equal(out[keep], image[keep])
    assert not np.array_equal(out[~keep], image[~keep])


def test_an_80_glyph_watermark_costs_one_forward_not_80(tiny_network: InpaintingNetwork) -> None:
    image = textured_image(1024, 1024, seed=2)
    mask = text_mask(1024, 1024, glyphs=80, top=950, left=100)
    inner, counting = _lama(tiny_network)
    hd = HdInpainter(inner, strategy="auto", trigger=512, crop_margin=64, resize_limit=2048)
    assert hd.plan_forwards(mask).strategy is HdStrategy.CROP
    hd.inpaint(image, mask)
    assert counting.batch_sizes == [1]


def test_crop_matches_a_forward_on_the_same_crop(tiny_network: InpaintingNetwork) -> None:
    image = textured_image(700, 700, seed=4)
    mask = rectangle_mask(700, 700, 300, 310, 340, 400)
    hd = HdInpainter(inpainter_on(tiny_network), strategy="crop", crop_margin=50)
    out = hd.inpaint(image, mask)
    window = np.s_[250:390, 260:450]
    direct = inpainter_on(tiny_network).inpaint(image[window], mask[window])
    fill = mask[window] > 0
    assert np.array_equal(out[window][fill], direct[fill])


def test_resize_runs_the_model_at_the_limit(tiny_network: InpaintingNetwork) -> None:
    seen: list[tuple[int, ...]] = []

    class Recording(LamaInpainter):
        def inpaint_batch(self, images, masks):  # type: ignore[no-untyped-def]
            seen.extend(image.shape for image in images)
            return super().inpaint_batch(images, masks)

    image = textured_image(1000, 3000, seed=6)
    mask = rectangle_mask(1000, 3000, 100, 100, 900, 2900)
    recording = Recording(copy.deepcopy(tiny_network))
    HdInpainter(recording, strategy="resize", resize_limit=600).inpaint(image, mask)
    assert seen == [(200, 600, 3)]


def test_a_batch_sends_every_region_of_every_image_in_one_call(
    tiny_network: InpaintingNetwork,
) -> None:
    inner, counting = _lama(tiny_network)
    hd = HdInpainter(inner, strategy="crop", crop_margin=8)
    images = [textured_image(200, 200, seed=i) for i in range(3)]
    # Same-size regions in every image: one forward for all of them.
    masks = [
        rectangle_mask(200, 200, 50, 50, 66, 66) | rectangle_mask(200, 200, 150, 150, 166, 166)
    ] * 3
    out = hd.inpaint_batch(images, masks)
    assert counting.batch_sizes == [6]
    assert len(out) == 3
    assert np.array_equal(out[1], hd.inpaint(images[1], masks[1]))


def test_an_empty_mask_under_crop_runs_no_forward(tiny_network: InpaintingNetwork) -> None:
    inner, counting = _lama(tiny_network)
    image = textured_image(300, 300)
    out = HdInpainter(inner, strategy="crop").inpaint(image, np.zeros((300, 300), np.uint8))
    assert np.array_equal(out, image) and counting.forwards == 0


def test_is_an_inpainter_named_after_the_model_it_wraps(tiny_network: InpaintingNetwork) -> None:
    hd = HdInpainter(OpenCVInpainter())
    assert isinstance(hd, Inpainter)
    assert (hd.name, hd.device) == ("opencv", "cpu")
    assert HdInpainter(inpainter_on(tiny_network)).name == "lama"
