"""How the HTTP side talks to the model: one small protocol, two implementations.

`RunnerClient` calls the `ModelRunner` BentoML service (another process, adaptive
batching); `InProcessModels` calls an `Inpainter` and a `Detector` directly (the
in-process test tier, tools). Both return the final composited pixels and the detector's
`Detection`, and both report failures as the API's errors (`ModelUnreachable` 503,
`ProcessingFailed` 500), so the routes never need to know which one they have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import aiohttp
import httpx
import numpy as np
from bentoml.exceptions import ServiceUnavailable as BentoUnavailable

from errors import ServiceError, ServiceUnavailable, UnprocessableEntity
from runners.batch import detect_items, inpaint_items, pack_item, unpack_detection
from runners.deblend import Deblended
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.deblend_calls import (
    EstimatedMark,
    deblend_call,
    estimate_call,
    optional_mask,
    optional_template,
    pack_chroma,
    pack_seen_at,
    unpack_deblended,
    unpack_estimate,
)
from runners.detection.detector import Detection, Detector
from runners.inpainter import Inpainter
from runners.model_info import ModelInfo, model_info


class ModelUnreachable(ServiceUnavailable):
    """The runner did not answer: starting, crashed, or overloaded."""


class ProcessingFailed(ServiceError):
    """The model raised while processing a request (500)."""


class DeblendRefused(UnprocessableEntity):
    """De-blending found nothing it could do with this input (`runners.deblend.DeblendError`
    on the model side): no mark to invert, too few repeats, images that do not fit (422).
    Callers with a fallback (plain inpainting) catch it."""


logger = logging.getLogger(__name__)

_STALE_CONNECTION_WINDOW_S = 0.5
DISPATCHER_TRAINING_CALLS = 12
"""Calls BentoML's batching dispatcher spends learning the model's latency (11 in 1.4).

In that phase it holds some calls back waiting for a batch partner, which the first users'
requests would pay (docs/testing.md, "Measured choices"). `RunnerClient.warm_up` spends
the phase on tiny calls instead.
"""
_WARM_UP_SIDE = 16
_TRANSPORT_ERRORS = (ConnectionError, httpx.TransportError, aiohttp.ClientConnectionError)


class ModelClient(Protocol):
    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB + ``(H, W)`` uint8 gray mask -> composited RGB."""
        ...

    async def detect(self, image: np.ndarray) -> Detection:
        """``(H, W, 3)`` uint8 RGB -> the watermarks found and their mask."""
        ...

    async def deblend(
        self,
        image: np.ndarray,
        template: np.ndarray | None,
        mask: np.ndarray | None,
        chroma: ChromaGrid = FULL_CHROMA,
        seen_at: tuple[int, int] | None = None,
        estimated: bool = False,
    ) -> Deblended:
        """Invert the blend of a mark: ``template`` ``(h, w, 4)`` uint8 RGBA (None: estimated
        from the image's own repeats), ``mask`` ``(H, W)`` uint8 or None, ``chroma`` where the
        upload kept its colour samples, ``seen_at`` (row, col) where an estimated template's
        box lay in photos of this size, ``estimated`` whether the template was estimated from
        photos rather than supplied; `DeblendRefused`."""
        ...

    async def estimate_template(self, images: list[np.ndarray]) -> EstimatedMark:
        """Same-size RGB images carrying one mark -> its template and where it lies in them;
        `DeblendRefused` when no mark can be estimated from them."""
        ...

    async def model_info(self) -> ModelInfo: ...

    async def warm_up(self) -> None:
        """Make the first requests as fast as later ones; errors are logged, not raised."""
        ...


