"""Load-test the service in one command: own service, own keys, locust headless, a report.

    .venv/bin/python load_tests/run.py                        # smoke: 8 users, 60 s, OpenCV
    .venv/bin/python load_tests/run.py --profile soak         # 10 min steady: does memory grow?
    .venv/bin/python load_tests/run.py --users 16 --spawn-rate 4 --run-time 2m
    .venv/bin/python load_tests/run.py --model lama --weights big-lama.pt
    .venv/bin/python load_tests/run.py --host http://127.0.0.1:8080 --keys-file keys.json --pid 1234
    .venv/bin/python load_tests/run.py --report-only load_tests/reports/20250101-120000-smoke

Unless `--host` is given it starts `bentoml serve` with its own stores (tests/server.py),
OpenCV by default, and creates one key per plan: enterprise with limits far above the load
(most customers), basic and pro with their plans' limits (a few customers, who may see
429), and free (one client hammering it to see 429s). Then it runs `load_tests/locustfile.py`
headless, samples the RSS of the service's process tree every second, and writes
`load_tests/reports/<timestamp>-<profile>/` (git-ignored):

- `summary.md`: throughput, latency p50/p95/p99 per route and per image size, statuses
  per route (expected or not), contract failures, RSS start/end/max and its slope, and
  whether each key's `/stats` agrees with what was sent;
- `latency.png`: p50/p95 over time (locust's stats history, 10 s window) and request rates;
- `rss.png`: RSS of each service process, their total and its floor over time; the
  memory verdict is the floor's slope over the second half (`--profile soak`);
- raw data: `locust_*.csv`, `requests.jsonl`, `rss.csv`, `locust.log`, `service.log`.

Client and service share this machine's cores: read throughput as a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

LOAD_TESTS = Path(__file__).resolve().parent
PROJECT_ROOT = LOAD_TESTS.parent
sys.path.insert(0, str(PROJECT_ROOT))

from load_tests.load_generator import LoadShape, run_locust, seconds  # noqa: E402
from load_tests.memory import RSS_SLOPE_THRESHOLD_MB_PER_MIN  # noqa: E402
from load_tests.report import write_report  # noqa: E402
from load_tests.report_files import ReportFiles  # noqa: E402
from load_tests.rss import RssSampler  # noqa: E402
from load_tests.target import Target, external_service, start_own_service  # noqa: E402

PROFILES: dict[str, dict[str, Any]] = {
    # Enough to see every route, status and the free plan's 429s; short enough to repeat.
    "smoke": {"users": 8, "spawn_rate": 2.0, "run_time": "60s"},
    # Steady load long enough for a leak to show as a slope over the second half.
    "soak": {"users": 8, "spawn_rate": 1.0, "run_time": "10m"},
}
IDLE_BASELINE_S = 3
"""RSS sampled before the first user starts."""
COOL_DOWN_S = 5
"""RSS sampled after the load: does memory come back down once it stops?"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--users", type=int, help="concurrent locust users (profile default)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second")
    parser.add_argument("--run-time", help="e.g. 60s, 10m (profile default)")
    parser.add_argument("--model", choices=["opencv", "lama", "auto"], default="opencv")
    parser.add_argument("--weights", help="IOPAINT_LAMA_WEIGHTS (a path) for --model lama/auto")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="IOPAINT_NAME=VALUE",
        help="extra service setting (repeatable), e.g. IOPAINT_MAX_BATCH_SIZE=2",
    )
    parser.add_argument("--no-keys", action="store_true", help="send no API keys")
    parser.add_argument("--host", help="load an already running service (127.0.0.1 only)")
    parser.add_argument("--keys-file", help='with --host: JSON {"plan": "key"}')
    parser.add_argument("--pid", type=int, help="with --host: root pid whose tree RSS to sample")
    parser.add_argument("--invalid-share", type=float, default=0.12)
    parser.add_argument(
        "--rss-slope-threshold",
        type=float,
        default=RSS_SLOPE_THRESHOLD_MB_PER_MIN,
        help="MB/min over the second half above which memory 'grows'",
    )
    parser.add_argument("--reports-dir", type=Path, default=LOAD_TESTS / "reports")
    parser.add_argument("--report-only", type=Path, help="rebuild summary and plots of a report")
    args = parser.parse_args()
    for name, value in PROFILES[args.profile].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        seconds(args.run_time)
    except ValueError as exc:
        parser.error(str(exc))
    if args.host and not re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/?$", args.host):
        parser.error("--host must be a service on 127.0.0.1 that you started")
    return args


def main() -> int:
    args = parse_args()
    if args.report_only:
        files = ReportFiles(args.report_only)
        write_report(files)
        print(f"report: {files.summary}")
        return 0

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    files = ReportFiles(args.reports_dir / f"{stamp}-{args.profile}")
    files.root.mkdir(parents=True)
    workdir = Path(tempfile.mkdtemp(prefix="load-test-"))
    if args.host:
        target = external_service(args.host, args.keys_file, args.pid)
    else:
        target = start_own_service(
            workdir,
            model=args.model,
            weights=args.weights,
            settings=args.env,
            no_keys=args.no_keys,
        )
    shape = LoadShape(args.users, args.spawn_rate, args.run_time, args.invalid_share)
    sampler = RssSampler(target.root_pid, files.rss) if target.root_pid else None
    code = 1
    try:
        meta = describe_run(args, target)
        if sampler:
            sampler.start()
            time.sleep(IDLE_BASELINE_S)
        print(
            f"locust: {args.users} users, spawn {args.spawn_rate}/s, {args.run_time} "
            f"against {target.host} -> {files.root}"
        )
        run = run_locust(shape, target.host, target.keys_file, files)
        code = run.exit_code
        meta.update(load_start=run.started, load_end=run.ended, locust_cpu_s=run.cpu_s)
        time.sleep(COOL_DOWN_S)
        if target.keys:
            meta["stats"] = target.usage_stats()
    finally:
        if sampler:
            sampler.stop()
        target.stop(files)
    files.meta.write_text(json.dumps(meta, indent=2))
    write_report(files)
    print(f"report: {files.summary}  (locust exit code {code})")
    shutil.rmtree(workdir, ignore_errors=True)
    return code


def describe_run(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    """The start of `meta.json`: what was run, against what, from which code, where."""
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "profile": args.profile,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "run_time": args.run_time,
        "host": target.host,
        "own_service": target.own_service,
        "health": target.health(),
        "plans": sorted(target.keys),
        "git": git_revision(),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "rss_slope_threshold": args.rss_slope_threshold,
        "notes": target.notes,
    }


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


if __name__ == "__main__":
    sys.exit(main())
