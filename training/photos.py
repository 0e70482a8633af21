"""Real photographs for training and benchmarking the detector, with a fixed split.

Sources (fetched on demand, never committed):
- scikit-image's bundled data (installed with the `dev` extra);
- Debian wallpaper packages `lomiri-wallpapers-16.04` and `lomiri-wallpapers-20.04` (photos),
  and `gnome-backgrounds` (periodic textures, used only as hard negatives in training).
  `apt-get download` + `dpkg -x` unpack them into a cache directory; no root needed.

`mate-backgrounds` and `plasma-workspace-wallpapers` are reserved for acceptance checks and
are refused here, so that nothing can train or tune on them by accident.

    .venv/bin/python -m training.photos fetch        # download and unpack into the cache
    .venv/bin/python -m training.photos list         # the split, one photo a line
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

Split = Literal["train", "benchmark"]
"""`train`: the segmenter learns on them. `benchmark`: held out, never seen in training; the
clean false-alarm set is made of crops of these same held-out photos, unwatermarked."""

RESERVED_PACKAGES = frozenset({"mate-backgrounds", "plasma-workspace-wallpapers"})

DEBIAN_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "gnome-backgrounds")

FONT_PACKAGES = ("fonts-dejavu-core", "fonts-liberation")
"""Fonts for the generator, unpacked beside the photos (so a machine without them installed
renders the same marks)."""


def cache_dir() -> Path:
    """`IOPAINT_PHOTO_CACHE`, else ``~/.cache/iopaint-api/photos``."""
    configured = os.environ.get("IOPAINT_PHOTO_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "iopaint-api" / "photos"


@dataclass(frozen=True)
class PhotoSource:
    name: str
    """Short unique id, used in benchmark tables."""
    origin: str
    """``skimage`` or the Debian package name."""
    path: str
    """File inside the package (``usr/share/...``) or scikit-image's data file name."""
    split: Split
    photo: bool = True
    """False for textures: training negatives, not photographs."""


def _lomiri16(file: str, split: Split) -> PhotoSource:
    stem = file.split("_by_")[0].lower()
    return PhotoSource(stem, "lomiri-wallpapers-16.04", f"usr/share/backgrounds/{file}", split)


def _lomiri20(file: str, split: Split) -> PhotoSource:
    stem = file.split("_by_")[0].lower()
    return PhotoSource(stem, "lomiri-wallpapers-20.04", f"usr/share/backgrounds/{file}", split)


def _skimage(file: str) -> PhotoSource:
    return PhotoSource(file.split(".")[0], "skimage", file, "train")


def _gnome(file: str) -> PhotoSource:
    path = f"usr/share/backgrounds/gnome/{file}"
    return PhotoSource(file.split(".")[0], "gnome-backgrounds", path, "train", photo=False)


PHOTOS: tuple[PhotoSource, ...] = (
    # scikit-image: all training (the ones with text in them, page.png and text.png, are left out)
    *(
        _skimage(file)
        for file in (
            "astronaut.png",
            "chelsea.png",
            "coffee.png",
            "rocket.jpg",
            "motorcycle_left.png",
            "hubble_deep_field.jpg",
            "retina.jpg",
            "camera.png",
            "moon.png",
            "grass.png",
            "gravel.png",
            "brick.png",
            "coins.png",
        )
    ),
    _lomiri16("Bridge_by_Sander_Klootwijk.jpg", "train"),
    _lomiri16("Wine_by_Jakkub_Mede.jpg", "train"),
    _lomiri16("aitzgorri_by_Aitzol_Berasategi.jpg", "train"),
    _lomiri16("friends_by_Aitzol_Berasategi.jpg", "train"),
    _lomiri16("life_by_Aitzol_Berasategi.jpg", "train"),
    _lomiri16("sunset_by_Aitzol_Berasategi.jpg", "train"),
    _lomiri16("analogpattern_by_Peter_Nerlich.jpg", "train"),
    # held out for the benchmark and the clean false-alarm set
    _lomiri16("Dragonfly_by_Bolly.jpg", "benchmark"),
    _lomiri16("Picture_0B_by_freespace.jpg", "benchmark"),
    _lomiri16("Picture_1A_by_freespace.jpg", "benchmark"),
    _lomiri16("free_by_Peter_Nerlich.jpg", "benchmark"),
    _lomiri16("greentock_by_Peter_Nerlich.jpg", "benchmark"),
    _lomiri16("picosdeeuropa_by_Aitzol_Berasategi.jpg", "benchmark"),
    _lomiri16("seeding_by_Clements_Engelhardt.jpg", "benchmark"),
    _lomiri20("Infinite-Sea_by_Aury88.jpg", "benchmark"),
    _lomiri20("Kleiber_by_Lukas_Baubkus.jpg", "benchmark"),
    # periodic textures: the detector must not take a regular pattern for a tiled watermark
    *(_gnome(file) for file in ("grid-d.webp", "licorice-l.webp", "truchet-d.webp", "wood-d.webp")),
)


