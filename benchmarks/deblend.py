"""How well de-blending recovers the photo under a semi-transparent mark, against inpainting.

    .venv/bin/python -m training.photos fetch          # photos and fonts, once
    .venv/bin/python benchmarks/deblend.py --quick     # 3 held-out photos at 512 px (~10 min)
    .venv/bin/python benchmarks/deblend.py             # all 9 at 768 px
    .venv/bin/python benchmarks/deblend.py --lama      # inpaint with LaMa, not OpenCV
    .venv/bin/python benchmarks/deblend.py --split train   # the same on training photos (tuning)
    .venv/bin/python benchmarks/deblend.py --paths profile --no-timing   # one path only
    .venv/bin/python benchmarks/deblend.py --split train --photos 4 --samples s.csv   # each sample
    .venv/bin/python benchmarks/deblend.py --split train --invert-estimates --samples s.csv
        # estimated marks inverted over flat content too: the figures to choose its threshold
    .venv/bin/python benchmarks/deblend.py --split train --seed 15 --samples s.csv   # other marks
    .venv/bin/python benchmarks/deblend.py --split train --paths profile --without-mask

Samples: held-out photos (`training.photos`, split ``benchmark``; never the packages reserved
for acceptance), logos written in Liberation fonts (`training.blends.logo`) in white, black
and a brand colour, at opacities 0.15 to 0.9, saved as PNG and as JPEG q90. Paths:

- ``inpaint``: the exact mask (α > 0.03) inpainted; the baseline every path is compared with;
- ``profile``: the logo file is the template; in the photo it appears at another scale
  (0.45 to 1.8), at a random place, sometimes partly outside the frame;
- ``tiled``: a smaller logo stamped on a lattice over the whole photo; no template;
- ``batch N``: N crops of the photos carrying one mark at one place; `estimate_template_at`
  on all N, then each image de-blended with the estimate, tried first where it was seen.

Each de-blending request also carries the exact mask, which is what it inpaints if it falls
back, so "never worse than inpainting" is checked on the same pixels. With
``--without-mask`` it does not (as a client who sends only the profile): a fallback then
inpaints where the mark was placed, and a refusal ("nothing to remove") leaves the image as
it was; the baseline stays the exact mask inpainted.

Printed: a markdown table per path, encoding and opacity band (<= 0.5, > 0.5): PSNR and SSIM
inside the mark's region (α > 0.03) and over the whole image, the inpainting baseline's
region PSNR on the same samples, how often each removal ran (deblend / mixed / inpaint), and
a flag where de-blending scored below inpainting. Then the time of a profile removal of a
4096x3072 photo against the same request with a mask (OpenCV inpainting of that mask).
Before/after crops (input | result | truth) go to --out as PNGs.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runners.compositing import blend
from runners.deblend import DeblendError, WatermarkTemplate, estimate_template_at, remove_blended
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.inpainter import Inpainter
from runners.opencv_inpainter import OpenCVInpainter
from training import photos
from training.blends import Blended, blend_logo, logo, tile_logo
from training.watermarks import Encoding

OPACITIES = (0.15, 0.3, 0.5, 0.7, 0.9)
COLOURS = ((255, 255, 255), (0, 0, 0), (214, 40, 60))
WORDS = ("Lumen Studio", "ARCVISTA", "Norden Photo", "kelvyn")
PROFILE_SCALES = (0.45, 0.7, 1.3, 1.8)
ENCODINGS: tuple[Encoding, ...] = ("png", "jpeg")
BATCH_SIZES = (4, 8, 16)
JPEG_CHROMA = ChromaGrid((2, 2))
"""Pillow saves JPEG q90 with 4:2:0 chroma: what the service reads from such a file's header."""
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "artifacts" / "deblend"


