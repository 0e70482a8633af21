"""Encode time and bytes per result format at 4096x3072, and the PNG settings behind the choice.

    .venv/bin/python benchmarks/encode_formats.py                 # 3 runs, every variant
    .venv/bin/python benchmarks/encode_formats.py --quick         # 1 run, the service's encoders
    .venv/bin/python benchmarks/encode_formats.py --photo a.jpg --photo b.png --size 2048x1536

Each photo is resized (Lanczos) to the size, as a model's output would be, and encoded by
every variant; runs interleave the variants (A B C, A B C, ...) so that a change in the
machine's load hits them alike. `service` rows are what the API sends (`api/images.py`);
`png ...` and `webp ...` rows are the settings measured for the choices in `api/images.py`
(the size column is against PNG's setting before them, Pillow's zlib level 1). Defaults
to the reference sample photo beside the repository and a synthetic noisy gradient
(`tests/images.py`), which compresses far worse than a photo, raw and after a JPEG round
trip (what the service benchmark's uploads become).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.images import encode_result
from api.output_format import OutputFormat
from settings import Settings
from tests.images import photo

REFERENCE_PHOTO = (
    Path(__file__).resolve().parent.parent.parent / "shared/reference/samples/watermark.jpg"
)
Encoder = Callable[[np.ndarray], bytes]


def service_encoders(settings: Settings) -> dict[str, Encoder]:
    def encoder(output: OutputFormat) -> Encoder:
        return lambda rgb: encode_result(
            output,
            rgb,
            None,
            None,
            webp_quality=settings.webp_quality,
            jpeg_quality=settings.jpeg_quality,
        )

    return {
        "service png": encoder(OutputFormat.PNG),
        f"service webp q{settings.webp_quality}": encoder(OutputFormat.WEBP),
        f"service jpeg q{settings.jpeg_quality}": encoder(OutputFormat.JPEG),
    }


def webp_alternatives(quality: int) -> dict[str, Encoder]:
    def pillow(method: int) -> Encoder:
        def encode(rgb: np.ndarray) -> bytes:
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="WEBP", quality=quality, method=method)
            return buffer.getvalue()

        return encode

    return {f"webp q{quality} method {method}": pillow(method) for method in (0, 2, 4)}


def png_alternatives() -> dict[str, Encoder]:
    def pillow(**options: object) -> Encoder:
        def encode(rgb: np.ndarray) -> bytes:
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="PNG", **options)
            return buffer.getvalue()

        return encode

    def opencv(*params: int) -> Encoder:
        def encode(rgb: np.ndarray) -> bytes:
            ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), list(params))
            if not ok:
                raise RuntimeError("cv2.imencode failed")
            return data.tobytes()

        return encode

    return {
        "png pillow level 1 (before, kept)": pillow(compress_level=1),
        "png pillow level 1 rle": pillow(compress_level=1, compress_type=3),
        "png pillow level 1 huffman": pillow(compress_level=1, compress_type=2),
        "png pillow level 2": pillow(compress_level=2),
        "png pillow level 6 (zlib default)": pillow(compress_level=6),
        "png opencv level 1": opencv(cv2.IMWRITE_PNG_COMPRESSION, 1),
        "png opencv level 1 rle": opencv(
            cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE
        ),
        "png opencv level 1 huffman": opencv(
            cv2.IMWRITE_PNG_COMPRESSION,
            1,
            cv2.IMWRITE_PNG_STRATEGY,
            cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
        ),
    }


def inputs(paths: list[Path], width: int, height: int) -> dict[str, np.ndarray]:
    chosen = {}
    for path in paths:
        picture = Image.open(path).convert("RGB")
        resized = picture.resize((width, height), Image.Resampling.LANCZOS)
        chosen[path.name] = np.asarray(resized)
    synthetic = photo(width, height, seed=7)
    chosen["synthetic noisy gradient"] = synthetic
    # As the service benchmark's uploads reach the model: JPEG q90, decoded.
    buffer = io.BytesIO()
    Image.fromarray(synthetic).save(buffer, format="JPEG", quality=90)
    chosen["same, JPEG q90 decoded"] = np.asarray(Image.open(buffer).convert("RGB"))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", default="4096x3072", help="WIDTHxHEIGHT of the encoded image")
    parser.add_argument("--photo", type=Path, action="append", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run, the service's encoders")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    paths = args.photo or ([REFERENCE_PHOTO] if REFERENCE_PHOTO.exists() else [])
    runs = 1 if args.quick else args.runs
    encoders = service_encoders(Settings())
    if not args.quick:
        encoders |= png_alternatives() | webp_alternatives(Settings().webp_quality)
    print(f"{width}x{height}, runs={runs}, load average before: {_load()}")
    print(f"{'image':<26} {'variant':<36} {'median s':>9} {'best s':>8} {'MB':>8} {'size':>7}")
    for label, rgb in inputs(paths, width, height).items():
        times: dict[str, list[float]] = {name: [] for name in encoders}
        sizes: dict[str, int] = {}
        for _ in range(runs):
            for name, encode in encoders.items():
                started = time.perf_counter()
                sizes[name] = len(encode(rgb))
                times[name].append(time.perf_counter() - started)
        before = sizes.get("png pillow level 1 (before, kept)", sizes["service png"])
        for name in encoders:
            print(
                f"{label:<26} {name:<36} {statistics.median(times[name]):9.3f} "
                f"{min(times[name]):8.3f} {sizes[name] / 1e6:8.2f} {sizes[name] / before:7.2f}",
                flush=True,
            )
    print(f"load average after: {_load()}")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
