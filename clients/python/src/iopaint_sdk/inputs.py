"""Turning what a caller passes as an image or mask into an upload, and writing results.

Accepted inputs: a path (``str`` or ``os.PathLike``), ``bytes``-like data, a binary file
object, a PIL image, or a numpy array (``H x W`` gray or ``H x W x 3|4``; ``bool`` masks
become 0/255). PIL images and arrays are sent as PNG, so nothing is lost on the way;
they need Pillow (``pip install 'iopaint-sdk[images]'``).
"""

from __future__ import annotations

import io
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import numpy
    from PIL import Image

    ImageInput = (
        str
        | os.PathLike[str]
        | bytes
        | bytearray
        | memoryview
        | IO[bytes]
        | Image.Image
        | numpy.ndarray
    )
    """Anything `to_upload` accepts."""
else:
    ImageInput = Any

OutputTarget = Union[str, "os.PathLike[str]", IO[bytes]]
"""Where a result goes: a path (parent folders are created) or a writable binary file."""

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF8", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
)


@dataclass(frozen=True)
class Upload:
    """One multipart file part, held in memory so that a retry can send it again."""

    filename: str
    content: bytes
    content_type: str

    def as_file(self) -> tuple[str, bytes, str]:
        return (self.filename, self.content, self.content_type)

    @property
    def stem(self) -> str:
        return Path(self.filename).stem


def to_upload(value: ImageInput, *, default_name: str) -> Upload:
    """An `Upload` from any accepted input; TypeError for anything else."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        content = path.read_bytes()
        return Upload(path.name, content, _content_type(path.name, content))
    if isinstance(value, (bytes, bytearray, memoryview)):
        content = bytes(value)
        return Upload(_sniff_name(default_name, content), content, _content_type("", content))
    if _is_pil_image(value):
        return Upload(f"{default_name}.png", _pil_to_png(value), "image/png")
    if _is_array(value):
        return Upload(f"{default_name}.png", _array_to_png(value), "image/png")
    read = getattr(value, "read", None)
    if callable(read):
        content = read()
        if not isinstance(content, (bytes, bytearray)):
            raise TypeError("file objects must be opened in binary mode ('rb')")
        content = bytes(content)
        name = getattr(value, "name", None)
        filename = (
            Path(name).name
            if isinstance(name, str) and name
            else _sniff_name(default_name, content)
        )
        return Upload(filename, content, _content_type(filename, content))
    raise TypeError(
        f"cannot send {type(value).__name__} as an image: pass a path, bytes, a binary file "
        "object, a PIL image or a numpy array"
    )


def write_output(content: bytes, target: OutputTarget) -> Path | None:
    """Write `content` to `target`; the path written, or None for a file object."""
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path
    write = getattr(target, "write", None)
    if not callable(write):
        raise TypeError(f"cannot write a result to {type(target).__name__}: pass a path or file")
    write(content)
    return None


def open_pil(content: bytes) -> Image.Image:
    """A loaded PIL image of `content` (needs Pillow)."""
    image_module = _pillow()
    picture = image_module.open(io.BytesIO(content))
    picture.load()
    return picture


def _content_type(filename: str, content: bytes) -> str:
    for signature, content_type, _ in _SIGNATURES:
        if content.startswith(signature):
            return content_type
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(filename) if filename else (None, None)
    return guessed or "application/octet-stream"


def _sniff_name(default_name: str, content: bytes) -> str:
    for signature, _, suffix in _SIGNATURES:
        if content.startswith(signature):
            return default_name + suffix
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return default_name + ".webp"
    return default_name


def _is_pil_image(value: object) -> bool:
    return any(cls.__module__.startswith("PIL.") for cls in type(value).__mro__) and hasattr(
        value, "save"
    )


def _is_array(value: object) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "__array_interface__")


def _pil_to_png(picture: Any) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _array_to_png(array: Any) -> bytes:
    import numpy as np

    pixels = np.asarray(array)
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    elif pixels.dtype != np.uint8:
        if not np.issubdtype(pixels.dtype, np.integer):
            raise TypeError(
                "numpy arrays must hold 8-bit integers (or booleans for a mask), "
                f"not {pixels.dtype}"
            )
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ValueError("numpy image values must lie in 0..255")
        pixels = pixels.astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(f"numpy images must be H x W, H x W x 3 or H x W x 4, not {pixels.shape}")
    return _pil_to_png(_pillow().fromarray(np.ascontiguousarray(pixels)))


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "PIL images and numpy arrays need Pillow: pip install 'iopaint-sdk[images]'"
        ) from exc
    return Image
