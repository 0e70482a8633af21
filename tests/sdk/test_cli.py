"""The `iopaint` console command (installed with clients/python) against the real service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import decode
from tests.sdk.conftest import HEIGHT, WIDTH
from tests.server import PROJECT_ROOT, RunningService, create_key

pytestmark = pytest.mark.e2e

IOPAINT = Path(sys.executable).with_name("iopaint")
PACE_DEMO = PROJECT_ROOT / "clients" / "python" / "examples" / "pace_demo.py"


def iopaint(
    service: RunningService, key: str | None, *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    if not IOPAINT.exists():
        pytest.fail(f"{IOPAINT} is missing: install the SDK (pip install -e clients/python)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOPAINT_")}
    env["IOPAINT_BASE_URL"] = service.base_url
    if key is not None:
        env["IOPAINT_API_KEY"] = key
    return subprocess.run(
        [str(IOPAINT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_health_and_stats(service: RunningService, api_key: str, samples: Path) -> None:
    health = iopaint(service, None, "health", cwd=samples)
    assert health.returncode == 0, health.stderr
    assert health.stdout.startswith("healthy: model opencv on cpu")
    stats = iopaint(service, api_key, "stats", cwd=samples)
    assert stats.returncode == 0, stats.stderr
    assert "plan:            enterprise" in stats.stdout


def test_remove_one(service: RunningService, api_key: str, samples: Path) -> None:
    done = iopaint(
        service, api_key, "remove", "photo.jpg", "-m", "mask.png", "-o", "out.png", cwd=samples
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("photo.jpg -> out.png (")
    assert decode((samples / "out.png").read_bytes()).size == (WIDTH, HEIGHT)


def test_remove_many_prints_a_summary_and_fails_on_a_bad_image(
    service: RunningService, api_key: str, samples: Path
) -> None:
    (samples / "broken.jpg").write_bytes(b"not an image at all")
    images = ["img1.jpg", "broken.jpg", "img2.jpg"]
    done = iopaint(
        service, api_key, "remove", *images, "-m", "mask.png", "-o", "cleaned/", cwd=samples
    )
    assert done.returncode == 1  # one image failed
    rows = done.stdout.splitlines()
    assert rows[0].split()[:2] == ["image", "result"]
    assert "broken.jpg" in rows[2] and "FAILED" in rows[2] and "Invalid image" in rows[2]
    assert "ok" in rows[1].split() and "ok" in rows[3].split()
    assert rows[-1].startswith("3 images: 2 ok, 1 failed in ")
    assert sorted(p.name for p in (samples / "cleaned").iterdir()) == ["img1.png", "img2.png"]
    assert "Traceback" not in done.stderr


def test_errors_are_one_readable_line(service: RunningService, samples: Path) -> None:
    wrong = "sk_live_" + "B" * 38
    refused = iopaint(service, wrong, "stats", cwd=samples)
    assert refused.returncode == 1
    assert refused.stderr.startswith("iopaint: error: 401 Unauthorized: Invalid API Key")
    assert refused.stderr.count("\n") == 1 and wrong not in refused.stderr
    missing = iopaint(service, None, "remove", "photo.jpg", "-m", "mask.png", cwd=samples)
    assert missing.returncode == 1
    assert "Missing API Key" in missing.stderr and "IOPAINT_API_KEY" in missing.stderr
    absent = iopaint(service, wrong, "remove", "nope.jpg", cwd=samples)
    assert absent.stderr == "iopaint: error: no such file: nope.jpg\n"


def test_detect(service: RunningService, api_key: str, samples: Path) -> None:
    done = iopaint(service, api_key, "detect", "photo.jpg", "-o", "mask-found.png", cwd=samples)
    assert done.returncode == 0, done.stderr
    assert decode((samples / "mask-found.png").read_bytes()).size == (WIDTH, HEIGHT)


def test_pace_demo_reports_its_figures(
    service: RunningService, e2e_env: dict[str, str], tmp_path: Path
) -> None:
    key = create_key(
        e2e_env,
        plan="enterprise",
        name="pace-demo",
        limits=("--rate", "120", "--burst", "3", "--quota", "1000"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOPAINT_")}
    env.update(IOPAINT_API_KEY=key, IOPAINT_BASE_URL=service.base_url)
    done = subprocess.run(
        [
            sys.executable,
            str(PACE_DEMO),
            "-n",
            "7",
            "--burst",
            "3",
            "--rate",
            "120",
            "--size",
            "64",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert lines["images"].split()[:2] == ["7", "(7"]
    assert lines["429s surfaced"].strip() == "0"
    assert lines["theoretical minimum"].strip().startswith("2.0 s = (7 - 3) x 0.50 s")
