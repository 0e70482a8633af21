"""The runner: a BentoML service that owns the model and batches requests adaptively.

It runs in its own process, so model work never blocks the HTTP event loop; the HTTP
service reaches it through `bentoml.depends` (see `runners.client.RunnerClient`).
"""

from __future__ import annotations

import logging

import bentoml
import numpy as np
from bentoml.models import BentoModel

from runners.client import describe, run_jobs
from runners.devices import default_max_batch_size, gpu_available
from runners.lama.store import MODEL_NAME
from runners.loading import load_inpainter
from settings import get_settings

logger = logging.getLogger(__name__)
_settings = get_settings()


def _imported_lama() -> BentoModel | None:
    """`lama:latest` once `iopaint-api models import` stored it, else None.

    Declared, BentoML records the model in a Bento at build time and `containerize`
    copies it into the image. Undeclared when absent: BentoML would otherwise look for it
    remotely and fail the build of an image meant to serve OpenCV.
    """
    reference = BentoModel(f"{MODEL_NAME}:latest")
    return reference if reference.stored is not None else None


@bentoml.service(
    name="inpainting",
    workers=1,
    traffic={"timeout": _settings.request_timeout_s + 30},
    # BentoML's client for this service replaces its connection pool every `max_requests`
    # calls or `max_age` seconds (defaults 100 and 300) and closes the old pool with calls
    # still in flight on it, which fail. One runner per replica gains nothing from
    # rotating connections, so rotate rarely.
    runner_connection={"max_requests": 1_000_000, "max_age": 86_400.0},
)
class Inpainting:
    lama_model = _imported_lama()

    def __init__(self) -> None:
        self.inpainter = load_inpainter(get_settings())
        self.gpu_available = gpu_available()
        logger.info("Inpainting ready: %s on %s", self.inpainter.name, self.inpainter.device)

    @bentoml.api(
        batchable=True,
        max_batch_size=_settings.max_batch_size or default_max_batch_size(_settings),
        max_latency_ms=_settings.max_latency_ms,
    )
    def inpaint(self, jobs: list[np.ndarray]) -> list[np.ndarray]:
        """Each job is an ``(H, W, 4)`` uint8 array: RGB + gray mask (`pack_job`)."""
        return run_jobs(self.inpainter, jobs)

    @bentoml.api
    async def describe(self) -> dict[str, object]:
        # async: answered on the event loop even while `inpaint` holds the worker thread.
        return describe(self.inpainter, self.gpu_available).to_dict()
