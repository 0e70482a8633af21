"""Check that a LaMa TorchScript file gives the same pixels in IOPaint 1.6 and in this service.

    .venv/bin/python scripts/iopaint_compat.py                    # exports random big-lama
    .venv/bin/python scripts/iopaint_compat.py --weights big-lama.pt

IOPaint runs in its own virtualenv (made on first use: `pip install torch==2.13.0
iopaint==1.6.0`, about 2 minutes), loading the file with its own `LaMa` model class, as an
IOPaint user's installation would. This side loads it with `runners.loading`. Both inpaint
the reference sample (`../shared/reference/samples/watermark.jpg` and its mask) with no
HD strategy, and the script prints how far apart the results are.

Expected: at most 1 level apart inside the mask (IOPaint truncates the network's output to
uint8 where we round to nearest) and identical outside it. The random export has its weights
scaled so that its output spreads over many levels; a saturated output (only 0 and 255)
would agree with anything, and the script refuses to call that a match.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runners.loading import load_inpainter  # noqa: E402
from settings import Settings  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "reference" / "samples"
MIN_DISTINCT_LEVELS = 16
"""Fewer output levels inside the mask than this, and agreement would prove little."""

# Runs inside IOPaint's virtualenv: argv = weights, image.npy, mask.npy, output.npy.
IOPAINT_SIDE = """
import os, sys
os.environ["LAMA_MODEL_URL"] = sys.argv[1]
import numpy as np, torch
from iopaint.model.lama import LaMa
from iopaint.schema import HDStrategy, InpaintRequest
model = LaMa(device=torch.device("cpu"))
image, mask = np.load(sys.argv[2]), np.load(sys.argv[3])
bgr = model(image, mask, InpaintRequest(hd_strategy=HDStrategy.ORIGINAL))
np.save(sys.argv[4], np.ascontiguousarray(bgr[:, :, ::-1]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--weights", type=Path, help="TorchScript file (default: export one)")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "iopaint-1.6")
    parser.add_argument("--max-side", type=int, default=768, help="downscale the sample to this")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="iopaint-compat-"))
    weights = args.weights.resolve() if args.weights else export_random_big_lama(work)
    python = ensure_iopaint(args.venv)
    image, mask = sample(args.max_side)
    np.save(work / "image.npy", image)
    np.save(work / "mask.npy", mask)

    subprocess.run(
        [str(python), "-c", IOPAINT_SIDE, str(weights)]
        + [str(work / name) for name in ("image.npy", "mask.npy", "theirs.npy")],
        check=True,
    )
    theirs = np.load(work / "theirs.npy")
    settings = Settings(model="lama", lama_weights=str(weights), hd_strategy="original")
    ours = load_inpainter(settings).inpaint(image, mask)

    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).max(axis=2)
    inside = mask > 0
    report = {
        "weights": str(weights),
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "mask_pixels": int(inside.sum()),
        "max_difference_inside_mask": int(difference[inside].max()),
        "pixels_differing_inside_mask": int((difference[inside] > 0).sum()),
        "max_difference_outside_mask": int(difference[~inside].max()),
        "distinct_levels_inside_mask": int(np.unique(ours[inside]).size),
    }
    print(json.dumps(report, indent=2))
    if report["distinct_levels_inside_mask"] < MIN_DISTINCT_LEVELS:
        sys.exit("The network's output is saturated (almost only 0 and 255): no comparison made")
    if report["max_difference_inside_mask"] > 1 or report["max_difference_outside_mask"] > 0:
        sys.exit("IOPaint and this service disagree on this file")


def export_random_big_lama(work: Path) -> Path:
    path = work / "big-lama-random.pt"
    export = [sys.executable, str(ROOT / "cli.py"), "models", "export", "-o", str(path)]
    # Scaled: unscaled random big-lama answers only 0 or 255, which any two loaders agree on.
    subprocess.run([*export, "--random-seed", "1", "--weight-scale", "0.5"], check=True)
    return path


def ensure_iopaint(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "iopaint").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        # torch first and pinned: the local CPU wheel, not a CUDA build from PyPI.
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "iopaint==1.6.0"], check=True)
    return python


def sample(max_side: int) -> tuple[np.ndarray, np.ndarray]:
    image = Image.open(SAMPLES / "watermark.jpg").convert("RGB")
    mask = Image.open(SAMPLES / "watermark_mask.png").convert("L")
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
        mask = mask.resize(size, Image.Resampling.NEAREST)
    return np.asarray(image), np.asarray(mask)


if __name__ == "__main__":
    main()
