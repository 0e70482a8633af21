"""`IOPAINT_COMPILE=dynamic`: compiled while the runner starts, never on a request.

torch.compile itself is replaced by a recorder: a real inductor compile of even the tiny
network takes minutes here (the benchmark measures the real one). What is tested is ours:
the warm-up sizes compile, requests run under the stance that forbids compiling, and a
compile that fails leaves the eager network serving.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
import torch._dynamo.eval_frame as dynamo_frame
from torch import Tensor, nn

from runners.devices import ComputePlan, Hardware, Precision, PrecisionPlan
from runners.lama.configs import TINY
from runners.lama.network import InpaintingNetwork
from runners.lama.prepare import COMPILE_WARM_UP_SIZES, prepare_inpainter
from tests.runners.images import rectangle_mask, textured_image

FP32_ON_CPU = ComputePlan("cpu", PrecisionPlan(Precision.FP32, "test"), 1, Hardware())


class RecordingGraph(nn.Module):
    """Stands for a compiled graph: runs the network, notes each call's size and stance."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls: list[tuple[tuple[int, int], str]] = []

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        self.calls.append(((image.shape[2], image.shape[3]), dynamo_frame._stance.stance))
        return self.inner(image, mask)


def test_warm_up_compiles_and_requests_never_do(
    tiny_network: InpaintingNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs: list[RecordingGraph] = []

    def fake_compile(module: nn.Module, **options: Any) -> RecordingGraph:
        assert options == {"dynamic": True}
        graphs.append(RecordingGraph(module))
        return graphs[-1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    inpainter = prepare_inpainter(
        copy.deepcopy(tiny_network),
        TINY,
        FP32_ON_CPU,
        requested_precision="fp32",
        compile_mode="dynamic",
    )
    assert inpainter.compute is not None and inpainter.compute.compile.startswith("dynamic")
    (graph,) = graphs
    assert graph.calls == [(size, "default") for size in COMPILE_WARM_UP_SIZES]
    image, mask = textured_image(40, 56), rectangle_mask(40, 56, 5, 5, 20, 30)
    inpainter.inpaint(image, mask)
    assert graph.calls[-1] == ((40, 56), "eager_on_recompile")


def test_a_failed_compile_serves_the_eager_network(
    tiny_network: InpaintingNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_compile(module: nn.Module, **options: Any) -> nn.Module:
        class Broken(nn.Module):
            def forward(self, image: Tensor, mask: Tensor) -> Tensor:
                raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return Broken()

    monkeypatch.setattr(torch, "compile", failing_compile)
    inpainter = prepare_inpainter(
        copy.deepcopy(tiny_network),
        TINY,
        FP32_ON_CPU,
        requested_precision="fp32",
        compile_mode="dynamic",
    )
    assert inpainter.compute is not None
    assert inpainter.compute.compile.startswith("off (compile failed: RuntimeError")
    assert isinstance(inpainter.network, InpaintingNetwork)
    image, mask = textured_image(40, 56), rectangle_mask(40, 56, 5, 5, 20, 30)
    assert inpainter.inpaint(image, mask).shape == image.shape
    assert np.array_equal(inpainter.inpaint(image, mask)[mask == 0], image[mask == 0])
