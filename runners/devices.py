"""Where the model computes and how: device, precision, CPU threads, batch size.

The hardware is read once (`probe_hardware`) into a plain record, and every choice is a pure
function of that record and the settings, so the choices can be tested on machines that
are not this one (capabilities injected).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from settings import DeviceChoice, PrecisionChoice, Settings

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")

AMX_BF16_FLAGS = frozenset({"amx_bf16", "amx_tile"})
"""Both must be present: the tile unit and its bf16 instructions (Sapphire Rapids on)."""
AVX512_BF16_FLAG = "avx512_bf16"
"""bf16 dot products in AVX-512 (Cooper Lake, AMD Zen 4 on)."""
NATIVE_FP16_CPU_FLAGS = frozenset({"amx_fp16", "avx512_fp16"})

BF16_GPU_CAPABILITY = (8, 0)
"""Ampere: the first CUDA generation with bf16 tensor cores."""
FP16_GPU_CAPABILITY = (7, 0)
"""Volta: the first with fp16 tensor cores; older GPUs compute fp16 no faster than fp32."""


class DeviceUnavailable(RuntimeError):
    """The configured device does not exist on this machine."""


class PrecisionUnavailable(RuntimeError):
    """The configured precision cannot run on the chosen device."""


class Precision(StrEnum):
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @property
    def reduced(self) -> bool:
        return self is not Precision.FP32

    def torch_dtype(self) -> torch.dtype:
        import torch

        return {
            Precision.FP32: torch.float32,
            Precision.BF16: torch.bfloat16,
            Precision.FP16: torch.float16,
        }[self]


@dataclass(frozen=True)
class CudaDevice:
    name: str
    capability: tuple[int, int]
    bf16: bool
    """Whether torch reports native bf16 support (`torch.cuda.is_bf16_supported`)."""


@dataclass(frozen=True)
class Hardware:
    """What the choices below depend on; `probe_hardware` reads it, tests build it."""

    cpu_flags: frozenset[str] = frozenset()
    """Feature flags of the first CPU in /proc/cpuinfo (``avx512_bf16``, ``amx_bf16``, …)."""
    torch_cpu_capability: str = "unknown"
    """The vector ISA torch's own kernels dispatch to (``AVX2``, ``AVX512``, …)."""
    cuda: CudaDevice | None = None
    """The first CUDA device, when torch sees one."""


def read_cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The ``flags`` of the first processor in `cpuinfo`; empty when it cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def probe_hardware(device: str) -> Hardware:
    """This machine's CPU flags, torch's CPU capability and, on `cuda`, the GPU's."""
    import torch

    cuda = None
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        cuda = CudaDevice(
            name=str(properties.name),
            capability=(int(properties.major), int(properties.minor)),
            bf16=bool(torch.cuda.is_bf16_supported()),
        )
    return Hardware(
        cpu_flags=read_cpu_flags(),
        torch_cpu_capability=str(torch.backends.cpu.get_cpu_capability()),
        cuda=cuda,
    )


@dataclass(frozen=True)
class PrecisionPlan:
    precision: Precision
    reason: str
    """Why: what the hardware offers, or that the setting asked for it."""


def native_bf16_cpu(hardware: Hardware) -> str | None:
    """Which bf16 hardware path the CPU has (``AMX`` or ``AVX512-BF16``), or None."""
    if hardware.cpu_flags >= AMX_BF16_FLAGS:
        return "AMX"
    if AVX512_BF16_FLAG in hardware.cpu_flags:
        return "AVX512-BF16"
    return None


def choose_precision(requested: PrecisionChoice, device: str, hardware: Hardware) -> PrecisionPlan:
    """The precision the LaMa forward runs in, before the start-up parity check.

    `auto` takes a reduced precision only where the hardware computes it natively: bf16 on
    CPUs with AMX or AVX512-BF16 (elsewhere bf16 is emulated and slower than fp32), bf16
    on GPUs that have it (fp32's range, so no overflow in activations fp16 could not
    hold), fp16 on older GPUs with tensor cores, fp32 otherwise. An explicit choice is
    honoured where it can run at all, with a warning when it has no hardware path.
    """
    if device == "cuda":
        return _cuda_precision(requested, hardware.cuda)
    bf16_path = native_bf16_cpu(hardware)
    isa = f"torch CPU capability {hardware.torch_cpu_capability}"
    if requested == "auto":
        if bf16_path is not None:
            return PrecisionPlan(Precision.BF16, f"auto: CPU computes bf16 natively ({bf16_path})")
        return PrecisionPlan(
            Precision.FP32,
            f"auto: CPU without native bf16 (no amx_bf16 or avx512_bf16 flag; {isa})",
        )
    precision = Precision(requested)
    reason = f"IOPAINT_PRECISION={requested}"
    if precision is Precision.BF16 and bf16_path is None:
        logger.warning(
            "IOPAINT_PRECISION=bf16 on a CPU without native bf16: it is emulated, "
            "expect it to be slower than fp32"
        )
        reason += " (emulated: no native bf16 on this CPU)"
    if precision is Precision.FP16 and not NATIVE_FP16_CPU_FLAGS & hardware.cpu_flags:
        logger.warning(
            "IOPAINT_PRECISION=fp16 on a CPU without native fp16 (no amx_fp16 or "
            "avx512_fp16): expect it to be slower than fp32"
        )
        reason += " (emulated: no native fp16 on this CPU)"
    return PrecisionPlan(precision, reason)


