"""Train the mark segmenter on synthetic composites and export it as ONNX for the service.

    .venv/bin/python -m training.photos fetch                      # photos and fonts, once
    nice -n 10 .venv/bin/python -m training.train_segmenter        # defaults: the committed file
    .venv/bin/python -m training.train_segmenter --steps 50 --pool 200 --out /tmp/seg.onnx

Data: every sample is a training photo (`training.photos`, split ``train``: never a benchmark
photo, never a reserved set) with one generated mark of a random kind, or none
(`NEGATIVE_SHARE`), rendered at 1.5-3x the network's scale, blended, saved as JPEG q90 or PNG
and downscaled: the way a full-size upload looks after the service shrinks it. Fonts: DejaVu
only (the benchmark uses Liberation). A pool of samples is generated first (in worker
processes), then crops of it are drawn with flips for every step.

Output: the ONNX file, and beside it a JSON record of the run (arguments, seed, validation
figures, SHA-256). Put the printed SHA-256 in `runners/detection/segmenter.py`
(`SEGMENTER_SHA256`) when the committed file changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional

from training import photos, watermarks
from training.segmenter_model import MarkSegmenter

DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent / "runners/detection/weights/mark_segmenter.onnx"
)
NEGATIVE_SHARE = 0.12
NET_LONG_SIDE = (320, 448)
"""Range of the network-scale image's longer side in training (the service uses 384)."""
RENDER_FACTOR = (1.5, 3.0)
PHOTO_LONG_SIDE = 1100
CROP = 160
POSITIVE_CROPS = 0.65
"""Share of crops centred on a mark pixel; the others are drawn anywhere."""


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (h, w, 3) uint8 RGB at network scale
    target: np.ndarray  # (h, w) uint8 0/1


_PHOTOS: list[np.ndarray] = []
_FONTS: list[Path] = []


def _load_sources() -> None:
    """Decoded once in the parent; forked workers share the arrays."""
    if not _PHOTOS:
        _PHOTOS.extend(photos.load(s, long_side=PHOTO_LONG_SIDE) for s in photos.photos("train"))
        _FONTS.extend(photos.font_files("dejavu"))


