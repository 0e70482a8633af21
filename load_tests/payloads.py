"""Request bodies, built once per locust process: synthetic watermarked photos and masks.

Every valid combination of the traffic's sizes, formats and masks becomes one ready
multipart body, and a few deliberately wrong ones each carry the status they must get.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from urllib3 import encode_multipart_formdata

from load_tests.traffic import BATCH_SIZE, FORMATS, MASKS, SIZES, size_label

logger = logging.getLogger("load_tests")

PayloadKey = tuple[tuple[int, int], str, str]
"""(size, format, mask kind) of a valid upload."""


@dataclass(frozen=True)
class Upload:
    """A ready multipart body and what the service must answer to it."""

    label: str
    body: bytes
    content_type: str
    size: tuple[int, int] | None = None
    expected_status: int = 200
    detail_hint: str = ""


@dataclass
class Payloads:
    valid: dict[PayloadKey, Upload] = field(default_factory=dict)
    invalid: list[Upload] = field(default_factory=list)
    batch: Upload | None = None
    """`BATCH_SIZE` small photos and their masks (matched by position), one batch body."""


def synthetic_photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth scene with mild noise and a semi-transparent text watermark across it."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = np.stack(
        [
            60 + 150 * xs / width,
            80 + 120 * ys / height,
            120 + 80 * np.sin(xs / (width / 6.0)) * np.cos(ys / (height / 5.0)),
        ],
        axis=-1,
    )
    scene += rng.normal(0, 4, size=scene.shape)
    picture = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8), "RGB")
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default(size=max(12, height // 10))
    draw.text((width * 3 // 25, height * 2 // 5), "SAMPLE", font=font, fill=(255, 255, 255, 140))
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def watermark_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where `synthetic_photo` writes its watermark, with a margin: (left, top, right, bottom).

    About 8% of the image, a typical share for a stock-photo text watermark.
    """
    return (width // 10, height * 19 // 50, width * 3 // 5, height * 27 // 50)


def mask_image(width: int, height: int, kind: str) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    if kind == "empty":
        return mask
    ImageDraw.Draw(mask).rectangle(watermark_box(width, height), fill=255)
    if kind == "soft":
        mask = mask.filter(ImageFilter.GaussianBlur(radius=max(2, width // 100)))
    elif kind == "half-size":
        mask = mask.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BILINEAR)
    return mask


def encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"JPEG": {"quality": 88}, "WEBP": {"quality": 85}}.get(fmt, {})
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


EXTENSION = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}


def build_payloads() -> Payloads:
    started = time.perf_counter()
    payloads = Payloads()
    for index, ((width, height), _) in enumerate(SIZES):
        photo = synthetic_photo(width, height, seed=index)
        masks = {kind: encoded(mask_image(width, height, kind), "PNG") for kind, _ in MASKS}
        for fmt, _ in FORMATS:
            image_bytes = encoded(photo, fmt)
            extension, media_type = EXTENSION[fmt]
            for kind, mask_bytes in masks.items():
                body, content_type = encode_multipart_formdata(
                    {
                        "image": (f"photo.{extension}", image_bytes, media_type),
                        "mask": ("mask.png", mask_bytes, "image/png"),
                    }
                )
                payloads.valid[((width, height), fmt, kind)] = Upload(
                    label=f"{size_label((width, height))} {fmt} {kind} mask",
                    body=body,
                    content_type=content_type,
                    size=(width, height),
                )
    payloads.invalid = build_invalid()
    payloads.batch = build_batch(BATCH_SIZE)
    logger.info(
        "payloads ready in %.1fs: %d valid (largest %.1f MB), %d invalid",
        time.perf_counter() - started,
        len(payloads.valid),
        max(len(u.body) for u in payloads.valid.values()) / 1e6,
        len(payloads.invalid),
    )
    return payloads


def build_batch(count: int, size: tuple[int, int] = (256, 256)) -> Upload:
    """One batch of `count` different small photos, each with its box mask."""
    width, height = size
    mask = encoded(mask_image(width, height, "box"), "PNG")
    fields: list[tuple[str, tuple[str, bytes, str]]] = []
    for index in range(count):
        photo = encoded(synthetic_photo(width, height, seed=100 + index), "JPEG")
        fields.append(("image", (f"photo-{index}.jpg", photo, "image/jpeg")))
    fields += [("mask", (f"mask-{index}.png", mask, "image/png")) for index in range(count)]
    body, content_type = encode_multipart_formdata(fields)
    return Upload(f"batch of {count} {size_label(size)}", body, content_type, size=size)


def build_invalid() -> list[Upload]:
    """Requests the service must refuse (400, or 422 for a mask-less photo with no
    watermark to find), whatever the load."""
    photo = synthetic_photo(320, 240, seed=99)
    jpeg = encoded(photo, "JPEG")
    png = encoded(photo, "PNG")
    mask = encoded(mask_image(320, 240, "box"), "PNG")
    noise = np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    too_wide = encoded(Image.new("RGB", (4200, 8), (200, 30, 30)), "PNG")
    cases = [
        ("no mask, no watermark", {"image": ("photo.jpg", jpeg, "image/jpeg")}, "No watermark"),
        (
            "not an image",
            {"image": ("photo.jpg", noise, "image/jpeg"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
        (
            "truncated png",
            {
                "image": ("photo.png", png[: len(png) // 2], "image/png"),
                "mask": ("mask.png", mask, "image/png"),
            },
            "",
        ),
        (
            "text as mask",
            {
                "image": ("photo.jpg", jpeg, "image/jpeg"),
                "mask": ("mask.png", b"white = remove\n" * 20, "image/png"),
            },
            "",
        ),
        (
            "wider than 4096 px",
            {"image": ("wide.png", too_wide, "image/png"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
        (
            "wrong field name",
            {"file": ("photo.jpg", jpeg, "image/jpeg"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
    ]
    uploads = []
    for label, fields, hint in cases:
        body, content_type = encode_multipart_formdata(fields)
        status = 422 if label.startswith("no mask") else 400
        uploads.append(Upload(label, body, content_type, expected_status=status, detail_hint=hint))
    return uploads
