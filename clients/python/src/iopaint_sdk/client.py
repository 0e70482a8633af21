"""`IOPaintClient`: the synchronous client (thread-safe; one per process is enough)."""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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


class IOPaintClient:
    """Client of the IOPaint watermark-removal API.

    ``api_key`` defaults to ``IOPAINT_API_KEY``, ``base_url`` to ``IOPAINT_BASE_URL`` (else
    ``http://localhost:8080``). ``retry`` sets attempts and waits (`RetryPolicy`);
    ``max_concurrency`` bounds `batch_process`. Pass ``http_client`` to use your own
    ``httpx.Client`` (proxies, certificates, a mock transport); the client then leaves it
    open on `close`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        http_client: httpx.Client | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._api_key = resolve_api_key(api_key)
        self.base_url = resolve_base_url(base_url)
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._pacer = Pacer()
        self._pacer_changed = threading.Condition()
        self._pace_queue: deque[object] = deque()
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], None] = time.sleep
        self.jobs = Jobs(self)
        self.watermarks = Watermarks(self)
        self.batches = Batches(self)

    def __repr__(self) -> str:
        return f"IOPaintClient(base_url={self.base_url!r}, api_key={describe_key(self._api_key)})"

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> IOPaintClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the API -------------------------------------------------------------------------

    @overload
    def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = ...,
        output: OutputTarget | None = ...,
        *,
        as_pil: Literal[False] = ...,
        watermark: WatermarkProfile | str | None = ...,
    ) -> ImageResult: ...

    @overload
    def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = ...,
        output: OutputTarget | None = ...,
        *,
        as_pil: Literal[True],
        watermark: WatermarkProfile | str | None = ...,
    ) -> Image.Image: ...

    def remove_watermark(
        self,
        image: ImageInput,
        mask: ImageInput | None = None,
        output: OutputTarget | None = None,
        *,
        as_pil: bool = False,
        watermark: WatermarkProfile | str | None = None,
    ) -> ImageResult | Image.Image:
        """Remove the watermark from `image`; the PNG as `ImageResult` (bytes).

        `mask`: white = remove, black = keep; without one the server detects the watermark.
        `output`: also write the PNG there (a path or a binary file).
        `as_pil`: return a PIL image instead of bytes.
        `watermark`: one of the key's watermark profiles (or its id): the mark's blend is
        inverted instead of painted over; `ImageResult.removal` says how it went.
        """
        call = endpoints.remove_watermark(
            to_upload(image, default_name="image"),
            None if mask is None else to_upload(mask, default_name="mask"),
            watermark=_profile_id(watermark),
        )
        return image_result(self._send(call), output, as_pil)

    def detect(self, image: ImageInput) -> Detection:
        """Find watermark regions in `image` (boxes, outlines, scores, coverage)."""
        call = endpoints.detect(to_upload(image, default_name="image"), as_mask=False)
        return Detection.from_response(self._send(call))

    def detect_mask(
        self, image: ImageInput, output: OutputTarget | None = None, *, as_pil: bool = False
    ) -> ImageResult | Image.Image:
        """The detected watermark as a mask PNG (white = remove), usable as `mask`."""
        call = endpoints.detect(to_upload(image, default_name="image"), as_mask=True)
        return image_result(self._send(call), output, as_pil)

    def stats(self) -> Stats:
        """The key's usage, plan and quota."""
        return Stats.from_response(self._send(endpoints.stats()))

    def health(self) -> Health:
        """Whether the service is up (``status`` ``"unhealthy"`` while it is not; no key needed)."""
        return Health.from_json(self._send(endpoints.health()).json())

    def batch_process(
        self,
        images: Sequence[ImageInput],
        output_dir: str | os.PathLike[str],
        *,
        masks: ImageInput | Sequence[ImageInput] | Mapping[str, ImageInput] | None = None,
        watermark: WatermarkProfile | str | None = None,
        concurrency: int | None = None,
        progress: bool | None = None,
    ) -> list[BatchItem]:
        """Remove watermarks from many images into `output_dir`; one `BatchItem` per image.

        Runs up to `concurrency` (default `max_concurrency`) requests at once, and no more
        than the key's rate limit lets through: the client reads the rate-limit headers and
        waits for tokens instead of collecting 429s. One bad image fails only itself; a
        refused key or a spent quota leaves the images not yet sent failed with that error.
        `progress`: a progress bar on stderr (default: when stderr is a terminal).
        """
        entries = plan_batch(images, output_dir, masks, _profile_id(watermark))
        workers = max(1, min(concurrency or self.max_concurrency, len(entries) or 1))
        bar = ProgressBar(len(entries), enabled=progress)
        results: list[BatchItem | None] = [None] * len(entries)
        stop: list[IOPaintError] = []
        slots = threading.Semaphore(workers)
        self._learn_limits()

        def finish(index: int, item: BatchItem) -> None:
            results[index] = item
            bar.advance(item.ok)

        def send(index: int, entry: BatchEntry, call: Call, ticket: Ticket) -> None:
            try:
                finish(index, self._batch_result(entry, call, ticket, stop))
            finally:
                slots.release()

        # This thread takes the images' turns in order (a free slot, then the pacer's
        # token); the pool sends them. So images go in order, and a spent quota or a
        # refused key stops the ones not yet sent.
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="iopaint-batch")
        futures = []
        try:
            for index, entry in enumerate(entries):
                slots.acquire()
                prepared = self._batch_call(entry, stop)
                if isinstance(prepared, BatchItem):
                    finish(index, prepared)
                    slots.release()
                    continue
                ticket = self._take_ticket(prepared.cost or 1, self._deadline(), attempt=1)
                futures.append(pool.submit(send, index, entry, prepared, ticket))
            pool.shutdown(wait=True)
        except BaseException:
            # Interrupted (Ctrl-C): images not yet sent stay unsent; the caller gets control
            # back while the requests in flight finish on their own.
            stop.append(IOPaintError("batch interrupted"))
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        for future in futures:
            future.result()  # a bug in a worker surfaces here, not as a missing result
        return complete(results, entries)

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """What the client has learned of the key's rate limit from response headers."""
        with self._pacer_changed:
            return self._pacer.snapshot()

    # -- internals -----------------------------------------------------------------------

    def _batch_call(self, entry: BatchEntry, stop: list[IOPaintError]) -> Call | BatchItem:
        """The request for one image of a batch, or its result when it is not to be sent."""
        if stop:
            return failed_item(entry, stop[0])
        try:
            return batch_call(entry)
        except LOCAL_INPUT_ERRORS as exc:
            return failed_item(entry, exc)

    def _batch_result(
        self, entry: BatchEntry, call: Call, ticket: Ticket, stop: list[IOPaintError]
    ) -> BatchItem:
        try:
            response = self._send(call, ticket=ticket)
            return succeeded_item(entry, image_result(response, entry.output, as_pil=False))
        except IOPaintError as exc:
            if stops_batch(exc):
                stop.append(exc)
            return failed_item(entry, exc)
        except LOCAL_INPUT_ERRORS as exc:  # the output could not be written
            return failed_item(entry, exc)

    def _learn_limits(self) -> None:
        """Before a batch: read the key's bucket from a request that spends nothing."""
        with self._pacer_changed:
            known = self._pacer.snapshot().limit is not None
        if known or not self._api_key:
            return
        # Stats may be disabled or the key refused: then the first image will say so.
        with contextlib.suppress(IOPaintError):
            self._send(endpoints.stats(observe=True))

    def _deadline(self) -> float:
        return self._clock() + self.retry.max_wait

    def _send(self, call: Call, *, ticket: Ticket | None = None) -> httpx.Response:
        """Send `call` with retries and pacing (`ticket`: its first turn, already taken)."""
        deadline = self._deadline()
        attempt = 0
        while True:
            attempt += 1
            if call.cost is None:
                ticket = None
            elif attempt > 1 or ticket is None:
                ticket = self._take_ticket(call.cost, deadline, attempt)
            try:
                response = self._http.request(
                    call.method,
                    self.base_url + call.path,
                    files=call.files,
                    data=call.data,
                    headers=self._headers(call),
                )
            except httpx.TransportError as exc:
                if ticket is not None:
                    self._settle(ticket, None)
                delay = self.retry.delay_after_connection_error(attempt) if call.retry else None
                if delay is None or self._clock() + delay > deadline:
                    raise connection_error(
                        exc, f"{call.method} {self.base_url}{call.path}"
                    ) from None
                self._sleep(delay)
                continue
            if ticket is not None:
                self._settle(ticket, response)
            if response.is_success or response.status_code in call.accept_statuses:
                return response
            error = error_from_response(response, hint=self._hint(response))
            delay = self.retry.delay_after_error(error, attempt) if call.retry else None
            if delay is None or self._clock() + delay > deadline:
                raise error
            if ticket is None or not isinstance(error, RateLimitError):
                # (After a 429 the pacer itself holds the next attempt until Retry-After.)
                self._sleep(delay)

    def _take_ticket(self, cost: int, deadline: float, attempt: int) -> Ticket:
        # First come, first served: only the head of the queue may take the next token, so
        # a batch's images are sent in order and none is starved by later ones.
        me = object()
        with self._pacer_changed:
            if attempt > 1:
                self._pace_queue.appendleft(me)  # a retry keeps its turn
            else:
                self._pace_queue.append(me)
            try:
                while True:
                    if self._pace_queue[0] is not me:
                        self._pacer_changed.wait()
                        continue
                    delay = self._pacer.delay(cost)
                    left = deadline - self._clock()
                    if delay == 0 or left <= 0 or (delay is not None and delay > left):
                        # Go now; or the wait would outlast the call: let the server decide.
                        return self._pacer.grant(cost)
                    timeout = min(left, delay) if delay is not None else left
                    self._pacer_changed.wait(timeout=timeout)
            finally:
                self._pace_queue.remove(me)
                self._pacer_changed.notify_all()

    def _settle(self, ticket: Ticket, response: httpx.Response | None) -> None:
        with self._pacer_changed:
            if response is None:
                self._pacer.abandon(ticket)
            else:
                self._pacer.observe(
                    ticket,
                    response.status_code,
                    response.headers,
                    quota_refusal=response.status_code == 429 and is_quota_refusal(response),
                )
            self._pacer_changed.notify_all()

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, **call.headers}
        if self._api_key:
            headers["X-API-Key"] = self._api_key
        return headers

    def _hint(self, response: httpx.Response) -> str | None:
        return MISSING_KEY_HINT if response.status_code == 401 and not self._api_key else None