def photos(split: Split, *, photos_only: bool = False) -> list[PhotoSource]:
    return [p for p in PHOTOS if p.split == split and (p.photo or not photos_only)]


def fetch(packages: tuple[str, ...] = DEBIAN_PACKAGES + FONT_PACKAGES) -> Path:
    """Download and unpack the Debian packages into the cache (skipping those already there)."""
    refused = RESERVED_PACKAGES.intersection(packages)
    if refused:
        raise ValueError(f"reserved for acceptance checks, never used here: {sorted(refused)}")
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    for package in packages:
        target = root / package
        if target.is_dir():
            continue
        with tempfile.TemporaryDirectory() as download:
            subprocess.run(
                ["apt-get", "download", package], cwd=download, check=True, capture_output=True
            )
            (deb,) = Path(download).glob("*.deb")
            partial = root / f"{package}.partial"
            subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
            partial.rename(target)
    return root


def load(source: PhotoSource, *, long_side: int | None = None) -> np.ndarray:
    """The photo as ``(H, W, 3)`` uint8 RGB, optionally resized so its longer side is
    `long_side` (area interpolation)."""
    if source.origin in RESERVED_PACKAGES:
        raise ValueError(f"{source.origin} is reserved for acceptance checks")
    if source.origin == "skimage":
        import skimage
        import skimage.io

        path = Path(skimage.__file__).parent / "data" / source.path
        image = np.asarray(skimage.io.imread(path))
    else:
        path = cache_dir() / source.origin / source.path
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing: run `python -m training.photos fetch`")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot decode {path}")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    if long_side is not None:
        image = resize_long_side(image, long_side)
    return image


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = long_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def font_files(family: Literal["dejavu", "liberation"]) -> list[Path]:
    """TrueType files of one family, from the cache or the system's fonts."""
    package = {"dejavu": "fonts-dejavu-core", "liberation": "fonts-liberation"}[family]
    roots = [cache_dir() / package / "usr/share/fonts/truetype", Path("/usr/share/fonts/truetype")]
    for root in roots:
        found = sorted(root.glob(f"{family}/*.ttf"))
        if found:
            return found
    return []


def clean_crops(long_side: int) -> Iterator[tuple[str, np.ndarray]]:
    """The clean false-alarm set: each held-out photo whole, and two crops of it (left and
    right 60 %), each resized to `long_side`: three framings of every held-out photo."""
    for source in photos("benchmark"):
        image = load(source)
        width = image.shape[1]
        yield f"{source.name}/whole", resize_long_side(image, long_side)
        cut = int(width * 0.6)
        yield f"{source.name}/left", resize_long_side(image[:, :cut], long_side)
        yield f"{source.name}/right", resize_long_side(image[:, width - cut :], long_side)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["fetch", "list"])
    args = parser.parse_args()
    if args.command == "fetch":
        print(fetch())
    else:
        for source in PHOTOS:
            kind = "photo" if source.photo else "texture"
            print(f"{source.split:9} {kind:7} {source.name:20} {source.origin}")


if __name__ == "__main__":
    main()
