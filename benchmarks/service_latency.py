"""End-to-end latency of remove-watermark through a real `bentoml serve`, against the model alone.

    .venv/bin/python benchmarks/service_latency.py                       # OpenCV, 1024x1024 JPEG
    .venv/bin/python benchmarks/service_latency.py --size 512 --model lama --weights big-lama.pt
    .venv/bin/python benchmarks/service_latency.py --concurrency 4 --requests 8

Before and after, side by side: each `--variant NAME[@CHECKOUT]:KEY=VALUE,...` starts its
own service (from another checkout when `@CHECKOUT` is given, e.g. `git archive` of main
unpacked in a folder), and the requests alternate between them (A B A B ...), so the
machine's drift hits both alike:

    .venv/bin/python benchmarks/service_latency.py --model lama --weights big-lama.pt \
        --size 4096x3072 --corner-mask 600x150 \
        --variant before@/tmp/main:IOPAINT_PRECISION=fp32 --variant after:

    --accept image/webp / --format jpeg      ask for another result format

It starts its own services (own stores, own key) unless `--url` and `--key` are given, and
prints a table: client-side latency, the server's X-Processing-Time, the model call alone
(the same inpainter in this process on the same pixels; without variants only), and health
latency while `--concurrency` large requests are in flight.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runners.compositing import blend
from runners.loading import load_inpainter
from settings import Settings
from tests.images import box_mask, encode, photo
from tests.server import (
    PROJECT_ROOT,
    UNLIMITED,
    RunningService,
    create_key,
    service_env,
    start_service,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", default="1024", help="image size: SIDE or WIDTHxHEIGHT, px")
    parser.add_argument(
        "--corner-mask",
        default=None,
        help="WIDTHxHEIGHT box in the bottom-right corner (a logo) instead of a band",
    )
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="requests before measuring (the first at a new image size sets up the model's"
        " kernels for it; the service trained its batching itself before reporting healthy)",
    )
    parser.add_argument("--model", default="opencv", choices=["opencv", "lama"])
    parser.add_argument("--weights", default=None, help="IOPAINT_LAMA_WEIGHTS for --model lama")
    parser.add_argument("--url", default=None, help="use a running service instead")
    parser.add_argument("--key", default=None, help="API key for --url")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME[@CHECKOUT]:KEY=VALUE,...: one service per variant, requests alternating",
    )
    parser.add_argument("--accept", default=None, help="Accept header of the requests")
    parser.add_argument("--format", default=None, help="`format` form field (png, webp, jpeg)")
    parser.add_argument(
        "--start-timeout", type=float, default=600.0, help="seconds a service may take to start"
    )
    args = parser.parse_args()

    width, height = (int(n) for n in (args.size.split("x") * 2)[:2])
    pixels = photo(width, height, seed=7)
    if args.corner_mask:
        box_width, box_height = (int(n) for n in args.corner_mask.split("x"))
        box = (width - box_width - 40, height - box_height - 40, width - 40, height - 40)
    else:
        box = (width // 8, height // 2, width * 7 // 8, height * 5 // 8)
    mask = box_mask(width, height, box)
    image_bytes = encode(pixels, "JPEG", quality=90)
    mask_bytes = encode(mask, "PNG")
    files: dict[str, tuple[str | None, bytes | str, str | None]] = {
        "image": ("photo.jpg", image_bytes, "image/jpeg"),
        "mask": ("mask.png", mask_bytes, "image/png"),
    }
    if args.format:
        files["format"] = (None, args.format, None)

    # Every request carries its mask: a detector would only add start-up time and memory.
    overrides = {"IOPAINT_MODEL": args.model, "IOPAINT_DETECTION": "false"}
    if args.weights:
        overrides["IOPAINT_LAMA_WEIGHTS"] = str(Path(args.weights).resolve())
    if args.variant:
        compare_variants(args, files, overrides, f"{width}x{height}", float((mask > 0).mean()))
        return
    service = None
    if args.url:
        base_url, key = args.url, args.key or ""
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-"))
        env = service_env(workdir, **overrides)
        key = create_key(env, plan="enterprise", name="bench", limits=UNLIMITED)
        service = start_service(workdir, env)
        base_url = service.base_url

    # Loaded while the service is up: each request is paired with a model-alone run right
    # after it, so both see the same machine (this one's speed drifts by several percent
    # over minutes, which unpaired medians would report as overhead or hide).
    model_alone = ModelAlone(args, pixels, mask)
    try:
        accept = {"Accept": args.accept} if args.accept else {}
        with httpx.Client(
            base_url=base_url, headers={"X-API-Key": key, **accept}, timeout=900
        ) as client:
            for _ in range(max(1, args.warmup)):
                warm = client.post("/api/v1/remove-watermark", files=files)
                warm.raise_for_status()
            model_name = warm.headers["x-model"]
            if args.concurrency == 1:
                latencies, processing, model_runs = paired_rounds(
                    client, files, args.requests, model_alone
                )
            else:
                latencies, processing = run_requests(client, files, args.requests, args.concurrency)
                model_runs = [model_alone.run() for _ in range(max(3, min(args.requests, 10)))]
            health = (
                health_under_load(base_url, client, files, args.concurrency)
                if args.concurrency > 1
                else []
            )
        peak_rss = service_peak_rss(service.process.pid) if service else {}
    finally:
        if service:
            service.stop()

    e2e = statistics.median(latencies)
    model_time = statistics.median(model_runs)
    print(
        f"\n{width}x{height} JPEG, mask {100 * (mask > 0).mean():.1f}%, model {model_name}, "
        f"{args.requests} requests, concurrency {args.concurrency}"
    )
    print(f"{'measure':<44}{'median s':>10}{'p90 s':>10}{'best s':>10}")
    print(
        f"{'client latency (upload + processing)':<44}{e2e:>10.3f}{quantile(latencies, 0.9):>10.3f}"
        f"{min(latencies):>10.3f}"
    )
    print(
        f"{'server X-Processing-Time':<44}{statistics.median(processing):>10.3f}"
        f"{quantile(processing, 0.9):>10.3f}{min(processing):>10.3f}"
    )
    print(
        f"{'model alone (same inpainter, this process)':<44}{model_time:>10.3f}"
        f"{quantile(model_runs, 0.9):>10.3f}{min(model_runs):>10.3f}"
    )
    print("client latencies, s:", " ".join(f"{value:.2f}" for value in latencies))
    print("model alone, s:     ", " ".join(f"{value:.2f}" for value in model_runs))
    overhead = e2e - model_time
    print(
        f"overhead = median client latency - median model alone = {overhead:.3f} s "
        f"({100 * overhead / model_time:.1f}% of the model time)"
    )
    if args.concurrency == 1:
        paired = statistics.median(
            latency - alone for latency, alone in zip(latencies, model_runs, strict=True)
        )
        print(
            f"overhead, paired = median over rounds of (request - model run after it) = "
            f"{paired:.3f} s ({100 * paired / model_time:.1f}% of the model time)"
        )
    # The best runs are the least disturbed by other work on the machine.
    best = min(latencies) - min(model_runs)
    print(
        f"overhead, best = best client latency - best model alone = {best:.3f} s "
        f"({100 * best / min(model_runs):.1f}% of the best model time)"
    )
    if args.concurrency > 1:
        wall = sum(latencies) / args.concurrency
        print(
            f"throughput ~ {args.requests / wall:.3f} req/s;",
            f"model alone {1 / model_time:.3f} req/s",
        )
    for name, kib in peak_rss.items():
        print(f"peak RSS {name}: {kib / 1024 / 1024:.2f} GiB")
    if health:
        print(
            f"health while {args.concurrency} requests in flight:",
            f"median {1000 * statistics.median(health):.1f} ms,",
            f"max {1000 * max(health):.1f} ms over {len(health)} probes",
        )


@dataclass
class Variant:
    name: str
    checkout: Path
    env: dict[str, str]
    service: RunningService | None = None
    key: str = ""
    latencies: list[float] = field(default_factory=list)
    processing: list[float] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0


def parse_variant(text: str) -> Variant:
    """``NAME[@CHECKOUT]:KEY=VALUE,KEY=VALUE`` (the part after ':' may be empty)."""
    head, _, settings = text.partition(":")
    name, _, checkout = head.partition("@")
    env = dict(item.split("=", 1) for item in settings.split(",") if item)
    root = Path(checkout).resolve() if checkout else PROJECT_ROOT
    if not (root / "service.py").is_file():
        raise SystemExit(f"--variant {text}: {root} has no service.py")
    return Variant(name or "variant", root, env)


def compare_variants(
    args: argparse.Namespace,
    files: dict,
    overrides: dict[str, str],
    size: str,
    mask_share: float,
) -> None:
    """One service per variant, then rounds of one request to each, in turn."""
    variants = [parse_variant(text) for text in args.variant]
    headers = {"Accept": args.accept} if args.accept else {}
    try:
        for variant in variants:
            workdir = Path(tempfile.mkdtemp(prefix=f"bench-{variant.name}-"))
            env = service_env(workdir, **overrides, **variant.env)
            variant.key = create_key(env, plan="enterprise", name="bench", limits=UNLIMITED)
            started = time.perf_counter()
            variant.service = start_service(
                workdir, env, project_root=variant.checkout, timeout_s=args.start_timeout
            )
            health = httpx.get(f"{variant.service.base_url}/api/v1/health", timeout=10).json()
            print(
                f"{variant.name}: started in {time.perf_counter() - started:.0f} s from "
                f"{variant.checkout}; {json.dumps(variant.env)}; health compute: "
                f"{json.dumps(health.get('compute'))}",
                flush=True,
            )
        clients = {
            variant.name: httpx.Client(
                base_url=variant.service.base_url,  # type: ignore[union-attr]
                headers={"X-API-Key": variant.key, **headers},
                timeout=900,
            )
            for variant in variants
        }
        for _ in range(max(1, args.warmup)):
            for variant in variants:
                clients[variant.name].post("/api/v1/remove-watermark", files=files)
        load_before = os.getloadavg()
        for _ in range(args.requests):
            for variant in variants:
                began = time.perf_counter()
                response = clients[variant.name].post("/api/v1/remove-watermark", files=files)
                variant.latencies.append(time.perf_counter() - began)
                response.raise_for_status()
                variant.processing.append(float(response.headers["x-processing-time"]))
                variant.headers = dict(response.headers)
                variant.size_bytes = len(response.content)
        load_after = os.getloadavg()
        for client in clients.values():
            client.close()
    finally:
        for variant in variants:
            if variant.service:
                variant.service.stop()
    print(
        f"\n{size} JPEG, mask {100 * mask_share:.1f}%, {args.requests} rounds, "
        f"load average {'/'.join(f'{v:.1f}' for v in load_before)} before, "
        f"{'/'.join(f'{v:.1f}' for v in load_after)} after"
    )
    print(
        f"{'variant':<12}{'p50 s':>8}{'p90 s':>8}{'best s':>8}{'server p50':>12}"
        f"{'MB':>7}  type, model, precision"
    )
    first = statistics.median(variants[0].latencies)
    for variant in variants:
        p50 = statistics.median(variant.latencies)
        print(
            f"{variant.name:<12}{p50:>8.3f}{quantile(variant.latencies, 0.9):>8.3f}"
            f"{min(variant.latencies):>8.3f}{statistics.median(variant.processing):>12.3f}"
            f"{variant.size_bytes / 1e6:>7.2f}  {variant.headers.get('content-type')}, "
            f"{variant.headers.get('x-model')}, {variant.headers.get('x-precision', '-')}"
            f"   ({first / p50:.2f}x the first variant's speed)"
        )
        print("   latencies, s:", " ".join(f"{value:.2f}" for value in variant.latencies))


def run_requests(
    client: httpx.Client, files: dict, count: int, concurrency: int
) -> tuple[list[float], list[float]]:
    latencies: list[float] = []
    processing: list[float] = []
    lock = threading.Lock()
    remaining = iter(range(count))

    def worker() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            started = time.perf_counter()
            response = client.post("/api/v1/remove-watermark", files=files)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            with lock:
                latencies.append(elapsed)
                processing.append(float(response.headers["x-processing-time"]))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, processing


def health_under_load(
    base_url: str, client: httpx.Client, files: dict, concurrency: int
) -> list[float]:
    load = [
        threading.Thread(target=lambda: client.post("/api/v1/remove-watermark", files=files))
        for _ in range(concurrency)
    ]
    for thread in load:
        thread.start()
    time.sleep(1.0)
    probes: list[float] = []
    # One client for every probe: building an httpx.Client costs ~100 ms here (its SSL
    # context), which a fresh `httpx.get` per probe would report as health latency.
    with httpx.Client(base_url=base_url, timeout=30) as prober:
        while any(thread.is_alive() for thread in load):
            started = time.perf_counter()
            prober.get("/api/v1/health").raise_for_status()
            probes.append(time.perf_counter() - started)
            time.sleep(0.2)
    return probes


class ModelAlone:
    """The service's inpainter and blend in this process, on the pixels the service sees."""

    def __init__(self, args: argparse.Namespace, pixels: np.ndarray, mask: np.ndarray) -> None:
        overrides = {"model": args.model}
        if args.weights:
            overrides["lama_weights"] = str(Path(args.weights).resolve())
        self.inpainter = load_inpainter(Settings(**overrides))
        self.mask = mask
        # The service decodes the JPEG first: give the model the same pixels.
        jpeg = encode(pixels, "JPEG", quality=90)
        self.pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        self.inpainter.inpaint(self.pixels, mask)  # warm-up

    def run(self) -> float:
        started = time.perf_counter()
        blend(self.pixels, self.inpainter.inpaint(self.pixels, self.mask), self.mask)
        return time.perf_counter() - started


def paired_rounds(
    client: httpx.Client, files: dict, count: int, model_alone: ModelAlone
) -> tuple[list[float], list[float], list[float]]:
    """`count` rounds of one request, then one model-alone run."""
    latencies: list[float] = []
    processing: list[float] = []
    model_runs: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/api/v1/remove-watermark", files=files)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        processing.append(float(response.headers["x-processing-time"]))
        model_runs.append(model_alone.run())
    return latencies, processing, model_runs


def service_peak_rss(root_pid: int) -> dict[str, int]:
    """Peak RSS (VmHWM, KiB) of each worker process under `bentoml serve`."""
    import psutil

    peaks = {}
    for child in psutil.Process(root_pid).children(recursive=True):
        command = " ".join(child.cmdline())
        name = "runner" if "--service-name inpainting" in command else "http"
        status = Path(f"/proc/{child.pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        peaks[f"{name} (pid {child.pid})"] = int(peak.split()[1])
    return peaks


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


if __name__ == "__main__":
    main()
