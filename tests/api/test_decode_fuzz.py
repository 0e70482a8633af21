"""Property-based fuzzing of decoding: any bytes give pixels or a 400, never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.images import decode_image, decode_mask
from errors import BadRequest
from tests.images import box_mask, encode, photo

SEEDS = [encode(photo(24, 16), fmt) for fmt in ("JPEG", "PNG", "WEBP")] + [
    encode(box_mask(24, 16, (2, 2, 9, 9)), "PNG")
]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_decodes_or_refuses(data: bytes) -> None:
    try:
        decoded = decode_image(data, max_dimension=64)
    except BadRequest as exc:
        assert exc.status_code == 400
        assert exc.detail.startswith(("Invalid image format:", "Image too large."))
        return
    height, width = decoded.rgb.shape[:2]
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape[2] == 3
    assert 0 < width <= 64 and 0 < height <= 64
    if decoded.alpha is not None:
        assert decoded.alpha.shape == (height, width)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    check_decodes_or_refuses(data)


@FUZZ
@given(
    seed=st.sampled_from(SEEDS),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_mutated_real_files(seed: bytes, flips: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    check_decodes_or_refuses(bytes(data))


@FUZZ
@given(seed=st.sampled_from(SEEDS), position=st.integers(0, 10**6), value=st.integers(0, 255))
def test_mutated_masks_give_a_mask_of_the_image_size_or_a_400(
    seed: bytes, position: int, value: int
) -> None:
    data = bytearray(seed)
    data[position % len(data)] = value
    try:
        mask = decode_mask(bytes(data), size=(30, 20), max_dimension=64)
    except BadRequest as exc:
        assert exc.detail.startswith(("Invalid mask format:", "Mask too large."))
        return
    assert mask.shape == (20, 30) and mask.dtype == np.uint8


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_the_unmutated_seeds_decode(seed: bytes) -> None:
    assert decode_image(seed, max_dimension=64).size == (24, 16)
