"""Every runtime setting of the service, read once from `IOPAINT_*` environment variables.

The README's settings table is the user-facing copy of this class; keep them in step.

Deadlines. One setting, `IOPAINT_REQUEST_TIMEOUT_S` (D), bounds how long a request may
wait for the model; every other timeout on its path is derived from it in `Deadlines`,
each a little longer than the one inside it, so that the innermost fires first and the
client gets the most precise answer:

1. the runner's batcher refuses a call it predicts would queue and compute for longer
   than D (503, "Model is busy");
2. the HTTP worker stops waiting for a runner call after D + 10 s (503, "did not answer in
   time": a runner that hangs);
3. BentoML ends a call to the runner service after D + 20 s;
4. BentoML ends an HTTP request after D + 60 s (the upload, decoding and encoding come on
   top of the model's time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelChoice = Literal["auto", "lama", "opencv"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
HdStrategyChoice = Literal["auto", "original", "crop", "resize"]
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]
CompileChoice = Literal["off", "dynamic"]


def default_data_dir() -> Path:
    """Per user, whatever the current directory: ``$XDG_DATA_HOME/iopaint-api``
    (``~/.local/share/iopaint-api``). The CLI and the service must find the same store
    wherever they are started from."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "iopaint-api"


@dataclass(frozen=True)
class Deadlines:
    """The timeouts of one model request, innermost first (see the module docstring)."""

    batch_budget_ms: int
    model_call_s: float
    runner_traffic_s: float
    http_traffic_s: float

    @classmethod
    def from_request_timeout(cls, seconds: float) -> Deadlines:
        return cls(
            batch_budget_ms=round(seconds * 1000),
            model_call_s=seconds + 10,
            runner_traffic_s=seconds + 20,
            http_traffic_s=seconds + 60,
        )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IOPAINT_", frozen=True, extra="ignore")

    # --- serving -------------------------------------------------------------------------
    port: int = Field(8080, description="HTTP port of `iopaint-api serve`.")
    host: str = Field("0.0.0.0", description="Interface `iopaint-api serve` binds to.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Level of the service's own loggers (api, auth, runners)."
    )
    http_workers: int = Field(1, gt=0, description="HTTP worker processes (the model has its own).")

    # --- uploads ---------------------------------------------------------------------------
    max_upload_mb: int = Field(10, gt=0, description="Largest accepted image or mask file, MB.")
    max_dimension: int = Field(4096, gt=0, description="Largest accepted width or height, px.")
    body_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for the next chunk of a request body (slow uploads)."
    )
    request_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest a request may wait for the model; every other deadline derives "
        "from it (see `Deadlines`).",
    )
    max_pending_requests: int = Field(
        32, gt=0, description="Remove-watermark requests one HTTP worker holds at once; more: 503."
    )

    # --- model -----------------------------------------------------------------------------
    model: ModelChoice = Field(
        "auto", description="`auto`: LaMa when weights are found, else OpenCV (with a warning)."
    )
    lama_weights: str | None = Field(
        None, description="Path or URL of LaMa weights (TorchScript .pt or LaMa best.ckpt)."
    )
    lama_config: str = Field("big-lama", description="Architecture of the LaMa weights.")
    lama_download: bool = Field(
        True,
        description="Download big-lama.pt into IOPaint's cache when no weights are found.",
    )
    lama_download_url: str = Field(
        "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
        description="Where that download comes from (IOPaint's official file by default).",
    )
    lama_download_md5: str = Field(
        "e3aa4aaa15225a33ec84f9f4bc47e500",
        description="md5 the downloaded file must have; a mismatch deletes it.",
    )
    device: DeviceChoice = Field("auto", description="`auto`: CUDA when available, else CPU.")
    cpu_threads: int | None = Field(
        None,
        gt=0,
        description="torch CPU threads (default: the cores this process may use, CPU quota "
        "included).",
    )
    hd_strategy: HdStrategyChoice = Field(
        "auto", description="How large images are inpainted: original, crop or resize."
    )
    hd_crop_margin: int = Field(128, ge=0, description="Context kept around each mask region.")
    hd_resize_limit: int = Field(2048, gt=0, description="Longest side for the resize strategy.")
    hd_trigger: int = Field(
        1024, gt=0, description="Images with a longer side than this use crop/resize under auto."
    )

    # --- compute: precision, compiled graph, output encoding ----------------------------------
    precision: PrecisionChoice = Field(
        "auto",
        description="Numeric precision of the LaMa forward. `auto`: bf16 on CPUs with AMX or "
        "AVX512-BF16, fp32 on other CPUs, bf16 (or fp16 before Ampere) on CUDA; a start-up "
        "parity check against fp32 falls back to fp32 when the outputs stray.",
    )
    compile: CompileChoice = Field(
        "off",
        description="`dynamic`: torch.compile the LaMa network (one graph for every image "
        "size), compiled while the runner starts, never on a request.",
    )
    webp_quality: int = Field(
        90, ge=1, le=100, description="Quality of WebP results (`Accept: image/webp`)."
    )
    jpeg_quality: int = Field(
        90, ge=1, le=100, description="Quality of JPEG results (`Accept: image/jpeg`)."
    )

    # --- detection ---------------------------------------------------------------------------
    detection: bool = Field(
        True,
        description="Watermark detection (`/detect`, remove-watermark without a mask); "
        "`false`: those requests are refused and the model runner loads no detector.",
    )
    detector_threads: int | None = Field(
        None, gt=0, description="onnxruntime threads per detection model (default: cores)."
    )

    # --- adaptive batching (runner) ---------------------------------------------------------
    max_batch_size: int | None = Field(
        None, gt=0, description="Largest batch the runner forms (default: 2 on CPU, 8 on CUDA)."
    )

    # --- accounts ----------------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        None, description="Redis for keys, limits and usage; unset: embedded SQLite store."
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded store keeps its files (default: per user).",
    )
    redis_key_prefix: str = Field(
        "iopaint:", min_length=1, description="Prefix of every Redis key the service writes."
    )
    store_timeout_s: float = Field(
        0.5, gt=0, description="Longest wait on the accounts store before treating it as down."
    )
    key_cache_minutes: float = Field(
        15.0,
        ge=0,
        description="A key verified this recently keeps working while the store is down.",
    )
    rotation_grace_hours: float = Field(
        24.0, ge=0, description="Default time an old key keeps working after `keys rotate`."
    )
    stats_enabled: bool = Field(True, description="`false`: GET /api/v1/stats answers 404.")

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines.from_request_timeout(self.request_timeout_s)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
