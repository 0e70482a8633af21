"""Device, precision, threads and batch size follow the settings and the hardware.

The hardware is injected: these tests decide what `auto` picks on machines that are not
the one running them (an AMX Xeon, an AVX2-only EPYC, GPUs of three generations).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from runners.devices import (
    CudaDevice,
    DeviceUnavailable,
    Hardware,
    Precision,
    PrecisionUnavailable,
    apply_cpu_threads,
    choose_device,
    choose_precision,
    default_max_batch_size,
    plan_compute,
    read_cpu_flags,
    usable_cores,
)
from settings import Settings

AVX2_EPYC = Hardware(frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"}), "AVX2")
AVX512_NO_BF16 = Hardware(frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"}), "AVX512")
ZEN4 = Hardware(frozenset({"avx2", "avx512f", "avx512bw", "avx512_bf16"}), "AVX512")
SAPPHIRE_RAPIDS = Hardware(
    frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}), "AVX512"
)
AMX_TILE_ONLY = Hardware(frozenset({"avx2", "avx512f", "amx_tile", "amx_int8"}), "AVX512")

H100 = CudaDevice("NVIDIA H100", (9, 0), bf16=True)
T4 = CudaDevice("Tesla T4", (7, 5), bf16=False)
P100 = CudaDevice("Tesla P100", (6, 0), bf16=False)


@pytest.mark.parametrize(
    ("hardware", "expected", "why"),
    [
        (SAPPHIRE_RAPIDS, Precision.BF16, "AMX"),
        (ZEN4, Precision.BF16, "AVX512-BF16"),
        (AVX512_NO_BF16, Precision.FP32, "without native bf16"),
        (AVX2_EPYC, Precision.FP32, "without native bf16"),
        (AMX_TILE_ONLY, Precision.FP32, "without native bf16"),
        (Hardware(), Precision.FP32, "without native bf16"),
    ],
)
def test_auto_on_cpu_takes_bf16_only_where_the_cpu_computes_it(
    hardware: Hardware, expected: Precision, why: str
) -> None:
    plan = choose_precision("auto", "cpu", hardware)
    assert plan.precision is expected
    assert why in plan.reason


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [(H100, Precision.BF16), (T4, Precision.FP16), (P100, Precision.FP32)],
)
def test_auto_on_cuda_follows_the_gpu_generation(gpu: CudaDevice, expected: Precision) -> None:
    plan = choose_precision("auto", "cuda", Hardware(cuda=gpu))
    assert plan.precision is expected
    assert gpu.name in plan.reason


def test_an_explicit_precision_is_honoured_with_a_warning_when_emulated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="runners.devices"):
        plan = choose_precision("bf16", "cpu", AVX2_EPYC)
    assert plan.precision is Precision.BF16
    assert "emulated" in plan.reason
    assert "slower than fp32" in caplog.text
    assert choose_precision("fp32", "cpu", SAPPHIRE_RAPIDS).precision is Precision.FP32
    assert choose_precision("fp16", "cuda", Hardware(cuda=H100)).precision is Precision.FP16


def test_bf16_on_a_gpu_without_it_is_refused() -> None:
    with pytest.raises(PrecisionUnavailable, match=r"Tesla T4, compute capability 7\.5"):
        choose_precision("bf16", "cuda", Hardware(cuda=T4))


def test_cpu_flags_are_read_from_the_first_processor(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert read_cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert read_cpu_flags(tmp_path / "missing") == frozenset()


def test_plan_compute_uses_the_hardware_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = torch.get_num_threads()
    try:
        plan = plan_compute(Settings(device="auto", cpu_threads=1), hardware=SAPPHIRE_RAPIDS)
        assert (plan.device, plan.precision.precision) == ("cpu", Precision.BF16)
        plan = plan_compute(Settings(device="cpu", cpu_threads=1), hardware=AVX2_EPYC)
        assert plan.precision.precision is Precision.FP32
    finally:
        torch.set_num_threads(before)


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


def test_cpu_threads_are_applied() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_cpu_threads(Settings(device="cpu", cpu_threads=1)) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_usable_cores_respect_a_cgroup_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    missing = tmp_path / "missing"
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs' worth: two threads can use it
    assert usable_cores(affinity=64, cpu_max=cpu_max, v1_quota=missing, v1_period=missing) == 2
    cpu_max.write_text("max 100000\n")
    assert usable_cores(affinity=64, cpu_max=cpu_max, v1_quota=missing, v1_period=missing) == 64
    quota, period = tmp_path / "quota", tmp_path / "period"
    quota.write_text("300000")
    period.write_text("100000")
    assert usable_cores(affinity=8, cpu_max=missing, v1_quota=quota, v1_period=period) == 3
    quota.write_text("-1")
    assert usable_cores(affinity=8, cpu_max=missing, v1_quota=quota, v1_period=period) == 8
    cpu_max.write_text("400000 100000\n")
    assert usable_cores(affinity=2, cpu_max=cpu_max, v1_quota=missing, v1_period=missing) == 2


@pytest.mark.parametrize(
    ("device", "cuda", "expected"), [("auto", True, 8), ("auto", False, 2), ("cpu", True, 2)]
)
def test_default_batch_size(
    monkeypatch: pytest.MonkeyPatch, device: str, cuda: bool, expected: int
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_max_batch_size(Settings(device=device)) == expected  # type: ignore[arg-type]
