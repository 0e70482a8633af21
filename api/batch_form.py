"""Which mask goes with which image in a batch upload.

A batch form carries `image` fields and, optionally, `mask` fields:

- no mask at all: every image is processed without one (detected, as in the synchronous
  route);
- every mask's filename is the filename of one image: matched by filename (images without
  a mask are detected); the images' filenames must then be unique;
- otherwise, as many masks as images: matched by position (the first mask with the first
  image, ...);
- anything else is ambiguous, and refused (400) rather than guessed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from api.uploads import FilePart, Form
from errors import BadRequest


@dataclass(frozen=True)
class BatchItem:
    image: bytes
    mask: bytes | None
    filename: str | None


def pair_masks(form: Form) -> list[BatchItem]:
    images = form.parts("image")
    masks = form.parts("mask")
    if not masks:
        return [BatchItem(image.data, None, image.filename) for image in images]
    by_name = _by_filename(images, masks)
    if by_name is not None:
        return [
            BatchItem(image.data, by_name.get(image.filename or ""), image.filename)
            for image in images
        ]
    if len(masks) == len(images):
        return [
            BatchItem(image.data, mask.data, image.filename)
            for image, mask in zip(images, masks, strict=True)
        ]
    raise BadRequest(
        f"{len(masks)} masks for {len(images)} images: send one mask per image (matched by "
        "position), or give each mask the filename of its image"
    )


def _by_filename(images: list[FilePart], masks: list[FilePart]) -> dict[str, bytes] | None:
    """Masks by their image's filename, when that is how they match; None otherwise."""
    names = Counter(image.filename for image in images if image.filename)
    wanted = [mask.filename for mask in masks]
    if not all(name and names.get(name) for name in wanted) or len(set(wanted)) != len(wanted):
        return None
    repeated = sorted(name for name, count in names.items() if count > 1 and name in wanted)
    if repeated:
        raise BadRequest(
            f"Several images are named '{repeated[0][:64]}': masks matched by filename need "
            "unique image filenames"
        )
    return {mask.filename: mask.data for mask in masks if mask.filename}
