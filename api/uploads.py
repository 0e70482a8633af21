"""Reading the multipart upload of remove-watermark into memory, within limits.

Starlette's own form parser spools large files to temporary files on disk; uploads
here never touch disk, and every limit is enforced while the body streams in:

- a declared `Content-Length` over the body limit is refused (413) before reading;
- a body that grows past it while streaming is refused (413) at that point;
- a file part over the file limit is refused with the API document's 400 wording;
- a client that stops sending for `body_timeout_s` gets 408 (slow uploads hold no worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

MEGABYTE = 1024 * 1024
IMAGE_AND_MASK = ("image", "mask")
IMAGE_ONLY = ("image",)
REMOVAL_FIELDS = (*IMAGE_AND_MASK, "format")
"""remove-watermark: the image, its mask, and the result's format (`api.output_format`)."""
_PART_HEADER_LIMIT = 16 * 1024
_ENVELOPE_ALLOWANCE = MEGABYTE
"""Room for multipart boundaries and headers on top of the two files."""


@dataclass(frozen=True)
class Upload:
    image: bytes
    mask: bytes | None
    output_format: str | None = None
    """The `format` text field, when the form has one."""


@dataclass
class _Part:
    headers: bytearray = field(default_factory=bytearray)
    name: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _FormCollector:
    """Callbacks for the streaming multipart parser; keeps named parts in memory."""

    def __init__(self, max_file_bytes: int, max_file_mb: int, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.max_file_bytes = max_file_bytes
        self.max_file_mb = max_file_mb
        self.parts: dict[str, bytes] = {}
        self.finished = False
        self._current = _Part()
        self._header_field = b""
        self._header_bytes = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._current = _Part()
        self._header_field = b""
        self._header_bytes = 0

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._guard_header_size(end - start)

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        if self._header_field.lower() == b"content-disposition":
            self._current.headers += data[start:end]
        self._guard_header_size(end - start)

    def _header_end(self) -> None:
        self._header_field = b""

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(bytes(self._current.headers))
        name = options.get(b"name")
        if disposition != b"form-data" or name is None:
            raise BadRequest("Malformed multipart body: a part has no form-data name")
        field_name = name.decode("utf-8", "replace")
        if field_name not in self.fields:
            raise BadRequest(
                f"Unexpected form field '{field_name[:64]}': send {_described(self.fields)}"
            )
        if field_name in self.parts:
            raise BadRequest(f"Duplicate form field '{field_name}': send it once")
        self._current.name = field_name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._current.data += data[start:end]
        if len(self._current.data) > self.max_file_bytes:
            subject = "Image" if self._current.name == "image" else "Mask"
            raise BadRequest(f"{subject} too large. Max size: {self.max_file_mb}MB")

    def _part_end(self) -> None:
        if self._current.name is not None:
            self.parts[self._current.name] = bytes(self._current.data)

    def _end(self) -> None:
        self.finished = True

    def _guard_header_size(self, added: int) -> None:
        self._header_bytes += added
        if self._header_bytes > _PART_HEADER_LIMIT:
            raise BadRequest("Malformed multipart body: part headers too long")


async def read_upload(
    request: Request,
    *,
    max_file_mb: int,
    body_timeout_s: float,
    fields: tuple[str, ...] = IMAGE_AND_MASK,
) -> Upload:
    """Parse a form of `fields` (`image` required, the others optional) or raise."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        noun = "fields" if len(fields) > 1 else "field"
        raise UnsupportedMediaType(
            f"Content-Type must be multipart/form-data with {noun} {_described(fields)}"
        )

    max_file_bytes = max_file_mb * MEGABYTE
    max_body_bytes = 2 * max_file_bytes + _ENVELOPE_ALLOWANCE
    too_large = PayloadTooLarge(
        f"Request body too large. Max size: {max_body_bytes // MEGABYTE}MB "
        f"(image and mask up to {max_file_mb}MB each)"
    )
    declared_length = request.headers.get("content-length")
    if declared_length and declared_length.isdigit() and int(declared_length) > max_body_bytes:
        raise too_large

    collector = _FormCollector(max_file_bytes, max_file_mb, fields)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in _chunks_with_timeout(request, body_timeout_s):
            received += len(chunk)
            if received > max_body_bytes:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    except ClientDisconnect:
        raise BadRequest("Client disconnected before the upload finished") from None

    if not collector.finished:
        raise BadRequest("Malformed multipart body: the closing boundary is missing")
    if "image" not in collector.parts:
        raise BadRequest("Missing required form field 'image'")
    output_format = collector.parts.get("format")
    return Upload(
        image=collector.parts["image"],
        mask=collector.parts.get("mask"),
        output_format=None if output_format is None else output_format.decode("utf-8", "replace"),
    )


def _described(fields: tuple[str, ...]) -> str:
    """``'image' and optionally 'mask'``: the form a route takes, in words."""
    required, *optional = fields
    if not optional:
        return f"'{required}'"
    return f"'{required}' and optionally " + ", ".join(f"'{name}'" for name in optional)


async def _chunks_with_timeout(request: Request, timeout_s: float) -> AsyncIterator[bytes]:
    stream = request.stream()
    while True:
        try:
            chunk = await asyncio.wait_for(anext(stream), timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(
                f"Request body not received: no data for {timeout_s:g} seconds"
            ) from None
        if chunk:
            yield chunk
