"""The watermark-removal service: what runs, in which order, behind which routes.

    bentoml serve            # this file; port 8080, settings from IOPAINT_* variables

- `ModelRunner` (runners/model_runner.py): the model, in its own process, adaptive batching.
- `WatermarkRemoval` (below): the v1 HTTP API (api/app.py) mounted on BentoML, reaching
  the model through `bentoml.depends`.
- Middleware (api/stack.py), outermost first: request ids, the error envelope, accounts
  (keys, limits and usage, as each route's declared policy says).
- Jobs (jobs/): every HTTP worker process also runs queued jobs through the same runner,
  started and stopped with the API app's lifespan (api/app.py).
"""

from __future__ import annotations

import logging

import bentoml

from api.allocator import limit_heap_fragmentation
from api.app import create_app
from api.model_client import RunnerClient
from api.stack import middleware_stack
from auth.accounts import open_accounts
from auth.backends import store_location
from runners.model_runner import ModelRunner
from settings import get_settings

settings = get_settings()
limit_heap_fragmentation()  # runs in every worker process, which each import this file
for package in ("api", "auth", "jobs", "runners"):
    logging.getLogger(package).setLevel(settings.log_level.upper())
accounts = open_accounts(settings)
api_app = create_app(
    models=RunnerClient(
        lambda: bentoml.get_current_service().model_runner,
        call_timeout_s=settings.deadlines.model_call_s,
    ),
    accounts=accounts,
    settings=settings,
)


@bentoml.service(
    name="watermark-removal",
    http={"port": settings.port},
    workers=settings.http_workers,
    traffic={"timeout": settings.deadlines.http_traffic_s},
)
@bentoml.asgi_app(api_app, path="/")
class WatermarkRemoval:
    model_runner = bentoml.depends(ModelRunner)

    def __init__(self) -> None:
        # Says where keys are looked up, so a key made by the CLI against another store
        # (another IOPAINT_DATA_DIR or Redis) is found out at once, not by a 401.
        logging.getLogger("api").info("Accounts: %s", store_location(settings))

    @bentoml.on_shutdown
    async def close_accounts(self) -> None:
        # Flushes usage counted while the store was unreachable, so none is lost on stop.
        await accounts.aclose()


for middleware, options in middleware_stack(accounts, api_app.routes):
    WatermarkRemoval.add_asgi_middleware(middleware, **options)
