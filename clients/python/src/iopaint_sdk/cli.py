"""The ``iopaint`` command line (also ``python -m iopaint_sdk``).

    iopaint remove photo.jpg [-m mask.png] [-w wm_...] [-o out.png]
    iopaint remove *.jpg -o cleaned/           # batch: progress bar, summary, exit 1 on any failure
    iopaint detect photo.jpg -o mask.png       # the detected watermark as a mask
    iopaint stats
    iopaint health

The key comes from ``IOPAINT_API_KEY`` (never from the command line, where shell history
and process listings would keep it), the service from ``IOPAINT_BASE_URL`` or
``--base-url``. Errors are one line each on stderr; exit status 1 for a failure, 2 for a
usage error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from iopaint_sdk.client import IOPaintClient
from iopaint_sdk.errors import IOPaintError, RateLimitError
from iopaint_sdk.results import BatchItem, Detection, Health, Stats
from iopaint_sdk.version import __version__

ERROR_COLUMN_WIDTH = 70


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with IOPaintClient(base_url=args.base_url, timeout=args.timeout) as client:
            return int(args.run(client, args))
    except IOPaintError as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"no such file: {exc.filename}")
    except (OSError, TypeError, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


# -- commands ---------------------------------------------------------------------------


def remove(client: IOPaintClient, args: argparse.Namespace) -> int:
    images: list[str] = args.images
    output: str | None = args.output
    is_batch = len(images) > 1 or (output is not None and _names_directory(output))
    if args.mask and args.mask_dir:
        raise ValueError("give either --mask or --mask-dir, not both")
    if not is_batch:
        if args.mask_dir:
            raise ValueError("--mask-dir is for several images; use --mask for one")
        return _remove_one(client, images[0], args.mask, output, args.watermark)
    return _remove_many(client, images, args, output or "cleaned")


def _remove_one(
    client: IOPaintClient,
    image: str,
    mask: str | None,
    output: str | None,
    watermark: str | None = None,
) -> int:
    source = Path(image)
    target = Path(output) if output else source.with_name(f"{source.stem}-clean.png")
    if target.resolve() == source.resolve():
        raise ValueError(f"refusing to overwrite the input {image}: pass -o")
    result = client.remove_watermark(source, mask, output=target, watermark=watermark)
    details = [f"{result.processing_time:.2f} s" if result.processing_time is not None else ""]
    if result.model:
        details.append(result.model)
    if result.mask_source == "detected":
        details.append(f"mask detected, {result.detected_regions or 0} regions")
    if result.removal and result.removal != "inpaint":
        details.append(result.removal)
    print(f"{image} -> {target} ({', '.join(d for d in details if d)})")
    return 0


def _remove_many(
    client: IOPaintClient, images: list[str], args: argparse.Namespace, output_dir: str
) -> int:
    masks: object = args.mask
    if args.mask_dir:
        masks = _masks_by_name(images, Path(args.mask_dir))
    started = time.monotonic()
    results = client.batch_process(
        images,
        output_dir,
        masks=masks,  # type: ignore[arg-type]
        watermark=args.watermark,
        concurrency=args.concurrency,
        progress=False if args.no_progress else None,
    )
    wall = time.monotonic() - started
    _print_summary(results, sys.stdout)
    failed = sum(not item.ok for item in results)
    note = (
        f"{len(results)} images: {len(results) - failed} ok, {failed} failed in {_duration(wall)}"
    )
    quota = next(
        (
            item.error
            for item in results
            if isinstance(item.error, RateLimitError) and item.error.quota_exceeded
        ),
        None,
    )
    limits = client.rate_limit
    minimum = limits.minimum_seconds(len(results))
    if quota is not None:
        resets = ""
        if quota.reset is not None:
            when = datetime.fromtimestamp(quota.reset, tz=timezone.utc)
            resets = f" (it starts again {when:%Y-%m-%d %H:%M} UTC)"
        note += f"; the key's quota ran out{resets}"
    elif minimum is not None and limits.interval is not None:
        note += (
            f"; the rate limit (burst {limits.limit}, one request per {limits.interval:.1f} s) "
            f"allows it in no less than {_duration(minimum)}"
        )
    print(note + ".")
    return 1 if failed else 0


def detect(client: IOPaintClient, args: argparse.Namespace) -> int:
    if args.output:
        mask = client.detect_mask(args.image, output=args.output)
        print(f"{args.image} -> {args.output} (mask, {len(mask)} bytes)")
        return 0
    detection = client.detect(args.image)
    if args.json:
        print(json.dumps(detection.raw, indent=2))
    else:
        _print_detection(detection)
    return 0


def stats(client: IOPaintClient, args: argparse.Namespace) -> int:
    usage = client.stats()
    if args.json:
        print(json.dumps(usage.raw, indent=2))
    else:
        _print_stats(usage)
    return 0


def health(client: IOPaintClient, args: argparse.Namespace) -> int:
    status = client.health()
    if args.json:
        print(json.dumps(status.raw, indent=2))
    else:
        _print_health(status)
    return 0 if status.healthy else 1


# -- output -----------------------------------------------------------------------------


def _print_summary(results: list[BatchItem], out: TextIO) -> None:
    width = max([len("image"), *(len(item.path) for item in results)])
    out.write(f"{'image':<{width}}  result  output or error\n")
    for item in results:
        if item.ok:
            seconds = f" ({item.processing_time:.2f} s)" if item.processing_time is not None else ""
            out.write(f"{item.path:<{width}}  ok      {item.output}{seconds}\n")
        else:
            reason = " ".join(str(item.error).split())
            if len(reason) > ERROR_COLUMN_WIDTH:
                reason = reason[: ERROR_COLUMN_WIDTH - 1] + "…"
            out.write(f"{item.path:<{width}}  FAILED  {reason}\n")


def _print_detection(detection: Detection) -> None:
    width, height = detection.image_size
    print(
        f"{len(detection.regions)} regions, {detection.coverage:.1%} of the {width}x{height} "
        f"image ({detection.processing_time:.2f} s)"
    )
    for region in detection.regions:
        box = region.box
        text = f" {region.text!r}" if region.text else ""
        print(
            f"  {region.kind:<8} at {box.x},{box.y} {box.width}x{box.height} "
            f"score {region.score:.2f}{text}"
        )


def _print_stats(usage: Stats) -> None:
    print(f"plan:            {usage.plan or '?'}")
    if usage.quota:
        resets = datetime.fromtimestamp(usage.quota.resets_at, tz=timezone.utc)
        print(
            f"quota:           {usage.quota.used} of {usage.quota.limit} this {usage.quota.period}"
            f" (resets {resets:%Y-%m-%d %H:%M} UTC)"
        )
    print(f"requests:        {usage.total} ({usage.success} ok, {usage.failed} failed)")
    total, average = usage.total_processing_time, usage.avg_processing_time
    print(f"processing time: {total:.1f} s, {average:.2f} s avg")
    if usage.rate_limited is not None:
        print(f"rate limited:    {usage.rate_limited}")
    limit = usage.rate_limit
    if limit.limit is not None:
        print(f"rate limit:      {limit.remaining} of {limit.limit} requests available now")


def _print_health(status: Health) -> None:
    gpu = {True: "yes", False: "no"}.get(status.gpu_available, "?")  # type: ignore[call-overload]
    line = f"{status.status}: model {status.model} on {status.device} (GPU available: {gpu})"
    if status.detail:
        line += f": {status.detail}"
    print(line)


# -- helpers ----------------------------------------------------------------------------


def _masks_by_name(images: list[str], directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise ValueError(f"--mask-dir {directory} is not a directory")
    by_stem: dict[str, Path] = {}
    for candidate in sorted(directory.iterdir()):
        if candidate.is_file():
            by_stem.setdefault(candidate.stem, candidate)
    return {image: by_stem[Path(image).stem] for image in images if Path(image).stem in by_stem}


def _names_directory(output: str) -> bool:
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    return f"{whole // 60}m{whole % 60:02d}s"


def _fail(message: str) -> int:
    print(f"iopaint: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iopaint",
        description="Remove watermarks with the IOPaint API (key from IOPAINT_API_KEY).",
    )
    parser.add_argument("--version", action="version", version=f"iopaint-sdk {__version__}")
    parser.add_argument(
        "--base-url", help="the service (default: IOPAINT_BASE_URL, else http://localhost:8080)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for one answer (120)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    remover = commands.add_parser("remove", help="remove watermarks from one image or many")
    remover.add_argument("images", nargs="+", metavar="IMAGE")
    remover.add_argument("-m", "--mask", help="mask (white = remove) for every image")
    remover.add_argument("--mask-dir", help="folder of masks named like the images (batch)")
    remover.add_argument(
        "-w", "--watermark", help="a watermark profile's id (wm_...): invert that mark's blend"
    )
    remover.add_argument(
        "-o",
        "--output",
        help="output file (one image; default IMAGE-clean.png) or folder (many; default cleaned/)",
    )
    remover.add_argument(
        "-j",
        "--concurrency",
        type=int,
        default=None,
        help="requests at once (4; the rate limit may allow fewer)",
    )
    remover.add_argument("--no-progress", action="store_true", help="no progress bar")
    remover.set_defaults(run=remove)

    detector = commands.add_parser("detect", help="find the watermark in an image")
    detector.add_argument("image", metavar="IMAGE")
    detector.add_argument("-o", "--output", help="write the mask PNG here")
    detector.add_argument("--json", action="store_true", help="print the raw JSON")
    detector.set_defaults(run=detect)

    stats_parser = commands.add_parser("stats", help="usage, plan and quota of the key")
    stats_parser.add_argument("--json", action="store_true", help="print the raw JSON")
    stats_parser.set_defaults(run=stats)

    health_parser = commands.add_parser("health", help="whether the service is up (exit 1 if not)")
    health_parser.add_argument("--json", action="store_true", help="print the raw JSON")
    health_parser.set_defaults(run=health)
    return parser
