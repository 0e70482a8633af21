"""The work behind the routes: from uploaded bytes to the bytes of the answer.

    remover = Remover(models, settings)
    result = await remover.remove(image_bytes, mask_bytes)    # mask_bytes None: detect first
    result = await remover.remove(image_bytes, None, mark=mark)   # a watermark profile
    found = await remover.detect(image_bytes)

Decoding and encoding run in worker threads, the models in the model process
(`api.model_client`); every failure is one of the API's errors (`errors.py`). The
synchronous routes call this, and so can anything else that holds an upload's bytes.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from starlette.concurrency import run_in_threadpool

from api.images import DecodedImage, decode_image, decode_mask, encode_mask_png, encode_result
from api.model_client import DeblendRefused, ModelClient
from api.output_format import OutputFormat
from api.profile_marks import ProfileMark
from errors import BadRequest, NotFound, UnprocessableEntity
from runners.detection.detector import Detection, Region
from runners.model_info import ModelInfo
from settings import Settings

logger = logging.getLogger(__name__)

NO_WATERMARK_FOUND = (
    "No watermark was found in the image. Send a 'mask' file (white = remove, "
    "black = keep) to say what to remove."
)
DETECTION_OFF_MASK_REQUIRED = (
    "A mask is required: send a 'mask' file (white = remove, black = keep). "
    "Automatic watermark detection is off on this server."
)

DETECTION_DISABLED = "Detection disabled"

MaskSource = Literal["detected", "uploaded", "profile"]
RemovalKind = Literal["deblend", "inpaint", "mixed"]
TILED_KIND = "pattern"
"""The detector's region kind for a repeated (tiled) mark, whose repeats de-blending can
estimate the mark from."""


@dataclass(frozen=True)
class Removal:
    """A cleaned image and what the answer says about it."""

    content: bytes
    media_type: str
    width: int
    height: int
    model: str
    precision: str | None
    """What the model computed in (``fp32``, ``bf16``, ``fp16``); None for OpenCV."""
    mask_source: MaskSource
    detected_regions: int | None
    """How many regions detection found; None when the client sent the mask."""
    mask_share: float
    processing_seconds: float
    removal: RemovalKind = "inpaint"
    """How the mark went: its blend inverted, inpainted, or both (`X-Removal`)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Processing-Time": f"{self.processing_seconds:.3f}",
            "X-Image-Size": f"{self.width}x{self.height}",
            "X-Model": self.model,
            "X-Mask-Source": self.mask_source,
            "X-Removal": self.removal,
            # The body's format follows Accept, so caches must key on it.
            "Vary": "Accept",
        }
        if self.precision is not None:
            headers["X-Precision"] = self.precision
        if self.detected_regions is not None:
            headers["X-Detected-Regions"] = str(self.detected_regions)
        return headers


@dataclass(frozen=True)
class Found:
    """What detection found in one upload."""

    detection: Detection
    width: int
    height: int
    detector: str
    processing_seconds: float

    def as_json(self, *, with_mask: bool = False) -> dict[str, object]:
        """The documented body; `with_mask` adds the mask PNG, base64, as ``mask_png``."""
        body: dict[str, object] = {
            "regions": [_region_json(region) for region in self.detection.regions],
            "coverage": round(self.detection.coverage, 6),
            "image_size": {"width": self.width, "height": self.height},
            "processing_time": round(self.processing_seconds, 3),
        }
        if with_mask:
            body["mask_png"] = base64.b64encode(self.mask_png()).decode("ascii")
        return body

    def mask_png(self) -> bytes:
        return encode_mask_png(self.detection.mask)

    def headers(self) -> dict[str, str]:
        return {
            "X-Processing-Time": f"{self.processing_seconds:.3f}",
            "X-Image-Size": f"{self.width}x{self.height}",
            "X-Detected-Regions": str(len(self.detection.regions)),
            "X-Detector": self.detector,
        }


