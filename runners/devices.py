"""Where the model computes and how: device, precision, CPU threads, batch size."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from settings import DeviceChoice, Settings

logger = logging.getLogger(__name__)


class DeviceUnavailable(RuntimeError):
    """The configured device does not exist on this machine."""


@dataclass(frozen=True)
class ComputePlan:
    device: str
    """``cpu`` or ``cuda``."""
    half_precision: bool
    """fp16 weights and activations (CUDA only: CPU kernels for fp16 are slower, not faster)."""
    cpu_threads: int
    """torch's intra-op threads in this process."""


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


def plan_compute(settings: Settings) -> ComputePlan:
    """Choose the device and apply the CPU thread setting to this process's torch."""
    import torch

    device = choose_device(settings.device)
    if settings.cpu_threads is not None:
        torch.set_num_threads(settings.cpu_threads)
    return ComputePlan(
        device=device, half_precision=device == "cuda", cpu_threads=torch.get_num_threads()
    )


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
