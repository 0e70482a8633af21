"""Choosing and loading the inpainter the runner serves, from settings.

LaMa weights are looked for in this order; the first that exists wins:

1. ``IOPAINT_LAMA_WEIGHTS``: a path, or an http(s) URL downloaded into IOPaint's cache;
2. the BentoML model store: ``lama:latest``, written by ``iopaint-api models import FILE``;
3. IOPaint's cache, ``$TORCH_HOME/hub/checkpoints/big-lama.pt`` (what IOPaint and
   lama-cleaner download; TORCH_HOME defaults to ~/.cache/torch);
4. a download of ``IOPAINT_LAMA_DOWNLOAD_URL`` into that cache, unless
   ``IOPAINT_LAMA_DOWNLOAD=false``.

Without weights, ``IOPAINT_MODEL=auto`` serves OpenCV (and says so once, in a warning) and
``IOPAINT_MODEL=lama`` refuses to start. OpenCV output is never reported as LaMa: the
inpainter's `name` is what the service reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from runners.detection.detector import Detector
from runners.devices import plan_compute, usable_cores
from runners.hd_strategy import HdInpainter
from runners.inpainter import Inpainter
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "NO_WEIGHTS_MESSAGE",
    "ModelUnavailable",
    "WeightsLocation",
    "WeightsOrigin",
    "find_weights",
    "iopaint_cache_path",
    "list_weights",
    "load_detector_for",
    "load_inpainter",
]


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message tells the operator what to do."""


NO_WEIGHTS_MESSAGE = (
    "LaMa weights not found. Provide them with IOPAINT_LAMA_WEIGHTS=/path/to/big-lama.pt "
    "(or LaMa's best.ckpt, or an http(s) URL), with `iopaint-api models import FILE`, "
    "or by putting big-lama.pt in $TORCH_HOME/hub/checkpoints/ (IOPaint's cache)."
)


class WeightsOrigin(StrEnum):
    SETTING = "IOPAINT_LAMA_WEIGHTS"
    MODEL_STORE = "model store"
    IOPAINT_CACHE = "IOPaint cache"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class WeightsLocation:
    """One place LaMa weights may come from."""

    origin: WeightsOrigin
    path: Path
    """Where the file is, or where a download will put it."""
    config: str
    """Architecture name (`runners.lama.configs`)."""
    url: str | None = None
    """Set when the file has to be downloaded first."""
    md5: str | None = None
    """Expected md5, when known (the store records it; the official download has one)."""
    label: str = ""
    """Human-readable source: the model tag, the URL, or the path."""

    @property
    def present(self) -> bool:
        return self.path.is_file()


