"""Device, precision, threads and batch size follow the settings and the hardware."""

from __future__ import annotations

import pytest
import torch

from runners.devices import (
    DeviceUnavailable,
    choose_device,
    default_max_batch_size,
    plan_compute,
)
from settings import Settings


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("cuda", True, "cuda")],
)
def test_device_choice(
    monkeypatch: pytest.MonkeyPatch, requested: str, cuda: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert choose_device(requested) == expected  # type: ignore[arg-type]


def test_cuda_requested_without_a_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailable, match="IOPAINT_DEVICE=cuda"):
        choose_device("cuda")


@pytest.mark.parametrize(("cuda", "half"), [(True, True), (False, False)])
def test_half_precision_only_on_cuda(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, half: bool
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert plan_compute(Settings(device="auto")).half_precision is half


def test_cpu_threads_are_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    try:
        assert plan_compute(Settings(device="cpu", cpu_threads=1)).cpu_threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("device", "cuda", "expected"), [("auto", True, 8), ("auto", False, 2), ("cpu", True, 2)]
)
def test_default_batch_size(
    monkeypatch: pytest.MonkeyPatch, device: str, cuda: bool, expected: int
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_max_batch_size(Settings(device=device)) == expected  # type: ignore[arg-type]
