"""`AsyncIOPaintClient`: the asyncio client, method for method the same as `IOPaintClient`."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, overload

import httpx

from iopaint_sdk import endpoints
from iopaint_sdk.batch import (
    LOCAL_INPUT_ERRORS,
    BatchEntry,
    batch_call,
    complete,
    failed_item,
    plan_batch,
    stops_batch,
    succeeded_item,
)
from iopaint_sdk.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    MISSING_KEY_HINT,
    describe_key,
    resolve_api_key,
    resolve_base_url,
)
from iopaint_sdk.endpoints import DEFAULT_JOB_WAIT_S, JOB_POLL_INITIAL_S, JOB_POLL_MAX_S, Call
from iopaint_sdk.errors import (
    IOPaintError,
    JobTimeoutError,
    RateLimitError,
    connection_error,
    error_from_response,
    is_quota_refusal,
)
from iopaint_sdk.inputs import ImageInput, OutputTarget, to_upload, write_output
from iopaint_sdk.pacing import Pacer, RateLimitSnapshot, Ticket
from iopaint_sdk.progress import ProgressBar
from iopaint_sdk.results import (
    Batch,
    BatchItem,
    Detection,
    Health,
    ImageResult,
    Job,
    Stats,
    WatermarkProfile,
    image_result,
)
from iopaint_sdk.retry import RetryPolicy
from iopaint_sdk.version import USER_AGENT

if TYPE_CHECKING:
    from PIL import Image


class AsyncIOPaintClient:
    """Asyncio client of the IOPaint API; see `IOPaintClient` for every argument.

    Use one per event loop (``async with AsyncIOPaintClient() as client: ...``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._api_key = resolve_api_key(api_key)
        self.base_url = resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._pacer = Pacer()
        self._pacer_changed = asyncio.Condition()
        self._pace_queue: deque[object] = deque()
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.jobs = AsyncJobs(self)
        self.watermarks = AsyncWatermarks(self)
        self.batches = AsyncBatches(self)

    def __repr__(self) -> str:
        return (
            f"AsyncIOPaintClient(base_url={self.base_url!r}, api_key={describe_key(self._api_key)})"
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncIOPaintClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @overload
    async def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = ...,
        output: OutputTarget | None = ...,
        *,
        as_pil: Literal[False] = ...,
        watermark: WatermarkProfile | str | None = ...,
    ) -> ImageResult: ...

    @overload
    async def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = ...,
        output: OutputTarget | None = ...,
        *,
        as_pil: Literal[True],
        watermark: WatermarkProfile | str | None = ...,
    ) -> Image.Image: ...

    async def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = None,
        output: OutputTarget | None = None,
        *,
        as_pil: bool = False,
        watermark: WatermarkProfile | str | None = None,
    ) -> ImageResult | Image.Image:
        call = endpoints.remove_watermark(
            to_upload(image, default_name="image"),
            None if mask is None else to_upload(mask, default_name="mask"),
            watermark=_profile_id(watermark),
        )
        return image_result(await self._send(call), output, as_pil)

    async def detect(self, image: ImageInput) -> Detection:
        call = endpoints.detect(to_upload(image, default_name="image"), as_mask=False)
        return Detection.from_response(await self._send(call))

    async def detect_mask(
        self, image: ImageInput, output: OutputTarget | None = None, *, as_pil: bool = False
    ) -> ImageResult | Image.Image:
        call = endpoints.detect(to_upload(image, default_name="image"), as_mask=True)
        return image_result(await self._send(call), output, as_pil)

    async def stats(self) -> Stats:
        return Stats.from_response(await self._send(endpoints.stats()))

    async def health(self) -> Health:
        return Health.from_json((await self._send(endpoints.health())).json())

    async def batch_process(
        self,
        images: Sequence[ImageInput],
        output_dir: str | os.PathLike[str],
        *,
        masks: ImageInput | Sequence[ImageInput] | Mapping[str, ImageInput] | None = None,
        watermark: WatermarkProfile | str | None = None,
        concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[BatchItem]:
        entries = plan_batch(images, output_dir, masks, _profile_id(watermark))
        slots = asyncio.Semaphore(max(1, concurrency or self.max_concurrency))
        bar = ProgressBar(len(entries), enabled=progress)
        results: list[BatchItem | None] = [None] * len(entries)
        stop: list[IOPaintError] = []
        await self._learn_limits()

        def finish(index: int, item: BatchItem) -> None:
            results[index] = item
            bar.advance(item.ok)

        async def send(index: int, entry: BatchEntry, call: Call, ticket: Ticket) -> None:
            try:
                finish(index, await self._batch_result(entry, call, ticket, stop))
            finally:
                slots.release()

        # Turns are taken in order here (a free slot, then the pacer's token), as in
        # IOPaintClient.batch_process; the tasks send.
        tasks: list[asyncio.Task[None]] = []
        try:
            for index, entry in enumerate(entries):
                await slots.acquire()
                prepared = self._batch_call(entry, stop)
                if isinstance(prepared, BatchItem):
                    finish(index, prepared)
                    slots.release()
                    continue
                ticket = await self._take_ticket(prepared.cost or 1, self._deadline(), attempt=1)
                tasks.append(asyncio.create_task(send(index, entry, prepared, ticket)))
            await asyncio.gather(*tasks)
        except BaseException:
            stop.append(IOPaintError("batch interrupted"))
            for task in tasks:
                task.cancel()
            raise
        finally:
            bar.close()
        return complete(results, entries)

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        return self._pacer.snapshot()

    def _batch_call(self, entry: BatchEntry, stop: list[IOPaintError]) -> Call | BatchItem:
        if stop:
            return failed_item(entry, stop[0])
        try:
            return batch_call(entry)
        except LOCAL_INPUT_ERRORS as exc:
            return failed_item(entry, exc)

    async def _batch_result(
        self, entry: BatchEntry, call: Call, ticket: Ticket, stop: list[IOPaintError]
    ) -> BatchItem:
        try:
            response = await self._send(call, ticket=ticket)
            return succeeded_item(entry, image_result(response, entry.output, as_pil=False))
        except IOPaintError as exc:
            if stops_batch(exc):
                stop.append(exc)
            return failed_item(entry, exc)
        except LOCAL_INPUT_ERRORS as exc:
            return failed_item(entry, exc)

    async def _learn_limits(self) -> None:
        if self._pacer.snapshot().limit is not None or not self._api_key:
            return
        # Stats may be disabled or the key refused: then the first image will say so.
        with contextlib.suppress(IOPaintError):
            await self._send(endpoints.stats(observe=True))

    def _deadline(self) -> float:
        return self._clock() + self.retry.max_wait

    async def _send(self, call: Call, *, ticket: Ticket | None = None) -> httpx.Response:
        deadline = self._deadline()
        attempt = 0
        while True:
            attempt += 1
            if call.cost is None:
                ticket = None
            elif attempt > 1 or ticket is None:
                ticket = await self._take_ticket(call.cost, deadline, attempt)
            try:
                response = await self._http.request(
                    call.method,
                    self.base_url + call.path,
                    files=call.files,
                    data=call.data,
                    headers=self._headers(call),
                )
            except httpx.TransportError as exc:
                if ticket is not None:
                    await self._settle(ticket, None)
                delay = self.retry.delay_after_connection_error(attempt) if call.retry else None
                if delay is None or self._clock() + delay > deadline:
                    raise connection_error(
                        exc, f"{call.method} {self.base_url}{call.path}"
                    ) from None
                await self._sleep(delay)
                continue
            if ticket is not None:
                await self._settle(ticket, response)
            if response.is_success or response.status_code in call.accept_statuses:
                return response
            hint = MISSING_KEY_HINT if response.status_code == 401 and not self._api_key else None
            error = error_from_response(response, hint=hint)
            delay = self.retry.delay_after_error(error, attempt) if call.retry else None
            if delay is None or self._clock() + delay > deadline:
                raise error
            if ticket is None or not isinstance(error, RateLimitError):
                await self._sleep(delay)

    async def _take_ticket(self, cost: int, deadline: float, attempt: int) -> Ticket:
        me = object()  # first come, first served, as in IOPaintClient._take_ticket
        async with self._pacer_changed:
            if attempt > 1:
                self._pace_queue.appendleft(me)  # a retry keeps its turn
            else:
                self._pace_queue.append(me)
            try:
                return await self._wait_for_ticket(me, cost, deadline)
            finally:
                self._pace_queue.remove(me)
                self._pacer_changed.notify_all()

    async def _wait_for_ticket(self, me: object, cost: int, deadline: float) -> Ticket:
        while True:
            if self._pace_queue[0] is not me:
                await self._pacer_changed.wait()
                continue
            delay = self._pacer.delay(cost)
            left = deadline - self._clock()
            if delay == 0 or left <= 0 or (delay is not None and delay > left):
                return self._pacer.grant(cost)
            # Woken by a response, or the wait is over: either way, ask the pacer again.
            with contextlib.suppress(asyncio.TimeoutError):  # TimeoutError itself from 3.11
                await asyncio.wait_for(
                    self._pacer_changed.wait(),
                    timeout=min(left, delay) if delay is not None else left,
                )

    async def _settle(self, ticket: Ticket, response: httpx.Response | None) -> None:
        async with self._pacer_changed:
            if response is None:
                self._pacer.abandon(ticket)
            else:
                self._pacer.observe(
                    ticket,
                    response.status_code,
                    response.headers,
                    quota_refusal=is_quota_refusal(response),
                )
            self._pacer_changed.notify_all()

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **call.headers}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        return headers


