"""Choosing and loading the inpainter the runner serves, from settings."""

from __future__ import annotations

import logging

from runners.inpainter import Inpainter
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings

logger = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message tells the operator what to do."""


NO_WEIGHTS_MESSAGE = (
    "LaMa weights not found. Provide them with IOPAINT_LAMA_WEIGHTS=/path/to/big-lama.pt "
    "or `iopaint-api models import FILE`."
)


def load_inpainter(settings: Settings) -> Inpainter:
    """The inpainter for `settings.model`; `auto` falls back to OpenCV with one warning."""
    if settings.model == "opencv":
        return OpenCVInpainter()
    if settings.model == "lama":
        raise ModelUnavailable(NO_WEIGHTS_MESSAGE)
    logger.warning("Serving the OpenCV inpainter, not LaMa. %s", NO_WEIGHTS_MESSAGE)
    return OpenCVInpainter()


def gpu_available() -> bool:
    """Whether torch sees a CUDA device (False when torch is not importable)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def default_max_batch_size(settings: Settings) -> int:
    """Batching pays on a GPU; on CPU a batch of 4 costs 1.33x per image, so barely batch.

    BentoML's smallest allowed batch is 2; on CPU the inpainter runs the items of a
    batch one after the other, so a batch of 2 costs what two requests cost.
    """
    if settings.device != "cpu" and gpu_available():
        return 8
    return 2
