"""Remove-watermark with a watermark profile against the same request with the exact mask,
through a real `bentoml serve`: time and quality, side by side.

    .venv/bin/python benchmarks/profile_removal.py                          # 4096x3072, OpenCV
    .venv/bin/python benchmarks/profile_removal.py --size 2048x1536 --requests 3
    .venv/bin/python benchmarks/profile_removal.py --format jpeg            # a JPEG q90 upload
    .venv/bin/python benchmarks/profile_removal.py --model lama --weights big-lama.pt

Each photo of the `benchmark` split of training.photos (`python -m training.photos fetch`
once) is cropped to the size, and a white text mark is blended onto it at each opacity
(`I = a W + (1 - a) J`). The requests alternate (mask, profile, mask, profile ...) so the
machine's drift hits both alike. Printed per opacity: median client latency and the
server's X-Processing-Time for both, their ratio (the goal: profile at most 2x the mask),
X-Removal, and PSNR inside the mark's region and over the whole image for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.images import decode, encode
from tests.server import UNLIMITED, create_key, service_env, start_service
from training.photos import load, photos

REMOVE = "/api/v1/remove-watermark"


def text_mark(width: int, height: int, opacity: float) -> np.ndarray:
    layer = Image.new("L", (width, height), 0)
    font = ImageFont.load_default(size=int(height * 0.7))
    ImageDraw.Draw(layer).text((8, height // 10), "© STUDIO", fill=255, font=font)
    rgba = np.zeros((height, width, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.rint(np.asarray(layer, np.float32) * opacity).astype(np.uint8)
    return rgba


def cropped(image: np.ndarray, width: int, height: int) -> np.ndarray:
    scale = max(width / image.shape[1], height / image.shape[0])
    if scale > 1:
        size = (round(image.shape[1] * scale) + 1, round(image.shape[0] * scale) + 1)
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def stamp(photo: np.ndarray, rgba: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    out = photo.astype(np.float32)
    x, y = at
    h, w = rgba.shape[:2]
    alpha = rgba[..., 3:4] / 255.0
    out[y : y + h, x : x + w] = alpha * rgba[..., :3] + (1 - alpha) * out[y : y + h, x : x + w]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    error = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean((error if where is None else error[where]) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--size", default="4096x3072")
    parser.add_argument("--opacities", default="0.25,0.5,0.8")
    parser.add_argument("--requests", type=int, default=2, help="of each kind, per row")
    parser.add_argument("--photos", type=int, default=2, help="benchmark photos used")
    parser.add_argument("--model", default="opencv")
    parser.add_argument("--weights")
    parser.add_argument(
        "--format",
        choices=("png", "jpeg"),
        default="png",
        help="how the marked photo is uploaded (jpeg: quality 90, 4:2:0 chroma)",
    )
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    opacities = [float(part) for part in args.opacities.split(",")]
    sources = photos("benchmark", photos_only=True)[: args.photos]

    with tempfile.TemporaryDirectory() as folder:
        # A 4096x3072 photo as PNG is over the default 10 MB upload limit.
        overrides = {
            "IOPAINT_MODEL": args.model,
            "IOPAINT_DETECTION": "false",
            "IOPAINT_MAX_UPLOAD_MB": "64",
        }
        if args.weights:
            overrides["IOPAINT_LAMA_WEIGHTS"] = args.weights
        env = service_env(Path(folder), **overrides)
        key = create_key(env, plan="enterprise", name="bench", limits=UNLIMITED)
        service = start_service(Path(folder), env)
        try:
            with httpx.Client(
                base_url=service.base_url, headers={"X-API-Key": key}, timeout=600
            ) as client:
                print(
                    f"{'photo':14} {'a':>5} {'mask s':>7} {'prof s':>7} {'ratio':>6} "
                    f"{'server':>13} {'X-Removal':9} {'in mask/prof dB':>16} "
                    f"{'whole mask/prof dB':>19}"
                )
                for source in sources:
                    clean = cropped(load(source), width, height)
                    for opacity in opacities:
                        run_row(client, source.name, clean, opacity, args.requests, args.format)
        finally:
            service.stop()


def run_row(
    client: httpx.Client,
    name: str,
    clean: np.ndarray,
    opacity: float,
    requests: int,
    upload: str,
) -> None:
    height, width = clean.shape[:2]
    rgba = text_mark(width // 6, height // 20, opacity)
    at = (width - rgba.shape[1] - width // 20, height - rgba.shape[0] - height // 20)
    marked = stamp(clean, rgba, at)
    mask = np.zeros((height, width), np.uint8)
    x, y = at
    mask[y : y + rgba.shape[0], x : x + rgba.shape[1]] = np.where(rgba[..., 3] > 0, 255, 0)
    profile = client.post(
        "/api/v1/watermarks", files={"watermark": ("mark.png", encode(rgba, "PNG"), "image/png")}
    ).json()
    if upload == "jpeg":
        image, image_type = encode(marked, "JPEG", quality=90), "image/jpeg"
    else:
        image, image_type = encode(marked, "PNG"), "image/png"
    mask_png = encode(mask, "PNG")
    times: dict[str, list[float]] = {"mask": [], "profile": []}
    server: dict[str, list[float]] = {"mask": [], "profile": []}
    answers: dict[str, httpx.Response] = {}
    for _ in range(requests):
        for kind in ("mask", "profile"):
            files = {"image": (f"marked.{upload}", image, image_type)}
            data = {}
            if kind == "mask":
                files["mask"] = ("mask.png", mask_png, "image/png")
            else:
                data["watermark"] = profile["id"]
            started = time.perf_counter()
            answer = client.post(REMOVE, files=files, data=data)
            times[kind].append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise SystemExit(f"{kind}: {answer.status_code} {answer.text[:300]}")
            server[kind].append(float(answer.headers["X-Processing-Time"]))
            answers[kind] = answer
    client.delete(f"/api/v1/watermarks/{profile['id']}")
    inside = mask > 0
    results = {kind: np.asarray(decode(answers[kind].content)) for kind in answers}
    region_db = [psnr(results[kind], clean, inside) for kind in ("mask", "profile")]
    whole_db = [psnr(results[kind], clean) for kind in ("mask", "profile")]
    mask_s, profile_s = statistics.median(times["mask"]), statistics.median(times["profile"])
    print(
        f"{name[:14]:14} {opacity:5.2f} {mask_s:7.2f} {profile_s:7.2f} {profile_s / mask_s:6.2f} "
        f"{statistics.median(server['mask']):6.2f}/{statistics.median(server['profile']):6.2f} "
        f"{answers['profile'].headers.get('X-Removal', '?'):9} "
        f"{region_db[0]:7.1f}/{region_db[1]:7.1f}  {whole_db[0]:8.1f}/{whole_db[1]:8.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
