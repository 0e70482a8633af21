"""Watermark profiles in the SDK: the requests each call sends and what it makes of answers."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from fake_api import BASE_URL, FakeApi, error, image_response, json_response, multipart_parts
from PIL import Image

from iopaint_sdk import IOPaintClient, NotFoundError, WatermarkProfile, cli

PROFILE = {
    "id": "wm_" + "ab" * 16,
    "name": "logo.png",
    "width": 120,
    "height": 40,
    "source": "upload",
    "created_at": "2026-12-02T01:00:00Z",
    "urls": {"self": "/api/v1/watermarks/wm_" + "ab" * 16},
}


def rgba_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (12, 4), (255, 255, 255, 100)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_create_from_a_png_sends_the_watermark_field(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(rgba_png())
    api = FakeApi([json_response(PROFILE, 201)])
    with api.client() as client:
        profile = client.watermarks.create(logo, name="Studio")
    (request,) = api.requests
    assert (request.method, str(request.url)) == ("POST", f"{BASE_URL}/api/v1/watermarks")
    parts = multipart_parts(request)
    assert [(p.name, p.filename) for p in parts] == [("name", None), ("watermark", "logo.png")]
    assert parts[0].content == b"Studio" and parts[1].content == logo.read_bytes()
    assert profile == WatermarkProfile.from_json(PROFILE)
    assert profile.seen_at is None
    assert (profile.id, profile.width, profile.height, profile.source) == (
        PROFILE["id"],
        120,
        40,
        "upload",
    )


def test_create_from_images_sends_each_as_an_image_field() -> None:
    seen = {"x": 12, "y": 30, "image_width": 640, "image_height": 480}
    api = FakeApi([json_response({**PROFILE, "source": "estimated", "seen_at": seen}, 201)])
    with api.client() as client:
        profile = client.watermarks.create(images=[rgba_png(), rgba_png(), rgba_png()])
    names = [part.name for part in multipart_parts(api.requests[0])]
    assert names == ["image", "image", "image"]
    assert (profile.source, profile.seen_at) == ("estimated", seen)


@pytest.mark.parametrize(
    "arguments", [{}, {"watermark": b"png", "images": [b"a", b"b"]}], ids=["none", "both"]
)
def test_create_wants_a_png_or_images_not_both(arguments: dict[str, object]) -> None:
    api = FakeApi()
    with api.client() as client, pytest.raises(ValueError, match="either"):
        client.watermarks.create(**arguments)  # type: ignore[arg-type]
    assert api.requests == []


def test_a_create_is_not_retried_so_a_lost_answer_never_keeps_two() -> None:
    api = FakeApi([error(503, "busy", Retry_After="0"), json_response(PROFILE, 201)])
    with api.client() as client, pytest.raises(Exception, match="busy"):
        client.watermarks.create(rgba_png())
    assert len(api.requests) == 1


def test_list_get_png_and_delete(tmp_path: Path) -> None:
    png = rgba_png()
    api = FakeApi(
        [
            json_response({"watermarks": [PROFILE]}),
            json_response(PROFILE),
            httpx.Response(200, content=png, headers={"Content-Type": "image/png"}),
            httpx.Response(204),
        ]
    )
    with api.client() as client:
        listed = client.watermarks.list()
        got = client.watermarks.get(listed[0])
        content = client.watermarks.png(got.id, output=tmp_path / "mark.png")
        client.watermarks.delete(got)
    assert listed == [WatermarkProfile.from_json(PROFILE)] and got == listed[0]
    assert content == png and (tmp_path / "mark.png").read_bytes() == png
    sent = [(r.method, r.url.path, r.headers.get("accept")) for r in api.requests]
    path = f"/api/v1/watermarks/{PROFILE['id']}"
    assert sent == [
        ("GET", "/api/v1/watermarks", "*/*"),
        ("GET", path, "application/json"),
        ("GET", path, "image/png"),
        ("DELETE", path, "*/*"),
    ]


def test_an_unknown_profile_is_not_found() -> None:
    api = FakeApi([error(404, "No watermark profile wm_x")])
    with api.client() as client, pytest.raises(NotFoundError, match="wm_x"):
        client.watermarks.get("wm_x")


def test_remove_watermark_jobs_and_batches_send_the_profile_id() -> None:
    job = {"id": "job_1", "status": "queued", "urls": {}}
    batch = {"id": "batch_1", "status": "queued", "jobs": [], "urls": {}}
    api = FakeApi(
        [
            image_response(X_Removal="deblend", X_Mask_Source="profile"),
            json_response(job, 202),
            json_response(batch, 202),
        ]
    )
    profile = WatermarkProfile.from_json(PROFILE)
    with api.client() as client:
        result = client.remove_watermark(rgba_png(), watermark=profile)
        client.jobs.submit(rgba_png(), watermark=profile.id)
        client.batches.submit([rgba_png()], watermark=profile)
    assert (result.removal, result.mask_source) == ("deblend", "profile")
    for request in api.requests:
        fields = {p.name: p.content for p in multipart_parts(request) if p.filename is None}
        assert fields == {"watermark": PROFILE["id"].encode()}


def test_without_a_profile_no_watermark_field_is_sent() -> None:
    api = FakeApi([image_response(X_Removal="inpaint")])
    with api.client() as client:
        assert client.remove_watermark(rgba_png()).removal == "inpaint"
    assert [p.name for p in multipart_parts(api.requests[0])] == ["image"]


def test_the_async_client_has_the_same_calls() -> None:
    api = FakeApi(
        [
            json_response(PROFILE, 201),
            json_response({"watermarks": [PROFILE]}),
            image_response(X_Removal="mixed"),
            httpx.Response(204),
        ]
    )

    async def run() -> None:
        async with api.async_client() as client:
            profile = await client.watermarks.create(rgba_png())
            assert await client.watermarks.list() == [profile]
            result = await client.remove_watermark(rgba_png(), watermark=profile)
            assert result.removal == "mixed"
            await client.watermarks.delete(profile)

    asyncio.run(run())
    assert [r.method for r in api.requests] == ["POST", "GET", "POST", "DELETE"]


def test_batch_process_sends_the_profile_with_every_image(tmp_path: Path) -> None:
    api = FakeApi([], default=lambda request: image_response(X_Removal="deblend"))
    with api.client() as client:
        items = client.batch_process(
            [rgba_png(), rgba_png()], tmp_path, watermark=PROFILE["id"], progress=False
        )
    assert [item.ok for item in items] == [True, True]
    removals = [r for r in api.requests if r.url.path == "/api/v1/remove-watermark"]
    assert len(removals) == 2
    for request in removals:
        fields = {p.name: p.content for p in multipart_parts(request) if p.filename is None}
        assert fields == {"watermark": PROFILE["id"].encode()}


def test_the_command_line_takes_a_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi([image_response(X_Removal="mixed")])
    monkeypatch.setenv("IOPAINT_API_KEY", "sk_live_" + "x" * 40)
    monkeypatch.setattr(
        cli,
        "IOPaintClient",
        lambda **options: IOPaintClient(
            base_url=BASE_URL, http_client=httpx.Client(transport=httpx.MockTransport(api))
        ),
    )
    image = tmp_path / "photo.png"
    image.write_bytes(rgba_png())
    assert cli.main(["remove", str(image), "-w", PROFILE["id"], "-o", str(tmp_path / "o.png")]) == 0
    fields = {p.name: p.content for p in multipart_parts(api.requests[0]) if p.filename is None}
    assert fields == {"watermark": PROFILE["id"].encode()}
    assert "mixed" in capsys.readouterr().out
