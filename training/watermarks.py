"""Synthetic watermarks over real photos, with their ground truth.

Every mark is a pair of layers at the photo's size: the opacity map α (float, 0..1) and the
mark's colour W (uint8 RGB per pixel). The watermarked photo is the blend

    I = α · W + (1 − α) · J                 (J: the clean photo)

rounded to uint8 and, for JPEG inputs, passed through a JPEG q90 round trip. The sample keeps
J, α and W, so that a benchmark can score a detected mask against ``α > MASK_MIN_ALPHA`` and a
later de-blending step can invert the blend with the true α and W.

Four kinds, as in the detector's issue:

- ``credit``: a photographer's credit or URL in a corner, opaque or semi-transparent;
- ``logo``: a semi-transparent logo, word, or both across the middle (opacity 0.2–0.4);
- ``tiled``: repeated diagonal text on a lattice, stock-site style (opacity 0.2–0.4); the
  lattice steps are whole pixels, so every copy is the same pixels;
- ``badge``: a small opaque graphic badge or logo in a corner.

Fonts are TrueType files from Debian's `fonts-dejavu-core` and `fonts-liberation` (see
`training.photos.font_files`); without them, Pillow's built-in default font. Training uses
DejaVu and the benchmark Liberation, so the benchmark's letters are shapes the segmenter has
not seen.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Kind = Literal["credit", "logo", "tiled", "badge"]
KINDS: tuple[Kind, ...] = ("credit", "logo", "tiled", "badge")
Encoding = Literal["png", "jpeg"]
JPEG_QUALITY = 90

MASK_MIN_ALPHA = 0.03
"""A pixel belongs to the ground-truth mask where the mark's opacity exceeds this: fainter
antialiased fringes change a pixel by at most ~8 levels."""

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Mark:
    """One watermark as layers at the photo's size."""

    kind: Kind
    alpha: np.ndarray
    """(H, W) float32 opacity, 0..1."""
    colour: np.ndarray
    """(H, W, 3) uint8 RGB colour of the mark; meaningful where alpha > 0."""

    @property
    def mask(self) -> np.ndarray:
        return np.where(self.alpha > MASK_MIN_ALPHA, 255, 0).astype(np.uint8)


