"""The v1 HTTP routes, as a Starlette app the BentoML service mounts.

Routes (the contract is `docs/openapi.yaml`):

- ``POST /api/v1/remove-watermark``: multipart `image` (+ `mask`) -> PNG
- ``GET  /api/v1/health``: model, device, and whether the runner answers
- ``GET  /api/v1/stats``: the caller's usage (authentication comes from `auth/`)
- ``GET  /api/v1/openapi.json``: the contract itself
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.errors import BadRequest, NotFound, ServiceError, ServiceUnavailable, error_response
from api.images import decode_image, decode_mask, encode_png
from api.middleware import request_id_of
from api.openapi import load_contract
from api.pages import page_routes
from api.uploads import read_upload
from runners.client import InpaintingRunner, ModelStatus
from settings import Settings

logger = logging.getLogger(__name__)

MASK_REQUIRED = (
    "A mask is required: send a 'mask' file (white = remove, black = keep). "
    "Automatic watermark detection is not available yet."
)


class AccountStats(Protocol):
    """Where `GET /api/v1/stats` reads the caller's figures (`auth.accounts.Accounts`)."""

    async def stats(self, account: Any) -> dict[str, Any]: ...


class WatermarkApi:
    """Route handlers, holding what they need instead of reaching for globals."""

    def __init__(
        self, runner: InpaintingRunner, accounts: AccountStats, settings: Settings
    ) -> None:
        self.runner = runner
        self.accounts = accounts
        self.settings = settings
        self.last_status: ModelStatus | None = None
        self.pending = 0
        self.warm_up: asyncio.Task[None] | None = None
        """The runner's warm-up (started with the app); health is 503 until it ends."""

    async def remove_watermark(self, request: Request) -> Response:
        # A bounded queue: past it, clients are told to come back instead of waiting
        # behind minutes of model work (and uploads held in memory stay bounded).
        if self.pending >= self.settings.max_pending_requests:
            raise ServiceUnavailable(
                "Server is at capacity, retry later", headers={"Retry-After": "5"}
            )
        self.pending += 1
        try:
            return await self._remove_watermark(request)
        finally:
            self.pending -= 1

    async def _remove_watermark(self, request: Request) -> Response:
        upload = await read_upload(
            request,
            max_file_mb=self.settings.max_upload_mb,
            body_timeout_s=self.settings.body_timeout_s,
        )
        started = time.perf_counter()
        max_dimension = self.settings.max_dimension
        image = await run_in_threadpool(decode_image, upload.image, max_dimension=max_dimension)
        if upload.mask is None:
            raise BadRequest(MASK_REQUIRED)
        mask = await run_in_threadpool(
            decode_mask, upload.mask, size=image.size, max_dimension=max_dimension
        )
        status = await self._model_status()
        if mask.any():
            result = await self.runner.inpaint(image.rgb, mask)
        else:
            # Nothing to remove: the model would only be asked to keep every pixel.
            result = image.rgb
        png = await run_in_threadpool(encode_png, result, image.alpha, image.icc_profile)
        elapsed = time.perf_counter() - started
        width, height = image.size
        logger.info(
            "remove-watermark request=%s %dx%d mask=%.1f%% model=%s %.3fs",
            request_id_of(request.scope),
            width,
            height,
            100.0 * float((mask > 0).mean()),
            status.model,
            elapsed,
        )
        return Response(
            png,
            media_type="image/png",
            headers={
                "X-Processing-Time": f"{elapsed:.3f}",
                "X-Image-Size": f"{width}x{height}",
                "X-Model": status.model,
            },
        )

    async def health(self, request: Request) -> JSONResponse:
        try:
            status = await self.runner.status()
        except ServiceError as exc:
            return self._unhealthy(exc.detail)
        self.last_status = status
        if self.warm_up is not None and not self.warm_up.done():
            # Ready for traffic only once warm: load balancers hold requests off until then.
            return self._unhealthy("Warming up the model runner")
        return JSONResponse({"status": "healthy", **status.to_dict()})

    def _unhealthy(self, detail: str) -> JSONResponse:
        known = self.last_status
        return JSONResponse(
            {
                "status": "unhealthy",
                "model": known.model if known else self.settings.model,
                "device": known.device if known else "cpu",
                "gpu_available": known.gpu_available if known else False,
                "detail": detail,
            },
            status_code=503,
        )

    async def stats(self, request: Request) -> JSONResponse:
        if not self.settings.stats_enabled:
            raise NotFound("Metrics disabled")
        # The accounts middleware authenticated the caller before this route runs.
        return JSONResponse(await self.accounts.stats(request.state.account))

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(load_contract())

    async def _model_status(self) -> ModelStatus:
        """The runner's model, asked once: it is fixed for the life of the runner."""
        if self.last_status is None:
            self.last_status = await self.runner.status()
        return self.last_status


def create_app(runner: InpaintingRunner, accounts: AccountStats, settings: Settings) -> Starlette:
    api = WatermarkApi(runner, accounts, settings)
    routes = [
        Route("/api/v1/remove-watermark", api.remove_watermark, methods=["POST"]),
        Route("/api/v1/health", api.health, methods=["GET"]),
        Route("/api/v1/stats", api.stats, methods=["GET"]),
        Route("/api/v1/openapi.json", api.openapi, methods=["GET"]),
        *page_routes(),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # In the background: the runner may still be loading its model, and health and
        # requests are answered meanwhile.
        api.warm_up = asyncio.create_task(runner.warm_up())
        yield
        api.warm_up.cancel()

    return Starlette(
        routes=routes,
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=lifespan,
    )


async def _service_error(request: Request, exc: ServiceError) -> Response:
    if exc.status_code >= 500:
        logger.error(
            "%s %s failed (request %s): %s",
            request.method,
            request.url.path,
            request_id_of(request.scope),
            exc.detail,
        )
    return exc.to_response()


async def _http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"No route {request.url.path}"
    elif exc.status_code == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, detail, headers=exc.headers)
