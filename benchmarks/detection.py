"""How well the watermark detector finds marks, how tight its masks are, and how fast it runs.

    .venv/bin/python -m training.photos fetch                # photos and fonts, once
    .venv/bin/python benchmarks/detection.py                 # full: 9 held-out photos (~15 min)
    .venv/bin/python benchmarks/detection.py --quick         # 3 photos, fewer clean crops
    .venv/bin/python benchmarks/detection.py --split train   # the same on training photos
                                                             # (for tuning: never tune on held-out)

Samples: every held-out photo (`training.photos`, split ``benchmark``) at 1500 px on its
longer side, with one generated mark of each kind (`training.watermarks`: credit, logo, tiled,
badge) in Liberation fonts (training saw only DejaVu), once as JPEG q90 and once as PNG.
Ground truth: the generator's mask (alpha > MASK_MIN_ALPHA).

Printed:
- per kind: pixel recall, precision and IoU of the detected mask (pixels pooled over the
  kind's samples), share of marks found (recall >= 0.5), and PSNR inside the mark (ground-
  truth pixels) of removal with the detected mask and with the ground-truth mask, with the
  same inpainter (OpenCV Telea; `--no-inpaint` skips it), and their mean difference;
- false alarms on clean photos (each held-out photo whole and two crops, unwatermarked):
  how many have a mask over 0.5 % of the image, and the largest coverage;
- detection time: per megapixel over the samples, and at 1500x1004 and 4096x3072;
- the two real samples in ../shared/reference/samples against masks made from their
  cleaned versions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runners.compositing import blend
from runners.detection.combined import CombinedDetector, DetectorConfig, load_detector
from runners.opencv_inpainter import OpenCVInpainter
from training import photos, watermarks

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "samples"
"""``../shared/reference/samples`` beside the checkout."""
FALSE_ALARM_COVERAGE = 0.005
FOUND_RECALL = 0.5


@dataclass
class Score:
    hit: int = 0
    predicted: int = 0
    actual: int = 0
    found: int = 0
    count: int = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray) -> float:
        hit = int(np.count_nonzero(predicted & truth))
        actual = int(np.count_nonzero(truth))
        self.hit += hit
        self.predicted += int(np.count_nonzero(predicted))
        self.actual += actual
        self.count += 1
        recall = hit / max(actual, 1)
        self.found += recall >= FOUND_RECALL
        return recall

    @property
    def recall(self) -> float:
        return self.hit / max(self.actual, 1)

    @property
    def precision(self) -> float:
        return self.hit / max(self.predicted, 1)

    @property
    def iou(self) -> float:
        return self.hit / max(self.actual + self.predicted - self.hit, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 photos, 9 clean crops")
    parser.add_argument("--split", choices=["benchmark", "train"], default="benchmark")
    parser.add_argument("--long-side", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    parser.add_argument("--no-inpaint", action="store_true", help="skip the PSNR columns")
    parser.add_argument("--no-segmenter", action="store_true")
    parser.add_argument("--no-repeat", action="store_true")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="real samples dir")
    parser.add_argument("--dilate", type=int, default=None, help="override the mask dilation")
    args = parser.parse_args()

    detector = load_detector(
        DetectorConfig(
            threads=args.threads,
            text=not args.no_text,
            segmenter=not args.no_segmenter,
            repeat=not args.no_repeat,
            **({} if args.dilate is None else {"dilate_px": args.dilate}),
        )
    )
    print(f"detector models: {detector.models()}")
    sources = photos.photos(args.split, photos_only=True)
    if args.quick:
        sources = sources[:3]
    fonts = photos.font_files("liberation")
    inpainter = None if args.no_inpaint else OpenCVInpainter()

    scores: dict[str, Score] = defaultdict(Score)
    psnr: dict[str, list[tuple[float, float]]] = defaultdict(list)
    seconds_per_mp: list[float] = []
    for photo_index, source in enumerate(sources):
        clean = photos.load(source, long_side=args.long_side)
        for kind_index, kind in enumerate(watermarks.KINDS):
            for encoding_index, encoding in enumerate(("jpeg", "png")):
                rng = np.random.default_rng([args.seed, photo_index, kind_index, encoding_index])
                sample = watermarks.watermark(clean, kind, rng, fonts=fonts, encoding=encoding)
                started = time.perf_counter()
                detection = detector.detect(sample.image)
                elapsed = time.perf_counter() - started
                seconds_per_mp.append(
                    elapsed / (sample.image.shape[0] * sample.image.shape[1] / 1e6)
                )
                truth = sample.mask > 0
                predicted = detection.mask > 0
                recall = scores[kind].add(predicted, truth)
                line = (
                    f"  {source.name:14} {kind:6} {encoding:4} recall {recall:.2f} "
                    f"coverage {detection.coverage:.4f} regions "
                    f"{[r.kind for r in detection.regions][:6]} {elapsed:.2f} s"
                )
                if inpainter is not None:
                    detected_db = _removal_psnr(inpainter, sample, detection.mask)
                    truth_db = _removal_psnr(inpainter, sample, sample.mask)
                    psnr[kind].append((detected_db, truth_db))
                    line += f" PSNR {detected_db:.1f} vs {truth_db:.1f} dB"
                print(line, flush=True)

    clean_coverages: list[tuple[str, float]] = []
    clean_sets = list(_clean_set(args.split, args.long_side))
    if args.quick:
        clean_sets = clean_sets[:9]
    for name, image in clean_sets:
        detection = detector.detect(image)
        clean_coverages.append((name, detection.coverage))
        print(
            f"  clean {name:24} coverage {detection.coverage:.4f} "
            f"regions {[(r.kind, r.text) for r in detection.regions][:4]}",
            flush=True,
        )

    timing = _timings(detector, sources[0], fonts)
    real = _real_samples(detector, args.samples)

    print()
    print(
        f"split {args.split}: {len(sources)} photos x {len(watermarks.KINDS)} kinds x "
        "2 encodings (JPEG q90, PNG), long side "
        f"{args.long_side}; detector threads {args.threads or 'all cores'}"
    )
    print()
    print(
        "| kind | pixel recall | precision | IoU | found "
        "| PSNR detected mask | PSNR true mask | mean difference |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind in watermarks.KINDS:
        score = scores[kind]
        pairs = psnr.get(kind, [])
        if pairs:
            detected_db = statistics.mean(p[0] for p in pairs)
            truth_db = statistics.mean(p[1] for p in pairs)
            difference = statistics.mean(p[0] - p[1] for p in pairs)
            db = f"{detected_db:.1f} dB | {truth_db:.1f} dB | {difference:+.1f} dB"
        else:
            db = "— | — | —"
        print(
            f"| {kind} | {score.recall:.3f} | {score.precision:.3f} | {score.iou:.3f} | "
            f"{score.found}/{score.count} | {db} |"
        )
    alarms = [c for c in clean_coverages if c[1] > FALSE_ALARM_COVERAGE]
    largest = max(clean_coverages, key=lambda c: c[1])
    print()
    print(
        f"clean photos: {len(alarms)} of {len(clean_coverages)} with coverage > "
        f"{FALSE_ALARM_COVERAGE:.1%}; largest {largest[1]:.2%} ({largest[0]}); "
        f"any mask at all: {sum(c[1] > 0 for c in clean_coverages)}"
    )
    print(f"detection time: median {statistics.median(seconds_per_mp):.2f} s/MP over the samples")
    for label, seconds in timing:
        print(f"  {label}: {seconds:.2f} s (median of 3)")
    for line in real:
        print(line)


def _removal_psnr(
    inpainter: OpenCVInpainter, sample: watermarks.WatermarkedPhoto, mask: np.ndarray
) -> float:
    """PSNR against the clean photo, inside the ground-truth mark, of inpainting `mask`."""
    output = blend(sample.image, inpainter.inpaint(sample.image, mask), mask)
    region = sample.mask > 0
    error = (output[region].astype(np.float64) - sample.clean[region].astype(np.float64)) ** 2
    mse = float(error.mean()) if error.size else 0.0
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _clean_set(split: str, long_side: int):
    if split == "benchmark":
        yield from photos.clean_crops(long_side)
        return
    for source in photos.photos("train", photos_only=True):
        yield source.name, photos.load(source, long_side=long_side)


def _timings(
    detector: CombinedDetector, source: photos.PhotoSource, fonts: list[Path]
) -> list[tuple[str, float]]:
    rows = []
    photo = photos.load(source)
    for width, height in ((1500, 1004), (4096, 3072)):
        clean = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        tiled = watermarks.watermark(clean, "tiled", np.random.default_rng(1), fonts=fonts).image
        for label, image in (("clean", clean), ("tiled mark", tiled)):
            detector.detect(image)  # warm-up: first-call allocations
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                detector.detect(image)
                runs.append(time.perf_counter() - started)
            rows.append((f"{width}x{height} {label}", statistics.median(runs)))
    return rows


def _real_samples(detector: CombinedDetector, samples: Path) -> list[str]:
    lines = ["real samples (reference masks from the cleaned pairs):"]
    pairs = (
        ("watermark.jpg", "watermark_cleanup.jpg", "watermark_mask.png"),
        ("unwant_text.jpg", "unwant_text_clean.jpg", None),
    )
    for name, cleaned, mask_name in pairs:
        path = samples / name
        if not path.is_file():
            lines.append(f"  {name}: not found under {samples}")
            continue
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if mask_name is not None:
            reference = cv2.imread(str(samples / mask_name), cv2.IMREAD_GRAYSCALE) > 0
        else:
            reference = _difference_mask(
                image, cv2.cvtColor(cv2.imread(str(samples / cleaned)), cv2.COLOR_BGR2RGB)
            )
        started = time.perf_counter()
        detection = detector.detect(image)
        elapsed = time.perf_counter() - started
        predicted = detection.mask > 0
        hit = np.count_nonzero(predicted & reference)
        texts = [r.text for r in detection.regions if r.kind == "text"]
        kinds = {
            k: sum(r.kind == k for r in detection.regions) for k in ("text", "pattern", "logo")
        }
        lines.append(
            f"  {name}: recall {hit / max(1, reference.sum()):.2f}, precision "
            f"{hit / max(1, predicted.sum()):.2f} against the reference mask; coverage "
            f"{detection.coverage:.2%}; regions {kinds}; texts {texts}; {elapsed:.2f} s"
        )
    return lines


def _difference_mask(image: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
    """Where a photo and its cleaned version differ by more than 25 levels, dilated 5x5 and
    closed 7x7 (how watermark_mask.png was made)."""
    if cleaned.shape != image.shape:
        cleaned = cv2.resize(cleaned, (image.shape[1], image.shape[0]))
    difference = cv2.absdiff(image, cleaned).max(axis=2) > 25
    mask = cv2.dilate(difference.astype(np.uint8), np.ones((5, 5), np.uint8))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8)) > 0


if __name__ == "__main__":
    main()
