"""Model files the detector runs: where they are, what they must hash to, how they are opened.

The text models ship inside the `rapidocr` wheel on PyPI (nothing is fetched at run time);
the mark segmenter is our own file, committed beside this package. Every file is read once,
its SHA-256 compared with the one recorded here, and the ONNX session built from those same
bytes, so the model that runs is the one that was checked.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import onnxruntime

__all__ = ["ModelFile", "ModelFileError", "onnx_session", "resolve_device"]


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file recorded here; the message says which."""


@dataclass(frozen=True)
class ModelFile:
    name: str
    """Reported in health, e.g. ``PP-OCRv6_det_small``."""
    package: str | None
    """Distribution that ships the file (its version is reported), or None for our own."""
    relative_path: str
    """Inside the package's import directory, or inside this package for our own files."""
    sha256: str
    version: str | None = None
    """Our own files' version; a packaged file's is its package's."""

    def path(self) -> Path:
        if self.package is None:
            return Path(__file__).resolve().parent / self.relative_path
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError(
                f"{self.name}: the Python package {self.package!r} is not installed "
                f"(it ships {self.relative_path})"
            )
        return Path(next(iter(spec.submodule_search_locations))) / self.relative_path

    def reported_version(self) -> str:
        if self.package is None:
            return self.version or "unversioned"
        return f"{self.package} {importlib.metadata.version(self.package)}"

    def read_verified(self) -> bytes:
        """The file's bytes, once their SHA-256 matches the recorded one."""
        path = self.path()
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ModelFileError(f"{self.name}: cannot read {path}: {error}") from error
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ModelFileError(
                f"{self.name}: {path} has SHA-256 {digest}, expected {self.sha256} "
                f"({self.reported_version()}); refusing to load a model file that is not the "
                "one this code was written and measured for"
            )
        return data

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.reported_version(), "sha256": self.sha256}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when onnxruntime has a CUDA provider, else ``cpu``."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if device == "cuda" and not has_cuda:
        raise ModelFileError(
            "device cuda asked for, but this onnxruntime has no CUDA provider "
            "(install onnxruntime-gpu instead of onnxruntime)"
        )
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    return device


def onnx_session(model: bytes, *, threads: int, device: str) -> onnxruntime.InferenceSession:
    """An inference session on `threads` CPU threads (or CUDA), threads not spinning idle."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    # Idle worker threads would spin, taking the cores from LaMa in the same process.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(model, sess_options=options, providers=providers)
