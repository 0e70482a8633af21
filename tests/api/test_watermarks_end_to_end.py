"""Watermark profiles through the real service: create, remove with watermark=id, X-Removal.

The session's `bentoml serve` runs them: the HTTP worker keeps the profile in the embedded
store, and the de-blending runs in the model runner process (`ModelRunner.deblend`), as in
production.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.api.watermark_images import clean_photo, mark_mask, mark_rgba, psnr, stamped
from tests.images import decode, encode

pytestmark = pytest.mark.e2e

WATERMARKS = "/api/v1/watermarks"
REMOVE = "/api/v1/remove-watermark"


def test_a_profile_created_then_removed_by_id_says_how_in_x_removal(
    client: httpx.Client,
) -> None:
    rgba = mark_rgba(opacity=0.35)
    clean = clean_photo(seed=3)
    marked = stamped(clean, rgba)
    created = client.post(
        WATERMARKS,
        files={"watermark": ("logo.png", encode(rgba, "PNG"), "image/png")},
        data={"name": "e2e mark"},
    )
    assert created.status_code == 201, created.text
    profile = created.json()

    removed = client.post(
        REMOVE,
        files={"image": ("marked.png", encode(marked, "PNG"), "image/png")},
        data={"watermark": profile["id"]},
    )
    assert removed.status_code == 200, removed.text
    assert removed.headers["X-Removal"] in ("deblend", "mixed")
    assert removed.headers["X-Mask-Source"] == "profile"
    result = np.asarray(decode(removed.content))
    assert result.shape == marked.shape

    mask = mark_mask(clean.shape[:2], rgba)
    inpainted = client.post(
        REMOVE,
        files={
            "image": ("marked.png", encode(marked, "PNG"), "image/png"),
            "mask": ("mask.png", encode(mask, "PNG"), "image/png"),
        },
    )
    assert inpainted.headers["X-Removal"] == "inpaint"
    inside = mask > 0
    profile_db = psnr(result, clean, inside)
    inpaint_db = psnr(np.asarray(decode(inpainted.content)), clean, inside)
    print(f"inside the mark: profile {profile_db:.1f} dB, inpainting {inpaint_db:.1f} dB")
    assert profile_db > inpaint_db

    assert client.delete(profile["urls"]["self"]).status_code == 204
    gone = client.post(
        REMOVE,
        files={"image": ("marked.png", encode(marked, "PNG"), "image/png")},
        data={"watermark": profile["id"]},
    )
    assert gone.status_code == 404


def test_an_estimated_profile_runs_in_the_model_runner(client: httpx.Client) -> None:
    rgba = mark_rgba(opacity=0.45)
    images = [
        ("image", (f"{n}.png", encode(stamped(clean_photo(seed=n), rgba), "PNG"), "image/png"))
        for n in range(8)
    ]
    created = client.post(WATERMARKS, files=images)
    assert created.status_code == 201, created.text
    profile = created.json()
    assert profile["source"] == "estimated"
    png = client.get(profile["urls"]["self"], headers={"Accept": "image/png"})
    assert decode(png.content).mode == "RGBA"
    # The runner is told the mark is an estimate; over this textured photo it still inverts.
    removed = client.post(REMOVE, files=[images[2]], data={"watermark": profile["id"]})
    assert removed.status_code == 200, removed.text
    assert removed.headers["X-Mask-Source"] == "profile"
    assert removed.headers["X-Removal"] in ("deblend", "mixed")
    client.delete(profile["urls"]["self"])