class InProcessModels:
    """Runs an `Inpainter` (and a `Detector`, if given) in worker threads of this process."""

    def __init__(
        self,
        inpainter: Inpainter,
        *,
        detector: Detector | None = None,
        gpu_available: bool = False,
    ) -> None:
        self.inpainter = inpainter
        self.detector = detector
        self.gpu_available = gpu_available

    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with _model_errors():
            results = await asyncio.to_thread(
                inpaint_items, self.inpainter, [pack_item(image, mask)]
            )
        return results[0]

    async def detect(self, image: np.ndarray) -> Detection:
        with _model_errors():
            if self.detector is None:
                raise RuntimeError("watermark detection is off")
            results = await asyncio.to_thread(detect_items, self.detector, [image])
        return unpack_detection(results[0])

    async def deblend(
        self,
        image: np.ndarray,
        template: np.ndarray | None,
        mask: np.ndarray | None,
        chroma: ChromaGrid = FULL_CHROMA,
        seen_at: tuple[int, int] | None = None,
        estimated: bool = False,
    ) -> Deblended:
        with _model_errors():
            answer = await asyncio.to_thread(
                deblend_call,
                self.inpainter,
                image,
                optional_template(template),
                optional_mask(mask),
                pack_chroma(chroma),
                pack_seen_at(seen_at),
                estimated,
            )
            return _deblended(answer)

    async def estimate_template(self, images: list[np.ndarray]) -> EstimatedMark:
        with _model_errors():
            answer = await asyncio.to_thread(estimate_call, images)
            return _estimated(answer)

    async def warm_up(self) -> None:
        # No dispatcher to train here; one tiny call pays the model's lazy initialisation.
        await _warm_up(self, calls=1)

    async def model_info(self) -> ModelInfo:
        return model_info(self.inpainter, gpu_available=self.gpu_available, detector=self.detector)


class RunnerClient:
    """Calls the `ModelRunner` service through the handle BentoML's `depends` gives."""

    def __init__(
        self,
        handle: Callable[[], Any],
        *,
        call_timeout_s: float,
        info_timeout_s: float = 2.0,
    ) -> None:
        self._handle = handle
        self._call_timeout_s = call_timeout_s
        self._info_timeout_s = info_timeout_s

    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        item = pack_item(image, mask)
        with _model_errors():
            results = await asyncio.wait_for(
                _once_more_on_dropped_connection(lambda: self._handle().to_async.inpaint([item])),
                self._call_timeout_s,
            )
        return np.asarray(results[0], dtype=np.uint8)

    async def detect(self, image: np.ndarray) -> Detection:
        with _model_errors():
            results = await asyncio.wait_for(
                _once_more_on_dropped_connection(lambda: self._handle().to_async.detect([image])),
                self._call_timeout_s,
            )
            return unpack_detection(results[0])

    async def deblend(
        self,
        image: np.ndarray,
        template: np.ndarray | None,
        mask: np.ndarray | None,
        chroma: ChromaGrid = FULL_CHROMA,
        seen_at: tuple[int, int] | None = None,
        estimated: bool = False,
    ) -> Deblended:
        with _model_errors():
            answer = await asyncio.wait_for(
                _once_more_on_dropped_connection(
                    lambda: self._handle().to_async.deblend(
                        image=image,
                        template=optional_template(template),
                        mask=optional_mask(mask),
                        chroma=pack_chroma(chroma),
                        seen_at=pack_seen_at(seen_at),
                        estimated=estimated,
                    )
                ),
                self._call_timeout_s,
            )
            return _deblended(answer)

    async def estimate_template(self, images: list[np.ndarray]) -> EstimatedMark:
        with _model_errors():
            answer = await asyncio.wait_for(
                _once_more_on_dropped_connection(
                    lambda: self._handle().to_async.estimate_template(images=images)
                ),
                self._call_timeout_s,
            )
            return _estimated(answer)

    async def warm_up(self) -> None:
        await _warm_up(self, calls=DISPATCHER_TRAINING_CALLS)

    async def model_info(self) -> ModelInfo:
        with _model_errors():
            info = await asyncio.wait_for(
                _once_more_on_dropped_connection(lambda: self._handle().to_async.model_info()),
                self._info_timeout_s,
            )
        return ModelInfo(**info)


