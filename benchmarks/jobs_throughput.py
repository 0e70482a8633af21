"""Jobs against the synchronous route: throughput, submit-to-done latency, overhead per image.

    .venv/bin/python benchmarks/jobs_throughput.py                     # both stores, 200 jobs
    .venv/bin/python benchmarks/jobs_throughput.py --stores sqlite --jobs 50
    .venv/bin/python benchmarks/jobs_throughput.py --env IOPAINT_DETECTION=false

For each store (the embedded SQLite file; Redis, its own `redis-server` on a free loopback
port, never a shared one) it starts its own `bentoml serve` (OpenCV unless `--model`), its
own key and webhook secret, and a webhook receiver on loopback, then measures:

1. **saturated**: `--jobs` small images submitted as jobs by `--clients` threads as fast as
   they are accepted; a job is done when its signed webhook arrives (what a client would
   learn) and, server side, at its `finished_at`. Then the same images through
   `POST /api/v1/remove-watermark` by as many threads. Prints images/s and p50/p95.
2. **one at a time**: `--sequential` jobs submitted with `Prefer: wait=60` (the answer is the
   ended job), against as many synchronous requests: the latency a job adds to one image.

The job path's overhead per image is the difference of the two paths' seconds per image.
Figures are printed, never asserted; the client shares the machine's cores with the service.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.auth.redis_server import REDIS_BINARY, RedisServer
from tests.images import box_mask, encode, photo
from tests.jobs.webhook_receiver import WebhookReceiver
from tests.server import (
    UNLIMITED,
    RunningService,
    create_key,
    create_webhook_secret,
    service_env,
    start_service,
)

SIDE = 256


def files() -> dict[str, tuple[str, bytes, str]]:
    return {
        "image": (
            "photo.jpg",
            encode(photo(SIDE, SIDE, seed=11), "JPEG", quality=90),
            "image/jpeg",
        ),
        "mask": ("mask.png", encode(box_mask(SIDE, SIDE, (40, 100, 216, 150)), "PNG"), "image/png"),
    }


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@contextmanager
def service_for(store: str, workdir: Path, overrides: dict[str, str]) -> Iterator[RunningService]:
    redis = None
    env_extra = {
        "IOPAINT_CALLBACK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "IOPAINT_JOB_QUEUE_PER_ACCOUNT": "100000",
        "IOPAINT_JOB_QUEUE_TOTAL": "100000",
        **overrides,
    }
    if store == "redis":
        if REDIS_BINARY is None:
            raise SystemExit("redis-server is not installed")
        redis = RedisServer(workdir / "redis")
        redis.start()
        env_extra["IOPAINT_REDIS_URL"] = redis.url
    env = service_env(workdir, **env_extra)
    service = start_service(workdir, env)
    service.env = env  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        service.stop()
        if redis is not None:
            redis.stop()


def saturated_jobs(
    service: RunningService, key: str, receiver: WebhookReceiver, count: int, clients: int
) -> tuple[float, list[float], list[float]]:
    """Wall seconds for `count` jobs, and each job's submit-to-webhook and server latency."""
    form = files()
    submitted: dict[str, float] = {}
    lock = threading.Lock()

    def submit(http: httpx.Client) -> None:
        sent = time.time()
        reply = http.post("/api/v1/jobs", files=form, data={"callback_url": receiver.url})
        if reply.status_code != 202:
            raise RuntimeError(f"submission answered {reply.status_code}: {reply.text[:200]}")
        with lock:
            submitted[reply.json()["id"]] = sent

    started = time.time()
    run_threads(service, key, clients, count, submit)
    receiver.wait_for(count, timeout_s=180)
    arrived = {
        delivery.headers["webhook-id"].removeprefix("msg_"): delivery.arrived_at
        for delivery in receiver.deliveries
    }
    wall = max(arrived.values()) - started
    to_webhook = [arrived[job_id] - sent for job_id, sent in submitted.items()]
    server = []
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": key}, timeout=60) as http:
        for job_id in submitted:
            job = http.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
            server.append(parse_iso(job["finished_at"]) - parse_iso(job["created_at"]))
    return wall, to_webhook, server


