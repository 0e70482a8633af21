"""What one request carries to the model process, and what the model process does with a batch.

BentoML's batchable APIs take one list, so an image and its mask travel together, the mask
as a fourth channel. The inpainting step runs the model on every item, then applies the
client's gray mask (`runners.compositing.blend`), so that what comes back is the final
picture: unmasked pixels bit-identical to the upload. The detection step takes plain RGB
images and answers each with its `Detection` as plain data: the mask array and each region's
fields. (BentoML's output validation turns dataclasses into dicts on the way, so the records
are rebuilt on the other side rather than trusted to survive.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runners.compositing import blend
from runners.detection.detector import Detection, Detector, Region
from runners.inpainter import Inpainter


def pack_item(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One ``(H, W, 4)`` uint8 array: the ``(H, W, 3)`` RGB image and its ``(H, W)`` mask."""
    return np.dstack([image, mask])


def unpack_item(item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `pack_item`: ``(RGB image, mask)`` as contiguous arrays."""
    if item.ndim != 3 or item.shape[2] != 4 or item.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 4) uint8 item, got {item.shape} {item.dtype}")
    return np.ascontiguousarray(item[..., :3]), np.ascontiguousarray(item[..., 3])


def inpaint_items(inpainter: Inpainter, items: list[np.ndarray]) -> list[np.ndarray]:
    """The batch step: the model on every item, then the gray-mask blend; input order kept."""
    unpacked = [unpack_item(item) for item in items]
    images = [image for image, _ in unpacked]
    masks = [mask for _, mask in unpacked]
    raw = inpainter.inpaint_batch(images, masks)
    return [blend(image, out, mask) for image, out, mask in zip(images, raw, masks, strict=True)]


def detect_items(detector: Detector, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """The detection step: one packed `Detection` per image, input order kept."""
    return [pack_detection(found) for found in detector.detect_batch(images)]


def pack_detection(found: Detection) -> dict[str, Any]:
    return {
        "mask": found.mask,
        "regions": [
            {
                "kind": region.kind,
                "box": list(region.box),
                "outline": [list(point) for point in region.outline],
                "score": float(region.score),
                "text": region.text,
            }
            for region in found.regions
        ],
    }


def unpack_detection(item: dict[str, Any]) -> Detection:
    """Inverse of `pack_detection`."""
    mask = np.asarray(item["mask"], dtype=np.uint8)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    regions = tuple(
        Region(
            kind=region["kind"],
            box=(
                int(region["box"][0]),
                int(region["box"][1]),
                int(region["box"][2]),
                int(region["box"][3]),
            ),
            outline=tuple((int(x), int(y)) for x, y in region["outline"]),
            score=float(region["score"]),
            text=region["text"],
        )
        for region in item["regions"]
    )
    return Detection(regions=regions, mask=mask)