@dataclass(frozen=True)
class WatermarkedPhoto:
    """A photo with one mark blended in, as a detector receives it, and the truth about it."""

    image: np.ndarray
    """(H, W, 3) uint8 RGB: the blend, after the encoding's round trip."""
    clean: np.ndarray
    """(H, W, 3) uint8 RGB: the photo before the mark (J)."""
    mark: Mark
    encoding: Encoding

    @property
    def kind(self) -> Kind:
        return self.mark.kind

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8, 255 where the mark is (α > MASK_MIN_ALPHA)."""
        return self.mark.mask

    @property
    def alpha(self) -> np.ndarray:
        return self.mark.alpha

    @property
    def colour(self) -> np.ndarray:
        return self.mark.colour


def blend(clean: np.ndarray, mark: Mark) -> np.ndarray:
    """I = α·W + (1 − α)·J, rounded to uint8 (before any encoding)."""
    alpha = mark.alpha[..., None]
    mixed = alpha * mark.colour.astype(np.float32) + (1.0 - alpha) * clean.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def encode_round_trip(image: np.ndarray, encoding: Encoding) -> np.ndarray:
    """What a decoder gives back after saving `image` as PNG (lossless) or JPEG q90."""
    if encoding == "png":
        return image.copy()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")).copy()


def watermark(
    clean: np.ndarray,
    kind: Kind,
    rng: np.random.Generator,
    *,
    fonts: Sequence[Path] = (),
    encoding: Encoding = "jpeg",
) -> WatermarkedPhoto:
    """Blend a random mark of `kind` into `clean` ((H, W, 3) uint8 RGB)."""
    height, width = clean.shape[:2]
    mark = render_mark(kind, height, width, rng, fonts=fonts)
    image = encode_round_trip(blend(clean, mark), encoding)
    return WatermarkedPhoto(image=image, clean=clean, mark=mark, encoding=encoding)


def render_mark(
    kind: Kind, height: int, width: int, rng: np.random.Generator, *, fonts: Sequence[Path] = ()
) -> Mark:
    painter = _Painter(height, width, rng, fonts)
    renderers = {
        "credit": painter.credit,
        "logo": painter.logo,
        "tiled": painter.tiled,
        "badge": painter.badge,
    }
    if kind not in renderers:
        raise ValueError(f"unknown watermark kind {kind!r}; expected one of {KINDS}")
    layer = renderers[kind]()
    alpha = np.asarray(layer.getchannel("A"), dtype=np.float32) / 255.0
    colour = np.asarray(layer.convert("RGB"), dtype=np.uint8).copy()
    return Mark(kind=kind, alpha=alpha, colour=colour)


# --- words ------------------------------------------------------------------------------------

_SYLLABLES = [
    "ka",
    "ri",
    "mo",
    "la",
    "ne",
    "sta",
    "pix",
    "lu",
    "ven",
    "or",
    "an",
    "tel",
    "mi",
    "ro",
    "sha",
    "do",
    "fo",
    "gra",
    "phy",
    "stu",
    "lux",
    "ar",
    "bel",
    "ton",
    "vi",
    "sa",
    "ze",
    "qu",
    "im",
    "ag",
    "del",
    "kor",
    "win",
    "ter",
    "nor",
    "ly",
]


def _word(rng: np.random.Generator, syllables: tuple[int, int] = (2, 4)) -> str:
    count = int(rng.integers(syllables[0], syllables[1] + 1))
    return "".join(str(rng.choice(_SYLLABLES)) for _ in range(count))


def _name(rng: np.random.Generator) -> str:
    return f"{_word(rng, (2, 3)).capitalize()} {_word(rng, (2, 3)).capitalize()}"


def credit_text(rng: np.random.Generator) -> str:
    year = int(rng.integers(2005, 2027))
    forms = (
        lambda: f"© {_name(rng)}",
        lambda: f"www.{_word(rng)}.com",
        lambda: f"Photo: {_name(rng)}",
        lambda: f"@{_word(rng)}_{_word(rng, (1, 2))}",
        lambda: f"{_word(rng).capitalize()} Studio",
        lambda: f"© {year} {_word(rng).capitalize()} Photography",
        lambda: f"{_word(rng)}.{rng.choice(['net', 'io', 'photo', 'de'])}",
    )
    return str(forms[int(rng.integers(len(forms)))]())


def brand_text(rng: np.random.Generator) -> str:
    word = _word(rng, (2, 4))
    style = int(rng.integers(4))
    if style == 0:
        return word.upper()
    if style == 1:
        return f"{word.capitalize()} {rng.choice(['Studio', 'Images', 'Stock', 'Photo'])}"
    return word if style == 2 else word.capitalize()


# --- painting -----------------------------------------------------------------------------------

_COLOURS_LIGHT = ((255, 255, 255), (235, 235, 235), (210, 210, 210))
_COLOURS_DARK = ((0, 0, 0), (40, 40, 40), (90, 90, 90))


class _Painter:
    """Draws each kind of mark onto a transparent RGBA layer of the photo's size."""

    def __init__(
        self, height: int, width: int, rng: np.random.Generator, fonts: Sequence[Path]
    ) -> None:
        self.height, self.width, self.rng, self.fonts = height, width, rng, list(fonts)
        self.short = min(height, width)

    # kinds

    def credit(self) -> Image.Image:
        rng = self.rng
        size = max(10, round(self.height * rng.uniform(0.022, 0.05)))
        opacity = rng.uniform(0.6, 1.0) if rng.random() < 0.6 else rng.uniform(0.35, 0.6)
        colour = self._mark_colour()
        tile = self._text_tile(credit_text(rng), size, colour, shadow=rng.random() < 0.35)
        tile = _scale_alpha(tile, opacity)
        margin = round(self.short * rng.uniform(0.01, 0.05))
        return self._place_in_corner(tile, margin)

    def logo(self) -> Image.Image:
        rng = self.rng
        opacity = rng.uniform(0.2, 0.4)
        colour = self._mark_colour(light_bias=0.75)
        target_width = self.width * rng.uniform(0.3, 0.75)
        style = int(rng.integers(3))  # 0: word, 1: graphic, 2: graphic + word
        if style == 0:
            tile = self._text_tile(brand_text(rng), 64, colour, bold=True)
        else:
            side = 200
            tile = Image.new("RGBA", (side, side), (*colour, 0))
            self._graphic(ImageDraw.Draw(tile), (8, 8, side - 8, side - 8), colour, filled=None)
            if style == 2:
                tile = _stack(tile, self._text_tile(brand_text(rng), 48, colour, bold=True))
        scale = target_width / tile.width
        if tile.height * scale > self.height * 0.7:
            scale = self.height * 0.7 / tile.height
        tile = tile.resize(
            (max(1, round(tile.width * scale)), max(1, round(tile.height * scale))),
            Image.Resampling.LANCZOS,
        )
        tile = tile.rotate(rng.uniform(-30, 30), Image.Resampling.BICUBIC, expand=True)
        tile = _scale_alpha(tile, opacity)
        centre = (
            self.width * rng.uniform(0.4, 0.6),
            self.height * rng.uniform(0.4, 0.6),
        )
        return self._place(
            tile, round(centre[0] - tile.width / 2), round(centre[1] - tile.height / 2)
        )

    def tiled(self) -> Image.Image:
        rng = self.rng
        opacity = rng.uniform(0.2, 0.4)
        colour = self._mark_colour(light_bias=0.8)
        size = max(12, round(self.short * rng.uniform(0.03, 0.09)))
        tile = self._text_tile(brand_text(rng), size, colour, bold=rng.random() < 0.6)
        if rng.random() < 0.35:
            icon_side = round(size * 1.4)
            icon = Image.new("RGBA", (icon_side, icon_side), (*colour, 0))
            self._graphic(ImageDraw.Draw(icon), (2, 2, icon_side - 2, icon_side - 2), colour)
            tile = _stack(icon, tile)
        angle = rng.choice([-1, 1]) * rng.uniform(15, 45)
        tile = tile.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        tile = _scale_alpha(tile, opacity)
        # Lattice steps: whole pixels, so that each copy is exactly the same pixels.
        step_x = round(tile.width * rng.uniform(1.0, 1.8))
        step_y = round(tile.height * rng.uniform(0.7, 1.5))
        shear = round(step_x * rng.choice([0.0, 0.5]))
        layer = Image.new("RGBA", (self.width, self.height), (*colour, 0))
        offset_x, offset_y = int(rng.integers(0, step_x)), int(rng.integers(0, step_y))
        for row in range(-2, self.height // max(1, step_y) + 3):
            for column in range(-2, self.width // max(1, step_x) + 3):
                x = offset_x + column * step_x + (row * shear) % step_x - tile.width // 2
                y = offset_y + row * step_y - tile.height // 2
                layer.alpha_composite(_clip_to(tile, x, y, layer.size), dest=_dest(x, y))
        return layer

    def badge(self) -> Image.Image:
        rng = self.rng
        side = max(16, round(self.short * rng.uniform(0.06, 0.15)))
        scale = 4  # drawn large and reduced: smooth edges
        big = side * scale
        tile = Image.new("RGBA", (big, big), (0, 0, 0, 0))
        draw = ImageDraw.Draw(tile)
        background = tuple(int(v) for v in rng.integers(0, 256, 3))
        foreground = _contrasting(background)
        shape = int(rng.integers(4))
        box = (0, 0, big - 1, big - 1)
        if shape == 0:
            draw.ellipse(box, fill=(*background, 255))
        elif shape == 1:
            draw.rounded_rectangle(box, radius=big // 5, fill=(*background, 255))
        elif shape == 2:
            draw.regular_polygon((big / 2, big / 2, big / 2), 6, fill=(*background, 255))
        else:
            draw.polygon(
                [(0, 0), (big, 0), (big, big * 0.62), (big / 2, big), (0, big * 0.62)],
                fill=(*background, 255),
            )
        inner = (big * 0.22, big * 0.22, big * 0.78, big * 0.78)
        if rng.random() < 0.5:
            letters = "".join(
                chr(int(rng.integers(65, 91))) for _ in range(int(rng.integers(1, 3)))
            )
            font = self._font(round(big * 0.42), bold=True)
            draw.text((big / 2, big / 2), letters, fill=(*foreground, 255), font=font, anchor="mm")
        else:
            self._graphic(draw, inner, foreground, filled=True)
        tile = tile.resize((side, side), Image.Resampling.LANCZOS)
        tile = _scale_alpha(tile, rng.uniform(0.85, 1.0))
        margin = round(self.short * rng.uniform(0.015, 0.05))
        return self._place_in_corner(tile, margin)

    # pieces

    def _mark_colour(self, light_bias: float = 0.5) -> tuple[int, int, int]:
        rng = self.rng
        draw = rng.random()
        if draw < light_bias:
            return _COLOURS_LIGHT[int(rng.integers(len(_COLOURS_LIGHT)))]
        if draw < light_bias + (1 - light_bias) * 0.6:
            return _COLOURS_DARK[int(rng.integers(len(_COLOURS_DARK)))]
        return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]

    def _font(self, size: int, *, bold: bool = False) -> Font:
        candidates = self.fonts
        if bold:
            candidates = [f for f in self.fonts if "Bold" in f.name] or self.fonts
        if not candidates:
            return ImageFont.load_default(size=size)
        path = candidates[int(self.rng.integers(len(candidates)))]
        return ImageFont.truetype(str(path), size=size)

    def _text_tile(
        self,
        text: str,
        size: int,
        colour: tuple[int, int, int],
        *,
        bold: bool = False,
        shadow: bool = False,
    ) -> Image.Image:
        font = self._font(size, bold=bold)
        left, top, right, bottom = font.getbbox(text)
        pad = max(2, size // 8)
        shift = max(1, size // 14) if shadow else 0
        tile_size = (right - left + 2 * pad + shift, bottom - top + 2 * pad + shift)
        tile = Image.new("RGBA", tile_size, (*colour, 0))
        origin = (pad - left, pad - top)
        if shadow:
            dark = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
            shade = Image.new("RGBA", tile_size, (*dark, 0))
            ImageDraw.Draw(shade).text(
                (origin[0] + shift, origin[1] + shift), text, fill=(*dark, 150), font=font
            )
            tile = Image.alpha_composite(shade, tile)
        ImageDraw.Draw(tile).text(origin, text, fill=(*colour, 255), font=font)
        return tile

    def _graphic(
        self,
        draw: ImageDraw.ImageDraw,
        box: tuple[float, float, float, float],
        colour: tuple[int, int, int],
        *,
        filled: bool | None = None,
    ) -> None:
        """A generated pictogram inside `box`: ring, star, camera, leaf, chevrons, triangle."""
        rng = self.rng
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(w, h) / 2
        fill = (*colour, 255)
        stroke = max(2, round(r * rng.uniform(0.08, 0.2)))
        solid = rng.random() < 0.5 if filled is None else filled
        shape = int(rng.integers(6))
        if shape == 0:
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=stroke)
            inner = r * rng.uniform(0.3, 0.6)
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=fill)
        elif shape == 1:
            points = int(rng.integers(5, 8))
            vertices = []
            for index in range(points * 2):
                radius = r if index % 2 == 0 else r * 0.45
                angle = math.pi * index / points - math.pi / 2
                vertices.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
            if solid:
                draw.polygon(vertices, fill=fill)
            else:
                draw.polygon(vertices, outline=fill, width=stroke)
        elif shape == 2:  # camera
            body = (x0, y0 + h * 0.25, x1, y1 - h * 0.1)
            draw.rounded_rectangle(body, radius=r * 0.2, outline=fill, width=stroke)
            draw.rectangle((cx - w * 0.15, y0 + h * 0.1, cx + w * 0.15, y0 + h * 0.25), fill=fill)
            lens = r * 0.38
            ly = (body[1] + body[3]) / 2
            draw.ellipse((cx - lens, ly - lens, cx + lens, ly + lens), outline=fill, width=stroke)
        elif shape == 3:  # leaf
            draw.ellipse(
                (x0, cy - r * 0.45, x1, cy + r * 0.45),
                fill=fill if solid else None,
                outline=fill,
                width=stroke,
            )
            draw.line(
                (x0, cy, x1, cy),
                fill=(*colour, 255) if not solid else (0, 0, 0, 0),
                width=max(1, stroke // 2),
            )
        elif shape == 4:  # chevrons
            for k in range(3):
                top = y0 + k * h / 3
                draw.line([(x0, top), (cx, top + h / 4), (x1, top)], fill=fill, width=stroke)
        else:
            vertices = [(cx, y0), (x1, y1), (x0, y1)]
            if solid:
                draw.polygon(vertices, fill=fill)
            else:
                draw.polygon(vertices, outline=fill, width=stroke)

    def _place_in_corner(self, tile: Image.Image, margin: int) -> Image.Image:
        corner = int(self.rng.integers(4))
        x = margin if corner in (0, 2) else self.width - tile.width - margin
        y = margin if corner in (0, 1) else self.height - tile.height - margin
        return self._place(tile, max(0, x), max(0, y))

    def _place(self, tile: Image.Image, x: int, y: int) -> Image.Image:
        colour = tile.getpixel((tile.width // 2, tile.height // 2))[:3]
        layer = Image.new("RGBA", (self.width, self.height), (*colour, 0))
        layer.alpha_composite(_clip_to(tile, x, y, layer.size), dest=_dest(x, y))
        return layer


def _scale_alpha(tile: Image.Image, opacity: float) -> Image.Image:
    alpha = np.asarray(tile.getchannel("A"), dtype=np.float32) * opacity
    out = tile.copy()
    out.putalpha(Image.fromarray(np.clip(np.rint(alpha), 0, 255).astype(np.uint8)))
    return out


def _stack(top: Image.Image, bottom: Image.Image) -> Image.Image:
    """`top` centred above `bottom`, scaled to `bottom`'s width at most."""
    if top.width > bottom.width * 1.2:
        ratio = bottom.width * 1.2 / top.width
        top = top.resize((max(1, round(top.width * ratio)), max(1, round(top.height * ratio))))
    width = max(top.width, bottom.width)
    colour = bottom.getpixel((0, 0))[:3]
    out = Image.new("RGBA", (width, top.height + bottom.height), (*colour, 0))
    out.alpha_composite(top, dest=((width - top.width) // 2, 0))
    out.alpha_composite(bottom, dest=((width - bottom.width) // 2, top.height))
    return out


def _contrasting(colour: tuple[int, ...]) -> tuple[int, int, int]:
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (20, 20, 20) if luminance > 140 else (250, 250, 250)


def _clip_to(tile: Image.Image, x: int, y: int, size: tuple[int, int]) -> Image.Image:
    """The part of `tile` placed at (x, y) that falls inside a canvas of `size`."""
    left, top = max(0, -x), max(0, -y)
    right = min(tile.width, size[0] - x)
    bottom = min(tile.height, size[1] - y)
    if right <= left or bottom <= top:
        return Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    return tile.crop((left, top, right, bottom))


def _dest(x: int, y: int) -> tuple[int, int]:
    return max(0, x), max(0, y)


def downscale(sample: WatermarkedPhoto, long_side: int) -> WatermarkedPhoto:
    """The same sample at a smaller size (area interpolation of every layer)."""
    height, width = sample.image.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return sample
    size = (max(1, round(width * scale)), max(1, round(height * scale)))

    def shrink(array: np.ndarray) -> np.ndarray:
        return cv2.resize(array, size, interpolation=cv2.INTER_AREA)

    mark = Mark(kind=sample.kind, alpha=shrink(sample.alpha), colour=shrink(sample.colour))
    return WatermarkedPhoto(
        image=shrink(sample.image), clean=shrink(sample.clean), mark=mark, encoding=sample.encoding
    )
