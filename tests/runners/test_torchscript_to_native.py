"""TorchScript weights move into the native network only when that changes no pixel.

IOPaint's big-lama.pt traces LaMa's training module inside a wrapper, so its tensors are
``model.generator.*``; our exports hold ``generator.*``. Both fit; a file with the same
tensors that computes something else, or tensors of another shape, stays traced.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from runners.devices import ComputePlan, Hardware, Precision, PrecisionPlan
from runners.lama.configs import BIG_LAMA, TINY
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.prepare import choose_network, prepare_inpainter
from runners.lama.weights import load_torchscript
from runners.parity import parity_inputs

CPU = torch.device("cpu")


class TrainingModuleWrapper(nn.Module):
    """The shape of IOPaint's file: the network one attribute down, called (image, mask)."""

    def __init__(self, network: InpaintingNetwork, *, invert_mask: bool = False) -> None:
        super().__init__()
        self.model = network
        self.invert_mask = invert_mask

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.model(image, 1 - mask if self.invert_mask else mask)


def _traced(module: nn.Module, path: Path) -> torch.jit.ScriptModule:
    image, mask = torch.rand(1, 3, 72, 88), torch.ones(1, 1, 72, 88)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated")
        traced = torch.jit.trace(module.eval(), (image, mask), check_trace=False)
    torch.jit.save(traced, str(path))
    return load_torchscript(path, CPU)


def test_our_export_runs_native_with_the_same_pixels(tiny_torchscript: Path) -> None:
    traced = load_torchscript(tiny_torchscript, CPU)
    choice = choose_network(traced, TINY, "cpu")
    assert choice.runtime == "native" and isinstance(choice.network, InpaintingNetwork)
    image, mask = parity_inputs((120, 200), seed=3)
    expected = LamaInpainter(load_torchscript(tiny_torchscript, CPU)).inpaint(image, mask)
    produced = LamaInpainter(choice.network).inpaint(image, mask)
    assert np.abs(expected.astype(int) - produced).max() <= 1


def test_a_file_shaped_like_iopaints_runs_native(
    tiny_network: InpaintingNetwork, tmp_path: Path
) -> None:
    traced = _traced(TrainingModuleWrapper(copy.deepcopy(tiny_network)), tmp_path / "w.pt")
    assert all(key.startswith("model.generator.") for key in traced.state_dict())
    assert choose_network(traced, TINY, "cpu").runtime == "native"


def test_the_same_tensors_computing_something_else_stay_traced(
    tiny_network: InpaintingNetwork, tmp_path: Path
) -> None:
    wrapper = TrainingModuleWrapper(copy.deepcopy(tiny_network), invert_mask=True)
    traced = _traced(wrapper, tmp_path / "inverted.pt")
    choice = choose_network(traced, TINY, "cpu")
    assert choice.runtime == "torchscript" and choice.network is traced
    assert choice.note is not None and "differs" in choice.note


def test_tensors_of_another_architecture_stay_traced(tiny_torchscript: Path) -> None:
    traced = load_torchscript(tiny_torchscript, CPU)
    choice = choose_network(traced, BIG_LAMA, "cpu")
    assert choice.runtime == "torchscript"
    assert choice.note is not None and "do not fit the big-lama architecture" in choice.note


def test_a_traced_file_that_stays_traced_is_served_in_fp32(
    tiny_network: InpaintingNetwork, tmp_path: Path
) -> None:
    wrapper = TrainingModuleWrapper(copy.deepcopy(tiny_network), invert_mask=True)
    traced = _traced(wrapper, tmp_path / "inverted.pt")
    plan = ComputePlan("cpu", PrecisionPlan(Precision.BF16, "test"), 1, Hardware())
    inpainter = prepare_inpainter(traced, TINY, plan, requested_precision="bf16")
    assert inpainter.precision is Precision.FP32
    assert inpainter.compute is not None and inpainter.compute.runtime == "torchscript"
    assert inpainter.compute.fallback is not None
    assert "bf16 needs the native network" in inpainter.compute.fallback


@pytest.mark.parametrize("compile_mode", ["dynamic"])
def test_compile_is_not_tried_on_a_traced_file(
    tiny_network: InpaintingNetwork, tmp_path: Path, compile_mode: str
) -> None:
    wrapper = TrainingModuleWrapper(copy.deepcopy(tiny_network), invert_mask=True)
    traced = _traced(wrapper, tmp_path / "inverted.pt")
    plan = ComputePlan("cpu", PrecisionPlan(Precision.FP32, "test"), 1, Hardware())
    inpainter = prepare_inpainter(
        traced,
        TINY,
        plan,
        requested_precision="fp32",
        compile_mode=compile_mode,  # type: ignore[arg-type]
    )
    assert inpainter.compute is not None
    assert inpainter.compute.compile.startswith("off")
