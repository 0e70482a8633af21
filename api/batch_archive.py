"""A finished batch as one ZIP file: each succeeded job's PNG, and a manifest of every job.

    001-beach.png, 003-city.png, …   the results, numbered by upload position
    manifest.json                    [{"position", "id", "filename", "status", "file", "error"}]

PNGs are stored, not deflated again: they are compressed already.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath, PureWindowsPath

from jobs.records import Job

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MANIFEST = "manifest.json"


def entry_name(job: Job) -> str:
    """``NNN-stem.png``: the upload's position (from 1) and its filename, made safe."""
    stem = ""
    if job.filename:
        base = PureWindowsPath(PurePosixPath(job.filename).name).name  # no directories
        stem = _UNSAFE.sub("_", PurePosixPath(base).stem).strip("._")[:80]
    return f"{job.position + 1:03d}-{stem or 'image'}.png"


def batch_zip(jobs: Sequence[Job], results: Mapping[str, bytes], now: float) -> bytes:
    """The ZIP of `results` (job id -> PNG) with a manifest naming every job of the batch."""
    buffer = io.BytesIO()
    manifest = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for job in jobs:
            png = results.get(job.id)
            name = entry_name(job) if png is not None else None
            if png is not None and name is not None:
                archive.writestr(name, png)
            manifest.append(
                {
                    "position": job.position,
                    "id": job.id,
                    "filename": job.filename,
                    "status": job.status_at(now),
                    "file": name,
                    "error": job.error,
                }
            )
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
    return buffer.getvalue()
