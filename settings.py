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

import ipaddress
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelChoice = Literal["auto", "lama", "opencv"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
HdStrategyChoice = Literal["auto", "original", "crop", "resize"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
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
        32,
        gt=0,
        description="Requests with an upload one HTTP worker holds at once, all routes"
        " together; more: 503.",
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

    # --- jobs and webhooks (docs/jobs.md) ------------------------------------------------------
    job_result_ttl_s: float = Field(
        3600.0, gt=0, description="How long a finished job's result is kept, seconds."
    )
    job_lease_s: float = Field(
        30.0,
        gt=0,
        description="A running job's lease; a replica that stops renewing it (killed) loses "
        "the job to another one after this long.",
    )
    job_concurrency: int = Field(
        2, ge=0, description="Jobs one HTTP worker process runs at once (0: it runs none)."
    )
    job_queue_per_account: int = Field(
        100, gt=0, description="Unfinished jobs one account may have; more: 429."
    )
    job_queue_total: int = Field(
        1000, gt=0, description="Unfinished jobs of all accounts together; more: 503."
    )
    job_wait_max_s: float = Field(
        60.0, ge=0, description="Longest `Prefer: wait=N` a job submission is held for."
    )
    batch_max_mb: int = Field(
        100, gt=0, description="Largest body of one POST /api/v1/batch, MB (over: 413)."
    )
    webhook_retry_schedule: str = Field(
        "5s,5m,30m,2h,5h,10h,10h",
        description="Delays between webhook delivery attempts (s, m, h, d); one per retry.",
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for a webhook receiver's answer, seconds."
    )
    callback_allowed_networks: str = Field(
        "",
        description="Comma-separated CIDR ranges callback URLs may point into although they "
        "are not public (tests, private deployments); empty: public addresses only.",
    )

    # --- watermark profiles (docs/api.md, "Watermark profiles") -------------------------------
    watermark_max_kb: int = Field(
        2048, gt=0, description="Largest RGBA PNG of a watermark profile, KB (over: 400)."
    )
    watermark_max_pixels: int = Field(
        4_194_304, gt=0, description="Largest width x height of a watermark profile, px."
    )
    watermarks_per_account: int = Field(
        20, gt=0, description="Watermark profiles one account may keep (more: 409)."
    )
    watermark_estimate_max_images: int = Field(
        16,
        ge=8,  # runners.deblend.estimation.MIN_IMAGES: fewer are refused anyway
        description="Most images one profile may be estimated from (each costs one request).",
    )
    deblend_tiled: bool = Field(
        False,
        description=(
            "Without a mask or profile, de-blend a tiled mark that detection found from its own"
            " repeats before inpainting. Off until its benchmark never scores below inpainting"
            " (docs/deblend.md): a request that did not ask for it must not come back worse."
        ),
    )

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines.from_request_timeout(self.request_timeout_s)

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_durations(value)
        return value

    @field_validator("callback_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @property
    def webhook_retry_delays_s(self) -> tuple[float, ...]:
        """`webhook_retry_schedule` in seconds, one delay per retry."""
        return parse_durations(self.webhook_retry_schedule)

    @property
    def callback_networks(self) -> tuple[IPNetwork, ...]:
        """`callback_allowed_networks`, parsed."""
        return parse_networks(self.callback_allowed_networks)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_SECONDS_PER_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_durations(text: str) -> tuple[float, ...]:
    """``"5s,5m,2h"`` -> ``(5.0, 300.0, 7200.0)``; an empty text is no delay at all."""
    delays = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = _DURATION.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not a duration like 5s, 5m, 2h or 1d")
        delays.append(float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)])
    return tuple(delays)


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, ::1/128"`` -> the networks; an empty text is none."""
    networks = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{part!r} is not an IP network such as 10.0.0.0/8") from exc
    return tuple(networks)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
