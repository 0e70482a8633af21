"""What a watermark profile is: the mark's RGBA picture and who may use it.

Plain data, shared by the store protocol, both backends and the HTTP edge; this module
imports nothing of theirs. The alpha channel of the PNG is the mark's opacity, its colour
channels the mark's colour (`runners.deblend.WatermarkTemplate.from_rgba` reads it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

ProfileSource = Literal["upload", "estimated"]
PROFILE_SOURCES: tuple[ProfileSource, ...] = ("upload", "estimated")

PROFILE_ID_PREFIX = "wm_"
_ID_SHAPE = re.compile(r"^wm_[0-9a-f]{32}$")
MAX_NAME_CHARS = 200


def new_profile_id() -> str:
    return PROFILE_ID_PREFIX + uuid.uuid4().hex


def is_profile_id(text: str) -> bool:
    return _ID_SHAPE.match(text) is not None


@dataclass(frozen=True)
class WatermarkProfile:
    """One stored mark. `owner_id` is the account's key id: nobody else ever sees it."""

    id: str
    owner_id: str
    name: str
    created_at: float
    width: int
    height: int
    source: ProfileSource
    png: bytes
    """The RGBA PNG of the mark, as stored (uploaded, or encoded from an estimate)."""

    def __post_init__(self) -> None:
        if not is_profile_id(self.id):
            raise ValueError(f"not a watermark profile id: {self.id!r}")
        if self.source not in PROFILE_SOURCES:
            raise ValueError(f"unknown profile source {self.source!r}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError("a profile has a positive width and height")
