"""Send a batch through `batch_process` and show how the client paced itself.

    IOPAINT_API_KEY=sk_... python clients/python/examples/pace_demo.py -n 20 [--base-url URL]

Prints the wall time, the 429s the transport saw (answers the client waited out and
retried) against those surfaced to the caller (images that failed with RateLimitError),
and the least time the key's limit allows: with burst B and rate r, (N - B) / r. B and r
come from --burst/--rate when given, else from what the client learned of the headers.

The images are small generated photos with a box mask (Pillow), unless --image and
--mask name real files. Every image spends a unit of the key's quota.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from iopaint_sdk import IOPaintClient, RateLimitError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--images", type=int, default=20, help="batch size (20)")
    parser.add_argument("--base-url", default=None, help="default: IOPAINT_BASE_URL")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--burst", type=int, help="the key's burst, for the minimum")
    parser.add_argument("--rate", type=float, help="the key's rate, requests per minute")
    parser.add_argument("--image", type=Path, help="image to send N times")
    parser.add_argument("--mask", type=Path, help="its mask (white = remove)")
    parser.add_argument("--size", type=int, default=128, help="generated images' side (128)")
    args = parser.parse_args()
    if not os.environ.get("IOPAINT_API_KEY"):
        parser.error("set IOPAINT_API_KEY")

    refusals_seen = 0

    def count(response: httpx.Response) -> None:
        nonlocal refusals_seen
        if response.status_code == 429:
            refusals_seen += 1

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        images, mask = inputs(folder, args)
        http = httpx.Client(
            timeout=httpx.Timeout(120.0, connect=10.0), event_hooks={"response": [count]}
        )
        with http, IOPaintClient(base_url=args.base_url, http_client=http) as client:
            started = time.monotonic()
            results = client.batch_process(
                images, folder / "out", masks=mask, concurrency=args.concurrency
            )
            wall = time.monotonic() - started
            learned = client.rate_limit

    surfaced = sum(isinstance(item.error, RateLimitError) for item in results)
    failed = [item for item in results if not item.ok]
    burst = args.burst if args.burst is not None else learned.limit
    interval = 60.0 / args.rate if args.rate else learned.interval
    ok = len(results) - len(failed)
    print(f"images:                 {len(results)} ({ok} ok, {len(failed)} failed)")
    print(f"wall time:              {wall:.1f} s")
    print(f"429s seen by transport: {refusals_seen}")
    print(f"429s surfaced:          {surfaced}")
    if burst is not None and interval is not None:
        minimum = max(0, len(results) - burst) * interval
        source = "given" if args.burst is not None and args.rate else "learned from the headers"
        formula = f"({len(results)} - {burst}) x {interval:.2f} s"
        print(f"theoretical minimum:    {minimum:.1f} s = {formula} (burst and rate {source})")
        if minimum:
            print(f"wall / minimum:         {wall / minimum:.3f}")
    for item in failed:
        print(f"failed: {item.path}: {item.error}", file=sys.stderr)
    return 1 if failed else 0


def inputs(folder: Path, args: argparse.Namespace) -> tuple[list[Path], Path]:
    if args.image:
        if not args.mask:
            raise SystemExit("--image needs --mask (this server may require one)")
        return [args.image] * args.images, args.mask
    from PIL import Image, ImageDraw

    side = args.size
    images = []
    for index in range(args.images):
        picture = Image.new("RGB", (side, side), (40 + index * 7 % 200, 120, 200))
        ImageDraw.Draw(picture).text((side // 4, side // 2), f"SAMPLE {index}", fill="white")
        path = folder / f"photo-{index:03d}.png"
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        path.write_bytes(buffer.getvalue())
        images.append(path)
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rectangle(
        (side // 4 - 2, side // 2 - 2, side - 4, side // 2 + 14), fill=255
    )
    mask_path = folder / "mask.png"
    mask.save(mask_path)
    return images, mask_path


if __name__ == "__main__":
    raise SystemExit(main())
