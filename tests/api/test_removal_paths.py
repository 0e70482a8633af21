"""Which removal `Remover.remove` chooses: a profile's de-blending, a tiled mark's
self-estimation with inpainting as its fallback, or plain inpainting.

The models are the real in-process ones (OpenCV, `runners.deblend`); only what detection
finds is given, so that each branch is reached on purpose, and the de-blending call can be
refused on purpose to show the fallback.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from api.model_client import DeblendRefused, InProcessModels
from api.profile_marks import ProfileMark, SeenAt
from api.removal import Remover
from runners.deblend import Deblended
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.detection.detector import Detection, Region, RegionKind
from runners.model_info import ModelInfo
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings
from tests.api.watermark_images import clean_photo
from tests.images import decode, encode

pytestmark = pytest.mark.anyio


class Given(InProcessModels):
    """The in-process models, with detection answering `kinds` over a fixed box, and the
    de-blending call recorded (and refused, when `refuse` says so)."""

    def __init__(self, kinds: tuple[RegionKind, ...], *, refuse: bool = False) -> None:
        super().__init__(OpenCVInpainter())
        self.kinds = kinds
        self.refuse = refuse
        self.deblend_calls: list[tuple[np.ndarray | None, np.ndarray | None]] = []
        self.chroma_grids: list[ChromaGrid] = []
        self.seen_at: list[tuple[int, int] | None] = []
        self.estimated: list[bool] = []
        self.inpaint_calls = 0

    async def detect(self, image: np.ndarray) -> Detection:
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[40:80, 50:150] = 255
        regions = tuple(
            Region(kind, (50, 40, 100, 40), ((50, 40), (150, 40), (150, 80), (50, 80)), 0.9)
            for kind in self.kinds
        )
        return Detection(regions=regions, mask=mask)

    async def deblend(
        self,
        image: np.ndarray,
        template: np.ndarray | None,
        mask: np.ndarray | None,
        chroma: ChromaGrid = FULL_CHROMA,
        seen_at: tuple[int, int] | None = None,
        estimated: bool = False,
    ) -> Deblended:
        self.deblend_calls.append((template, mask))
        self.chroma_grids.append(chroma)
        self.seen_at.append(seen_at)
        self.estimated.append(estimated)
        if self.refuse:
            raise DeblendRefused("The watermark could not be de-blended: too few repeats")
        return await super().deblend(image, template, mask, chroma, seen_at, estimated)

    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.inpaint_calls += 1
        return await super().inpaint(image, mask)

    async def model_info(self) -> ModelInfo:
        # Detection is "on": what it finds is given above.
        return replace(await super().model_info(), detector={"name": "given", "models": []})


PHOTO = encode(clean_photo(), "PNG")


TILED_ON = Settings(deblend_tiled=True)


async def test_by_default_a_tiled_mark_is_inpainted_not_self_estimated() -> None:
    models = Given(("pattern", "text"))
    removal = await Remover(models, Settings()).remove(PHOTO, None)
    assert models.deblend_calls == [] and models.inpaint_calls == 1
    assert removal.headers()["X-Removal"] == "inpaint"


async def test_a_tiled_mark_is_deblended_from_its_own_repeats() -> None:
    models = Given(("pattern", "text"))
    removal = await Remover(models, TILED_ON).remove(PHOTO, None)
    assert removal.mask_source == "detected"
    ((template, mask),) = models.deblend_calls
    assert template is None
    assert mask is not None and mask[60, 100] == 255 and mask[0, 0] == 0
    assert removal.headers()["X-Removal"] == removal.removal


async def test_a_refused_self_estimate_falls_back_to_inpainting() -> None:
    models = Given(("pattern",), refuse=True)
    removal = await Remover(models, TILED_ON).remove(PHOTO, None)
    assert len(models.deblend_calls) == 1 and models.inpaint_calls == 1
    assert removal.removal == "inpaint"
    assert removal.headers()["X-Removal"] == "inpaint"
    assert decode(removal.content).size == (256, 192)


@pytest.mark.parametrize("kinds", [("text",), ("logo", "text")])
async def test_marks_that_do_not_repeat_are_inpainted(kinds: tuple[RegionKind, ...]) -> None:
    models = Given(kinds)
    removal = await Remover(models, TILED_ON).remove(PHOTO, None)
    assert models.deblend_calls == [] and models.inpaint_calls == 1
    assert removal.removal == "inpaint"


async def test_an_uploaded_mask_without_a_profile_is_inpainted() -> None:
    models = Given(("pattern",))
    mask = np.zeros((192, 256), np.uint8)
    mask[10:20, 10:20] = 255
    removal = await Remover(models, TILED_ON).remove(PHOTO, encode(mask, "PNG"))
    assert models.deblend_calls == [] and removal.removal == "inpaint"
    assert removal.mask_source == "uploaded"


@pytest.mark.parametrize(
    ("fmt", "options", "grid"),
    [
        ("JPEG", {"quality": 90}, ChromaGrid((2, 2))),
        ("JPEG", {"quality": 90, "subsampling": 1}, ChromaGrid((1, 2))),
        ("JPEG", {"quality": 90, "subsampling": 0}, FULL_CHROMA),
        ("PNG", {}, FULL_CHROMA),
    ],
)
async def test_the_uploads_chroma_grid_reaches_the_deblending(
    fmt: str, options: dict[str, object], grid: ChromaGrid
) -> None:
    models = Given(("pattern",))
    photo = encode(clean_photo(), fmt, **options)
    await Remover(models, TILED_ON).remove(photo, None)
    assert models.chroma_grids == [grid]


@pytest.mark.parametrize(
    ("seen_in", "expected"),
    [((256, 192), (40, 50)), ((512, 384), None)],
)
async def test_an_estimated_profile_is_tried_where_it_was_seen_in_photos_of_its_size(
    seen_in: tuple[int, int], expected: tuple[int, int] | None
) -> None:
    models = Given(())
    rgba = np.zeros((40, 100, 4), np.uint8)
    rgba[10:30, 10:90] = (255, 255, 255, 200)
    mark = ProfileMark(rgba, SeenAt(x=50, y=40, image_width=seen_in[0], image_height=seen_in[1]))
    await Remover(models, Settings()).remove(PHOTO, None, mark=mark)
    assert models.seen_at == [expected]
    assert models.estimated == [True]  # wherever it was seen, it is an estimate


async def test_an_uploaded_profile_is_not_taken_for_an_estimate() -> None:
    models = Given(())
    rgba = np.zeros((40, 100, 4), np.uint8)
    rgba[10:30, 10:90] = (255, 255, 255, 200)
    await Remover(models, Settings()).remove(PHOTO, None, mark=ProfileMark(rgba))
    assert models.estimated == [False]
    assert models.seen_at == [None]
