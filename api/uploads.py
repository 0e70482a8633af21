"""Reading multipart uploads into memory, within limits: one image (and mask) for the
synchronous routes and single jobs, many for a batch (`read_form`), plus small text fields.

Starlette's own form parser spools large files to temporary files on disk; uploads
here never touch disk, and every limit is enforced while the body streams in:

- a declared `Content-Length` over the body limit is refused (413) before reading;
- a body that grows past it while streaming is refused (413) at that point;
- a file part over the file limit is refused with the API document's 400 wording;
- a file field past its count (a batch over the plan's cap) is refused as its part begins;
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
MAX_TEXT_BYTES = 4096
"""Longest text field (a callback URL is at most 2048 characters)."""
_PART_HEADER_LIMIT = 16 * 1024
_ENVELOPE_ALLOWANCE = MEGABYTE
"""Room for multipart boundaries and headers on top of the two files."""


@dataclass(frozen=True)
class Upload:
    image: bytes
    mask: bytes | None
    output_format: str | None = None
    """The `format` text field, when the form has one (`api.output_format`)."""
    watermark: str | None = None
    """The `watermark` text field: the id of one of the caller's watermark profiles."""


@dataclass(frozen=True)
class FormSpec:
    """The fields a form takes: file fields (the first one required), text fields, and how
    many times a file field may repeat (1: once)."""

    files: tuple[str, ...]
    texts: tuple[str, ...] = ()
    max_files: int = 1
    too_many: str = ""
    """The 400's detail when a file field comes more than `max_files` times."""

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.files, *self.texts)


REMOVAL_FORM = FormSpec(files=IMAGE_AND_MASK, texts=("format", "watermark"))
"""remove-watermark: the image, its mask, the result's format (`api.output_format`) and a
watermark profile's id."""
DETECT_FORM = FormSpec(files=IMAGE_ONLY)


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class Form:
    """A parsed form: file parts in the order sent, and text fields."""

    files: tuple[FilePart, ...]
    texts: dict[str, str]

    def parts(self, name: str) -> list[FilePart]:
        return [part for part in self.files if part.field == name]

    def one(self, name: str) -> bytes | None:
        """The data of field `name`, sent at most once; None when absent."""
        found = self.parts(name)
        return found[0].data if found else None


@dataclass
class _Part:
    headers: bytearray = field(default_factory=bytearray)
    name: str | None = None
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _FormCollector:
    """Callbacks for the streaming multipart parser; keeps named parts in memory."""

    def __init__(self, max_file_bytes: int, max_file_mb: int, spec: FormSpec) -> None:
        self.spec = spec
        self.fields = spec.fields
        self.max_file_bytes = max_file_bytes
        self.max_file_mb = max_file_mb
        self.parts: list[FilePart] = []
        self.texts: dict[str, str] = {}
        self.finished = False
        self._counts: dict[str, int] = {}
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
        seen = self._counts.get(field_name, 0)
        repeats = self.spec.max_files if field_name in self.spec.files else 1
        if seen >= repeats:
            if repeats == 1:
                raise BadRequest(f"Duplicate form field '{field_name}': send it once")
            raise BadRequest(self.spec.too_many)
        self._counts[field_name] = seen + 1
        self._current.name = field_name
        filename = options.get(b"filename")
        self._current.filename = None if filename is None else filename.decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._current.data += data[start:end]
        if self._current.name in self.spec.texts:
            if len(self._current.data) > MAX_TEXT_BYTES:
                raise BadRequest(
                    f"Form field '{self._current.name}' too long: at most {MAX_TEXT_BYTES} bytes"
                )
        elif len(self._current.data) > self.max_file_bytes:
            subject = (self._current.name or "file").capitalize()
            raise BadRequest(f"{subject} too large. Max size: {self.max_file_mb}MB")

    def _part_end(self) -> None:
        name = self._current.name
        if name is None:
            return
        if name in self.spec.texts:
            try:
                self.texts[name] = bytes(self._current.data).decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"Form field '{name}' is not UTF-8 text") from None
            return
        self.parts.append(FilePart(name, self._current.filename, bytes(self._current.data)))

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
    spec: FormSpec,
) -> Upload:
    """Parse a synchronous route's form (`image` required, the others optional) or raise."""
    form = await read_form(request, spec, max_file_mb=max_file_mb, body_timeout_s=body_timeout_s)
    image = form.one("image")
    assert image is not None  # read_form refuses a form without its first field
    return Upload(
        image=image,
        mask=form.one("mask"),
        output_format=form.texts.get("format"),
        watermark=form.texts.get("watermark"),
    )


async def read_form(
    request: Request,
    spec: FormSpec,
    *,
    max_file_mb: int,
    body_timeout_s: float,
    max_body_mb: int | None = None,
    require_first: bool = True,
) -> Form:
    """Parse a form as `spec` describes it (its first file field required unless
    `require_first` is false: the caller checks which fields came) or raise. The body limit
    is `max_body_mb`, or room for two files of `max_file_mb` when not given."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    fields = spec.fields
    if content_type != b"multipart/form-data" or not boundary:
        noun = "fields" if len(fields) > 1 else "field"
        raise UnsupportedMediaType(
            f"Content-Type must be multipart/form-data with {noun} {_described(fields)}"
        )

    max_file_bytes = max_file_mb * MEGABYTE
    if max_body_mb is None:
        max_body_bytes = 2 * max_file_bytes + _ENVELOPE_ALLOWANCE
        limits = f"image and mask up to {max_file_mb}MB each"
    else:
        max_body_bytes = max_body_mb * MEGABYTE
        limits = f"each image or mask up to {max_file_mb}MB"
    too_large = PayloadTooLarge(
        f"Request body too large. Max size: {max_body_bytes // MEGABYTE}MB ({limits})"
    )
    declared_length = request.headers.get("content-length")
    if declared_length and declared_length.isdigit() and int(declared_length) > max_body_bytes:
        raise too_large

    collector = _FormCollector(max_file_bytes, max_file_mb, spec)
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
    required = spec.files[0]
    if require_first and not any(part.field == required for part in collector.parts):
        raise BadRequest(f"Missing required form field '{required}'")
    return Form(files=tuple(collector.parts), texts=collector.texts)


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