class AsyncJobs:
    """``await client.jobs.submit/get/wait/result/cancel/delete`` (see `Jobs`)."""

    def __init__(self, client: AsyncIOPaintClient) -> None:
        self._client = client

    async def submit(
        self,
        image: ImageInput,
        mask: ImageInput | None = None,
        *,
        callback_url: str | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
        watermark: WatermarkProfile | str | None = None,
    ) -> Job:
        call = endpoints.submit_job(
            to_upload(image, default_name="image"),
            None if mask is None else to_upload(mask, default_name="mask"),
            callback_url=callback_url,
            wait=wait,
            idempotency_key=idempotency_key,
            watermark=_profile_id(watermark),
        )
        return Job.from_json((await self._client._send(call)).json())

    async def get(self, job: Job | str) -> Job:
        return Job.from_json((await self._client._send(endpoints.job(_id(job)))).json())

    async def wait(self, job: Job | str, *, timeout: float | None = DEFAULT_JOB_WAIT_S) -> Job:
        client = self._client
        current = job if isinstance(job, Job) else await self.get(job)
        deadline = None if timeout is None else client._clock() + timeout
        pause = JOB_POLL_INITIAL_S
        while not current.done:
            if deadline is not None and client._clock() + pause > deadline:
                raise JobTimeoutError(
                    f"job {current.id} still {current.status} after {timeout:g} s"
                )
            await client._sleep(pause)
            pause = min(JOB_POLL_MAX_S, pause * 2)
            current = await self.get(current.id)
        return current

    async def result(
        self, job: Job | str, output: OutputTarget | None = None, *, as_pil: bool = False
    ) -> ImageResult | Image.Image:
        response = await self._client._send(endpoints.job_result(_id(job)))
        return image_result(response, output, as_pil)

    async def cancel(self, job: Job | str) -> Job:
        return Job.from_json((await self._client._send(endpoints.cancel_job(_id(job)))).json())

    async def delete(self, job: Job | str) -> None:
        await self._client._send(endpoints.delete_job(_id(job)))


