"""Which image format a remove-watermark answer is encoded in.

PNG is the contract's default and what every client gets unless it asks otherwise:

- the `format` form field (`png`, `webp` or `jpeg`), for clients that cannot set headers,
  wins when present; another value is a 400;
- otherwise `Accept`, with q-values: the acceptable format with the highest q wins; at
  equal q a type named outright beats one reached through ``image/*`` or ``*/*``, and
  then PNG beats WebP beats JPEG;
- an `Accept` that names none of the three (``application/json``, ``image/avif``) gets
  PNG, as before formats could be chosen (RFC 9110 lets a server disregard `Accept`);
  one that names them only to refuse them all (q=0) gets 406.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from errors import BadRequest, NotAcceptable

FORMAT_FIELD = "format"


class OutputFormat(StrEnum):
    PNG = "png"
    WEBP = "webp"
    JPEG = "jpeg"

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"

    @property
    def keeps_alpha(self) -> bool:
        return self is not OutputFormat.JPEG


PREFERENCE = (OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.JPEG)
"""Server preference between formats a client accepts equally."""

_ALIASES = {"jpg": OutputFormat.JPEG}
_MAX_ACCEPT_ITEMS = 64


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float

    @property
    def specificity(self) -> int:
        """2 for ``image/png``, 1 for ``image/*``, 0 for ``*/*``."""
        return (self.type != "*") + (self.subtype != "*")

    def matches(self, media_type: str) -> bool:
        kind, _, sub = media_type.partition("/")
        return self.type in ("*", kind) and self.subtype in ("*", sub)


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an `Accept` header; malformed items are skipped, not fatal."""
    ranges: list[MediaRange] = []
    for item in header.split(",")[:_MAX_ACCEPT_ITEMS]:
        media, *parameters = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append(MediaRange(kind, sub, q))
    return ranges


def negotiate(accept: str | None) -> OutputFormat:
    """The format `accept` asks for (PNG when it is absent or names none of ours)."""
    ranges = parse_accept(accept or "")
    scored: list[tuple[float, int, int, OutputFormat]] = []
    named_any = False
    for rank, output in enumerate(PREFERENCE):
        matching = [r for r in ranges if r.matches(output.media_type)]
        if not matching:
            continue
        named_any = True
        # The most specific range that matches decides this format's q (RFC 9110 12.5.1).
        best = max(matching, key=lambda r: r.specificity)
        if best.q > 0:
            scored.append((best.q, best.specificity, -rank, output))
    if scored:
        return max(scored)[3]
    if named_any:
        accepted = ", ".join(output.media_type for output in PREFERENCE)
        raise NotAcceptable(
            f"The Accept header refuses every result format; this API sends {accepted}"
        )
    return OutputFormat.PNG


def choose_output_format(accept: str | None, form_value: str | None) -> OutputFormat:
    """The form field when the client sent one, else what `Accept` negotiates."""
    if form_value is None:
        return negotiate(accept)
    name = form_value.strip().lower()
    chosen = _ALIASES.get(name)
    if chosen is not None:
        return chosen
    try:
        return OutputFormat(name)
    except ValueError:
        shown = form_value.strip()[:32]
        raise BadRequest(
            f"Unknown output format '{shown}' in the '{FORMAT_FIELD}' field: use png, webp or jpeg"
        ) from None


def prefers_png(accept: str | None) -> bool:
    """Whether `Accept` asks for a PNG before JSON (`image/png` or `image/*` listed first):
    routes that answer JSON by default (detect's mask, a watermark profile) send the
    picture itself then."""
    for part in (accept or "").split(","):
        media_type = part.split(";")[0].strip().lower()
        if media_type in ("image/png", "image/*"):
            return True
        if media_type in ("application/json", "application/*"):
            return False
    return False