def _deblended(answer: dict[str, Any]) -> Deblended:
    unpacked = unpack_deblended(answer)
    if isinstance(unpacked, str):
        raise DeblendRefused(f"The watermark could not be de-blended: {unpacked}")
    return unpacked


def _estimated(answer: dict[str, Any]) -> EstimatedMark:
    unpacked = unpack_estimate(answer)
    if isinstance(unpacked, str):
        raise DeblendRefused(f"No watermark could be estimated from these images: {unpacked}")
    return unpacked


async def _warm_up(models: ModelClient, *, calls: int) -> None:
    """Send `calls` tiny jobs one after another to each batched model (the inpainter, then
    the detector when there is one); a failure is logged and ends the warm-up.

    The service serves regardless: without a warm-up the first requests are slower, no
    more.
    """
    image = np.zeros((_WARM_UP_SIDE, _WARM_UP_SIDE, 3), dtype=np.uint8)
    mask = np.zeros((_WARM_UP_SIDE, _WARM_UP_SIDE), dtype=np.uint8)
    mask[4:8, 4:12] = 255  # pixels to fill, so the model really runs
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("Runner", lambda: models.inpaint(image, mask))
    ]
    try:
        info = await models.model_info()
    except Exception as exc:  # whatever it is, the first real request will report it
        logger.warning("Runner warm-up stopped before its first call: %s", exc)
        return
    if info.detector is not None:
        steps.append(("Detector", lambda: models.detect(image)))
    for name, call in steps:
        started = time.monotonic()
        for done in range(calls):
            try:
                await call()
            except Exception as exc:
                logger.warning(
                    "%s warm-up stopped after %d of %d calls: %s", name, done, calls, exc
                )
                return
        logger.info("%s warmed up: %d calls in %.2f s", name, calls, time.monotonic() - started)


async def _once_more_on_dropped_connection(call: Callable[[], Awaitable[Any]]) -> Any:
    """Send a runner call again if it failed on a stale pooled connection.

    BentoML's client keeps idle connections for 5 s and the runner's server closes them
    after 5 s, so now and then a call goes out on a connection just closed and fails at
    once with "Server disconnected" (about 1 call in 100 under steady load). Such a call
    never reached the runner, and runner calls are pure, so it is sent again. A failure
    after the runner had the call for a while means the runner died on it: that is not
    retried, so one bad input cannot crash the runner twice.
    """
    started = time.monotonic()
    try:
        return await call()
    except Exception as exc:
        if not _is_transport_failure(exc):
            raise
        if time.monotonic() - started > _STALE_CONNECTION_WINDOW_S:
            raise
        logger.info("Runner connection was stale (%s); sending the call again", _short(exc))
        return await call()


@contextmanager
def _model_errors() -> Iterator[None]:
    """Map every failure of a model call onto the service's errors.

    BentoML reports a full batch queue as its ServiceUnavailable; a runner process that
    died mid-request or is still starting shows up as a transport error of the HTTP
    client underneath (httpx or aiohttp). Anything else the runner raised is a
    processing failure of this request.
    """
    try:
        yield
    except ServiceError:
        raise
    except BentoUnavailable as exc:
        raise ModelUnreachable(f"Model is busy, retry later ({_short(exc)})") from exc
    except TimeoutError as exc:
        raise ModelUnreachable("Model did not answer in time, retry later") from exc
    except Exception as exc:
        if _is_transport_failure(exc):
            detail = f"Model runner unavailable, retry later ({_short(exc)})"
            raise ModelUnreachable(detail) from exc
        raise ProcessingFailed(f"Processing failed: {_short(exc)}") from exc


def _is_transport_failure(exc: BaseException) -> bool:
    """The connection to the runner failed, as opposed to the runner failing the call."""
    if isinstance(exc, _TRANSPORT_ERRORS):
        return True
    # aiohttp's response reader raises a bare RuntimeError when its connection is closed
    # under it (as BentoML does when it rotates its connection pool).
    return type(exc) is RuntimeError and str(exc).startswith("Connection closed")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
