"""The model runner: a BentoML service that owns the model and batches requests adaptively.

It runs in its own process, so model work never blocks the HTTP event loop; the HTTP
service reaches it through `bentoml.depends` (`api.model_client.RunnerClient` on the other
side). Nothing here knows HTTP: failures are plain exceptions, which the HTTP side maps
onto the API's errors.
"""

from __future__ import annotations

import logging
from typing import Any

import bentoml
import numpy as np
from bentoml.models import BentoModel

from runners.batch import detect_items, inpaint_items
from runners.deblend_calls import deblend_call, estimate_call
from runners.devices import default_max_batch_size, gpu_available
from runners.lama.store import MODEL_NAME
from runners.loading import load_detector_for, load_inpainter
from runners.model_info import model_info
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
    name="model-runner",
    workers=1,
    traffic={"timeout": _settings.deadlines.runner_traffic_s},
    # BentoML's client for this service replaces its connection pool every `max_requests`
    # calls or `max_age` seconds (defaults 100 and 300) and closes the old pool with calls
    # still in flight on it, which fail. One runner per replica gains nothing from
    # rotating connections, so rotate rarely.
    runner_connection={"max_requests": 1_000_000, "max_age": 86_400.0},
    # Its callers are the HTTP workers, whose own access lines already show every request;
    # the runner's would double them, and add the warm-up's and every health probe's.
    logging={"access": {"enabled": _settings.log_level == "debug"}},
)
class ModelRunner:
    lama_model = _imported_lama()

    def __init__(self) -> None:
        settings = get_settings()
        self.inpainter = load_inpainter(settings)
        self.detector = load_detector_for(settings)
        self.gpu_available = gpu_available()
        logger.info(
            "Model runner ready: %s on %s, detector %s",
            self.inpainter.name,
            self.inpainter.device,
            self.detector.name if self.detector else "off",
        )

    @bentoml.api(
        batchable=True,
        max_batch_size=_settings.max_batch_size or default_max_batch_size(_settings),
        max_latency_ms=_settings.deadlines.batch_budget_ms,
    )
    def inpaint(self, items: list[np.ndarray]) -> list[np.ndarray]:
        """Each item is an ``(H, W, 4)`` uint8 array: RGB + gray mask (`runners.batch`)."""
        return inpaint_items(self.inpainter, items)

    @bentoml.api(
        batchable=True,
        max_batch_size=_settings.max_batch_size or default_max_batch_size(_settings),
        max_latency_ms=_settings.deadlines.batch_budget_ms,
    )
    def detect(self, images: list[np.ndarray]) -> list[dict[str, Any]]:
        """Each image is ``(H, W, 3)`` uint8 RGB; each answer a packed `Detection`."""
        if self.detector is None:
            raise RuntimeError("watermark detection is off on this runner (IOPAINT_DETECTION)")
        return detect_items(self.detector, images)

    @bentoml.api
    def deblend(
        self,
        image: np.ndarray,
        template: np.ndarray,
        mask: np.ndarray,
        chroma: list[int],
        seen_at: list[int],
        estimated: bool = False,
    ) -> dict[str, Any]:
        """Invert a semi-transparent mark's blend (`runners.deblend_calls.deblend_call`):
        ``template`` an RGBA profile or empty (the image's own repeats), ``mask`` empty or
        ``(H, W)``, ``chroma`` the upload's chroma grid (`pack_chroma`), ``seen_at`` where an
        estimated profile was seen in images of this size, or empty, ``estimated`` whether
        the profile was estimated from photos; what de-blending cannot recover is inpainted
        with this runner's model."""
        return deblend_call(self.inpainter, image, template, mask, chroma, seen_at, estimated)

    @bentoml.api
    def estimate_template(self, images: list[np.ndarray]) -> dict[str, Any]:
        """One RGBA template from images that carry the same mark (`estimate_call`)."""
        return estimate_call(images)

    @bentoml.api
    async def model_info(self) -> dict[str, object]:
        # async: answered on the event loop even while a model call holds a worker thread.
        info = model_info(self.inpainter, gpu_available=self.gpu_available, detector=self.detector)
        return info.to_dict()