class AsyncBatches:
    """``await client.batches.submit/get/wait/result`` (see `Batches`)."""

    def __init__(self, client: AsyncIOPaintClient) -> None:
        self._client = client

    async def submit(
        self,
        images: Sequence[ImageInput],
        masks: Sequence[ImageInput] | None = None,
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
        watermark: WatermarkProfile | str | None = None,
    ) -> Batch:
        uploads = [
            to_upload(image, default_name=f"image-{i + 1}") for i, image in enumerate(images)
        ]
        mask_uploads = (
            None
            if masks is None
            else [to_upload(mask, default_name=f"mask-{i + 1}") for i, mask in enumerate(masks)]
        )
        call = endpoints.submit_batch(
            uploads,
            mask_uploads,
            callback_url=callback_url,
            idempotency_key=idempotency_key,
            watermark=_profile_id(watermark),
        )
        return Batch.from_json((await self._client._send(call)).json())

    async def get(self, batch: Batch | str) -> Batch:
        return Batch.from_json((await self._client._send(endpoints.batch(_id(batch)))).json())

    async def wait(
        self, batch: Batch | str, *, timeout: float | None = DEFAULT_JOB_WAIT_S
    ) -> Batch:
        client = self._client
        current = batch if isinstance(batch, Batch) else await self.get(batch)
        deadline = None if timeout is None else client._clock() + timeout
        pause = JOB_POLL_INITIAL_S
        while not current.done:
            if deadline is not None and client._clock() + pause > deadline:
                raise JobTimeoutError(f"batch {current.id} not finished after {timeout:g} s")
            await client._sleep(pause)
            pause = min(JOB_POLL_MAX_S, pause * 2)
            current = await self.get(current.id)
        return current

    async def result(self, batch: Batch | str, output: OutputTarget | None = None) -> bytes:
        content = (await self._client._send(endpoints.batch_result(_id(batch)))).content
        if output is not None:
            write_output(content, output)
        return content


