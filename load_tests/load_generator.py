"""Locust, headless, as a child process: the locustfile against one host, into the report."""

from __future__ import annotations

import re
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from load_tests.report_files import ReportFiles

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
PROJECT_ROOT = LOCUSTFILE.parent.parent
STOP_TIMEOUT_S = 60
"""Let in-flight requests finish (and be counted) instead of cutting them off."""
START_UP_MARGIN_S = 120
"""On top of the run and the stop timeout: building the payloads, and a margin."""


@dataclass(frozen=True)
class LoadShape:
    users: int
    spawn_rate: float
    run_time: str
    """Locust's syntax: `90`, `60s`, `10m`, `1h30m`."""
    invalid_share: float


@dataclass(frozen=True)
class LocustRun:
    exit_code: int
    started: float
    """Unix time."""
    ended: float
    """Unix time."""
    cpu_s: float
    """User and system CPU seconds locust used."""


def seconds(run_time: str) -> float:
    """Locust's run-time syntax (`90`, `60s`, `10m`, `1h30m`) in seconds."""
    if run_time.isdigit():
        return float(run_time)
    parts = re.findall(r"(\d+)\s*([hms])", run_time)
    if not parts:
        raise ValueError(f"cannot read --run-time {run_time!r}")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts))


def locust_command(
    shape: LoadShape, host: str, keys_file: Path | None, files: ReportFiles
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--users",
        str(shape.users),
        "--spawn-rate",
        str(shape.spawn_rate),
        "--run-time",
        shape.run_time,
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--csv",
        str(files.locust_csv_prefix),
        "--csv-full-history",
        "--request-log",
        str(files.requests),
        "--invalid-share",
        str(shape.invalid_share),
        "--logfile",
        str(files.locust_log),
        "--only-summary",
    ]
    if keys_file:
        command += ["--keys-file", str(keys_file)]
    return command


def run_locust(
    shape: LoadShape, host: str, keys_file: Path | None, files: ReportFiles
) -> LocustRun:
    """Run locust to the end (interrupted past its time budget); its console into the report."""
    budget = seconds(shape.run_time) + STOP_TIMEOUT_S + START_UP_MARGIN_S
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with files.locust_console.open("wb") as console:
        process = subprocess.Popen(
            locust_command(shape, host, keys_file, files),
            cwd=PROJECT_ROOT,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
        try:
            code = process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            print(f"locust overran {budget:.0f}s and was stopped", file=sys.stderr)
    ended = time.time()
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return LocustRun(code, started, ended, cpu_s)
