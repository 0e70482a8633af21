"""Health tells load balancers to wait while the runner warms up, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import numpy as np

from api.app import create_app
from runners.model_info import ModelInfo
from settings import Settings


class GatedRunner:
    """A runner whose warm-up lasts until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return image

    async def model_info(self) -> ModelInfo:
        return ModelInfo(model="lama", device="cpu", gpu_available=False)

    async def warm_up(self) -> None:
        await self.gate.wait()


def serve(runner: GatedRunner, scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """Run `scenario` against the app, its lifespan (and so the warm-up) started."""
    app = create_app(runner, accounts=None, settings=Settings())  # type: ignore[arg-type]

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                await scenario(client)

    asyncio.run(main())


async def health_after_warm_up(client: httpx.AsyncClient) -> httpx.Response:
    await asyncio.sleep(0.05)  # the warm-up task ends on the loop's next turns
    return await client.get("/api/v1/health")


def test_health_is_503_while_warming_up_then_healthy() -> None:
    runner = GatedRunner()

    async def scenario(client: httpx.AsyncClient) -> None:
        warming = await client.get("/api/v1/health")
        assert warming.status_code == 503
        assert warming.json() == {
            "status": "unhealthy",
            "model": "lama",
            "device": "cpu",
            "gpu_available": False,
            "detail": "Warming up the model runner",
        }
        runner.gate.set()
        warm = await health_after_warm_up(client)
        assert (warm.status_code, warm.json()["status"]) == (200, "healthy")

    serve(runner, scenario)
