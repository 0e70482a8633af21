"""The v1 HTTP routes, as a Starlette app the BentoML service mounts.

Each handler declares its route and policy beside it (`api.routing`); the contract is
`docs/openapi.yaml`. The accounts middleware authenticates, limits and counts from those
declarations before a handler runs, so handlers find the caller in `request.state.account`.
The work itself (decoding, the models, encoding) is `api.removal.Remover`'s. The job and
batch routes are `api.job_routes.JobsApi`'s, whose worker runs with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.accounts_middleware import PROCESSING_SECONDS
from api.capacity import UploadSlots
from api.job_routes import JobsApi
from api.job_wiring import JobAccounts
from api.middleware import request_id_of
from api.model_client import ModelClient
from api.openapi import load_contract
from api.output_format import choose_output_format, prefers_png
from api.pages import page_routes
from api.removal import Remover
from api.routing import AUTHENTICATED, PUBLIC, Policy, PolicyTable, route, routes_of
from api.uploads import DETECT_FORM, REMOVAL_FORM, FormSpec, Upload, read_upload
from api.watermark_routes import Profiles, WatermarksApi
from errors import NotFound, ServiceError, error_response
from jobs.store import JobStore
from profiles.backends import open_profile_store
from profiles.store import ProfileStore
from runners.model_info import ModelInfo
from settings import Settings

logger = logging.getLogger(__name__)

PNG = "image/png"


class AccountStats(Protocol):
    """Where `GET /api/v1/stats` reads the caller's figures (`auth.accounts.Accounts`)."""

    async def stats(self, account: Any) -> dict[str, Any]: ...


class ApiAccounts(AccountStats, JobAccounts, Protocol):
    """Everything the routes ask of the accounts facade."""


class WatermarkApi:
    """Route handlers, holding what they need instead of reaching for globals."""

    def __init__(
        self,
        models: ModelClient,
        accounts: AccountStats,
        settings: Settings,
        profiles: Profiles,
        slots: UploadSlots,
    ) -> None:
        self.models = models
        self.accounts = accounts
        self.settings = settings
        self.profiles = profiles
        self.remover = Remover(models, settings)
        self.last_info: ModelInfo | None = None
        self.slots = slots
        self.warm_up: asyncio.Task[None] | None = None
        """The runner's warm-up (started with the app); health is 503 until it ends."""

    @route("POST", "/api/v1/remove-watermark", Policy(cost=1))
    async def remove_watermark(self, request: Request) -> Response:
        async def work(upload: Upload) -> Response:
            output = choose_output_format(request.headers.get("accept"), upload.output_format)
            mark = await self.profiles.mark_for(request.state.account, upload.watermark)
            removal = await self.remover.remove(upload.image, upload.mask, output=output, mark=mark)
            logger.info(
                "remove-watermark request=%s %dx%d mask=%.1f%% (%s) %s model=%s %s %.3fs",
                request_id_of(request.scope),
                removal.width,
                removal.height,
                100.0 * removal.mask_share,
                removal.mask_source,
                removal.removal,
                removal.model,
                output,
                removal.processing_seconds,
            )
            setattr(request.state, PROCESSING_SECONDS, removal.processing_seconds)
            return Response(
                removal.content, media_type=removal.media_type, headers=removal.headers()
            )

        return await self._bounded(request, REMOVAL_FORM, work)

    @route("POST", "/api/v1/detect", Policy(cost=1))
    async def detect(self, request: Request) -> Response:
        async def work(upload: Upload) -> Response:
            found = await self.remover.detect(upload.image)
            logger.info(
                "detect request=%s %dx%d regions=%d coverage=%.1f%% %.3fs",
                request_id_of(request.scope),
                found.width,
                found.height,
                len(found.detection.regions),
                100.0 * found.detection.coverage,
                found.processing_seconds,
            )
            setattr(request.state, PROCESSING_SECONDS, found.processing_seconds)
            if prefers_png(request.headers.get("accept")):
                return Response(found.mask_png(), media_type=PNG, headers=found.headers())
            with_mask = request.query_params.get("include") == "mask"
            return JSONResponse(found.as_json(with_mask=with_mask), headers=found.headers())

        return await self._bounded(request, DETECT_FORM, work)

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

    @route("GET", "/api/v1/stats", AUTHENTICATED)
    async def stats(self, request: Request) -> JSONResponse:
        if not self.settings.stats_enabled:
            raise NotFound("Metrics disabled")
        # The accounts middleware authenticated the caller before this route runs.
        return JSONResponse(await self.accounts.stats(request.state.account))

    @route("GET", "/api/v1/openapi.json", PUBLIC)
    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(load_contract())

    async def _bounded(
        self,
        request: Request,
        form: FormSpec,
        work: Callable[[Upload], Awaitable[Response]],
    ) -> Response:
        """Read the upload and do the work, within the worker's bound on requests held."""
        with self.slots.hold():
            upload = await read_upload(
                request,
                max_file_mb=self.settings.max_upload_mb,
                body_timeout_s=self.settings.body_timeout_s,
                spec=form,
            )
            return await work(upload)

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


def create_app(
    models: ModelClient,
    accounts: ApiAccounts,
    settings: Settings,
    jobs: JobStore | None = None,
    profiles: ProfileStore | None = None,
) -> Starlette:
    """The API app; `jobs` and `profiles` are the job and watermark-profile stores (default:
    the ones the settings choose)."""
    kept = Profiles(profiles if profiles is not None else open_profile_store(settings), settings)
    slots = UploadSlots(settings.max_pending_requests)  # one bound for every upload route
    api = WatermarkApi(models, accounts, settings, kept, slots)
    job_api = JobsApi(api.remover, accounts, settings, kept, slots, store=jobs)
    watermarks = WatermarksApi(models, kept, settings, slots)
    routes = [*routes_of(api), *routes_of(job_api), *routes_of(watermarks), *page_routes()]
    PolicyTable(routes)  # refuses, at start-up, a route that declares no policy

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # In the background: the runner may still be loading its model, and health and
        # requests are answered meanwhile. Jobs start running once it is warm.
        api.warm_up = asyncio.create_task(models.warm_up())
        job_api.start(after=api.warm_up)
        yield
        api.warm_up.cancel()
        await job_api.stop()
        await kept.store.aclose()

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
