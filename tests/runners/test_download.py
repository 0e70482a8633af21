"""Downloads against a real HTTP server on 127.0.0.1: resume, retry, progress, md5, atomicity."""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

import pytest

from runners.lama.download import ChecksumMismatch, DownloadError, download_file
from tests.runners.file_server import FileServer, serve_file

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # a few chunks, not a multiple of the chunk size
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_a_plain_download_lands_whole_with_progress(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "big-lama.pt"
    reports: list[tuple[int, int | None]] = []
    with serve_file(FileServer(PAYLOAD)) as server:
        download_file(
            server.url, target, md5=PAYLOAD_MD5, progress=lambda d, t: reports.append((d, t))
        )
    assert target.read_bytes() == PAYLOAD
    assert reports[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(reports) >= 3 and all(a[0] < b[0] for a, b in itertools.pairwise(reports))
    assert list(target.parent.iterdir()) == [target]  # no .part left behind


def test_a_dropped_connection_resumes_where_it_stopped(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    cut = 1_500_000
    with serve_file(FileServer(PAYLOAD, faults=[cut])) as server:
        download_file(server.url, target, md5=PAYLOAD_MD5, backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={cut}-"]


def test_a_server_error_is_retried(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    with serve_file(FileServer(PAYLOAD, faults=["503", "503"])) as server:
        download_file(server.url, target, md5=PAYLOAD_MD5, backoff_s=0)
    assert target.read_bytes() == PAYLOAD
    assert len(server.ranges) == 3


def test_retries_are_bounded_and_no_partial_file_reaches_the_final_path(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    refused = pytest.raises(DownloadError, match="after 3 attempts")
    with serve_file(FileServer(PAYLOAD, faults=[100_000] * 3)) as server, refused:
        download_file(server.url, target, md5=PAYLOAD_MD5, attempts=3, backoff_s=0)
    assert len(server.ranges) == 3
    assert not target.exists()
    partial = tmp_path / "big-lama.pt.part"
    assert partial.stat().st_size == 300_000  # kept: the next run resumes from it
    with serve_file(FileServer(PAYLOAD)) as server:
        download_file(server.url, target, md5=PAYLOAD_MD5)
    assert server.ranges == ["bytes=300000-"]
    assert target.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_restarts_from_zero(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    (tmp_path / "big-lama.pt.part").write_bytes(PAYLOAD[:1000])
    with serve_file(FileServer(PAYLOAD, honour_range=False)) as server:
        download_file(server.url, target, md5=PAYLOAD_MD5)
    assert target.read_bytes() == PAYLOAD


def test_an_already_complete_partial_file_is_finished_without_a_body(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    (tmp_path / "big-lama.pt.part").write_bytes(PAYLOAD)
    with serve_file(FileServer(PAYLOAD)) as server:
        download_file(server.url, target, md5=PAYLOAD_MD5)
    assert target.read_bytes() == PAYLOAD


def test_md5_mismatch_is_refused_and_the_bytes_deleted(tmp_path: Path) -> None:
    target = tmp_path / "big-lama.pt"
    refused = pytest.raises(ChecksumMismatch, match=f"expected {'0' * 32}")
    with serve_file(FileServer(PAYLOAD)) as server, refused:
        download_file(server.url, target, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_a_client_error_is_not_retried(tmp_path: Path) -> None:
    refused = pytest.raises(DownloadError, match="HTTP 404")
    with serve_file(FileServer(PAYLOAD, faults=["404"])) as server, refused:
        download_file(server.url, tmp_path / "big-lama.pt", md5=None, backoff_s=0)
    assert len(server.ranges) == 1
    assert list(tmp_path.iterdir()) == []