class Remover:
    def __init__(self, models: ModelClient, settings: Settings) -> None:
        self.models = models
        self.settings = settings
        self._info: ModelInfo | None = None

    async def remove(
        self,
        image_bytes: bytes,
        mask_bytes: bytes | None,
        *,
        output: OutputFormat = OutputFormat.PNG,
        mark: ProfileMark | None = None,
    ) -> Removal:
        """Clean the image: with the client's mask, or with the mask detection finds; with a
        watermark profile's `mark`, by inverting the mark's blend (the mask, if sent, says
        where the mark is)."""
        started = time.perf_counter()
        image = await self._decode(image_bytes)
        info = await self.model_info()
        regions: int | None = None
        mask: np.ndarray | None = None
        detection: Detection | None = None
        if mask_bytes is not None:
            mask = await run_in_threadpool(
                decode_mask,
                mask_bytes,
                size=image.size,
                max_dimension=self.settings.max_dimension,
            )
            source: MaskSource = "uploaded"
        elif mark is not None:
            source = "profile"
        else:
            detection = await self._detect(image, info)
            if not detection.regions or not detection.mask.any():
                raise UnprocessableEntity(NO_WATERMARK_FOUND)
            mask, regions, source = detection.mask, len(detection.regions), "detected"
        removal: RemovalKind = "inpaint"
        if mark is not None:
            done = await self.models.deblend(
                image.rgb,
                mark.rgba,
                mask,
                image.chroma,
                seen_at=mark.corner_in(image.size),
                estimated=mark.estimated,
            )
            pixels, removal = done.image, done.removal
            share = float(done.inpainted.mean()) if mask is None else float((mask > 0).mean())
        else:
            assert mask is not None  # uploaded or detected above
            share = float((mask > 0).mean())
            tiled = (
                self.settings.deblend_tiled
                and detection is not None
                and any(region.kind == TILED_KIND for region in detection.regions)
            )
            pixels, removal = await self._without_profile(image, mask, tiled=tiled)
        content = await run_in_threadpool(
            encode_result,
            output,
            pixels,
            image.alpha,
            image.icc_profile,
            webp_quality=self.settings.webp_quality,
            jpeg_quality=self.settings.jpeg_quality,
        )
        width, height = image.size
        return Removal(
            content=content,
            media_type=output.media_type,
            width=width,
            height=height,
            model=info.model,
            precision=info.precision,
            mask_source=source,
            detected_regions=regions,
            mask_share=share,
            processing_seconds=time.perf_counter() - started,
            removal=removal,
        )

    async def detect(self, image_bytes: bytes) -> Found:
        started = time.perf_counter()
        info = await self.model_info()
        if info.detector is None:
            raise NotFound(DETECTION_DISABLED)
        image = await self._decode(image_bytes)
        detection = await self._detect(image, info)
        width, height = image.size
        assert info.detector is not None  # _detect refused otherwise
        return Found(
            detection=detection,
            width=width,
            height=height,
            detector=str(info.detector["name"]),
            processing_seconds=time.perf_counter() - started,
        )

    async def model_info(self) -> ModelInfo:
        """The runner's models, asked once: they are fixed for the life of the runner."""
        if self._info is None:
            self._info = await self.models.model_info()
        return self._info

    async def _without_profile(
        self, image: DecodedImage, mask: np.ndarray, *, tiled: bool
    ) -> tuple[np.ndarray, RemovalKind]:
        """Inpaint the mask; a tiled mark found by detection is first de-blended from its own
        repeats, and inpainting takes over when that estimate is refused."""
        rgb = image.rgb
        if not mask.any():
            # Nothing to remove: the model would only be asked to keep every pixel.
            return rgb, "inpaint"
        if tiled:
            try:
                done = await self.models.deblend(rgb, None, mask, image.chroma)
            except DeblendRefused as refused:
                logger.info("Tiled mark inpainted instead: %s", refused.detail)
            else:
                return done.image, done.removal
        return await self.models.inpaint(rgb, mask), "inpaint"

    async def _decode(self, image_bytes: bytes) -> DecodedImage:
        return await run_in_threadpool(
            decode_image, image_bytes, max_dimension=self.settings.max_dimension
        )

    async def _detect(self, image: DecodedImage, info: ModelInfo) -> Detection:
        if info.detector is None:
            raise BadRequest(DETECTION_OFF_MASK_REQUIRED)
        detection = await self.models.detect(image.rgb)
        if detection.mask.shape != image.rgb.shape[:2]:
            raise ValueError(
                f"the detector's mask is {detection.mask.shape}, the image {image.rgb.shape[:2]}"
            )
        return detection


def _region_json(region: Region) -> dict[str, object]:
    left, top, width, height = region.box
    return {
        "kind": region.kind,
        "box": {"x": left, "y": top, "width": width, "height": height},
        "outline": [[x, y] for x, y in region.outline],
        "score": round(float(region.score), 4),
        "text": region.text,
    }
