"""Reduced precision: the Fourier units stay fp32, the parity check decides, fp32 is the fallback.

Real tiny networks show both outcomes: at He initialisation (weight scale 1) the tiny
network amplifies bf16's rounding far beyond the tolerance, at weight scale 0.5 it stays
within it. Injected inpainters pin the check's arithmetic down exactly.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from runners.devices import ComputePlan, Hardware, Precision, PrecisionPlan
from runners.lama.architecture import FourierUnit
from runners.lama.configs import TINY
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.prepare import prepare_inpainter, settle_precision
from runners.lama.weights import load_torchscript, random_network
from runners.parity import MAX_SHARE_OVER_ONE_LEVEL, check_parity, parity_inputs

BF16_ON_CPU = ComputePlan("cpu", PrecisionPlan(Precision.BF16, "test: bf16"), 1, Hardware())


class ShiftedInpainter:
    """Another inpainter's output with `levels` added to the first `count` masked pixels."""

    name = "lama"
    device = "cpu"

    def __init__(self, inner: LamaInpainter, levels: int, count: int | None = None) -> None:
        self.inner = inner
        self.levels = levels
        self.count = count

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self.inner.inpaint(image, mask).astype(np.int16)
        rows, cols = np.nonzero(mask)
        chosen = slice(None) if self.count is None else slice(0, self.count)
        out[rows[chosen], cols[chosen], 0] += self.levels
        return np.clip(out, 0, 255).astype(np.uint8)

    def inpaint_batch(
        self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        return [self.inpaint(image, mask) for image, mask in zip(images, masks, strict=True)]


class RaisingInpainter(ShiftedInpainter):
    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise RuntimeError("cuFFT only supports dimensions whose sizes are powers of two")


@pytest.fixture(scope="module")
def tame_network() -> InpaintingNetwork:
    """A tiny network whose bf16 output stays within the tolerance."""
    return random_network(TINY, seed=7, weight_scale=0.5)


def test_the_parity_input_is_fixed_and_has_masked_structure() -> None:
    image, mask = parity_inputs()
    again, same_mask = parity_inputs()
    assert np.array_equal(image, again) and np.array_equal(mask, same_mask)
    assert 0.15 < (mask > 0).mean() < 0.5
    assert image.std() > 30  # not a flat colour: the model has something to get wrong


def test_a_model_compared_with_itself_passes_exactly(tame_network: InpaintingNetwork) -> None:
    inpainter = LamaInpainter(copy.deepcopy(tame_network))
    report = check_parity(inpainter, inpainter, label="fp32")
    assert report.passed
    assert (report.max_levels, report.share_over_one_level) == (0, 0.0)


def test_an_injected_bad_backend_fails_and_the_reference_is_served(
    tame_network: InpaintingNetwork, caplog: pytest.LogCaptureFixture
) -> None:
    reference = LamaInpainter(copy.deepcopy(tame_network))
    bad = ShiftedInpainter(reference, levels=3, count=5)
    with caplog.at_level(logging.WARNING, logger="runners.lama.prepare"):
        outcome = settle_precision(reference, bad, "bf16")
    assert outcome.served is reference
    assert outcome.parity.max_levels == 3 and not outcome.parity.passed
    assert outcome.fallback is not None
    assert outcome.fallback.startswith("bf16 failed parity: max Δ 3/255")
    assert "Serving fp32, not bf16" in caplog.text


def test_the_share_over_one_level_is_bounded(tame_network: InpaintingNetwork) -> None:
    reference = LamaInpainter(copy.deepcopy(tame_network))
    masked = int((parity_inputs()[1] > 0).sum())
    allowed = int(masked * MAX_SHARE_OVER_ONE_LEVEL)
    # Two levels off is within the maximum; how many such pixels decides.
    few = check_parity(reference, ShiftedInpainter(reference, 2, allowed), label="few")
    many = check_parity(reference, ShiftedInpainter(reference, 2, allowed + 1), label="many")
    assert few.passed and few.max_levels == 2
    assert not many.passed and many.share_over_one_level > MAX_SHARE_OVER_ONE_LEVEL


def test_a_candidate_that_raises_fails_parity(tame_network: InpaintingNetwork) -> None:
    reference = LamaInpainter(copy.deepcopy(tame_network))
    outcome = settle_precision(reference, RaisingInpainter(reference, 0), "fp16")
    assert outcome.served is reference
    assert outcome.fallback is not None and "powers of two" in outcome.fallback


def test_bf16_that_passes_is_served_and_reported(tame_network: InpaintingNetwork) -> None:
    inpainter = prepare_inpainter(
        copy.deepcopy(tame_network), TINY, BF16_ON_CPU, requested_precision="auto"
    )
    assert inpainter.precision is Precision.BF16
    assert inpainter.compute is not None
    assert inpainter.compute.precision == "bf16" and inpainter.compute.fallback is None
    assert inpainter.compute.parity is not None and inpainter.compute.parity["passed"]
    image, mask = parity_inputs()
    fp32 = LamaInpainter(copy.deepcopy(tame_network)).inpaint(image, mask)
    assert not np.array_equal(inpainter.inpaint(image, mask), fp32)  # it really ran in bf16


def test_bf16_that_strays_falls_back_to_fp32(tiny_network: InpaintingNetwork) -> None:
    inpainter = prepare_inpainter(
        copy.deepcopy(tiny_network), TINY, BF16_ON_CPU, requested_precision="bf16"
    )
    assert inpainter.precision is Precision.FP32
    report = inpainter.compute
    assert report is not None and report.precision == "fp32" and report.requested == "bf16"
    assert report.fallback is not None and report.fallback.startswith("bf16 failed parity: max Δ")
    assert report.parity is not None and not report.parity["passed"]


class _DtypeProbe:
    def __init__(self) -> None:
        self.seen: dict[str, set[torch.dtype]] = {"fourier": set(), "other": set()}

    def hook(self, kind: str):  # type: ignore[no-untyped-def]
        def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            self.seen[kind].add(output.dtype)

        return record


def test_fourier_units_run_in_fp32_under_autocast(tame_network: InpaintingNetwork) -> None:
    network = copy.deepcopy(tame_network)
    probe = _DtypeProbe()
    for module in network.modules():
        if isinstance(module, FourierUnit):
            module.conv_layer.register_forward_hook(probe.hook("fourier"))
        elif isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            module.register_forward_hook(probe.hook("other"))
    image, mask = parity_inputs()
    LamaInpainter(network, precision=Precision.BF16).inpaint(image, mask)
    assert probe.seen["fourier"] == {torch.float32}
    assert probe.seen["other"] == {torch.bfloat16}


def test_reduced_precision_needs_the_native_network(tiny_torchscript: Path) -> None:
    traced = load_torchscript(tiny_torchscript, torch.device("cpu"))
    with pytest.raises(ValueError, match="TorchScript runs in fp32"):
        LamaInpainter(traced, precision=Precision.BF16)
