"""What the model process serves, as `/api/v1/health` and the `X-Model` header report it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runners.inpainter import Inpainter


@dataclass(frozen=True)
class ModelInfo:
    model: str
    """The inpainter that really runs: ``lama`` or ``opencv``."""
    device: str
    """``cpu`` or ``cuda``."""
    gpu_available: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_info(inpainter: Inpainter, *, gpu_available: bool) -> ModelInfo:
    return ModelInfo(model=inpainter.name, device=inpainter.device, gpu_available=gpu_available)