class Jobs:
    """Asynchronous jobs: ``client.jobs.submit/get/wait/result/cancel/delete``."""

    def __init__(self, client: IOPaintClient) -> None:
        self._client = client

    def submit(
        self,
        image: ImageInput,
        mask: ImageInput | None = None,
        *,
        callback_url: str | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
        watermark: WatermarkProfile | str | None = None,
    ) -> Job:
        """Queue a removal; the `Job` (``wait``: let the server hold the answer up to N s).

        Every attempt of one submit carries the same ``Idempotency-Key`` (random unless
        given), so a retry after a lost answer never makes a second job.
        """
        call = endpoints.submit_job(
            to_upload(image, default_name="image"),
            None if mask is None else to_upload(mask, default_name="mask"),
            callback_url=callback_url,
            wait=wait,
            idempotency_key=idempotency_key,
            watermark=_profile_id(watermark),
        )
        return Job.from_json(self._client._send(call).json())

    def get(self, job: Job | str) -> Job:
        return Job.from_json(self._client._send(endpoints.job(_id(job))).json())

    def wait(self, job: Job | str, *, timeout: float | None = DEFAULT_JOB_WAIT_S) -> Job:
        """Poll until the job is final (succeeded, failed, canceled, expired); the final `Job`."""
        client = self._client
        current = job if isinstance(job, Job) else self.get(job)
        deadline = None if timeout is None else client._clock() + timeout
        pause = JOB_POLL_INITIAL_S
        while not current.done:
            if deadline is not None and client._clock() + pause > deadline:
                raise JobTimeoutError(
                    f"job {current.id} still {current.status} after {timeout:g} s"
                )
            client._sleep(pause)
            pause = min(JOB_POLL_MAX_S, pause * 2)
            current = self.get(current.id)
        return current

    def result(
        self, job: Job | str, output: OutputTarget | None = None, *, as_pil: bool = False
    ) -> ImageResult | Image.Image:
        """The finished job's PNG (409 `ConflictError` before it has finished)."""
        return image_result(self._client._send(endpoints.job_result(_id(job))), output, as_pil)

    def cancel(self, job: Job | str) -> Job:
        return Job.from_json(self._client._send(endpoints.cancel_job(_id(job))).json())

    def delete(self, job: Job | str) -> None:
        self._client._send(endpoints.delete_job(_id(job)))


