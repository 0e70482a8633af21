"""The v1 HTTP routes, as a Starlette app the BentoML service mounts.

Each handler declares its route and policy beside it (`api.routing`); the contract is
`docs/openapi.yaml`. The accounts middleware authenticates, limits and counts from those
declarations before a handler runs, so handlers find the caller in `request.state.account`.
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

from api.accounts_middleware import PROCESSING_SECONDS
from api.images import decode_image, decode_mask, encode_png
from api.middleware import request_id_of
from api.model_client import ModelClient
from api.openapi import load_contract
from api.routing import AUTHENTICATED, PUBLIC, Policy, PolicyTable, route, routes_of
from api.uploads import read_upload
from errors import BadRequest, NotFound, ServiceError, ServiceUnavailable, error_response
from runners.model_info import ModelInfo
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

    def __init__(self, models: ModelClient, accounts: AccountStats, settings: Settings) -> None:
        self.models = models
        self.accounts = accounts
        self.settings = settings
        self.last_info: ModelInfo | None = None
        self.pending = 0
        self.warm_up: asyncio.Task[None] | None = None
        """The runner's warm-up (started with the app); health is 503 until it ends."""

    @route("POST", "/api/v1/remove-watermark", Policy(cost=1))
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
        info = await self._model_info()
        if mask.any():
            result = await self.models.inpaint(image.rgb, mask)
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
            info.model,
            elapsed,
        )
        setattr(request.state, PROCESSING_SECONDS, elapsed)
        return Response(
            png,
            media_type="image/png",
            headers={
                "X-Processing-Time": f"{elapsed:.3f}",
                "X-Image-Size": f"{width}x{height}",
                "X-Model": info.model,
            },
        )

    @route("GET", "/api/v1/health", PUBLIC)
    async def health(self, request: Request) -> JSONResponse:
        try:
            info = await self.models.model_info()
        except ServiceError as exc:
            return self._unhealthy(exc.detail)
        self.last_info = info
        if self.warm_up is not None and not self.warm_up.done():
            # Ready for traffic only once warm: load balancers hold requests off until then.
            return self._unhealthy("Warming up the model runner")
        return JSONResponse({"status": "healthy", **info.to_dict()})

    def _unhealthy(self, detail: str) -> JSONResponse:
        known = self.last_info
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

    @route("GET", "/api/v1/stats", AUTHENTICATED)
    async def stats(self, request: Request) -> JSONResponse:
        if not self.settings.stats_enabled:
            raise NotFound("Metrics disabled")
        # The accounts middleware authenticated the caller before this route runs.
        return JSONResponse(await self.accounts.stats(request.state.account))

    @route("GET", "/api/v1/openapi.json", PUBLIC)
    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(load_contract())

    async def _model_info(self) -> ModelInfo:
        """The runner's model, asked once: it is fixed for the life of the runner."""
        if self.last_info is None:
            self.last_info = await self.models.model_info()
        return self.last_info


def create_app(models: ModelClient, accounts: AccountStats, settings: Settings) -> Starlette:
    api = WatermarkApi(models, accounts, settings)
    routes = routes_of(api)
    PolicyTable(routes)  # refuses, at start-up, a route that declares no policy

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # In the background: the runner may still be loading its model, and health and
        # requests are answered meanwhile.
        api.warm_up = asyncio.create_task(models.warm_up())
        yield
        api.warm_up.cancel()

    return Starlette(
        routes=routes,
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=lifespan,
    )


async def _service_error(request: Request, exc: ServiceError) -> Response:
    return exc.to_response()


async def _http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail
    if exc.status_code == 404:
        detail = f"No route {request.url.path}"
    elif exc.status_code == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, detail, headers=exc.headers)