def _id(item: Job | Batch | str) -> str:
    return item if isinstance(item, str) else item.id


class AsyncWatermarks:
    """The key's watermark profiles: ``client.watermarks.create/list/get/png/delete``."""

    def __init__(self, client: AsyncIOPaintClient) -> None:
        self._client = client

    async def create(
        self,
        watermark: ImageInput | None = None,
        *,
        images: Sequence[ImageInput] | None = None,
        name: str | None = None,
    ) -> WatermarkProfile:
        """Keep a profile: `watermark` is the mark as an RGBA PNG (alpha = its opacity), or
        `images` (8 or more, one size) carry the same mark and the server estimates it; the
        estimate costs one request per image."""
        mark = None if watermark is None else to_upload(watermark, default_name="watermark.png")
        uploads = [
            to_upload(image, default_name=f"image-{i + 1}") for i, image in enumerate(images or [])
        ]
        call = endpoints.create_watermark(mark, uploads or None, name=name)
        return WatermarkProfile.from_json((await self._client._send(call)).json())

    async def list(self) -> builtins.list[WatermarkProfile]:
        """The key's profiles, oldest first."""
        body = (await self._client._send(endpoints.list_watermarks())).json()
        return [WatermarkProfile.from_json(item) for item in body["watermarks"]]

    async def get(self, profile: WatermarkProfile | str) -> WatermarkProfile:
        call = endpoints.watermark(_profile_id(profile) or "")
        return WatermarkProfile.from_json((await self._client._send(call)).json())

    async def png(
        self, profile: WatermarkProfile | str, output: OutputTarget | None = None
    ) -> bytes:
        """The profile's RGBA PNG (also written to `output` when given)."""
        call = endpoints.watermark(_profile_id(profile) or "", as_png=True)
        content = (await self._client._send(call)).content
        if output is not None:
            write_output(content, output)
        return content

    async def delete(self, profile: WatermarkProfile | str) -> None:
        await self._client._send(endpoints.delete_watermark(_profile_id(profile) or ""))


def _profile_id(profile: WatermarkProfile | str | None) -> str | None:
    return profile.id if isinstance(profile, WatermarkProfile) else profile