class Batches:
    """Server-side batches: ``client.batches.submit/get/wait/result``.

    One request for many images, all admitted or none: it needs as many rate-limit tokens
    as images at once. For more images than the key's burst, use `batch_process`.
    """

    def __init__(self, client: IOPaintClient) -> None:
        self._client = client

    def submit(
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
        return Batch.from_json(self._client._send(call).json())

    def get(self, batch: Batch | str) -> Batch:
        return Batch.from_json(self._client._send(endpoints.batch(_id(batch))).json())

    def wait(self, batch: Batch | str, *, timeout: float | None = DEFAULT_JOB_WAIT_S) -> Batch:
        client = self._client
        current = batch if isinstance(batch, Batch) else self.get(batch)
        deadline = None if timeout is None else client._clock() + timeout
        pause = JOB_POLL_INITIAL_S
        while not current.done:
            if deadline is not None and client._clock() + pause > deadline:
                raise JobTimeoutError(f"batch {current.id} not finished after {timeout:g} s")
            client._sleep(pause)
            pause = min(JOB_POLL_MAX_S, pause * 2)
            current = self.get(current.id)
        return current

    def result(self, batch: Batch | str, output: OutputTarget | None = None) -> bytes:
        """The finished PNGs as a zip archive (also written to `output` when given)."""
        content = self._client._send(endpoints.batch_result(_id(batch))).content
        if output is not None:
            write_output(content, output)
        return content


def _id(item: Job | Batch | str) -> str:
    return item if isinstance(item, str) else item.id


class Watermarks:
    """The key's watermark profiles: ``client.watermarks.create/list/get/png/delete``."""

    def __init__(self, client: IOPaintClient) -> None:
        self._client = client

    def create(
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
        return WatermarkProfile.from_json((self._client._send(call)).json())

    def list(self) -> builtins.list[WatermarkProfile]:
        """The key's profiles, oldest first."""
        body = (self._client._send(endpoints.list_watermarks())).json()
        return [WatermarkProfile.from_json(item) for item in body["watermarks"]]

    def get(self, profile: WatermarkProfile | str) -> WatermarkProfile:
        call = endpoints.watermark(_profile_id(profile) or "")
        return WatermarkProfile.from_json((self._client._send(call)).json())

    def png(self, profile: WatermarkProfile | str, output: OutputTarget | None = None) -> bytes:
        """The profile's RGBA PNG (also written to `output` when given)."""
        call = endpoints.watermark(_profile_id(profile) or "", as_png=True)
        content = (self._client._send(call)).content
        if output is not None:
            write_output(content, output)
        return content

    def delete(self, profile: WatermarkProfile | str) -> None:
        self._client._send(endpoints.delete_watermark(_profile_id(profile) or ""))


def _profile_id(profile: WatermarkProfile | str | None) -> str | None:
    return profile.id if isinstance(profile, WatermarkProfile) else profile
