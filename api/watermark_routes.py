"""The watermark-profile routes: an account keeps its own marks, and removal inverts them.

    POST   /api/v1/watermarks          `watermark` (an RGBA PNG) or 8+ `image` fields -> 201
    GET    /api/v1/watermarks          the caller's profiles
    GET    /api/v1/watermarks/{id}     JSON, or the RGBA PNG with `Accept: image/png`
    DELETE /api/v1/watermarks/{id}     204

A profile belongs to the key that made it: another key's profile is 404, exactly like one
that does not exist. Creating costs one request for an uploaded PNG and one per image for
an estimated profile (charged by the handler once the form is read, before the model
runs). `Profiles.mark_for` is what remove-watermark, jobs and batches use to turn a
``watermark`` field into the mark (`api.profile_marks`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.accounts_middleware import CHARGE
from api.capacity import UploadSlots
from api.images import decode_image, decode_watermark_png
from api.model_client import ModelClient
from api.output_format import prefers_png
from api.profile_marks import (
    ProfileMark,
    SeenAt,
    decode_profile_mark,
    encode_profile_png,
    seen_at_of,
)
from api.routing import AUTHENTICATED, CHARGED_BY_HANDLER, Policy, route
from api.store_outage import store_outage_as_503
from api.uploads import FormSpec, read_form
from auth.records import Account
from errors import BadRequest, Conflict, NotFound, UnprocessableEntity
from profiles.records import (
    MAX_NAME_CHARS,
    ProfileSource,
    WatermarkProfile,
    is_profile_id,
    new_profile_id,
)
from profiles.store import ProfileStore, ProfileStoreUnavailable, TooManyProfiles
from runners.deblend.estimation import MIN_IMAGES
from settings import Settings

logger = logging.getLogger(__name__)

WATERMARKS_PATH = "/api/v1/watermarks"
PNG = "image/png"
PROFILES_UNAVAILABLE = "Watermark profiles are unavailable right now; retry shortly"


class Profiles:
    """The caller's profiles in the store, as the routes need them (404s, 503s)."""

    def __init__(self, store: ProfileStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def profile_of(self, account: Account, profile_id: str) -> WatermarkProfile:
        found = (
            await self.call(self.store.get_for(account.key_id, profile_id))
            if is_profile_id(profile_id)
            else None
        )
        if found is None:
            raise NotFound(f"No watermark profile {profile_id[:80]}")
        return found

    async def mark_for(self, account: Account, watermark: str | None) -> ProfileMark | None:
        """The mark a request's ``watermark`` field names (None: none named); 404 when it
        names none of the caller's profiles."""
        if watermark is None or not watermark.strip():
            return None
        profile = await self.profile_of(account, watermark.strip())
        return await run_in_threadpool(
            decode_profile_mark,
            profile.png,
            max_dimension=self.settings.max_dimension,
            max_pixels=self.settings.watermark_max_pixels,
        )

    async def call(self, operation: Any) -> Any:
        """Await a store call; an unreachable store is a 503 with `Retry-After`."""
        with store_outage_as_503(ProfileStoreUnavailable, PROFILES_UNAVAILABLE):
            return await operation


class WatermarksApi:
    def __init__(
        self, models: ModelClient, profiles: Profiles, settings: Settings, slots: UploadSlots
    ) -> None:
        self.models = models
        self.profiles = profiles
        self.settings = settings
        self.slots = slots

    @route("POST", WATERMARKS_PATH, Policy(cost=CHARGED_BY_HANDLER, counted=False))
    async def create_profile(self, request: Request) -> JSONResponse:
        # Its uploads (up to a batch's worth of images) take a slot like any other route's.
        with self.slots.hold():
            return await self._create_profile(request)

    async def _create_profile(self, request: Request) -> JSONResponse:
        account: Account = request.state.account
        most = self.settings.watermark_estimate_max_images
        spec = FormSpec(
            files=("watermark", "image"),
            texts=("name",),
            max_files=most,
            too_many=f"Too many images: a profile is estimated from at most {most}",
        )
        form = await read_form(
            request,
            spec,
            max_file_mb=self.settings.max_upload_mb,
            body_timeout_s=self.settings.body_timeout_s,
            max_body_mb=self.settings.batch_max_mb,
            require_first=False,
        )
        marks, images = form.parts("watermark"), form.parts("image")
        name = _name(form.texts.get("name", ""))
        if marks and images:
            raise BadRequest("Send either one 'watermark' PNG or several 'image' files, not both")
        if len(marks) > 1:
            raise BadRequest("Duplicate form field 'watermark': send it once")
        await self._refuse_if_full(account)
        source: ProfileSource
        if marks:
            if len(marks[0].data) > self.settings.watermark_max_kb * 1024:
                raise BadRequest(
                    f"Watermark too large. Max size: {self.settings.watermark_max_kb}KB"
                )
            rgba = await run_in_threadpool(
                decode_watermark_png,
                marks[0].data,
                max_dimension=self.settings.max_dimension,
                max_pixels=self.settings.watermark_max_pixels,
            )
            await getattr(request.state, CHARGE)(1)
            png, source = marks[0].data, "upload"
            name = name or (marks[0].filename or "watermark")[:MAX_NAME_CHARS]
        elif len(images) >= MIN_IMAGES:
            rgba, seen_at = await self._estimate(request, [part.data for part in images])
            png = await run_in_threadpool(encode_profile_png, rgba, seen_at)
            self._refuse_oversized_estimate(rgba, png)
            source = "estimated"
            name = name or "estimated"
        else:
            raise BadRequest(
                "Missing required form field 'watermark' (an RGBA PNG of the mark), or send "
                f"at least {MIN_IMAGES} 'image' files that carry the same mark"
            )
        height, width = rgba.shape[:2]
        profile = WatermarkProfile(
            id=new_profile_id(),
            owner_id=account.key_id,
            name=name,
            created_at=time.time(),
            width=width,
            height=height,
            source=source,
            png=png,
        )
        try:
            await self.profiles.call(
                self.profiles.store.create(
                    profile, max_per_owner=self.settings.watermarks_per_account
                )
            )
        except TooManyProfiles as full:
            raise _too_many(full.limit) from None
        logger.info("watermark %s created (%s) for %s", profile.id, source, account.prefix)
        return JSONResponse(
            profile_json(profile),
            status_code=201,
            headers={"Location": f"{WATERMARKS_PATH}/{profile.id}"},
        )

    @route("GET", WATERMARKS_PATH, AUTHENTICATED)
    async def list_profiles(self, request: Request) -> JSONResponse:
        account: Account = request.state.account
        found = await self.profiles.call(self.profiles.store.list_for(account.key_id))
        return JSONResponse({"watermarks": [profile_json(p) for p in found]})

    @route("GET", WATERMARKS_PATH + "/{profile_id}", AUTHENTICATED)
    async def get_profile(self, request: Request) -> Response:
        profile = await self.profiles.profile_of(
            request.state.account, request.path_params["profile_id"]
        )
        if prefers_png(request.headers.get("accept")):
            return Response(profile.png, media_type=PNG, headers={"Vary": "Accept"})
        return JSONResponse(profile_json(profile), headers={"Vary": "Accept"})

    @route("DELETE", WATERMARKS_PATH + "/{profile_id}", AUTHENTICATED)
    async def delete_profile(self, request: Request) -> Response:
        account: Account = request.state.account
        profile_id = request.path_params["profile_id"]
        deleted = is_profile_id(profile_id) and await self.profiles.call(
            self.profiles.store.delete_for(account.key_id, profile_id)
        )
        if not deleted:
            raise NotFound(f"No watermark profile {profile_id[:80]}")
        return Response(status_code=204)

    async def _refuse_if_full(self, account: Account) -> None:
        """Before anything is spent; the store checks again, atomically, as it keeps one."""
        kept = await self.profiles.call(self.profiles.store.list_for(account.key_id))
        if len(kept) >= self.settings.watermarks_per_account:
            raise _too_many(self.settings.watermarks_per_account)

    def _refuse_oversized_estimate(self, rgba: np.ndarray, png: bytes) -> None:
        """An estimated mark obeys the caps an uploaded one does, so that every kept profile
        can be used later."""
        height, width = rgba.shape[:2]
        if width * height > self.settings.watermark_max_pixels or len(png) > (
            self.settings.watermark_max_kb * 1024
        ):
            raise UnprocessableEntity(
                f"The estimated mark ({width}x{height} px, {len(png) // 1024} KB) is over the "
                "watermark profile caps; crop the images closer to the mark"
            )

    async def _estimate(self, request: Request, uploads: list[bytes]) -> tuple[np.ndarray, SeenAt]:
        decoded = []
        for data in uploads:
            image = await run_in_threadpool(
                decode_image, data, max_dimension=self.settings.max_dimension
            )
            decoded.append(image.rgb)
        sizes = {rgb.shape[:2] for rgb in decoded}
        if len(sizes) > 1:
            listed = ", ".join(sorted(f"{w}x{h}" for h, w in sizes))
            raise BadRequest(f"The images must share one size to estimate a mark; got {listed}")
        # Charged once the form is known to be usable, before the model works on it.
        await getattr(request.state, CHARGE)(len(decoded))
        estimate = await self.models.estimate_template(decoded)
        (height, width), (row, col) = decoded[0].shape[:2], estimate.corner
        return estimate.rgba, SeenAt(x=col, y=row, image_width=width, image_height=height)


def _too_many(limit: int) -> Conflict:
    return Conflict(f"This key keeps {limit} watermark profiles already; delete one first")


def profile_json(profile: WatermarkProfile) -> dict[str, object]:
    return {
        "id": profile.id,
        "name": profile.name,
        "width": profile.width,
        "height": profile.height,
        "source": profile.source,
        # Where an estimated mark lay in the photos it came from (None for an upload).
        "seen_at": None if (seen := seen_at_of(profile.png)) is None else seen.to_json(),
        "created_at": datetime.fromtimestamp(profile.created_at, UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        # The PNG is the same URL asked with `Accept: image/png`.
        "urls": {"self": f"{WATERMARKS_PATH}/{profile.id}"},
    }


def _name(text: str) -> str:
    name = text.strip()
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"Form field 'name' too long: at most {MAX_NAME_CHARS} characters")
    if any(ord(char) < 32 for char in name):
        raise BadRequest("Form field 'name' holds control characters")
    return name
