"""Hostile uploads against the real service: each gets its documented status and detail, on
remove-watermark and on detect (the same table, less what only a mask can get wrong).

Afterwards the service has written no temporary files and its log holds neither image
bytes nor keys.
"""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tests.images import box_mask, decode, encode, photo
from tests.server import RunningService

pytestmark = pytest.mark.e2e

ROUTE = "/api/v1/remove-watermark"
LOG_MARKER = "hostile-marker-7f3a9c"
"""Text embedded in uploaded files: it must never show up in the service log."""


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, payload: bytes = b"\0" * 16) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(payload))
        + _chunk(b"IEND", b"")
    )


def marked_png(pixels: np.ndarray) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", LOG_MARKER)
    return encode(pixels, "PNG", pnginfo=info)


def animated_webp() -> bytes:
    frames = [Image.fromarray(photo(32, 32, seed=i)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=80)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return encode(Image.fromarray(photo(64, 32)), "JPEG", exif=exif.tobytes())


def palette_with_transparency() -> bytes:
    picture = Image.fromarray(photo(48, 32)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(picture, "PNG", transparency=3)


MASK_48x32 = encode(box_mask(48, 32, (8, 8, 24, 20)), "PNG")
MASK_64 = encode(box_mask(64, 64, (8, 8, 30, 30)), "PNG")
JPEG_64 = encode(photo(64, 64), "JPEG")


@dataclass(frozen=True)
class Case:
    name: str
    files: list[tuple[str, tuple[str, bytes, str]]]
    status: int
    detail: str | None = None  # exact detail; None: any (checked by prefix instead)
    detail_prefix: str = ""
    result_size: tuple[int, int] | None = None
    result_mode: str | None = None


def form(
    image: bytes | None, mask: bytes | None = None
) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = []
    if image is not None:
        files.append(("image", ("image.bin", image, "application/octet-stream")))
    if mask is not None:
        files.append(("mask", ("mask.png", mask, "image/png")))
    return files


TRUNCATED_JPEG = encode(photo(400, 300), "JPEG", quality=95)
CASES = [
    Case(
        "decompression bomb",
        form(png_claiming(60000, 60000), MASK_64),
        400,
        "Image too large. Max dimension: 4096px",
    ),
    Case(
        "1x100000 strip",
        form(png_claiming(100000, 1), MASK_64),
        400,
        "Image too large. Max dimension: 4096px",
    ),
    Case(
        "zero-byte file", form(b"", MASK_64), 400, "Invalid image format: the image file is empty"
    ),
    Case(
        "truncated JPEG",
        form(TRUNCATED_JPEG[: len(TRUNCATED_JPEG) // 2], MASK_64),
        400,
        detail_prefix="Invalid image format:",
    ),
    Case(
        "PNG with a lying header",
        form(png_claiming(64, 64, b"\0" * 10), MASK_64),
        400,
        detail_prefix="Invalid image format:",
    ),
    Case(
        "animated WebP",
        form(animated_webp(), MASK_64),
        400,
        "Invalid image format: animated images are not supported",
    ),
    Case(
        "GIF renamed .png",
        form(encode(photo(32, 32), "GIF"), MASK_64),
        400,
        "Invalid image format: GIF is not supported (use JPEG, PNG or WebP)",
    ),
    Case(
        "SVG",
        form(b'<svg xmlns="http://www.w3.org/2000/svg"/>', MASK_64),
        400,
        "Invalid image format: cannot identify image file",
    ),
    Case(
        "CMYK JPEG",
        form(encode(Image.fromarray(photo(64, 64)).convert("CMYK"), "JPEG"), MASK_64),
        200,
        result_size=(64, 64),
        result_mode="RGB",
    ),
    Case(
        "16-bit PNG",
        form(
            encode(
                Image.fromarray(np.linspace(0, 65535, 64 * 64, dtype=np.uint16).reshape(64, 64)),
                "PNG",
            ),
            MASK_64,
        ),
        200,
        result_size=(64, 64),
        result_mode="RGB",
    ),
    Case(
        "palette PNG with transparency",
        form(palette_with_transparency(), MASK_48x32),
        200,
        result_size=(48, 32),
        result_mode="RGBA",
    ),
    Case(
        "EXIF-rotated JPEG",
        form(exif_rotated_jpeg(), encode(box_mask(32, 64, (4, 4, 20, 20)), "PNG")),
        200,
        result_size=(32, 64),
    ),
    Case(
        "mask larger than image",
        form(JPEG_64, encode(box_mask(256, 256, (10, 10, 90, 90)), "PNG")),
        200,
        result_size=(64, 64),
    ),
    Case(
        "mask smaller than image",
        form(JPEG_64, encode(box_mask(16, 16, (2, 2, 8, 8)), "PNG")),
        200,
        result_size=(64, 64),
    ),
    Case(
        "mask that is not an image",
        form(JPEG_64, b"%PDF-1.7 not a mask"),
        400,
        "Invalid mask format: cannot identify image file",
    ),
    Case("empty mask file", form(JPEG_64, b""), 400, "Invalid mask format: the mask file is empty"),
    Case(
        "mask over the size limit",
        form(JPEG_64, MASK_64 + b"\0" * (10 * 1024 * 1024)),
        400,
        "Mask too large. Max size: 10MB",
    ),
    Case(
        "mask over the dimension limit",
        form(JPEG_64, png_claiming(5000, 10)),
        400,
        "Mask too large. Max dimension: 4096px",
    ),
    Case(
        "wrong field name",
        [("photo", ("a.jpg", JPEG_64, "image/jpeg"))],
        400,
        "Unexpected form field 'photo': send 'image' and optionally 'mask', 'format', 'watermark'",
    ),
    Case(
        "duplicate image field",
        form(JPEG_64) + form(JPEG_64),
        400,
        "Duplicate form field 'image': send it once",
    ),
    Case(
        "duplicate mask field",
        form(JPEG_64, MASK_64) + form(None, MASK_64),
        400,
        "Duplicate form field 'mask': send it once",
    ),
    Case("mask without image", form(None, MASK_64), 400, "Missing required form field 'image'"),
    Case(
        "marked PNG, all black mask",
        form(marked_png(photo(40, 40)), encode(np.zeros((40, 40), np.uint8), "PNG")),
        200,
        result_size=(40, 40),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_upload(client: httpx.Client, case: Case) -> None:
    response = client.post(ROUTE, files=case.files)
    assert response.status_code == case.status, response.text[:500]
    if case.status == 200:
        result = decode(response.content)
        assert response.headers["content-type"] == "image/png"
        if case.result_size:
            assert result.size == case.result_size
        if case.result_mode:
            assert result.mode == case.result_mode
        return
    body = response.json()
    assert set(body) == {"error", "detail", "status_code"} and body["status_code"] == case.status
    if case.detail is not None:
        assert body["detail"] == case.detail
    assert body["detail"].startswith(case.detail_prefix)


DETECT = "/api/v1/detect"
MASK_ONLY_CASES = {
    "mask larger than image",
    "mask smaller than image",
    "mask that is not an image",
    "empty mask file",
    "mask over the size limit",
    "mask over the dimension limit",
    "duplicate mask field",
    "mask without image",
    "marked PNG, all black mask",
}


def for_detect(case: Case) -> Case:
    """The same upload without its mask, as detect takes it, and what detect answers."""
    files = [(name, part) for name, part in case.files if name != "mask"]
    if case.name == "wrong field name":
        return Case(case.name, files, 400, "Unexpected form field 'photo': send 'image'")
    return Case(case.name, files, case.status, case.detail, case.detail_prefix, case.result_size)


DETECT_CASES = [for_detect(case) for case in CASES if case.name not in MASK_ONLY_CASES]


@pytest.mark.parametrize("case", DETECT_CASES, ids=[case.name for case in DETECT_CASES])
def test_hostile_upload_to_detect(client: httpx.Client, case: Case) -> None:
    response = client.post(DETECT, files=case.files)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    if case.status == 200:
        assert isinstance(body["regions"], list)
        if case.result_size:
            width, height = case.result_size
            assert body["image_size"] == {"width": width, "height": height}
        return
    assert set(body) == {"error", "detail", "status_code"} and body["status_code"] == case.status
    if case.detail is not None:
        assert body["detail"] == case.detail
    assert body["detail"].startswith(case.detail_prefix)


WATERMARKS = "/api/v1/watermarks"


def rgba_png(width: int = 40, height: int = 20, opacity: int = 120) -> bytes:
    pixels = np.zeros((height, width, 4), np.uint8)
    pixels[..., :3] = 255
    pixels[4:-4, 4:-4, 3] = opacity
    return encode(pixels, "PNG")


def mark(data: bytes, field: str = "watermark") -> tuple[str, tuple[str, bytes, str]]:
    return (field, ("mark.png", data, "image/png"))


def rgba_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _chunk(b"IEND", b"")
    )


RGBA = rgba_png()
WATERMARK_CASES = [
    Case(
        "decompression bomb",
        [mark(rgba_claiming(60000, 60000))],
        400,
        "Watermark too large. Max dimension: 4096px",
    ),
    Case(
        "over the pixel cap",
        [mark(rgba_claiming(4000, 4000))],
        400,
        detail_prefix="Watermark too large: 4000x4000 is over 4194304 pixels",
    ),
    Case(
        "zero-byte file", [mark(b"")], 400, "Invalid watermark format: the watermark file is empty"
    ),
    Case(
        "truncated PNG",
        [mark(RGBA[: len(RGBA) // 2])],
        400,
        detail_prefix="Invalid watermark format:",
    ),
    Case(
        "a JPEG",
        [mark(JPEG_64)],
        400,
        "Invalid watermark format: JPEG is not supported (send a PNG with transparency)",
    ),
    Case(
        "an opaque PNG",
        [mark(encode(photo(40, 20), "PNG"))],
        400,
        "Invalid watermark format: the PNG has no alpha channel; the mark's opacity must be "
        "its transparency (RGBA)",
    ),
    Case(
        "a fully transparent PNG",
        [mark(rgba_png(opacity=0))],
        400,
        "Invalid watermark format: every pixel is fully transparent",
    ),
    Case(
        "over the profile's byte cap",
        [mark(RGBA + b"\0" * (2048 * 1024))],
        400,
        "Watermark too large. Max size: 2048KB",
    ),
    Case(
        "over the file size limit",
        [mark(RGBA + b"\0" * (10 * 1024 * 1024))],
        400,
        "Watermark too large. Max size: 10MB",
    ),
    Case(
        "duplicate watermark field",
        [mark(RGBA), mark(RGBA)],
        400,
        "Duplicate form field 'watermark': send it once",
    ),
    Case(
        "a watermark and images",
        [mark(RGBA), mark(JPEG_64, "image"), mark(JPEG_64, "image")],
        400,
        "Send either one 'watermark' PNG or several 'image' files, not both",
    ),
    Case(
        "seven images only",
        [mark(JPEG_64, "image")] * 7,
        400,
        "Missing required form field 'watermark' (an RGBA PNG of the mark), or send at least "
        "8 'image' files that carry the same mark",
    ),
    Case(
        "images of two sizes",
        [mark(JPEG_64, "image")] * 4 + [mark(encode(photo(32, 64), "JPEG"), "image")] * 4,
        400,
        "The images must share one size to estimate a mark; got 32x64, 64x64",
    ),
    Case(
        "a broken image among the images",
        [mark(JPEG_64, "image")] * 7 + [mark(b"not an image", "image")],
        400,
        "Invalid image format: cannot identify image file",
    ),
    Case(
        "too many images",
        [mark(JPEG_64, "image")] * 17,
        400,
        "Too many images: a profile is estimated from at most 16",
    ),
    Case(
        "wrong field name",
        [mark(RGBA, "logo")],
        400,
        "Unexpected form field 'logo': send 'watermark' and optionally 'image', 'name'",
    ),
    Case(
        "a name over the text limit",
        [mark(RGBA), ("name", (None, "n" * 5000, "text/plain"))],  # type: ignore[list-item]
        400,
        "Form field 'name' too long: at most 4096 bytes",
    ),
    Case(
        "a name that is not UTF-8",
        [mark(RGBA), ("name", (None, b"\xff\xfe", "text/plain"))],  # type: ignore[list-item]
        400,
        "Form field 'name' is not UTF-8 text",
    ),
]


@pytest.mark.parametrize("case", WATERMARK_CASES, ids=[case.name for case in WATERMARK_CASES])
def test_hostile_upload_to_watermarks(client: httpx.Client, case: Case) -> None:
    response = client.post(WATERMARKS, files=case.files)
    assert response.status_code == case.status, response.text[:500]
    body = response.json()
    assert set(body) == {"error", "detail", "status_code"} and body["status_code"] == case.status
    if case.detail is not None:
        assert body["detail"] == case.detail
    assert body["detail"].startswith(case.detail_prefix)


@pytest.mark.parametrize(
    ("watermark", "status", "detail"),
    [
        ("wm_" + "0" * 32, 404, "No watermark profile wm_" + "0" * 32),
        ("../../etc/passwd", 404, "No watermark profile ../../etc/passwd"),
        ("wm_" + "a" * 5000, 400, "Form field 'watermark' too long: at most 4096 bytes"),
    ],
    ids=["unknown id", "path-like id", "id over the text limit"],
)
@pytest.mark.parametrize("route", [ROUTE, "/api/v1/jobs", "/api/v1/batch"])
def test_hostile_watermark_ids(
    client: httpx.Client, route: str, watermark: str, status: int, detail: str
) -> None:
    files = [*form(JPEG_64), ("watermark", (None, watermark, "text/plain"))]  # type: ignore[list-item]
    response = client.post(route, files=files)
    assert response.status_code == status, response.text[:500]
    assert response.json()["detail"] == detail


@pytest.mark.parametrize("path", [f"{WATERMARKS}/wm_" + "0" * 32, f"{WATERMARKS}/..%2F..%2Fx"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_watermark_profiles_are_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 404, response.text[:300]
    assert response.json()["status_code"] == 404


def raw_request(
    service: RunningService,
    head: str,
    body: bytes = b"",
    *,
    pause_after: float = 0,
    rest: bytes = b"",
    read_timeout: float = 20,
) -> str:
    """Send bytes by hand (for bodies no HTTP client would send) and return the reply."""
    url = urlsplit(service.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=read_timeout) as raw:
        raw.sendall(head.encode() + body)
        if pause_after:
            time.sleep(pause_after)
            # The server may already have answered and closed: that is the point.
            with contextlib.suppress(OSError):
                raw.sendall(rest)
        chunks = []
        while True:
            try:
                chunk = raw.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b'"status_code"' in b"".join(chunks):
                break
        return b"".join(chunks).decode("latin-1")


def multipart_head(
    service: RunningService, api_key: str, length: int, boundary: str = "B0undary"
) -> str:
    return (
        f"POST {ROUTE} HTTP/1.1\r\nHost: {urlsplit(service.base_url).netloc}\r\n"
        f"X-API-Key: {api_key}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )


def test_non_multipart_body(client: httpx.Client) -> None:
    response = client.post(ROUTE, content=JPEG_64, headers={"content-type": "image/jpeg"})
    assert response.status_code == 415
    assert response.json()["status_code"] == 415


def test_multipart_without_boundary(client: httpx.Client) -> None:
    response = client.post(
        ROUTE, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 415


def test_multipart_without_closing_boundary(service: RunningService, api_key: str) -> None:
    body = (
        b'--B0undary\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
        + JPEG_64
    )
    reply = raw_request(service, multipart_head(service, api_key, len(body)), body)
    assert reply.startswith("HTTP/1.1 400"), reply[:300]
    assert "Malformed multipart body" in reply


def test_huge_multipart_preamble_is_413(service: RunningService, api_key: str) -> None:
    preamble = b"x" * (30 * 1024 * 1024)
    body = preamble + b"\r\n--B0undary--\r\n"
    reply = raw_request(service, multipart_head(service, api_key, len(body)), body[:65536])
    assert reply.startswith("HTTP/1.1 413"), reply[:300]


def test_huge_preamble_without_content_length_is_cut_off(client: httpx.Client) -> None:
    """Streamed (chunked) junk has no length to refuse up front; the parser stops at once."""
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(40):  # up to 40 MiB
            sent += 1
            yield b"y" * (1024 * 1024)

    response = client.post(
        ROUTE, content=endless(), headers={"content-type": "multipart/form-data; boundary=B0undary"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed multipart body")


def test_slow_loris_upload_gets_408(service: RunningService, api_key: str) -> None:
    """A client that stops sending mid-body is dropped after the body timeout (3 s in tests)."""
    body = (
        b'--B0undary\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
        + JPEG_64[:100]
    )
    started = time.monotonic()
    reply = raw_request(service, multipart_head(service, api_key, len(body) + 10_000), body)
    assert reply.startswith("HTTP/1.1 408"), reply[:300]
    assert time.monotonic() - started < 15


def test_nothing_written_to_disk_and_logs_are_clean(
    service: RunningService, client: httpx.Client, api_key: str, e2e_env: dict[str, str]
) -> None:
    # Run after the table above in file order; do one more upload of our own to be sure.
    marked = marked_png(photo(300, 200))
    response = client.post(
        ROUTE, files=form(marked, encode(box_mask(300, 200, (5, 5, 50, 50)), "PNG"))
    )
    assert response.status_code == 200
    leftovers = [path for path in Path(e2e_env["TMPDIR"]).rglob("*") if path.is_file()]
    assert leftovers == []
    log = service.log()
    assert api_key not in log
    assert api_key[12:] not in log  # not even the secret part alone
    assert LOG_MARKER not in log
    assert "Traceback" not in log