def iopaint_cache_path(url: str) -> Path:
    """Where IOPaint keeps the file downloaded from `url` (torch hub's checkpoints folder)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / PurePosixPath(urlparse(url).path).name


def list_weights(settings: Settings) -> list[WeightsLocation]:
    """Every candidate, in resolution order, present or not (for `iopaint-api models list`)."""
    from runners.lama.store import latest_weights

    candidates: list[WeightsLocation] = []
    if settings.lama_weights:
        candidates.append(_configured_location(settings))
    stored = latest_weights()
    if stored is not None:
        candidates.append(
            WeightsLocation(
                WeightsOrigin.MODEL_STORE,
                stored.path,
                stored.config,
                md5=stored.md5,
                label=stored.tag,
            )
        )
    cache = iopaint_cache_path(settings.lama_download_url)
    candidates.append(
        WeightsLocation(WeightsOrigin.IOPAINT_CACHE, cache, settings.lama_config, label=str(cache))
    )
    if settings.lama_download:
        candidates.append(
            WeightsLocation(
                WeightsOrigin.DOWNLOAD,
                cache,
                settings.lama_config,
                url=settings.lama_download_url,
                md5=settings.lama_download_md5,
                label=settings.lama_download_url,
            )
        )
    return candidates


def find_weights(settings: Settings) -> WeightsLocation | None:
    """The location the runner would load from, without downloading anything.

    An explicit IOPAINT_LAMA_WEIGHTS path that does not exist is an error, not a reason
    to look elsewhere: the operator asked for that file.
    """
    for location in list_weights(settings):
        if location.origin is WeightsOrigin.SETTING:
            if location.url is None and not location.present:
                raise ModelUnavailable(f"IOPAINT_LAMA_WEIGHTS={location.path}: no such file")
            return location
        if location.present or location.url is not None:
            return location
    return None


def load_detector_for(settings: Settings) -> Detector | None:
    """The watermark detector the settings ask for, or None when detection is off.

    Its models ship inside a Python package and are checked (SHA-256) as they load; a file
    that is missing or altered stops the runner rather than serve mask-less requests
    without detection.
    """
    if not settings.detection:
        logger.info("Watermark detection is off (IOPAINT_DETECTION=false)")
        return None
    from runners.detection.combined import DetectorConfig, load_detector

    # Detection and inpainting of one request run one after the other, so each may use
    # every core the process has (its sessions' threads wait passively, as torch's do).
    threads = settings.detector_threads or usable_cores()
    return load_detector(DetectorConfig(device=settings.device, threads=threads))


def load_inpainter(settings: Settings) -> Inpainter:
    """The inpainter for `settings.model`, wrapped in the large-image strategy."""
    return HdInpainter(
        _load_model(settings),
        strategy=settings.hd_strategy,
        trigger=settings.hd_trigger,
        crop_margin=settings.hd_crop_margin,
        resize_limit=settings.hd_resize_limit,
    )


def _load_model(settings: Settings) -> Inpainter:
    if settings.model == "opencv":
        return OpenCVInpainter()
    location = find_weights(settings)
    if location is None:
        return _without_weights(settings, reason="")
    from runners.lama.download import DownloadError

    try:
        path = _fetch(location)
    except DownloadError as exc:
        if location.origin is WeightsOrigin.SETTING:
            raise ModelUnavailable(f"IOPAINT_LAMA_WEIGHTS={location.url}: {exc}") from exc
        return _without_weights(settings, reason=f" (download failed: {exc})")
    return _load_lama(path, location.config, settings)


def _without_weights(settings: Settings, *, reason: str) -> Inpainter:
    if settings.model == "lama":
        raise ModelUnavailable(NO_WEIGHTS_MESSAGE + reason)
    logger.warning("Serving the OpenCV inpainter, not LaMa. %s%s", NO_WEIGHTS_MESSAGE, reason)
    return OpenCVInpainter()


def _fetch(location: WeightsLocation) -> Path:
    """The local file of `location`, downloading it first when needed."""
    if location.origin is WeightsOrigin.MODEL_STORE and location.md5 is not None:
        from runners.lama.weights import md5_of

        # The store recorded the md5 at import; a file changed since is not what was imported.
        actual = md5_of(location.path)
        if actual != location.md5:
            raise ModelUnavailable(
                f"{location.label}: {location.path} has md5 {actual}, but {location.md5} was "
                "imported; import the weights again"
            )
    if location.present or location.url is None:
        return location.path
    from runners.lama.download import console_progress, download_file

    logger.info("Downloading LaMa weights from %s to %s", location.url, location.path)
    with console_progress(f"LaMa weights ({location.path.name})") as progress:
        return download_file(location.url, location.path, md5=location.md5, progress=progress)


def _load_lama(path: Path, config_name: str, settings: Settings) -> Inpainter:
    import torch

    from runners.lama.configs import get_config
    from runners.lama.prepare import prepare_inpainter
    from runners.lama.weights import WeightsError, load_network

    compute = plan_compute(settings)
    config = get_config(config_name)
    try:
        network = load_network(path, config, torch.device(compute.device))
    except (WeightsError, ValueError, RuntimeError) as exc:
        # A file that exists but does not load is a broken setup, under `auto` too:
        # silently serving OpenCV instead would hide it.
        raise ModelUnavailable(f"LaMa weights at {path} could not be loaded: {exc}") from exc
    inpainter = prepare_inpainter(
        network,
        config,
        compute,
        requested_precision=settings.precision,
        compile_mode=settings.compile,
    )
    report = inpainter.compute
    logger.info(
        "LaMa weights %s on %s: %s (%s%s), %s network, compile %s, %d CPU threads",
        path,
        compute.device,
        inpainter.precision,
        compute.precision.reason,
        f"; fallback: {report.fallback}" if report and report.fallback else "",
        report.runtime if report else "native",
        report.compile if report else "off",
        compute.cpu_threads,
    )
    return inpainter


def _configured_location(settings: Settings) -> WeightsLocation:
    value = settings.lama_weights or ""
    if urlparse(value).scheme in ("http", "https"):
        md5 = settings.lama_download_md5 if value == settings.lama_download_url else None
        return WeightsLocation(
            WeightsOrigin.SETTING,
            iopaint_cache_path(value),
            settings.lama_config,
            url=value,
            md5=md5,
            label=value,
        )
    path = Path(value).expanduser()
    return WeightsLocation(WeightsOrigin.SETTING, path, settings.lama_config, label=str(path))