@dataclass
class Outcome:
    path: str
    encoding: str
    opacity: float
    psnr_region: float
    ssim_region: float
    psnr_image: float
    ssim_image: float
    baseline_region: float
    """Inpainting the exact mask of the same sample, inside the region."""
    removal: str
    detail: str
    """How the removal went (`Deblended.detail`), for the per-sample listing."""

    @property
    def row(self) -> tuple[str, str, str]:
        return self.path, self.encoding, "<= 0.5" if self.opacity <= 0.5 else "> 0.5"


@dataclass
class Table:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def rows(self) -> dict[tuple[str, str, str], list[Outcome]]:
        grouped: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            grouped[outcome.row].append(outcome)
        return grouped

    def write_samples(self, path: Path) -> None:
        """Every sample, a CSV row each: what the table's means are made of."""
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[f.name for f in fields(Outcome)])
            writer.writeheader()
            for outcome in self.outcomes:
                writer.writerow(
                    {
                        name: round(value, 4) if isinstance(value, float) else value
                        for name, value in asdict(outcome).items()
                    }
                )

    def print(self) -> None:
        print(
            "| path | encoding | opacity | n | PSNR region | SSIM region | PSNR image "
            "| SSIM image | inpaint PSNR region | deblend/mixed/inpaint | flag |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (path, encoding, band), outcomes in sorted(self.rows().items(), key=_row_order):
            psnr = statistics.fmean(o.psnr_region for o in outcomes)
            baseline = statistics.fmean(o.baseline_region for o in outcomes)
            counts = "/".join(
                str(sum(o.removal == kind for o in outcomes))
                for kind in ("deblend", "mixed", "inpaint")
            )
            refused = sum(o.removal == "refused" for o in outcomes)
            if refused:
                counts += f" ({refused} refused)"
            flag = "" if path == "inpaint" or psnr >= baseline - 0.05 else "BELOW INPAINTING"
            print(
                f"| {path} | {encoding} | {band} | {len(outcomes)} | {psnr:.2f} "
                f"| {statistics.fmean(o.ssim_region for o in outcomes):.4f} "
                f"| {statistics.fmean(o.psnr_image for o in outcomes):.2f} "
                f"| {statistics.fmean(o.ssim_image for o in outcomes):.4f} "
                f"| {baseline:.2f} | {counts} | {flag} |"
            )
        worse = sum(
            o.psnr_region < o.baseline_region - 0.05 for o in self.outcomes if o.path != "inpaint"
        )
        print(f"\nSamples where de-blending scored below inpainting the same mask: {worse}")


def _row_order(item: tuple[tuple[str, str, str], list[Outcome]]) -> tuple[int, str, str]:
    path, encoding, band = item[0]
    order = {"inpaint": 0, "profile": 1, "tiled": 2}
    rank = order[path] if path in order else 3 + int(path.split()[-1])
    return rank, encoding, band


def psnr(result: np.ndarray, clean: np.ndarray, region: np.ndarray | None = None) -> float:
    error = result.astype(np.float64) - clean.astype(np.float64)
    if region is not None:
        error = error[region]
    mse = max(float((error**2).mean()), 1e-10)
    return min(99.0, 10 * float(np.log10(255.0**2 / mse)))


def ssim(result: np.ndarray, clean: np.ndarray, region: np.ndarray | None = None) -> float:
    _, full = structural_similarity(
        clean, result, channel_axis=2, data_range=255, full=True, gaussian_weights=True
    )
    values = full.mean(axis=2)
    return float(values[region].mean() if region is not None else values.mean())


def inpaint_mask(inpainter: Inpainter, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the service returns for a request with `mask`: inpainted, composited."""
    return blend(image, inpainter.inpaint(image, mask), mask)


class Bench:
    def __init__(self, args: argparse.Namespace, inpainter: Inpainter) -> None:
        self.args = args
        self.inpainter = inpainter
        self.table = Table()
        self.rng = np.random.default_rng(args.seed)
        fonts = photos.font_files("liberation")
        self.fonts = fonts or [None]
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.crops_written: set[str] = set()

    def logo(self, index: int, height: int, colour: tuple[int, int, int]) -> np.ndarray:
        font = self.fonts[index % len(self.fonts)]
        return logo(WORDS[index % len(WORDS)], colour, height=height, font=font)

    def score(
        self,
        path: str,
        sample: Blended,
        opacity: float,
        encoding: str,
        run: Callable[[np.ndarray], tuple[np.ndarray, str, str]],
    ) -> None:
        region = sample.mask > 0
        if not region.any():
            return
        baseline = inpaint_mask(self.inpainter, sample.image, sample.mask)
        if path == "inpaint":
            result, removal, detail = baseline, "inpaint", "the exact mask"
        else:
            result, removal, detail = run(sample.image)
        outcome = Outcome(
            path=path,
            encoding=encoding,
            opacity=opacity,
            psnr_region=psnr(result, sample.clean, region),
            ssim_region=ssim(result, sample.clean, region),
            psnr_image=psnr(result, sample.clean),
            ssim_image=ssim(result, sample.clean),
            baseline_region=psnr(baseline, sample.clean, region),
            removal=removal,
            detail=detail,
        )
        self.table.add(outcome)
        key = f"{path.replace(' ', '')}_{encoding}_{'low' if opacity <= 0.5 else 'high'}"
        if key not in self.crops_written:
            self.crops_written.add(key)
            _write_crop(self.out / f"{key}.png", sample, result, region)

    def remove(
        self,
        image: np.ndarray,
        template: WatermarkTemplate | None,
        mask: np.ndarray,
        encoding: str,
        seen_at: tuple[int, int] | None = None,
        estimated: bool = False,
    ) -> tuple[np.ndarray, str, str]:
        chroma = JPEG_CHROMA if encoding == "jpeg" else FULL_CHROMA
        try:
            result = remove_blended(
                image,
                template=template,
                inpainter=self.inpainter,
                mask=None if self.args.without_mask else mask,
                chroma=chroma,
                seen_at=seen_at,
                # Told it is not an estimate, removal keeps no rule for flat content.
                estimated=estimated and not self.args.invert_estimates,
            )
        except DeblendError as error:
            if not self.args.without_mask:
                raise AssertionError(f"raised with a mask: {error}") from error
            # The service answers 422 and the client keeps the image as it was.
            return image, "refused", str(error)
        return result.image, result.removal, result.detail


def _write_crop(path: Path, sample: Blended, result: np.ndarray, region: np.ndarray) -> None:
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    top, left = max(0, rows[0] - 16), max(0, cols[0] - 16)
    bottom = min(region.shape[0], max(rows[-1] + 17, top + 64), top + 256)
    right = min(region.shape[1], max(cols[-1] + 17, left + 64), left + 320)
    window = np.s_[top:bottom, left:right]
    strip = np.concatenate([sample.image[window], result[window], sample.clean[window]], axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))


def run_profiles(bench: Bench, pictures: list[np.ndarray]) -> None:
    index = 0
    for clean in pictures:
        height, width = clean.shape[:2]
        for opacity in OPACITIES:
            for encoding in ENCODINGS:
                colour = COLOURS[index % len(COLOURS)]
                scale = PROFILE_SCALES[index % len(PROFILE_SCALES)]
                rgba = bench.logo(index, max(24, round(min(height, width) * 0.12)), colour)
                mark_h, mark_w = round(rgba.shape[0] * scale), round(rgba.shape[1] * scale)
                if mark_w >= width - 8:
                    scale *= (width - 16) / mark_w
                    mark_h, mark_w = round(rgba.shape[0] * scale), round(rgba.shape[1] * scale)
                # Every third sample hangs partly (a quarter to a third) outside the frame.
                if index % 3 == 2:
                    left = width - round(mark_w * bench.rng.uniform(0.67, 0.75))
                else:
                    left = int(bench.rng.integers(0, max(1, width - mark_w)))
                top = int(bench.rng.integers(0, max(1, height - mark_h)))
                sample = blend_logo(
                    clean,
                    rgba,
                    top=top,
                    left=left,
                    scale=scale,
                    opacity=opacity,
                    encoding=encoding,
                )
                template = WatermarkTemplate.from_rgba(rgba)
                for path in ("inpaint", "profile"):
                    bench.score(
                        path,
                        sample,
                        opacity,
                        encoding,
                        lambda image, s=sample, t=template, e=encoding: bench.remove(
                            image, t, s.mask, e
                        ),
                    )
                index += 1


def run_tiled(bench: Bench, pictures: list[np.ndarray]) -> None:
    index = 0
    for clean in pictures:
        height, width = clean.shape[:2]
        for opacity in OPACITIES:
            encoding = ENCODINGS[index % 2]
            colour = COLOURS[index % len(COLOURS)]
            rgba = bench.logo(index + 1, max(14, round(min(height, width) * 0.05)), colour)
            step = (
                round(rgba.shape[0] * bench.rng.uniform(2.2, 3.0)),
                round(rgba.shape[1] * bench.rng.uniform(1.2, 1.6)),
            )
            sample = tile_logo(
                clean,
                rgba,
                step=step,
                shear=step[1] // 2,
                offset=(int(bench.rng.integers(0, step[0])), int(bench.rng.integers(0, step[1]))),
                opacity=opacity,
                encoding=encoding,
            )
            bench.score(
                "tiled",
                sample,
                opacity,
                encoding,
                lambda image, s=sample, e=encoding: bench.remove(image, None, s.mask, e),
            )
            index += 1


def _views(pictures: list[np.ndarray], count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """`count` different crops (mirrored every other round) of `pictures`, all of `size`."""
    height, width = size
    out = []
    for index in range(count):
        picture = pictures[index % len(pictures)]
        round_ = index // len(pictures)
        if round_ % 2:
            picture = picture[:, ::-1]
        ph, pw = picture.shape[:2]
        top = (ph - height) * ((round_ * 2 + index) % 3) // 2
        left = (pw - width) * ((round_ + index) % 3) // 2
        out.append(np.ascontiguousarray(picture[top : top + height, left : left + width]))
    return out


def run_batches(bench: Bench, pictures: list[np.ndarray], sizes: tuple[int, ...]) -> None:
    short = min(min(p.shape[:2]) for p in pictures)
    size = (short * 3 // 4, short)
    index = 0
    for count in sizes:
        for opacity in (0.3, 0.7) if bench.args.quick else OPACITIES:
            for encoding in ENCODINGS:
                colour = COLOURS[index % len(COLOURS)]
                rgba = bench.logo(index + 2, max(20, round(size[0] * 0.12)), colour)
                top = int(bench.rng.integers(0, size[0] - rgba.shape[0]))
                left = int(bench.rng.integers(0, max(1, size[1] - rgba.shape[1])))
                samples = [
                    blend_logo(view, rgba, top=top, left=left, opacity=opacity, encoding=encoding)
                    for view in _views(pictures, count, size)
                ]
                try:
                    estimate = estimate_template_at([s.image for s in samples])
                except DeblendError as error:
                    print(f"batch {count} {encoding} {opacity}: no estimate ({error})")
                    estimate = None
                for sample in samples:
                    if estimate is None:
                        bench.score(
                            f"batch {count}",
                            sample,
                            opacity,
                            encoding,
                            lambda image, s=sample: (
                                inpaint_mask(bench.inpainter, image, s.mask),
                                "inpaint",
                                "no estimate",
                            ),
                        )
                        continue
                    bench.score(
                        f"batch {count}",
                        sample,
                        opacity,
                        encoding,
                        lambda image, s=sample, t=estimate, e=encoding: bench.remove(
                            image, t.template, s.mask, e, seen_at=t.corner, estimated=True
                        ),
                    )
                index += 1


def time_large(bench: Bench, picture: np.ndarray, repeats: int) -> None:
    clean = cv2.resize(picture, (4096, 3072), interpolation=cv2.INTER_CUBIC)
    rgba = bench.logo(0, 160, (255, 255, 255))
    sample = blend_logo(clean, rgba, top=2200, left=1500, scale=1.6, opacity=0.35)
    template = WatermarkTemplate.from_rgba(rgba)
    masked, profiled = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        inpaint_mask(bench.inpainter, sample.image, sample.mask)
        masked.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = remove_blended(sample.image, template=template, inpainter=bench.inpainter)
        profiled.append(time.perf_counter() - start)
    region = sample.mask > 0
    print(
        f"\n4096x3072, profile (mark {rgba.shape[1]}x{rgba.shape[0]} at 1.6x): "
        f"with a mask {statistics.median(masked):.2f} s, with the profile "
        f"{statistics.median(profiled):.2f} s (median of {repeats}); ratio "
        f"{statistics.median(profiled) / statistics.median(masked):.2f}; removal "
        f"{result.removal}, region PSNR {psnr(result.image, clean, region):.2f} dB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 photos at 512 px")
    parser.add_argument("--split", choices=("benchmark", "train"), default="benchmark")
    parser.add_argument("--lama", action="store_true", help="inpaint with LaMa (needs weights)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="before/after crops")
    parser.add_argument("--no-timing", action="store_true", help="skip the 4096x3072 timing")
    parser.add_argument("--timing-only", action="store_true", help="only the 4096x3072 timing")
    parser.add_argument(
        "--paths",
        default="profile,tiled,batch",
        help="comma-separated paths to run (profile, tiled, batch); the timing is separate",
    )
    parser.add_argument("--photos", type=int, help="only the split's first N photos")
    parser.add_argument(
        "--seed",
        type=int,
        default=14,
        help="the draw of marks and placements (14: the tables in docs/deblend.md); another "
        "seed on the training photos gives more samples to tune on",
    )
    parser.add_argument("--samples", type=Path, help="write every sample's figures to this CSV")
    parser.add_argument(
        "--without-mask",
        action="store_true",
        help="de-blend without sending the exact mask (the API's basic usage): the mark is "
        "wherever the search puts it, and a refusal leaves the image as it was",
    )
    parser.add_argument(
        "--invert-estimates",
        action="store_true",
        help="invert estimated marks over flat content too (to re-derive FLAT_ESTIMATE_GRADIENT)",
    )
    args = parser.parse_args()
    if args.lama:
        from runners.loading import load_inpainter
        from settings import Settings

        inpainter: Inpainter = load_inpainter(Settings(model="lama"))
    else:
        inpainter = OpenCVInpainter()
    sources = photos.photos(args.split, photos_only=True)
    long_side = 512 if args.quick else 768
    if args.quick:
        sources = sources[:3]
    if args.photos:
        sources = sources[: args.photos]
    pictures = [photos.load(source, long_side=long_side) for source in sources]
    bench = Bench(args, inpainter)
    if args.timing_only:
        time_large(bench, pictures[0], repeats=1 if args.quick else 3)
        return
    started = time.perf_counter()
    paths = set(args.paths.split(","))
    if "profile" in paths:
        run_profiles(bench, pictures)
    if "tiled" in paths:
        run_tiled(bench, pictures)
    if "batch" in paths:
        run_batches(bench, pictures, BATCH_SIZES)
    print(
        f"{len(pictures)} {args.split} photos at {long_side} px, inpainter {inpainter.name}; "
        f"{time.perf_counter() - started:.0f} s\n"
    )
    bench.table.print()
    if args.samples:
        bench.table.write_samples(args.samples)
        print(f"Every sample: {args.samples}")
    if not args.no_timing:
        time_large(bench, pictures[0], repeats=1 if args.quick else 3)
    print(f"\nCrops (input | result | truth): {args.out}")


if __name__ == "__main__":
    main()
