"""What the model process serves, as `/api/v1/health` and the `X-Model` header report it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runners.detection.detector import Detector
from runners.devices import ComputeReport
from runners.inpainter import Inpainter


@dataclass(frozen=True)
class ModelInfo:
    model: str
    """The inpainter that really runs: ``lama`` or ``opencv``."""
    device: str
    """``cpu`` or ``cuda``."""
    gpu_available: bool
    detector: dict[str, Any] | None = None
    """``{"name", "device", "models": [{"name", "version", "sha256"}]}``; None when detection
    is off. An extra field of health: the documented ones stay as they are."""
    compute: dict[str, Any] | None = None
    """How the inpainter computes (`runners.devices.ComputeReport`): precision, why, the
    parity check, compile, threads. None for OpenCV, which has no such choices."""

    @property
    def precision(self) -> str | None:
        """``fp32``, ``bf16`` or ``fp16``: what the `X-Precision` header says."""
        return None if self.compute is None else str(self.compute["precision"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_info(
    inpainter: Inpainter, *, gpu_available: bool, detector: Detector | None = None
) -> ModelInfo:
    described = None
    if detector is not None:
        described = {"name": detector.name, "device": detector.device, "models": detector.models()}
    compute = getattr(inpainter, "compute", None)
    return ModelInfo(
        model=inpainter.name,
        device=inpainter.device,
        gpu_available=gpu_available,
        detector=described,
        compute=compute.to_dict() if isinstance(compute, ComputeReport) else None,
    )
