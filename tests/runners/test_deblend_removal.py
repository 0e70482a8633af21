"""remove_blended end to end with the OpenCV inpainter: better than inpainting where the
estimate is good, inpainting where it is not, and clear errors for unusable input."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from runners.deblend import Deblended, DeblendError, WatermarkTemplate, removal, remove_blended
from runners.deblend.chroma import ChromaGrid
from runners.deblend.inversion import invert
from runners.deblend.placement import Placement, render
from runners.opencv_inpainter import OpenCVInpainter
from tests.runners.deblend_images import photos, white_logo
from training.blends import blend_logo, logo, tile_logo

INPAINTER = OpenCVInpainter()


def _psnr(result: np.ndarray, clean: np.ndarray, region: np.ndarray) -> float:
    error = (result.astype(np.float64) - clean.astype(np.float64))[region]
    return float(10 * np.log10(255.0**2 / max(float((error**2).mean()), 1e-10)))


def _inpainted(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    filled = INPAINTER.inpaint(image, mask)
    return np.where(mask[..., None] > 0, filled, image)


@pytest.mark.parametrize("scale", [0.7, 1.4])
def test_a_profile_recovers_the_photo_far_better_than_inpainting(scale: float) -> None:
    rgba = white_logo(40)
    clean = photos(3, height=192, width=256)[2]
    sample = blend_logo(clean, rgba, top=60, left=40, scale=scale, opacity=0.35)
    result = remove_blended(
        sample.image, template=WatermarkTemplate.from_rgba(rgba), inpainter=INPAINTER
    )
    region = sample.mask > 0
    assert result.removal in ("deblend", "mixed"), result.detail
    assert result.image.shape == clean.shape and result.image.dtype == np.uint8
    assert result.inpainted.shape == clean.shape[:2] and result.inpainted.dtype == bool
    deblended = _psnr(result.image, clean, region)
    inpainted = _psnr(_inpainted(sample.image, sample.mask), clean, region)
    assert deblended > 32.0 and deblended > inpainted + 6.0, (deblended, inpainted)
    # Outside the mark (and its seam) the photo comes back untouched.
    near = cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    far = ~near & ~result.inpainted
    np.testing.assert_array_equal(result.image[far], sample.image[far])


def test_opaque_parts_are_inpainted_and_reported_as_mixed() -> None:
    rgba = white_logo(40)
    clean = photos(2, height=192, width=256)[1]
    sample = blend_logo(clean, rgba, top=60, left=40, opacity=0.97)
    result = remove_blended(
        sample.image, template=WatermarkTemplate.from_rgba(rgba), inpainter=INPAINTER
    )
    assert result.removal in ("mixed", "inpaint"), result.detail
    assert result.inpainted[sample.alpha > 0.95].all()


def test_a_wrong_template_falls_back_to_inpainting_the_mask() -> None:
    clean = photos(3, height=192, width=256)[2]
    sample = blend_logo(clean, white_logo(40), top=60, left=40, opacity=0.35)
    # A black ring-less word that is nowhere in the photo.
    wrong = WatermarkTemplate.from_rgba(logo("Kx", (0, 0, 0), height=50, ring=False))
    result = remove_blended(sample.image, template=wrong, inpainter=INPAINTER, mask=sample.mask)
    assert result.removal == "inpaint", result.detail
    assert result.detail.startswith("inpainted: ")
    # Never worse than inpainting the mask: here it is exactly that.
    np.testing.assert_array_equal(result.image, _inpainted(sample.image, sample.mask))
    np.testing.assert_array_equal(result.inpainted, sample.mask > 0)


def test_a_mark_placed_outside_the_mask_sent_is_not_taken() -> None:
    # The mask says where the mark to remove is; the template also matches a mark elsewhere.
    # Inverting that one would leave the masked area as it was: the mask is inpainted.
    rgba = white_logo(40)
    clean = photos(3, height=192, width=256)[2]
    sample = blend_logo(clean, rgba, top=20, left=20, opacity=0.35)
    elsewhere = np.zeros(clean.shape[:2], np.uint8)
    elsewhere[140:180, 180:250] = 255
    template = WatermarkTemplate.from_rgba(rgba)
    result = remove_blended(sample.image, template=template, inpainter=INPAINTER, mask=elsewhere)
    assert result.removal == "inpaint", result.detail
    assert "only outside the mask sent" in result.detail
    np.testing.assert_array_equal(result.image, _inpainted(sample.image, elsewhere))
    # The same mark with a mask over it, a little short of its fringe, is inverted.
    over = cv2.erode(sample.mask, np.ones((3, 3), np.uint8))
    inside = remove_blended(sample.image, template=template, inpainter=INPAINTER, mask=over)
    assert inside.removal in ("deblend", "mixed"), inside.detail


def test_a_trusted_placement_beats_a_smoother_looking_chance_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two guesses at where the mark is, judged as such guesses were on the training photos
    # (the judging is stubbed): a chance match whose inversion smooths its window most but
    # leaves its outline, and the mark, whose inversion removes its outline yet (on a
    # textured JPEG) roughens the window a little. The mark is taken.
    rgba = white_logo(40)
    clean = photos(3, height=192, width=256)[2]
    sample = blend_logo(clean, rgba, top=60, left=40, opacity=0.35)
    template = WatermarkTemplate.from_rgba(rgba)
    height, width = rgba.shape[:2]
    truth = Placement(
        x=40 + (width - 1) / 2, y=60 + (height - 1) / 2, scale=1.0, angle=0.0, gain=0.35, score=0.2
    )
    chance = replace(truth, x=truth.x + 100, y=truth.y + 60, score=0.4)
    verdicts = {}
    for name, placement, ratio, residual in (
        ("chance", chance, 0.8, 0.7),
        ("mark", truth, 1.05, 0.0),
    ):
        layers = render(template, [placement], clean.shape[:2])
        verdicts[name] = removal._Verdict(
            layers=layers,
            how=name,
            change=removal.GradientChange(10.0, 10.0 * ratio),
            residual=residual,
            inversion=invert(sample.image, layers.alpha, layers.colour),
            refusal=None if name == "mark" else "its outline remains",
            trusted=name == "mark",
        )
    monkeypatch.setattr(removal, "find_hypotheses", lambda image, template: [[chance], [truth]])
    monkeypatch.setattr(
        removal,
        "_placed",
        lambda image, template, coarse, chroma: (None, "chance" if coarse[0] is chance else "mark"),
    )
    monkeypatch.setattr(removal, "_judge", lambda image, layers, how, *rest: verdicts[how])
    result = remove_blended(sample.image, template=template, inpainter=INPAINTER)
    assert result.removal == "deblend", result.detail
    assert result.detail.startswith("de-blended: mark;"), result.detail


def test_no_mark_and_no_mask_is_an_error() -> None:
    clean = photos(1, height=128, width=160)[0]
    wrong = WatermarkTemplate.from_rgba(logo("Kx", (0, 0, 0), height=50, ring=False))
    with pytest.raises(DeblendError, match="no mark found"):
        remove_blended(clean, template=wrong, inpainter=INPAINTER)


def test_nothing_tiled_and_no_mask_is_an_error() -> None:
    clean = photos(1, height=128, width=160)[0]
    with pytest.raises(DeblendError, match="no mark found"):
        remove_blended(clean, template=None, inpainter=INPAINTER)


def test_a_tiled_mark_is_estimated_from_its_own_copies() -> None:
    clean = photos(4, height=256, width=256)[3]
    rgba = logo("Stock", (255, 255, 255), height=24)
    sample = tile_logo(clean, rgba, step=(48, 96), shear=32, offset=(5, 9), opacity=0.3)
    result = remove_blended(sample.image, template=None, inpainter=INPAINTER)
    assert result.removal in ("deblend", "mixed"), result.detail
    region = sample.mask > 0
    deblended = _psnr(result.image, clean, region)
    inpainted = _psnr(_inpainted(sample.image, sample.mask), clean, region)
    assert deblended > inpainted + 3.0, (deblended, inpainted)


def test_inputs_of_the_wrong_shape_are_refused() -> None:
    template = WatermarkTemplate.from_rgba(white_logo(20))
    image = photos(1, height=64, width=64)[0]
    with pytest.raises(DeblendError):
        remove_blended(image[..., 0], template=template, inpainter=INPAINTER)
    with pytest.raises(DeblendError):
        remove_blended(
            image, template=template, inpainter=INPAINTER, mask=np.zeros((10, 10), np.uint8)
        )


def test_a_jpeg_mark_too_opaque_to_invert_is_inpainted_where_it_is_placed() -> None:
    # Solid strokes at 0.8 opacity: on a JPEG everything above 0.6 is inpainted, so no
    # invertible fringe is left to judge the placement by; the outline itself shows it.
    rgba = logo("Norden", (255, 255, 255), height=40, ring=False)
    rgba[..., 3] = np.where(rgba[..., 3] > 0, 255, 0).astype(np.uint8)
    clean = photos(2, height=192, width=256)[1]
    sample = blend_logo(clean, rgba, top=60, left=30, opacity=0.8, encoding="jpeg")
    result = remove_blended(
        sample.image,
        template=WatermarkTemplate.from_rgba(rgba),
        inpainter=INPAINTER,
        chroma=ChromaGrid((2, 2)),
    )
    assert result.removal == "inpaint", result.detail
    assert result.inpainted[sample.alpha > 0.5].all()
    assert not result.inpainted[:, :20].any()
    # The placed mark's footprint, not a band grown around it: a wider mask is filled from
    # farther away.
    assert result.inpainted.sum() <= 1.05 * (sample.mask > 0).sum()


def test_on_a_jpeg_a_mark_mostly_above_half_opacity_is_inpainted_whole() -> None:
    rgba = white_logo(40)
    clean = photos(2, height=192, width=256)[1]
    sample = blend_logo(clean, rgba, top=60, left=40, opacity=0.7, encoding="jpeg")
    template = WatermarkTemplate.from_rgba(rgba)
    as_jpeg = remove_blended(
        sample.image,
        template=template,
        inpainter=INPAINTER,
        mask=sample.mask,
        chroma=ChromaGrid((2, 2)),
    )
    assert as_jpeg.removal == "inpaint", as_jpeg.detail
    assert "too opaque to invert on a JPEG" in as_jpeg.detail
    np.testing.assert_array_equal(as_jpeg.image, _inpainted(sample.image, sample.mask))
    # The same pixels taken for lossless are still de-blended where they can be.
    as_png = remove_blended(sample.image, template=template, inpainter=INPAINTER)
    assert as_png.removal != "inpaint", as_png.detail


def test_a_proven_mark_on_a_textured_jpeg_is_inverted_though_its_noise_grows() -> None:
    # Fine texture under JPEG q90: inverting the mark removes its whole outline, yet divides
    # the compression noise by 1 - alpha, so the window's mean gradient rises a little.
    noise = np.random.default_rng(0).normal(0, 60, (192, 256, 3)).astype(np.float32)
    clean = np.clip(cv2.GaussianBlur(noise, (0, 0), 0.6) * 2 + 110, 0, 255).astype(np.uint8)
    rgba = white_logo(60)
    sample = blend_logo(clean, rgba, top=60, left=20, opacity=0.3, encoding="jpeg")
    result = remove_blended(
        sample.image,
        template=WatermarkTemplate.from_rgba(rgba),
        inpainter=INPAINTER,
        mask=sample.mask,
        chroma=ChromaGrid((2, 2)),
    )
    assert result.removal != "inpaint", result.detail
    region = sample.mask > 0

    def error(image: np.ndarray) -> float:
        return float(np.abs(image.astype(int) - clean.astype(int))[region].mean())

    assert error(result.image) < error(_inpainted(sample.image, sample.mask))


def test_an_estimated_mark_over_flat_content_is_inpainted_a_supplied_one_inverted() -> None:
    # A smooth sky: once the mark is gone its window is near flat, which an inpainter fills
    # closely, while an estimate's α error would be multiplied by 1 / (1 - α).
    rows = np.linspace(90, 170, 192, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(rows + np.array([0, 20, 60], np.float32), (192, 256, 3))
    clean = np.ascontiguousarray(sky, dtype=np.uint8)
    rgba = white_logo(40)
    sample = blend_logo(clean, rgba, top=60, left=40, opacity=0.35)
    template = WatermarkTemplate.from_rgba(rgba)

    def removed(*, estimated: bool) -> Deblended:
        return remove_blended(
            sample.image,
            template=template,
            inpainter=INPAINTER,
            mask=sample.mask,
            estimated=estimated,
        )

    estimated = removed(estimated=True)
    assert estimated.removal == "inpaint", estimated.detail
    assert "an estimated mark over flat content" in estimated.detail
    np.testing.assert_array_equal(estimated.image, _inpainted(sample.image, sample.mask))
    supplied = removed(estimated=False)
    assert supplied.removal == "deblend", supplied.detail


def test_an_estimated_mark_over_a_textured_photo_is_still_inverted() -> None:
    rgba = white_logo(40)
    clean = photos(3, height=192, width=256)[2]
    sample = blend_logo(clean, rgba, top=60, left=40, opacity=0.35)
    result = remove_blended(
        sample.image,
        template=WatermarkTemplate.from_rgba(rgba),
        inpainter=INPAINTER,
        mask=sample.mask,
        estimated=True,
    )
    assert result.removal in ("deblend", "mixed"), result.detail
