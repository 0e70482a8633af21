"""Schemathesis fuzzes the service from its own OpenAPI document: no 500s, documented shapes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import RunningService

pytestmark = pytest.mark.e2e

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)


def test_schemathesis_finds_no_server_errors_and_no_undocumented_shapes(
    service: RunningService, api_key: str, tmp_path: Path
) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    completed = subprocess.run(
        [
            executable,
            "run",
            f"{service.base_url}/api/v1/openapi.json",
            "--url",
            service.base_url,
            "--header",
            f"X-API-Key: {api_key}",
            "--checks",
            CHECKS,
            "--max-examples",
            "150",
            "--seed",
            "20261125",
            "--request-timeout",
            "60",
            "--workers",
            "1",
            # The job routes' links would add a stateful phase (submit, then read, cancel, …)
            # of half a minute; their flows are tested in tests/api/test_job_routes.py.
            "--phases",
            "examples,coverage,fuzzing",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=tmp_path,
    )
    print(completed.stdout[-6000:])
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
