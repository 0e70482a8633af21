"""The synthetic watermark generator keeps exact ground truth: mask, opacity and colour."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runners.detection_images import gradient
from tests.runners.images import textured_image
from training import watermarks


@pytest.mark.parametrize("kind", watermarks.KINDS)
def test_png_sample_is_exactly_the_blend_of_its_layers(kind: watermarks.Kind) -> None:
    clean = textured_image(180, 240, seed=3)
    sample = watermarks.watermark(clean, kind, np.random.default_rng(11), encoding="png")
    alpha = sample.alpha[..., None].astype(np.float64)
    expected = np.rint(alpha * sample.colour + (1 - alpha) * clean.astype(np.float64))
    assert np.array_equal(sample.image, expected.astype(np.uint8))
    assert sample.alpha.dtype == np.float32
    assert sample.alpha.min() >= 0 and sample.alpha.max() <= 1
    assert np.array_equal(sample.mask > 0, sample.alpha > watermarks.MASK_MIN_ALPHA)
    assert sample.mask.any()
    # Outside the mask the photo is (nearly) untouched.
    outside = sample.mask == 0
    difference = np.abs(sample.image.astype(int) - clean.astype(int))[outside]
    assert difference.max() <= round(255 * watermarks.MASK_MIN_ALPHA) + 1


def test_jpeg_sample_is_close_to_the_blend_but_lossy() -> None:
    clean = gradient(160, 200)
    png = watermarks.watermark(clean, "logo", np.random.default_rng(5), encoding="png")
    jpeg = watermarks.watermark(clean, "logo", np.random.default_rng(5), encoding="jpeg")
    assert np.array_equal(png.alpha, jpeg.alpha)
    error = np.abs(png.image.astype(int) - jpeg.image.astype(int))
    assert 0 < error.mean() < 3


@pytest.mark.parametrize(
    ("kind", "opacity"),
    [("logo", (0.2, 0.4)), ("tiled", (0.2, 0.4)), ("badge", (0.85, 1.0))],
)
def test_opacity_stays_in_the_kind_range(
    kind: watermarks.Kind, opacity: tuple[float, float]
) -> None:
    for seed in range(5):
        mark = watermarks.render_mark(kind, 200, 300, np.random.default_rng(seed))
        assert opacity[0] - 0.01 <= mark.alpha.max() <= opacity[1] + 0.01


def test_corner_kinds_stay_in_a_corner_and_tiles_spread() -> None:
    height, width = 300, 400
    for seed in range(6):
        rng = np.random.default_rng(seed)
        for kind in ("credit", "badge"):
            ys, xs = np.nonzero(watermarks.render_mark(kind, height, width, rng).mask)
            in_top_or_bottom = ys.max() < height / 2 or ys.min() > height / 2
            in_left_or_right = xs.max() < width / 2 or xs.min() > width / 2
            assert in_top_or_bottom and in_left_or_right, (kind, seed)
        tiled = watermarks.render_mark("tiled", height, width, rng).mask > 0
        quadrants = [tiled[:150, :200], tiled[:150, 200:], tiled[150:, :200], tiled[150:, 200:]]
        assert all(q.any() for q in quadrants)


def test_same_seed_same_mark() -> None:
    first = watermarks.render_mark("tiled", 120, 160, np.random.default_rng(9))
    second = watermarks.render_mark("tiled", 120, 160, np.random.default_rng(9))
    assert np.array_equal(first.alpha, second.alpha)
    assert np.array_equal(first.colour, second.colour)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown watermark kind"):
        watermarks.render_mark("sticker", 50, 50, np.random.default_rng(0))  # type: ignore[arg-type]
