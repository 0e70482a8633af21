"""The model client: the warm-up's tiny calls that train BentoML's batching before traffic,
and the in-process client the fast test tier uses."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pytest
from bentoml._internal.marshal.dispatcher import CorkDispatcher

from api.model_client import DISPATCHER_TRAINING_CALLS, InProcessModels, ProcessingFailed, _warm_up
from runners.model_info import ModelInfo
from runners.opencv_inpainter import OpenCVInpainter


class CountingRunner:
    def __init__(self, fail_on_call: int | None = None) -> None:
        self.jobs: list[tuple[np.ndarray, np.ndarray]] = []
        self.fail_on_call = fail_on_call

    async def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.jobs.append((image, mask))
        if len(self.jobs) == self.fail_on_call:
            raise RuntimeError("runner exploded")
        return image

    async def model_info(self) -> ModelInfo:
        return ModelInfo(model="fake", device="cpu", gpu_available=False)

    async def warm_up(self) -> None:
        await _warm_up(self, calls=DISPATCHER_TRAINING_CALLS)


def test_warm_up_sends_tiny_jobs_that_make_the_model_work() -> None:
    runner = CountingRunner()
    asyncio.run(runner.warm_up())
    assert len(runner.jobs) == DISPATCHER_TRAINING_CALLS
    image, mask = runner.jobs[0]
    assert image.shape[:2] == mask.shape and max(mask.shape) <= 32
    assert mask.any(), "an empty mask would let a model skip its work"


def test_a_failed_warm_up_stops_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    runner = CountingRunner(fail_on_call=3)
    with caplog.at_level(logging.WARNING, logger="api.model_client"):
        asyncio.run(runner.warm_up())
    assert len(runner.jobs) == 3
    stopped = f"Runner warm-up stopped after 2 of {DISPATCHER_TRAINING_CALLS} calls"
    assert f"{stopped}: runner exploded" in caplog.text


class CountingInpainter(OpenCVInpainter):
    def __init__(self) -> None:
        super().__init__()
        self.masks: list[np.ndarray] = []

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.masks.append(mask)
        return super().inpaint(image, mask)


def test_in_process_warm_up_runs_the_real_model_once(caplog: pytest.LogCaptureFixture) -> None:
    inpainter = CountingInpainter()
    with caplog.at_level(logging.INFO, logger="api.model_client"):
        asyncio.run(InProcessModels(inpainter).warm_up())
    assert len(inpainter.masks) == 1 and inpainter.masks[0].any()
    assert "Runner warmed up: 1 calls" in caplog.text


def test_in_process_model_failures_are_the_apis_500() -> None:
    class Broken(OpenCVInpainter):
        def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
            raise RuntimeError("CUDA out of memory")

    image, mask = np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 255, np.uint8)
    with pytest.raises(ProcessingFailed, match=r"^Processing failed: CUDA out of memory$"):
        asyncio.run(InProcessModels(Broken()).inpaint(image, mask))


def test_the_warm_up_covers_all_of_bentomls_dispatcher_training(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Against BentoML's own dispatcher: after the warm-up's calls its training is over,
    and a call is no longer held back waiting for a batch partner."""
    compute_s = 0.02

    async def model(batch: tuple[int, ...]) -> list[int]:
        await asyncio.sleep(compute_s)
        return list(batch)

    async def scenario() -> float:
        dispatcher = CorkDispatcher(600_000, 2, fallback=lambda: -1, get_batch_size=lambda _: 1)
        call = dispatcher(model)
        for index in range(DISPATCHER_TRAINING_CALLS):
            assert await call(index) == index
        started = time.perf_counter()
        await call(-2)
        took = time.perf_counter() - started
        dispatcher.shutdown()
        return took

    with caplog.at_level(logging.DEBUG, logger="bentoml._internal.marshal.dispatcher"):
        after_training = asyncio.run(scenario())
    assert "Dispatcher optimizer training complete." in caplog.text, (
        "BentoML's dispatcher trains on more calls than DISPATCHER_TRAINING_CALLS"
    )
    assert after_training < compute_s * 5, after_training
