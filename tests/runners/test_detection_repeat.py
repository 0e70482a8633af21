"""The repeat detector finds a tiled mark's lattice from self-similarity, and nothing else."""

from __future__ import annotations

import numpy as np

from runners.detection.repeat import RepeatDetector
from tests.runners.detection_images import noise_texture, tiled


def _is_lattice_vector(step: tuple[float, float], step_y: int, step_x: int) -> bool:
    i, j = step[0] / step_y, step[1] / step_x
    return abs(i - round(i)) < 0.1 and abs(j - round(j)) < 0.1 and (round(i), round(j)) != (0, 0)


def test_finds_the_lattice_and_the_stamps_of_a_tiled_image() -> None:
    base = noise_texture(320, 480, seed=4)
    image, truth = tiled(base, step_y=40, step_x=64)
    pattern = RepeatDetector(long_side=480).find(image)
    assert pattern is not None
    for step in pattern.steps:
        assert _is_lattice_vector(step, 40, 64), pattern.steps
    assert pattern.strength > 0.1
    recall = (pattern.mask & truth).sum() / truth.sum()
    assert recall > 0.5
    assert pattern.mask.sum() < 3 * truth.sum()


def test_nothing_repeats_in_plain_noise_texture() -> None:
    assert RepeatDetector(long_side=480).find(noise_texture(320, 480, seed=5)) is None


def test_shift_union_copies_one_piece_to_every_lattice_point() -> None:
    base = noise_texture(320, 480, seed=4)
    image, _ = tiled(base, step_y=40, step_x=64)
    pattern = RepeatDetector(long_side=480).find(image)
    assert pattern is not None
    piece = np.zeros((320, 480), bool)
    piece[100:104, 200:204] = True
    copies = pattern.shift_union(piece)
    assert copies[100 + 40, 200 + 64] and copies[100 - 40, 200] and copies[100, 200 + 128]
    assert copies.sum() > 50 * piece.sum()
