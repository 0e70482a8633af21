"""Every runtime setting of the service, read once from `IOPAINT_*` environment variables.

The README's settings table is the user-facing copy of this class; keep them in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelChoice = Literal["auto", "lama", "opencv"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
HdStrategyChoice = Literal["auto", "original", "crop", "resize"]


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
        300.0, gt=0, description="Longest a remove-watermark request may wait for the model."
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
    cpu_threads: int | None = Field(None, gt=0, description="torch CPU threads (default: cores).")
    hd_strategy: HdStrategyChoice = Field(
        "auto", description="How large images are inpainted: original, crop or resize."
    )
    hd_crop_margin: int = Field(128, ge=0, description="Context kept around each mask region.")
    hd_resize_limit: int = Field(2048, gt=0, description="Longest side for the resize strategy.")
    hd_trigger: int = Field(
        1024, gt=0, description="Images with a longer side than this use crop/resize under auto."
    )

    # --- adaptive batching (runner) ---------------------------------------------------------
    max_batch_size: int | None = Field(
        None, gt=0, description="Largest batch the runner forms (default: 2 on CPU, 8 on CUDA)."
    )
    max_latency_ms: int = Field(
        600_000, gt=0, description="Queueing + compute budget per request before 503."
    )

    # --- accounts ----------------------------------------------------------------------------
    redis_url: SecretStr | None = Field(
        None, description="Redis for keys, limits and usage; unset: embedded SQLite store."
    )
    data_dir: Path = Field(Path("var"), description="Where the embedded store keeps its files.")
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