def _cuda_precision(requested: PrecisionChoice, gpu: CudaDevice | None) -> PrecisionPlan:
    if gpu is None:
        raise ValueError("CUDA precision needs the GPU's description")
    described = f"{gpu.name}, compute capability {gpu.capability[0]}.{gpu.capability[1]}"
    if requested == "auto":
        if gpu.bf16 and gpu.capability >= BF16_GPU_CAPABILITY:
            return PrecisionPlan(Precision.BF16, f"auto: GPU has bf16 tensor cores ({described})")
        if gpu.capability >= FP16_GPU_CAPABILITY:
            return PrecisionPlan(
                Precision.FP16, f"auto: GPU has fp16 but no bf16 tensor cores ({described})"
            )
        return PrecisionPlan(Precision.FP32, f"auto: GPU has no tensor cores ({described})")
    precision = Precision(requested)
    if precision is Precision.BF16 and not gpu.bf16:
        raise PrecisionUnavailable(f"IOPAINT_PRECISION=bf16, but the GPU has no bf16 ({described})")
    return PrecisionPlan(precision, f"IOPAINT_PRECISION={requested} ({described})")


@dataclass(frozen=True)
class ComputePlan:
    device: str
    """``cpu`` or ``cuda``."""
    precision: PrecisionPlan
    """What the forward should run in, before the parity check has had its say."""
    cpu_threads: int
    """torch's intra-op threads in this process."""
    hardware: Hardware = field(default_factory=Hardware)


@dataclass(frozen=True)
class ComputeReport:
    """How the served model computes, as health's `compute` field reports it."""

    precision: str
    """What runs: ``fp32``, ``bf16`` or ``fp16``."""
    requested: str
    """The `IOPAINT_PRECISION` setting."""
    reason: str
    parity: dict[str, Any] | None = None
    """The start-up check of a reduced precision against fp32; None when none ran."""
    fallback: str | None = None
    """Why the runner fell back to fp32, when it did."""
    compile: str = "off"
    runtime: str = "native"
    """``native`` (our network) or ``torchscript`` (a traced file run as it is)."""
    cpu_threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_available() -> bool:
    """Whether torch sees a CUDA device (False when torch is not importable)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_device(requested: DeviceChoice) -> str:
    """`auto` picks CUDA when torch sees one; an explicit `cuda` without one is an error."""
    if requested == "cpu":
        return "cpu"
    if gpu_available():
        return "cuda"
    if requested == "cuda":
        raise DeviceUnavailable("IOPAINT_DEVICE=cuda, but torch sees no CUDA device")
    return "cpu"


def usable_cores(
    *,
    affinity: int | None = None,
    cpu_max: Path = CGROUP_V2_CPU_MAX,
    v1_quota: Path = CGROUP_V1_QUOTA,
    v1_period: Path = CGROUP_V1_PERIOD,
) -> int:
    """Cores this process may really use: its CPU affinity, capped by a cgroup CPU quota.

    A container limited to 2 CPUs on a 64-core host still sees 64 cores in its affinity;
    threads beyond its quota only queue behind each other.
    """
    cores = affinity if affinity is not None else len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cpu_max, v1_quota, v1_period)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota(cpu_max: Path, v1_quota: Path, v1_period: Path) -> float | None:
    """CPUs' worth of quota from cgroup v2 (``"200000 100000"``) or v1; None when unlimited."""
    try:
        quota, _, period = cpu_max.read_text().strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(v1_quota.read_text().strip())
        period_us = int(v1_period.read_text().strip())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def apply_cpu_threads(settings: Settings) -> int:
    """Set torch's threads in this process; the count applied.

    Intra-op threads: `IOPAINT_CPU_THREADS`, else every usable core. Inter-op threads: one,
    since the eager forward never runs independent ops side by side and each extra pool
    would only hold more idle threads next to the detector's.
    """
    import torch

    threads = settings.cpu_threads or usable_cores()
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        # Settable once per process, before any inter-op work; a second runner setup in
        # the same process (tests, tools) keeps what the first one set.
        logger.debug("torch inter-op threads were already set")
    return torch.get_num_threads()


def plan_compute(settings: Settings, hardware: Hardware | None = None) -> ComputePlan:
    """Choose the device and precision, and apply the CPU thread setting to this process."""
    device = choose_device(settings.device)
    hardware = hardware if hardware is not None else probe_hardware(device)
    precision = choose_precision(settings.precision, device, hardware)
    threads = apply_cpu_threads(settings)
    return ComputePlan(device=device, precision=precision, cpu_threads=threads, hardware=hardware)


def default_max_batch_size(settings: Settings) -> int:
    """8 on a GPU, where a batch shares one launch of every kernel; the minimum on CPU.

    On CPU a stacked forward is slower per image than single ones (docs/testing.md,
    "Measured choices"), so the LaMa inpainter runs a CPU batch
    one image at a time and batching only adds waiting. BentoML refuses a
    `max_batch_size` below 2, so 2 is what "no batching" can be.
    """
    if settings.device != "cpu" and gpu_available():
        return 8
    return 2