def _make_sample(seed: int) -> Sample:
    rng = np.random.default_rng(seed)
    photo = _PHOTOS[int(rng.integers(len(_PHOTOS)))]
    height, width = photo.shape[:2]
    # A random window of 55-100 % of the photo, flipped half the time.
    share = rng.uniform(0.55, 1.0)
    crop_h, crop_w = max(32, int(height * share)), max(32, int(width * share))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    view = photo[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        view = view[:, ::-1]
    net_long = int(rng.integers(NET_LONG_SIDE[0], NET_LONG_SIDE[1] + 1))
    render_long = min(int(net_long * rng.uniform(*RENDER_FACTOR)), max(view.shape[:2]))
    render_long = max(render_long, net_long)
    clean = photos.resize_long_side(np.ascontiguousarray(view), render_long)
    encoding: watermarks.Encoding = "jpeg" if rng.random() < 0.7 else "png"
    if rng.random() < NEGATIVE_SHARE:
        image = watermarks.encode_round_trip(clean, encoding)
        alpha = np.zeros(clean.shape[:2], np.float32)
    else:
        kind = watermarks.KINDS[int(rng.integers(len(watermarks.KINDS)))]
        sample = watermarks.watermark(clean, kind, rng, fonts=_FONTS, encoding=encoding)
        image, alpha = sample.image, sample.alpha
    image = photos.resize_long_side(image, net_long)
    size = (image.shape[1], image.shape[0])
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    # Too short for a crop: scale up (rare: very wide photos at the smallest scale).
    short = min(image.shape[:2])
    if short < CROP:
        factor = CROP / short
        size = (round(image.shape[1] * factor) + 1, round(image.shape[0] * factor) + 1)
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    target = (alpha > watermarks.MASK_MIN_ALPHA).astype(np.uint8)
    return Sample(image=image, target=target)


def make_pool(count: int, seed: int, processes: int) -> list[Sample]:
    seeds = [seed * 1_000_003 + index for index in range(count)]
    _load_sources()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return pool.map(_make_sample, seeds, chunksize=16)


def draw_batch(
    pool: list[Sample], batch: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.empty((batch, CROP, CROP, 3), np.uint8)
    targets = np.empty((batch, CROP, CROP), np.uint8)
    for index in range(batch):
        sample = pool[int(rng.integers(len(pool)))]
        height, width = sample.target.shape
        positives = (
            np.argwhere(sample.target) if rng.random() < POSITIVE_CROPS else np.empty((0, 2))
        )
        if len(positives):
            y, x = positives[int(rng.integers(len(positives)))]
            top = int(np.clip(y - rng.integers(0, CROP), 0, height - CROP))
            left = int(np.clip(x - rng.integers(0, CROP), 0, width - CROP))
        else:
            top, left = (
                int(rng.integers(0, height - CROP + 1)),
                int(rng.integers(0, width - CROP + 1)),
            )
        image = sample.image[top : top + CROP, left : left + CROP]
        target = sample.target[top : top + CROP, left : left + CROP]
        if rng.random() < 0.5:
            image, target = image[::-1], target[::-1]
        images[index], targets[index] = image, target
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5)
    y = torch.from_numpy(targets).float().unsqueeze(1)
    return x, y


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus a soft Dice loss per crop. Per crop, a crop without any mark costs
    whatever it predicts, which teaches the network to stay silent on plain photos (a Dice
    over the whole batch let it paint everything bright while unsure)."""
    bce = functional.binary_cross_entropy_with_logits(logits, target)
    probability = torch.sigmoid(logits)
    overlap = (probability * target).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    dice = 1 - (2 * overlap + 1) / (total + 1)
    return bce + dice.mean()


@torch.inference_mode()
def evaluate(model: MarkSegmenter, pool: list[Sample]) -> dict[str, float]:
    model.eval()
    hit = predicted = actual = 0
    for sample in pool:
        height, width = sample.target.shape
        pad_h, pad_w = (-height) % 16, (-width) % 16
        image = np.pad(sample.image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0).sub_(0.5)
        mask = (model(x)[0, 0, :height, :width] > 0).numpy()
        truth = sample.target.astype(bool)
        hit += int((mask & truth).sum())
        predicted += int(mask.sum())
        actual += int(truth.sum())
    model.train()
    recall = hit / max(actual, 1)
    precision = hit / max(predicted, 1)
    iou = hit / max(actual + predicted - hit, 1)
    return {"recall": round(recall, 4), "precision": round(precision, 4), "iou": round(iou, 4)}


def export(model: MarkSegmenter, out: Path) -> str:
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, 256, 384)
    torch.onnx.export(
        model,
        (example,),
        str(out),
        dynamo=False,
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17,
        do_constant_folding=True,
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--pool", type=int, default=2500, help="training samples generated")
    parser.add_argument("--validation", type=int, default=150, help="validation samples")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=50.0, help="stop early past this")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="torch state to resume from and save to (default: OUT with .state.pt)",
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    pool = make_pool(args.pool, args.seed, args.threads)
    validation = make_pool(args.validation, args.seed + 1, args.threads)
    print(
        f"pool of {len(pool)} + {len(validation)} samples in {time.perf_counter() - started:.0f} s",
        flush=True,
    )

    model = MarkSegmenter()
    state_path = args.state or args.out.with_suffix(".state.pt")
    if args.state is not None and args.state.is_file():
        model.load_state_dict(torch.load(args.state, weights_only=True))
        print(f"resumed from {args.state}", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed + 2)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    train_started = time.perf_counter()
    step = 0
    for step in range(1, args.steps + 1):
        minutes = (time.perf_counter() - train_started) / 60
        # Progress is steps or time, whichever runs out first, so that a run cut short by
        # its time budget still ends with the learning rate annealed.
        progress = min(1.0, max(step / args.steps, minutes / args.max_minutes))
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(args.lr, progress)
        x, y = draw_batch(pool, args.batch, rng)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == args.steps:
            print(f"step {step} loss {np.mean(losses[-100:]):.4f} {minutes:.1f} min", flush=True)
        stopping = progress >= 1.0 and step < args.steps
        if step % 500 == 0 or step == args.steps or stopping:
            figures = {"step": step, **evaluate(model, validation)}
            history.append(figures)
            print("validation", figures, flush=True)
            # Written at every validation, so a run cut short still leaves a usable file.
            torch.save(model.state_dict(), state_path)
            _write(model, args, step, train_started, history)
            model.train()
        if stopping:
            print(f"stopping at step {step}: past {args.max_minutes} min", flush=True)
            break
    print(json.dumps(_write(model, args, step, train_started, history), indent=2))


def _learning_rate(peak: float, progress: float) -> float:
    """Linear warm-up over the first 5 %, then a cosine down to 2 % of the peak."""
    if progress < 0.05:
        return peak * (0.1 + 0.9 * progress / 0.05)
    cosine = 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95))
    return peak * (0.02 + 0.98 * cosine)


def _write(
    model: MarkSegmenter,
    args: argparse.Namespace,
    step: int,
    started: float,
    history: list[dict[str, float]],
) -> dict[str, object]:
    digest = export(model, args.out)
    record = {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "steps_done": step,
        "train_minutes": round((time.perf_counter() - started) / 60, 1),
        "validation": history,
        "parameters": sum(p.numel() for p in model.parameters()),
        "widths": list(model.widths),
        "sha256": digest,
        "bytes": args.out.stat().st_size,
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
