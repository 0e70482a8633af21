"""What a de-blending call carries to the model process, and what comes back.

The HTTP side reaches `runners.deblend` through the model runner like every other model
call. Arguments and answers are plain arrays and dicts, since BentoML validates and
re-serialises them on the way (as `runners.batch` does for detections):

- an absent template or mask travels as an empty array (``(0, 0, 4)``, ``(0, 0)``), an
  absent position (`seen_at`) as an empty list;
- an answer is ``{"image", "removal", "inpainted", "detail"}``, or ``{"refused": reason}``
  when `DeblendError` said there is nothing this method can do with the input: a refusal
  is an answer about the input, not a failure of the runner, so it travels as data and the
  HTTP side decides what to tell the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runners.deblend import (
    Deblended,
    DeblendError,
    WatermarkTemplate,
    estimate_template_at,
    remove_blended,
)
from runners.deblend.chroma import FULL_CHROMA, ChromaGrid
from runners.inpainter import Inpainter

NO_TEMPLATE = np.zeros((0, 0, 4), dtype=np.uint8)
NO_MASK = np.zeros((0, 0), dtype=np.uint8)


def optional_template(rgba: np.ndarray | None) -> np.ndarray:
    return NO_TEMPLATE if rgba is None else rgba


def optional_mask(mask: np.ndarray | None) -> np.ndarray:
    return NO_MASK if mask is None else mask


def pack_chroma(chroma: ChromaGrid) -> list[int]:
    """A chroma grid as the runner's argument: ``[step_y, step_x, origin_y, origin_x]``."""
    return [*chroma.step, *chroma.origin]


def unpack_chroma(packed: Sequence[int]) -> ChromaGrid:
    values = [int(value) for value in packed]
    if not values:
        return FULL_CHROMA
    if len(values) != 4 or min(values[:2]) < 1 or min(values[2:]) < 0:
        raise DeblendError(f"a chroma grid is [step_y, step_x, origin_y, origin_x], got {values}")
    return ChromaGrid(step=(values[0], values[1]), origin=(values[2], values[3]))


@dataclass(frozen=True)
class EstimatedMark:
    """A mark estimated from several images, as the model process answers it."""

    rgba: np.ndarray
    """(h, w, 4) uint8: the template, cut to its box."""
    corner: tuple[int, int]
    """(row, col) of the box's top-left pixel in the images it came from."""


def pack_seen_at(seen_at: tuple[int, int] | None) -> list[int]:
    """A position as the runner's argument: ``[row, col]``, or empty for none."""
    return [] if seen_at is None else [seen_at[0], seen_at[1]]


def unpack_seen_at(packed: Sequence[int]) -> tuple[int, int] | None:
    values = [int(value) for value in packed]
    if not values:
        return None
    if len(values) != 2:
        raise DeblendError(f"a position is [row, col], got {values}")
    return values[0], values[1]


def deblend_call(
    inpainter: Inpainter,
    image: np.ndarray,
    template_rgba: np.ndarray,
    mask: np.ndarray,
    chroma: Sequence[int] = (),
    seen_at: Sequence[int] = (),
    estimated: bool = False,
) -> dict[str, Any]:
    """Run `remove_blended` for one image: ``template_rgba`` ``(h, w, 4)`` uint8 or empty (the
    image's own repeats are the template), ``mask`` ``(H, W)`` uint8 or empty, ``chroma``
    the upload's chroma grid (`pack_chroma`; empty: every pixel its own), ``seen_at``
    ``[row, col]`` where an estimated template's box lay in images of this one's size (it
    is tried first), or empty; ``estimated`` whether the template was estimated from photos
    rather than supplied by its owner."""
    image = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    try:
        template = (
            WatermarkTemplate.from_rgba(np.asarray(template_rgba, dtype=np.uint8))
            if template_rgba.size
            else None
        )
        done = remove_blended(
            image,
            template=template,
            inpainter=inpainter,
            mask=np.asarray(mask, dtype=np.uint8) if mask.size else None,
            chroma=unpack_chroma(chroma),
            seen_at=unpack_seen_at(seen_at),
            estimated=estimated,
        )
    except DeblendError as refused:
        return {"refused": str(refused)}
    return {
        "image": done.image,
        "removal": done.removal,
        "inpainted": done.inpainted.astype(np.uint8),
        "detail": done.detail,
    }


def unpack_deblended(answer: dict[str, Any]) -> Deblended | str:
    """Inverse of `deblend_call`'s answer: the result, or the refusal's reason."""
    if "refused" in answer:
        return str(answer["refused"])
    removal = str(answer["removal"])
    if removal not in ("deblend", "inpaint", "mixed"):
        raise ValueError(f"unknown removal {removal!r}")
    image = np.asarray(answer["image"], dtype=np.uint8)
    inpainted = np.asarray(answer["inpainted"]).astype(bool)
    if image.ndim != 3 or inpainted.shape != image.shape[:2]:
        raise ValueError(f"a result of shape {image.shape} with a mask of {inpainted.shape}")
    return Deblended(
        image=image,
        removal=removal,  # type: ignore[arg-type]
        inpainted=inpainted,
        detail=str(answer["detail"]),
    )


def estimate_call(images: Sequence[np.ndarray]) -> dict[str, Any]:
    """Estimate one template from images carrying the same mark: ``{"rgba", "corner"}``
    (``(h, w, 4)`` uint8 and ``[row, col]`` of its box in the images), or
    ``{"refused": reason}``."""
    try:
        estimate = estimate_template_at([np.asarray(image, dtype=np.uint8) for image in images])
    except DeblendError as refused:
        return {"refused": str(refused)}
    return {"rgba": estimate.template.to_rgba(), "corner": list(estimate.corner)}


def unpack_estimate(answer: dict[str, Any]) -> EstimatedMark | str:
    if "refused" in answer:
        return str(answer["refused"])
    rgba = np.asarray(answer["rgba"], dtype=np.uint8)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected an (h, w, 4) template, got {rgba.shape}")
    row, col = (int(value) for value in answer["corner"])
    return EstimatedMark(rgba=rgba, corner=(row, col))