def saturated_sync(
    service: RunningService, key: str, count: int, clients: int
) -> tuple[float, list[float]]:
    form = files()
    latencies: list[float] = []
    lock = threading.Lock()

    def post(http: httpx.Client) -> None:
        sent = time.perf_counter()
        reply = http.post("/api/v1/remove-watermark", files=form)
        if reply.status_code != 200:
            raise RuntimeError(f"remove-watermark answered {reply.status_code}: {reply.text[:200]}")
        with lock:
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    run_threads(service, key, clients, count, post)
    return time.perf_counter() - started, latencies


def run_threads(
    service: RunningService,
    key: str,
    clients: int,
    count: int,
    work: Callable[[httpx.Client], None],
) -> None:
    remaining = iter(range(count))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(
            base_url=service.base_url, headers={"X-API-Key": key}, timeout=600
        ) as http:
            while True:
                with lock:
                    if next(remaining, None) is None:
                        return
                work(http)

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()


def one_at_a_time(service: RunningService, key: str, count: int) -> tuple[list[float], list[float]]:
    form = files()
    jobs, synchronous = [], []
    with httpx.Client(base_url=service.base_url, headers={"X-API-Key": key}, timeout=120) as http:
        for _ in range(count):
            sent = time.perf_counter()
            reply = http.post("/api/v1/jobs", files=form, headers={"Prefer": "wait=60"})
            if reply.status_code != 200 or reply.json()["status"] != "succeeded":
                raise RuntimeError(f"waited job answered {reply.status_code}: {reply.text[:200]}")
            jobs.append(time.perf_counter() - sent)
            sent = time.perf_counter()
            if http.post("/api/v1/remove-watermark", files=form).status_code != 200:
                raise RuntimeError("remove-watermark failed")
            synchronous.append(time.perf_counter() - sent)
    return jobs, synchronous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--model", default="opencv", choices=["opencv", "lama"])
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE service setting (repeatable)"
    )
    args = parser.parse_args()
    overrides = {"IOPAINT_MODEL": args.model}
    overrides.update(dict(item.split("=", 1) for item in args.env))

    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpu.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    print(
        f"{args.jobs} jobs of {SIDE}x{SIDE} JPEG, {args.clients} client threads, model "
        f"{args.model}; CPU {model_name}, {len(os.sched_getaffinity(0))} cores"
    )
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory(prefix=f"jobs-bench-{store}-") as workdir:
            with service_for(store, Path(workdir), overrides) as service:
                env = service.env  # type: ignore[attr-defined]
                key = create_key(env, plan="enterprise", name="bench", limits=UNLIMITED)
                create_webhook_secret(env, key)
                with WebhookReceiver() as receiver:
                    saturated_jobs(service, key, receiver, 10, args.clients)  # warm-up
                    receiver.deliveries.clear()
                    wall, to_webhook, server = saturated_jobs(
                        service, key, receiver, args.jobs, args.clients
                    )
                sync_wall, sync_latency = saturated_sync(service, key, args.jobs, args.clients)
                waited, single = one_at_a_time(service, key, args.sequential)
            per_job, per_sync = wall / args.jobs, sync_wall / args.jobs
            print(f"\n[{store}]")
            print(
                f"  jobs       {args.jobs / wall:6.1f} images/s   submit-to-webhook "
                f"{percentiles(to_webhook)}   server created-to-finished {percentiles(server)}"
            )
            print(
                f"  sync route {args.jobs / sync_wall:6.1f} images/s   request "
                f"{percentiles(sync_latency)}"
            )
            print(f"  overhead per image at saturation: {1000 * (per_job - per_sync):+.1f} ms")
            print(
                f"  one at a time: job with Prefer: wait {percentiles(waited)}; sync "
                f"{percentiles(single)}; job adds "
                f"{1000 * (statistics.median(waited) - statistics.median(single)):+.1f} ms (median)"
            )


if __name__ == "__main__":
    main()
