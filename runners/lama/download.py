"""Fetching a weights file over HTTP: resumable, retried, checksummed, atomic.

The bytes go to ``<destination>.part`` first; an interrupted transfer (dropped connection,
killed process) resumes from there with an HTTP Range request. Only a complete file whose
md5 matches is renamed to `destination`, so nothing ever finds a partial file under the
final name.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from runners.lama.weights import md5_of

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes on disk, total bytes or None when the server does not say)."""


class DownloadError(RuntimeError):
    """The file could not be fetched after the allowed attempts."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the expected file; they have been deleted."""


def download_file(
    url: str,
    destination: Path,
    *,
    md5: str | None,
    attempts: int = 4,
    backoff_s: float = 1.0,
    timeout_s: float = 30.0,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download `url` to `destination` and return it.

    Transport errors and 5xx answers are retried up to `attempts` times in all, waiting
    `backoff_s`, then twice that, and so on; each retry resumes where the last one stopped.
    With `md5`, a complete download of other bytes raises `ChecksumMismatch`.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with httpx.Client(follow_redirects=True, timeout=timeout_s) as client:
        for attempt in range(1, attempts + 1):
            try:
                _fetch_into(client, url, partial, progress)
                break
            except (httpx.TransportError, _RetryableStatus) as exc:
                if attempt == attempts:
                    raise DownloadError(
                        f"Could not download {url} after {attempts} attempts: {exc}"
                    ) from exc
                wait = backoff_s * 2 ** (attempt - 1)
                # info, not warning: a retry that succeeds is not the operator's concern, and
                # a download that finally fails is reported once, by the caller.
                logger.info(
                    "Download of %s interrupted (%s); attempt %d of %d in %.1f s",
                    url,
                    exc,
                    attempt + 1,
                    attempts,
                    wait,
                )
                time.sleep(wait)
    if md5 is not None:
        actual = md5_of(partial)
        if actual != md5:
            partial.unlink()
            raise ChecksumMismatch(
                f"{url} downloaded with md5 {actual}, expected {md5}; the file was deleted. "
                "Check the URL (and IOPAINT_LAMA_DOWNLOAD_MD5 if you changed it)."
            )
    os.replace(partial, destination)
    return destination


class _RetryableStatus(Exception):
    """A 5xx answer: the server may well answer the next attempt."""


def _fetch_into(
    client: httpx.Client, url: str, partial: Path, progress: ProgressCallback | None
) -> None:
    """One attempt: append the rest of the file to `partial`; returns only when it is whole."""
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and offset:
            # Nothing left to send: `partial` already holds every byte (the md5 decides).
            return
        if response.status_code >= 500:
            raise _RetryableStatus(f"HTTP {response.status_code}")
        if response.status_code not in (200, 206):
            raise DownloadError(f"{url} answered HTTP {response.status_code}")
        if response.status_code == 200:
            offset = 0  # the server ignored the Range header: start over
        total = _total_size(response, offset)
        written = offset
        with partial.open("ab" if offset else "wb") as file:
            # Unchunked: bytes are written as they arrive, so a dropped connection loses
            # nothing already received (a fixed chunk size buffers up to a chunk in memory).
            for chunk in response.iter_bytes():
                file.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, total)
        if total is not None and written < total:
            raise httpx.RemoteProtocolError(f"connection closed at {written} of {total} bytes")


def _total_size(response: httpx.Response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and not content_range.endswith("/*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


@contextmanager
def console_progress(description: str) -> Iterator[ProgressCallback]:
    """A rich progress bar on stderr, as a `ProgressCallback`."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
