"""A watermark profile's PNG as removal uses it: the mark's pixels, and, for a mark estimated
from several photos, where its box lay in them.

That position travels inside the PNG, as a text chunk (``seen-at: x,y,width,height``), so a
profile's file is all there is to it wherever it goes: the profile stores, the copy a job or
batch takes when queued, and the download at ``GET /api/v1/watermarks/{id}``. Removing the
mark from a photo of the same size tries that place first, beside what the search finds; an
uploaded PNG has no such chunk (one that does not parse is not a position, and is ignored:
it was never more than a hint).
"""

from __future__ import annotations

import io
from dataclasses import asdict, astuple, dataclass

import numpy as np
from PIL import Image, PngImagePlugin

from api.images import decode_watermark_png

SEEN_AT_CHUNK = "seen-at"


@dataclass(frozen=True)
class SeenAt:
    """Where an estimated mark's box lay: its top-left pixel, in photos of this size."""

    x: int
    y: int
    image_width: int
    image_height: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ProfileMark:
    rgba: np.ndarray
    """(h, w, 4) uint8: the mark's colour, its opacity as alpha."""
    seen_at: SeenAt | None = None

    @property
    def estimated(self) -> bool:
        """Whether the mark was estimated from photos (only those carry where it was seen)."""
        return self.seen_at is not None

    def corner_in(self, size: tuple[int, int]) -> tuple[int, int] | None:
        """(row, col) of the mark's box in a photo of ``size = (width, height)``, when it was
        estimated from photos of that size; None otherwise."""
        seen = self.seen_at
        if seen is None or (seen.image_width, seen.image_height) != size:
            return None
        return seen.y, seen.x


def encode_profile_png(rgba: np.ndarray, seen_at: SeenAt | None = None) -> bytes:
    """An ``(h, w, 4)`` uint8 RGBA mark as the PNG a profile keeps, with its position."""
    info = PngImagePlugin.PngInfo()
    if seen_at is not None:
        info.add_text(SEEN_AT_CHUNK, ",".join(str(value) for value in astuple(seen_at)))
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", pnginfo=info, compress_level=6)
    return buffer.getvalue()


def seen_at_of(png: bytes) -> SeenAt | None:
    """The position a profile's PNG carries, if any (read from its header chunks only)."""
    with Image.open(io.BytesIO(png)) as picture:
        text = picture.info.get(SEEN_AT_CHUNK)
    if not isinstance(text, str):
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(part.strip().lstrip("-").isdigit() for part in parts):
        return None
    x, y, width, height = (int(part) for part in parts)
    if width <= 0 or height <= 0:
        return None
    return SeenAt(x=x, y=y, image_width=width, image_height=height)


def decode_profile_mark(png: bytes, *, max_dimension: int, max_pixels: int) -> ProfileMark:
    """A profile's PNG as a `ProfileMark`, or `BadRequest` (`decode_watermark_png`'s checks)."""
    rgba = decode_watermark_png(png, max_dimension=max_dimension, max_pixels=max_pixels)
    return ProfileMark(rgba=rgba, seen_at=seen_at_of(png))
