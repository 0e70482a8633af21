"""`batch_process`'s plan, shared by both clients: which mask and output file each image gets.

Masks (``masks=``): None (the server detects), one mask for every image, a list or tuple
matched by position, or a mapping from the image's path (or file name) to its mask.

Outputs: ``output_dir/<image file stem>.png``; a second image with the same stem gets
``<stem>-2.png``, and so on; in-memory images are named ``image-<N>.png`` (1-based).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from iopaint_sdk import endpoints
from iopaint_sdk.endpoints import Call
from iopaint_sdk.errors import AuthenticationError, RateLimitError
from iopaint_sdk.inputs import ImageInput, to_upload
from iopaint_sdk.results import BatchItem, ImageResult

# Local problems with one input (unreadable file, unsupported type) fail that image only.
LOCAL_INPUT_ERRORS: tuple[type[Exception], ...] = (OSError, TypeError, ValueError)


@dataclass(frozen=True)
class BatchEntry:
    label: str  # the input's path, or "#N"
    image: ImageInput
    mask: ImageInput | None
    output: Path
    watermark: str | None = None
    """A watermark profile's id, sent with the image (the same for every image)."""


def plan_batch(
    images: Sequence[ImageInput],
    output_dir: str | os.PathLike[str],
    masks: ImageInput | Sequence[ImageInput] | Mapping[str, ImageInput] | None,
    watermark: str | None = None,
) -> list[BatchEntry]:
    if isinstance(images, (str, bytes, os.PathLike)):
        raise TypeError("images must be a list of images, not a single one")
    images = list(images)
    directory = Path(output_dir)
    taken: set[str] = set()
    entries = []
    for index, image in enumerate(images):
        is_path = isinstance(image, (str, os.PathLike))
        label = os.fspath(image) if is_path else f"#{index + 1}"
        stem = Path(os.fspath(image)).stem if is_path else f"image-{index + 1}"
        entries.append(
            BatchEntry(
                label=label,
                image=image,
                mask=_mask_for(index, image, len(images), masks),
                output=directory / _unique_name(stem, taken),
                watermark=watermark,
            )
        )
    return entries


def batch_call(entry: BatchEntry) -> Call:
    """The remove-watermark request for `entry` (reads its files now)."""
    mask = None if entry.mask is None else to_upload(entry.mask, default_name="mask")
    return endpoints.remove_watermark(
        to_upload(entry.image, default_name="image"), mask, watermark=entry.watermark
    )


def succeeded_item(entry: BatchEntry, result: ImageResult) -> BatchItem:
    return BatchItem(
        entry.label,
        ok=True,
        error=None,
        output=entry.output,
        processing_time=result.processing_time,
    )


def failed_item(entry: BatchEntry, error: Exception) -> BatchItem:
    return BatchItem(entry.label, ok=False, error=error, output=None)


def complete(results: Sequence[BatchItem | None], entries: Sequence[BatchEntry]) -> list[BatchItem]:
    """Every image's result; an image without one is a bug, said out loud."""
    missing = [entry.label for entry, item in zip(entries, results, strict=True) if item is None]
    if missing:
        raise RuntimeError(f"batch_process has no result for {missing}")
    return [item for item in results if item is not None]


def stops_batch(error: BaseException) -> bool:
    """Errors every later image would get too: a refused key, or a spent quota."""
    if isinstance(error, AuthenticationError):
        return True
    return isinstance(error, RateLimitError) and error.quota_exceeded


def _mask_for(
    index: int,
    image: ImageInput,
    count: int,
    masks: ImageInput | Sequence[ImageInput] | Mapping[str, ImageInput] | None,
) -> ImageInput | None:
    if masks is None:
        return None
    if isinstance(masks, Mapping):
        if not isinstance(image, (str, os.PathLike)):
            raise TypeError("masks given as a mapping need images given as paths")
        path = os.fspath(image)
        for key in (path, Path(path).name, Path(path).stem):
            if key in masks:
                return masks[key]
        return None
    if isinstance(masks, (list, tuple)):
        if len(masks) != count:
            raise ValueError(f"{len(masks)} masks for {count} images: give one per image")
        return masks[index]
    return masks  # one mask for every image


def _unique_name(stem: str, taken: set[str]) -> str:
    name, number = f"{stem}.png", 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}.png"
    taken.add(name)
    return name
