"""`batch_process`: per-image results, output names, bounded concurrency, pacing."""

from __future__ import annotations

import io
import math
import threading
import time
from pathlib import Path

import httpx
import pytest
from fake_api import FakeApi, error, image_response, json_response, multipart_parts, png_bytes

from iopaint_sdk import AuthenticationError, InvalidImageError, RateLimitError
from iopaint_sdk.batch import plan_batch
from iopaint_sdk.progress import ProgressBar


def write_images(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / name
        path.write_bytes(png_bytes())
        paths.append(path)
    return paths


def echo_or_refuse(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/stats"):  # batch_process reads the limits first
        return json_response({})
    parts = multipart_parts(request)
    if parts[0].filename and parts[0].filename.startswith("bad"):
        return error(400, "Invalid image format: cannot identify image file")
    return image_response(parts[0].content)


def test_one_bad_image_fails_alone(tmp_path: Path) -> None:
    images = write_images(tmp_path / "in", ["a.png", "bad.png", "c.png"])
    api = FakeApi(default=echo_or_refuse)
    with api.client() as client:
        results = client.batch_process(images, tmp_path / "out", progress=False)
    assert [(Path(r.path).name, r.ok) for r in results] == [
        ("a.png", True),
        ("bad.png", False),
        ("c.png", True),
    ]
    bad = results[1]
    assert isinstance(bad.error, InvalidImageError) and bad.output is None
    for item in (results[0], results[2]):
        assert item.error is None and item.output is not None
        assert item.output.read_bytes() == Path(item.path).read_bytes()
        assert item.processing_time == 0.125


def test_output_names_are_unique_and_in_memory_inputs_are_numbered(tmp_path: Path) -> None:
    a = write_images(tmp_path / "x", ["photo.jpg"])[0]
    b = write_images(tmp_path / "y", ["photo.png"])[0]
    entries = plan_batch([a, b, png_bytes()], tmp_path / "out", None)
    assert [e.output.name for e in entries] == ["photo.png", "photo-2.png", "image-3.png"]
    assert entries[2].label == "#3"


def test_masks_by_position_mapping_or_one_for_all(tmp_path: Path) -> None:
    a, b = write_images(tmp_path, ["a.jpg", "b.jpg"])
    out = tmp_path / "out"
    assert [e.mask for e in plan_batch([a, b], out, ["ma", "mb"])] == ["ma", "mb"]
    assert [e.mask for e in plan_batch([a, b], out, {"a.jpg": "ma"})] == ["ma", None]
    assert [e.mask for e in plan_batch([a, b], out, "shared.png")] == ["shared.png"] * 2
    with pytest.raises(ValueError, match="one per image"):
        plan_batch([a, b], out, ["only-one"])
    with pytest.raises(TypeError):
        plan_batch("a.jpg", out, None)  # type: ignore[arg-type]


def test_local_input_problems_fail_their_image_only(tmp_path: Path) -> None:
    good = write_images(tmp_path, ["good.png"])[0]
    api = FakeApi(default=echo_or_refuse)
    with api.client() as client:
        results = client.batch_process([good, tmp_path / "missing.png"], tmp_path / "out")
    assert results[0].ok
    assert not results[1].ok and isinstance(results[1].error, FileNotFoundError)


def test_a_refused_key_stops_the_batch(tmp_path: Path) -> None:
    images = write_images(tmp_path, [f"{i}.png" for i in range(6)])
    api = FakeApi(default=lambda request: error(401, "Invalid API Key"))
    with api.client(max_concurrency=1) as client:
        results = client.batch_process(images, tmp_path / "out")
    assert all(isinstance(r.error, AuthenticationError) for r in results)
    # The stats probe and the first image were sent; the other images were not.
    assert len(api.requests) == 2


def test_a_spent_quota_stops_the_batch(tmp_path: Path) -> None:
    images = write_images(tmp_path, [f"{i}.png" for i in range(5)])
    quota = error(429, "Daily quota of 10 requests exceeded", Retry_After="30000")
    api = FakeApi([json_response({}), image_response(), quota], default=lambda request: quota)
    with api.client(max_concurrency=1) as client:
        results = client.batch_process(images, tmp_path / "out")
    assert [r.ok for r in results] == [True, False, False, False, False]
    assert all(isinstance(r.error, RateLimitError) and r.error.quota_exceeded for r in results[1:])
    assert len(api.requests) == 3


def test_concurrency_is_bounded(tmp_path: Path) -> None:
    images = write_images(tmp_path, [f"{i}.png" for i in range(12)])
    active, peak = 0, 0
    lock = threading.Lock()

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        if request.url.path.endswith("/stats"):
            return json_response({})
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return image_response()

    api = FakeApi(default=slow)
    with api.client() as client:
        results = client.batch_process(images, tmp_path / "out", concurrency=3)
    assert all(r.ok for r in results)
    assert peak == 3


class RealTimeBucket:
    """The service's token bucket on the real clock, answering like the service."""

    def __init__(self, burst: int, rate_per_minute: float) -> None:
        self.burst, self.per_second = burst, rate_per_minute / 60.0
        self.tokens, self.updated = float(burst), time.time()
        self.lock = threading.Lock()
        self.refusals = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            now = time.time()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            spends = request.url.path.endswith("/remove-watermark")
            refused = spends and self.tokens + 1e-9 < 1
            if spends and not refused:
                self.tokens -= 1
            headers = {
                "X-RateLimit-Limit": str(self.burst),
                "X-RateLimit-Remaining": str(math.floor(self.tokens + 1e-9)),
                "X-RateLimit-Reset": str(
                    math.ceil(now + (self.burst - self.tokens) / self.per_second)
                ),
            }
            if refused:
                self.refusals += 1
                wait = max(1, math.ceil((1 - self.tokens) / self.per_second))
                return error(
                    429,
                    "Rate limit exceeded.",
                    Retry_After=str(wait),
                    **{k.replace("-", "_"): v for k, v in headers.items()},
                )
        if not spends:
            return json_response({}, **{k.replace("-", "_"): v for k, v in headers.items()})
        return image_response(**{k.replace("-", "_"): v for k, v in headers.items()})


def test_pacing_surfaces_no_429_on_a_tight_bucket(tmp_path: Path) -> None:
    images = write_images(tmp_path, [f"{i}.png" for i in range(6)])
    bucket = RealTimeBucket(burst=2, rate_per_minute=60)  # one token a second
    api = FakeApi(default=bucket)
    with api.client() as client:
        started = time.monotonic()
        results = client.batch_process(images, tmp_path / "out", concurrency=4)
        elapsed = time.monotonic() - started
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    print(f"6 images, burst 2, 1/s: {elapsed:.2f} s (minimum 4 s), 429s seen {bucket.refusals}")


def test_progress_bar_draws_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar(2, stream=stream)
        bar.advance(True)
        bar.advance(False)
        bar.close()
    assert "2/2" in terminal.getvalue() and "ok 1 failed 1" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_images_are_sent_in_order_while_waiting_for_tokens(tmp_path: Path) -> None:
    """Workers waiting for tokens take them first come, first served."""
    images = write_images(tmp_path, [f"{i:02d}.png" for i in range(6)])
    # Burst 1: no two tokens at once, so no two granted threads race to send first.
    bucket = RealTimeBucket(burst=1, rate_per_minute=120)
    sent: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/remove-watermark"):
            sent.append(multipart_parts(request)[0].filename or "")
        return bucket(request)

    api = FakeApi(default=record)
    with api.client() as client:
        results = client.batch_process(images, tmp_path / "out", concurrency=4)
    assert all(r.ok for r in results)
    first_tries = list(dict.fromkeys(sent))  # a 429 retried repeats a name; keep its first send
    assert first_tries == [p.name for p in images]
