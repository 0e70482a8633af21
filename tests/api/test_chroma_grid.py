"""Where a JPEG's subsampled colour samples lie, read from the upload and carried through
its EXIF orientation: de-blending smears a mark's colours on exactly that grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from api.images import decode_image
from runners.deblend.chroma import ChromaGrid, subsampled

# What PIL's exif_transpose does for each EXIF orientation, as numpy moves of (rows, cols).
ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, -1)[::-1],
    8: lambda a: np.rot90(a, 1),
}


def _jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_the_grid_follows_the_orientation(orientation: int) -> None:
    # Odd sizes: a flip moves the blocks' start by one pixel.
    stored = np.random.default_rng(orientation).integers(0, 256, (37, 51, 3), np.uint8)
    decoded = decode_image(_jpeg(stored, orientation), max_dimension=4096)
    assert decoded.rgb.shape == ORIENTED[orientation](stored).shape
    # Averaging over the blocks commutes with the orientation only on the right grid.
    values = stored.astype(np.float32)
    expected = np.ascontiguousarray(ORIENTED[orientation](subsampled(values, ChromaGrid((2, 2)))))
    seen = subsampled(np.ascontiguousarray(ORIENTED[orientation](values)), decoded.chroma)
    np.testing.assert_allclose(seen, expected, atol=1e-3)


def test_a_window_sees_the_grid_shifted() -> None:
    grid = ChromaGrid((2, 2))
    values = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    whole = subsampled(values, grid)
    window = subsampled(values[3:17, 5:25], grid.shifted(3, 5))
    # Away from the window's edges (where its blocks are cut), the two agree.
    np.testing.assert_allclose(window[2:-2, 2:-2], whole[5:15, 7:23], atol=1e-5)
