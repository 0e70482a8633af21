"""Watermark profiles in process: create, list, read, delete, and removal with `watermark`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import numpy as np
import pytest
from skimage import data

from auth.plans import PLANS
from settings import Settings
from tests.api.contract_schemas import contract_validator
from tests.api.inprocess import InProcessService, running_in_process
from tests.api.requests import ROUTE, assert_error, upload
from tests.api.watermark_images import (
    MARK_AT,
    clean_photo,
    mark_mask,
    mark_rgba,
    psnr,
    stamped,
)
from tests.images import decode, encode, photo
from tests.runners.detection_images import tiled

WATERMARKS = "/api/v1/watermarks"
PER_ACCOUNT = 3


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessService]:
    folder = tmp_path_factory.mktemp("in-process")
    settings = Settings(
        data_dir=folder,
        model="opencv",
        detector_threads=1,
        watermarks_per_account=PER_ACCOUNT,
        watermark_max_pixels=200 * 200,
        watermark_estimate_max_images=8,
        deblend_tiled=True,
    )
    with running_in_process(folder, settings) as service:
        yield service


@pytest.fixture
def key(in_process: InProcessService) -> dict[str, str]:
    """A fresh key per test: each starts with no profiles."""
    return {"X-API-Key": in_process.new_key(PLANS["pro"])}


def create(
    client: httpx.Client, headers: dict[str, str], rgba: np.ndarray, **fields: str
) -> httpx.Response:
    files = {"watermark": ("logo.png", encode(rgba, "PNG"), "image/png")}
    return client.post(WATERMARKS, files=files, data=fields, headers=headers)


def test_a_profile_is_created_listed_read_and_deleted(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    rgba = mark_rgba()
    created = create(client, key, rgba, name="Studio mark")
    assert created.status_code == 201, created.text
    profile = created.json()
    assert profile["id"].startswith("wm_")
    assert {k: profile[k] for k in ("name", "width", "height", "source")} == {
        "name": "Studio mark",
        "width": rgba.shape[1],
        "height": rgba.shape[0],
        "source": "upload",
    }
    assert profile["seen_at"] is None
    contract_validator("WatermarkProfile").validate(profile)
    assert created.headers["Location"] == f"{WATERMARKS}/{profile['id']}"
    assert profile["urls"]["self"] == created.headers["Location"]

    listed = client.get(WATERMARKS, headers=key)
    assert listed.status_code == 200
    assert listed.json() == {"watermarks": [profile]}
    assert client.get(profile["urls"]["self"], headers=key).json() == profile
    png = client.get(profile["urls"]["self"], headers={**key, "Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(decode(png.content)), rgba)

    assert client.delete(profile["urls"]["self"], headers=key).status_code == 204
    assert_error(client.get(profile["urls"]["self"], headers=key), 404)
    assert_error(client.delete(profile["urls"]["self"], headers=key), 404)
    assert client.get(WATERMARKS, headers=key).json() == {"watermarks": []}


def test_the_name_defaults_to_the_files_name(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    assert create(in_process.anonymous, key, mark_rgba()).json()["name"] == "logo.png"


def test_another_key_never_sees_a_profile(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    profile = create(client, key, mark_rgba()).json()
    other = {"X-API-Key": in_process.new_key(PLANS["pro"])}
    unknown = client.get(f"{WATERMARKS}/wm_{'0' * 32}", headers=other)
    theirs = client.get(profile["urls"]["self"], headers=other)
    assert_error(theirs, 404, f"No watermark profile {profile['id']}")
    assert theirs.json()["detail"].replace(profile["id"], "ID") == unknown.json()["detail"].replace(
        f"wm_{'0' * 32}", "ID"
    )
    assert_error(client.delete(profile["urls"]["self"], headers=other), 404)
    assert client.get(WATERMARKS, headers=other).json() == {"watermarks": []}
    image = encode(stamped(clean_photo(), mark_rgba()), "PNG")
    removal = client.post(
        ROUTE, files=upload(image), data={"watermark": profile["id"]}, headers=other
    )
    assert_error(removal, 404, f"No watermark profile {profile['id']}")
    assert client.get(profile["urls"]["self"], headers=key).status_code == 200


def test_the_count_cap_is_a_409_until_one_is_deleted(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    made = [create(client, key, mark_rgba()).json() for _ in range(PER_ACCOUNT)]
    refused = create(client, key, mark_rgba())
    assert_error(
        refused,
        409,
        f"This key keeps {PER_ACCOUNT} watermark profiles already; delete one first",
    )
    client.delete(made[0]["urls"]["self"], headers=key)
    assert create(client, key, mark_rgba()).status_code == 201


def _png_without_alpha() -> bytes:
    return encode(photo(40, 20), "PNG")


def _clear_png() -> bytes:
    return encode(np.zeros((20, 40, 4), np.uint8), "PNG")


@pytest.mark.parametrize(
    ("files", "data", "detail"),
    [
        (
            [("watermark", ("a.png", b"", "image/png"))],
            {},
            "Invalid watermark format: the watermark file is empty",
        ),
        (
            [("watermark", ("a.jpg", encode(photo(40, 20), "JPEG"), "image/jpeg"))],
            {},
            "Invalid watermark format: JPEG is not supported (send a PNG with transparency)",
        ),
        (
            [("watermark", ("a.png", _png_without_alpha(), "image/png"))],
            {},
            "Invalid watermark format: the PNG has no alpha channel; the mark's opacity must "
            "be its transparency (RGBA)",
        ),
        (
            [("watermark", ("a.png", _clear_png(), "image/png"))],
            {},
            "Invalid watermark format: every pixel is fully transparent",
        ),
        (
            [("watermark", ("a.png", encode(mark_rgba(width=300, height=150), "PNG"), "x"))],
            {},
            "Watermark too large: 300x150 is over 40000 pixels; crop it to the mark",
        ),
        (
            [
                ("watermark", ("a.png", encode(mark_rgba(), "PNG"), "image/png")),
                ("image", ("b.png", encode(photo(), "PNG"), "image/png")),
            ],
            {},
            "Send either one 'watermark' PNG or several 'image' files, not both",
        ),
        (
            [("image", ("b.png", encode(photo(), "PNG"), "image/png"))] * 7,
            {},
            "Missing required form field 'watermark' (an RGBA PNG of the mark), or send at "
            "least 8 'image' files that carry the same mark",
        ),
        (
            [("image", ("a.png", encode(photo(96, 64), "PNG"), "image/png"))] * 4
            + [("image", ("b.png", encode(photo(64, 96), "PNG"), "image/png"))] * 4,
            {},
            "The images must share one size to estimate a mark; got 64x96, 96x64",
        ),
        (
            [("watermark", ("a.png", encode(mark_rgba(), "PNG"), "image/png"))],
            {"name": "x" * 201},
            "Form field 'name' too long: at most 200 characters",
        ),
        (
            [("watermark", ("a.png", encode(mark_rgba(), "PNG"), "image/png"))],
            {"name": "bad\x07name"},
            "Form field 'name' holds control characters",
        ),
        (
            [("image", ("a.png", encode(photo(), "PNG"), "image/png"))] * 9,
            {},
            "Too many images: a profile is estimated from at most 8",
        ),
    ],
)
def test_bad_profile_forms_are_clear_400s_that_cost_nothing(
    in_process: InProcessService,
    key: dict[str, str],
    files: list[tuple[str, tuple[str, bytes, str]]],
    data: dict[str, str],
    detail: str,
) -> None:
    client = in_process.anonymous
    before = client.get(WATERMARKS, headers=key).headers["X-RateLimit-Remaining"]
    assert_error(client.post(WATERMARKS, files=files, data=data, headers=key), 400, detail)
    after = client.get(WATERMARKS, headers=key).headers["X-RateLimit-Remaining"]
    assert after == before
    assert client.get(WATERMARKS, headers=key).json() == {"watermarks": []}


def test_removal_with_a_profile_recovers_the_photo_better_than_inpainting(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    rgba = mark_rgba(opacity=0.4)
    clean = clean_photo()
    marked = stamped(clean, rgba)
    mask = mark_mask(clean.shape[:2], rgba)
    profile = create(client, key, rgba).json()

    deblended = client.post(
        ROUTE, files=upload(encode(marked, "PNG")), data={"watermark": profile["id"]}, headers=key
    )
    assert deblended.status_code == 200, deblended.text
    assert deblended.headers["X-Mask-Source"] == "profile"
    assert deblended.headers["X-Removal"] in ("deblend", "mixed")
    inpainted = client.post(
        ROUTE, files=upload(encode(marked, "PNG"), encode(mask, "PNG")), headers=key
    )
    assert inpainted.headers["X-Removal"] == "inpaint"

    inside = mask > 0
    profile_db = psnr(np.asarray(decode(deblended.content)), clean, inside)
    inpaint_db = psnr(np.asarray(decode(inpainted.content)), clean, inside)
    print(f"inside the mark: profile {profile_db:.1f} dB, inpainting {inpaint_db:.1f} dB")
    assert profile_db > inpaint_db


def removed_with_a_mask(
    in_process: InProcessService,
    key: dict[str, str],
    mask_for: Callable[[tuple[int, int], np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, httpx.Response]:
    """A photo stamped with a profile's mark, removed with that profile and the mask
    `mask_for(shape, rgba)`: (the marked photo, the mask, the answer)."""
    client = in_process.anonymous
    rgba = mark_rgba()
    clean = clean_photo(seed=1)
    marked = stamped(clean, rgba)
    profile = create(client, key, rgba).json()
    mask = mask_for(clean.shape[:2], rgba)
    answer = client.post(
        ROUTE,
        files=upload(encode(marked, "PNG"), encode(mask, "PNG")),
        data={"watermark": profile["id"]},
        headers=key,
    )
    return marked, mask, answer


def test_a_profile_with_a_mask_says_the_mask_was_uploaded(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    _, _, answer = removed_with_a_mask(in_process, key, mark_mask)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Mask-Source"] == "uploaded"
    assert answer.headers["X-Removal"] in ("deblend", "mixed", "inpaint")


def test_a_profile_found_only_outside_the_mask_sent_leaves_the_mask_to_inpainting(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    def elsewhere(shape: tuple[int, int], _: np.ndarray) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        mask[150:185, 170:250] = 255  # clear of the mark at MARK_AT
        return mask

    marked, mask, answer = removed_with_a_mask(in_process, key, elsewhere)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Removal"] == "inpaint"
    result = np.asarray(decode(answer.content))
    # The mark the profile matches is left as sent: only the masked area was touched.
    far = mask == 0
    far[140:192, 160:256] = False
    np.testing.assert_array_equal(result[far], marked[far])


@pytest.mark.parametrize("watermark", ["wm_" + "0" * 32, "logo", "wm_../../x"])
def test_removal_with_an_unknown_profile_is_404(
    in_process: InProcessService, key: dict[str, str], watermark: str
) -> None:
    response = in_process.anonymous.post(
        ROUTE, files=upload(encode(photo(), "PNG")), data={"watermark": watermark}, headers=key
    )
    assert_error(response, 404, f"No watermark profile {watermark}")


def test_a_profile_estimated_from_images_costs_one_request_per_image(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    rgba = mark_rgba(opacity=0.45)
    images = [
        ("image", (f"{n}.png", encode(stamped(clean_photo(seed=n), rgba), "PNG"), "image/png"))
        for n in range(8)
    ]
    before = int(client.get(WATERMARKS, headers=key).headers["X-RateLimit-Remaining"])
    created = client.post(WATERMARKS, files=images, data={"name": "from photos"}, headers=key)
    assert created.status_code == 201, created.text
    profile = created.json()
    assert (profile["source"], profile["name"]) == ("estimated", "from photos")
    contract_validator("WatermarkProfile").validate(profile)
    # The mark was stamped at MARK_AT on photos of clean_photo's size; its estimated box is
    # cut to what is visible, with a margin, so it starts within a few pixels of that.
    seen = profile["seen_at"]
    assert (seen["image_width"], seen["image_height"]) == (256, 192)
    assert abs(MARK_AT[0] - seen["x"]) <= 8 and abs(MARK_AT[1] - seen["y"]) <= 8
    assert int(created.headers["X-RateLimit-Remaining"]) <= before - 8
    png = client.get(profile["urls"]["self"], headers={**key, "Accept": "image/png"})
    estimated = np.asarray(decode(png.content))
    assert estimated.shape == (profile["height"], profile["width"], 4)
    assert estimated[..., 3].any()


def test_jobs_and_batches_take_a_profile(in_process: InProcessService, key: dict[str, str]) -> None:
    client = in_process.anonymous
    rgba = mark_rgba()
    profile = create(client, key, rgba).json()
    image = encode(stamped(clean_photo(seed=2), rgba), "PNG")
    job = client.post(
        "/api/v1/jobs",
        files=upload(image),
        data={"watermark": profile["id"]},
        headers={**key, "Prefer": "wait=30"},
    )
    assert job.status_code == 200, job.text
    assert job.json()["status"] == "succeeded", job.json()
    result = client.get(job.json()["urls"]["result"], headers=key)
    assert result.headers["X-Removal"] in ("deblend", "mixed")
    assert result.headers["X-Mask-Source"] == "profile"

    batch = client.post(
        "/api/v1/batch",
        files=[("image", ("a.png", image, "image/png")), ("image", ("b.png", image, "image/png"))],
        data={"watermark": profile["id"]},
        headers=key,
    )
    assert batch.status_code == 202, batch.text
    # Deleting the profile now changes nothing: each job holds its own copy.
    assert client.delete(profile["urls"]["self"], headers=key).status_code == 204
    jobs = batch.json()["jobs"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [client.get(f"/api/v1/jobs/{j['id']}", headers=key).json() for j in jobs]
        if all(state["status"] not in ("queued", "running") for state in states):
            break
        time.sleep(0.1)
    assert [state["status"] for state in states] == ["succeeded", "succeeded"], states
    for state in states:
        answer = client.get(state["urls"]["result"], headers=key)
        assert answer.headers["X-Removal"] in ("deblend", "mixed")


def test_jobs_with_an_unknown_profile_are_404_and_queue_nothing(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    for route in ("/api/v1/jobs", "/api/v1/batch"):
        response = client.post(
            route,
            files=upload(encode(photo(), "PNG")),
            data={"watermark": "wm_" + "1" * 32},
            headers=key,
        )
        assert_error(response, 404, "No watermark profile wm_" + "1" * 32)


def test_a_tiled_mark_without_profile_or_mask_is_deblended_from_its_repeats(
    in_process: InProcessService, key: dict[str, str]
) -> None:
    client = in_process.anonymous
    clean = np.ascontiguousarray(data.astronaut()[:320, :480])
    marked, truth = tiled(clean, step_y=48, step_x=80, opacity=0.35)
    image = encode(marked, "PNG")
    detected = client.post("/api/v1/detect", files=upload(image), headers=key).json()
    assert "pattern" in {region["kind"] for region in detected["regions"]}

    removed = client.post(ROUTE, files=upload(image), headers=key)
    assert removed.status_code == 200, removed.text
    assert removed.headers["X-Mask-Source"] == "detected"
    assert removed.headers["X-Removal"] in ("deblend", "mixed")
    mask = client.post(
        "/api/v1/detect", files=upload(image), headers={**key, "Accept": "image/png"}
    ).content
    inpainted = client.post(ROUTE, files=upload(image, mask), headers=key)
    assert inpainted.headers["X-Removal"] == "inpaint"
    self_db = psnr(np.asarray(decode(removed.content)), clean, truth)
    inpaint_db = psnr(np.asarray(decode(inpainted.content)), clean, truth)
    print(f"on the tiled mark: self-estimated {self_db:.1f} dB, inpainting {inpaint_db:.1f} dB")
    assert self_db >= inpaint_db
