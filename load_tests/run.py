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
import contextlib
import csv
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

LOAD_TESTS = Path(__file__).resolve().parent
PROJECT_ROOT = LOAD_TESTS.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.server import (  # noqa: E402
    UNLIMITED,
    RunningService,
    create_key,
    service_env,
    start_service,
)

PROFILES: dict[str, dict[str, Any]] = {
    # Enough to see every route, status and the free plan's 429s; short enough to repeat.
    "smoke": {"users": 8, "spawn_rate": 2.0, "run_time": "60s"},
    # Steady load long enough for a leak to show as a slope over the second half.
    "soak": {"users": 8, "spawn_rate": 1.0, "run_time": "10m"},
}
RSS_SLOPE_THRESHOLD_MB_PER_MIN = 2.0
"""Second-half slope of the RSS floor above which the report says memory grows."""
FLOOR_WINDOW_S = 30
"""The RSS floor is the minimum over this many seconds: what stays once the buffers of
large images are freed. A leak raises the floor; a burst of 2048 px uploads only spikes."""
MIN_MINUTES_FOR_VERDICT = 4.0
"""Second halves shorter than this are reported but not judged: warm-up noise dominates."""

# The enterprise key must never be the bottleneck: far above what 2 cores can serve.
KEY_PLANS: list[tuple[str, tuple[str, ...]]] = [
    ("enterprise", UNLIMITED),
    ("basic", ()),
    ("pro", ()),
    ("free", ()),
]

NAME_REMOVE = "/api/v1/remove-watermark"
NAME_INVALID = f"{NAME_REMOVE} [invalid]"
NAME_OVER_LIMIT = f"{NAME_REMOVE} [free plan]"
SIZE_ORDER = ["256x256", "512x512", "1280x720", "1024x1024", "2048x2048"]


# --- running ------------------------------------------------------------------------------


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
    if args.host and not re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/?$", args.host):
        parser.error("--host must be a service on 127.0.0.1 that you started")
    return args


def seconds(run_time: str) -> float:
    """Locust's run-time syntax (`90`, `60s`, `10m`, `1h30m`) in seconds."""
    if run_time.isdigit():
        return float(run_time)
    parts = re.findall(r"(\d+)\s*([hms])", run_time)
    if not parts:
        raise SystemExit(f"cannot read --run-time {run_time!r}")
    return float(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[unit] for n, unit in parts))


def create_keys(env: dict[str, str]) -> dict[str, str]:
    return {
        plan: create_key(env, plan=plan, name=f"load-{plan}", limits=limits)
        for plan, limits in KEY_PLANS
    }


@dataclass
class RssSampler:
    """Every second: RSS and CPU of each process in the tree under `root_pid`."""

    root_pid: int
    path: Path
    interval_s: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _procs: dict[int, psutil.Process] = field(default_factory=dict)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.root_pid)
        found = [root, *root.children(recursive=True)]
        for proc in found:
            # Keep one Process per pid so that cpu_percent measures since the last sample.
            self._procs.setdefault(proc.pid, proc)
        return [self._procs[proc.pid] for proc in found]

    def _run(self) -> None:
        with self.path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["t", "pid", "role", "rss_mb", "cpu_percent"])
            while not self._stop.is_set():
                now = time.time()
                try:
                    tree = self._tree()
                except psutil.NoSuchProcess:
                    return
                for proc in tree:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        writer.writerow(
                            [
                                f"{now:.2f}",
                                proc.pid,
                                role_of(proc),
                                f"{proc.memory_info().rss / 2**20:.1f}",
                                f"{proc.cpu_percent(None):.0f}",
                            ]
                        )
                out.flush()
                self._stop.wait(self.interval_s)


def role_of(proc: psutil.Process) -> str:
    """A short name for a `bentoml serve` process: its service name, or the supervisor."""
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    service = re.search(r"--service-name[ =](\S+)", cmdline)
    if service:
        worker = re.search(r"--worker-id[ =](\d+)", cmdline)
        return f"{service.group(1)}:{worker.group(1) if worker else '?'}"
    if "bentoml serve" in cmdline:
        return "supervisor"
    return proc.name()


def run_locust(
    args: argparse.Namespace, host: str, keys_file: Path | None, report: Path
) -> tuple[int, float, float, float]:
    """Run locust headless to the end: exit code, start and end (Unix times), CPU seconds."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOAD_TESTS / "locustfile.py"),
        "--headless",
        "--host",
        host,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.run_time,
        # Let in-flight requests finish (and be counted) instead of cutting them off.
        "--stop-timeout",
        "60",
        "--csv",
        str(report / "locust"),
        "--csv-full-history",
        "--request-log",
        str(report / "requests.jsonl"),
        "--invalid-share",
        str(args.invalid_share),
        "--logfile",
        str(report / "locust.log"),
        "--only-summary",
    ]
    if keys_file:
        command += ["--keys-file", str(keys_file)]
    budget = seconds(args.run_time) + 60 + 120  # run, stop timeout, payloads and margin
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with (report / "locust-console.txt").open("wb") as console:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=console, stderr=subprocess.STDOUT
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
    return code, started, ended, cpu_s


def fetch_stats(host: str, keys: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for plan, key in keys.items():
        try:
            response = httpx.get(f"{host}/api/v1/stats", headers={"X-API-Key": key}, timeout=30)
            found[plan] = {"status": response.status_code, "body": response.json()}
        except (httpx.HTTPError, ValueError) as exc:
            found[plan] = {"status": 0, "body": str(exc)}
    return found


def main() -> int:
    args = parse_args()
    if args.report_only:
        write_report(args.report_only)
        print(f"report: {args.report_only / 'summary.md'}")
        return 0

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report = args.reports_dir / f"{stamp}-{args.profile}"
    report.mkdir(parents=True)
    notes: list[str] = []
    service: RunningService | None = None
    workdir = Path(tempfile.mkdtemp(prefix="load-test-"))
    keys: dict[str, str] = {}
    keys_file: Path | None = None

    if args.host:
        host = args.host.rstrip("/")
        if args.keys_file:
            keys_file = Path(args.keys_file).resolve()
            keys = json.loads(keys_file.read_text())
        root_pid = args.pid
    else:
        overrides = {"IOPAINT_MODEL": args.model}
        if args.weights:
            overrides["IOPAINT_LAMA_WEIGHTS"] = str(Path(args.weights).resolve())
        for item in args.env:
            name, _, value = item.partition("=")
            overrides[name] = value
        env = service_env(workdir, **overrides)
        if args.no_keys:
            notes.append("Run with `--no-keys`: every request was unauthenticated.")
        else:
            try:
                keys = create_keys(env)
            except RuntimeError as exc:
                if "No such command 'keys'" not in str(exc):
                    raise
                notes.append(
                    "No keys: `iopaint-api keys` does not exist yet, so requests went "
                    "unauthenticated and the free-plan (429) user stayed idle."
                )
        print(f"starting bentoml serve (model {args.model}, stores in {workdir}) ...")
        service = start_service(workdir, env)
        host = service.base_url
        root_pid = service.process.pid
    if keys:
        keys_file = workdir / "keys.json"
        keys_file.write_text(json.dumps(keys))
        keys_file.chmod(0o600)

    sampler = RssSampler(root_pid, report / "rss.csv") if root_pid else None
    code = 1
    try:
        health = httpx.get(f"{host}/api/v1/health", timeout=30)
        meta: dict[str, Any] = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "profile": args.profile,
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "run_time": args.run_time,
            "host": host,
            "own_service": service is not None,
            "health": health.json() if health.status_code == 200 else health.text,
            "plans": sorted(keys),
            "git": git_revision(),
            "machine": f"{platform.node()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
            "rss_slope_threshold": args.rss_slope_threshold,
            "notes": notes,
        }
        if sampler:
            sampler.start()
            time.sleep(3)  # an idle baseline before the first user
        print(
            f"locust: {args.users} users, spawn {args.spawn_rate}/s, {args.run_time} "
            f"against {host} -> {report}"
        )
        code, meta["load_start"], meta["load_end"], meta["locust_cpu_s"] = run_locust(
            args, host, keys_file, report
        )
        time.sleep(5)  # does memory come back down once the load stops?
        if keys:
            meta["stats"] = fetch_stats(host, keys)
    finally:
        if sampler:
            sampler.stop()
        if service:
            service.stop()
            shutil.copy(service.log_path, report / "service.log")
    (report / "meta.json").write_text(json.dumps(meta, indent=2))
    write_report(report)
    print(f"report: {report / 'summary.md'}  (locust exit code {code})")
    shutil.rmtree(workdir, ignore_errors=True)
    return code


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


# --- report -------------------------------------------------------------------------------


def load_requests(report: Path) -> list[dict[str, Any]]:
    path = report / "requests.jsonl"
    if not path.exists():
        return []
    with path.open() as source:
        return [json.loads(line) for line in source if line.strip()]


def load_rss(report: Path) -> dict[float, dict[int, tuple[str, float, float]]]:
    """{t: {pid: (role, rss_mb, cpu_percent)}} in time order."""
    path = report / "rss.csv"
    samples: dict[float, dict[int, tuple[str, float, float]]] = defaultdict(dict)
    if path.exists():
        with path.open() as source:
            for row in csv.DictReader(source):
                samples[float(row["t"])][int(row["pid"])] = (
                    row["role"],
                    float(row["rss_mb"]),
                    float(row["cpu_percent"]),
                )
    return dict(sorted(samples.items()))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.0f} ms"


def write_report(report: Path) -> None:
    meta = json.loads((report / "meta.json").read_text())
    requests = load_requests(report)
    rss = load_rss(report)
    lines: list[str] = []
    add = lines.append
    # The load is the span of the requests: locust's own start-up (payloads) is not load.
    if requests:
        start = min(r["t"] for r in requests)
        end = max(r["t"] + r["ms"] / 1000 for r in requests)
    else:
        start, end = meta.get("load_start", 0.0), meta.get("load_end", 1.0)
    duration = max(end - start, 1e-9)

    health = meta.get("health")
    model = health.get("model", "?") if isinstance(health, dict) else "?"
    device = health.get("device", "?") if isinstance(health, dict) else "?"
    add(f"# Load test {report.name}")
    add("")
    add(f"- command: `{meta['command']}`")
    add(
        f"- profile **{meta['profile']}**: {meta['users']} users, spawn {meta['spawn_rate']}/s, "
        f"run time {meta['run_time']} (measured {duration:.0f} s incl. ramp-up and stop)"
    )
    target = "own `bentoml serve`" if meta["own_service"] else "external"
    add(
        f"- target: {meta['host']} ({target}),"
        f" model **{model}** on {device}; keys for plans: {', '.join(meta['plans']) or 'none'}"
    )
    add(f"- code: {meta['git']}; machine: {meta['machine']} (client and service share it)")
    if meta.get("locust_cpu_s") is not None and meta.get("load_start"):
        span = meta["load_end"] - meta["load_start"]
        add(
            f"- load generator (locust) CPU: {meta['locust_cpu_s']:.0f} s over {span:.0f} s "
            f"= {100 * meta['locust_cpu_s'] / span:.0f}% of one core (near 100%: the client, "
            "not the service, limits the figures)"
        )
    for note in meta.get("notes", []):
        add(f"- **note**: {note}")
    add("")

    # Throughput ------------------------------------------------------------------------
    total = len(requests)
    failures = [r for r in requests if not r["ok"]]
    inpainted = [r for r in requests if r["name"] == NAME_REMOVE and r["status"] == 200]
    megapixels = sum(
        int(w) * int(h) for w, h in (r["size"].split("x") for r in inpainted if "size" in r)
    )
    add("## Throughput")
    add("")
    add(f"- {total} requests in {duration:.0f} s: **{total / duration:.2f} req/s** overall")
    add(
        f"- {len(inpainted)} images cleaned (remove-watermark 200): "
        f"**{len(inpainted) / duration:.2f} images/s**, {megapixels / 1e6 / duration:.2f} MP/s"
    )
    add(
        f"- contract failures (unexpected status, bad body, no response): **{len(failures)}** "
        f"({100 * len(failures) / max(total, 1):.1f}%)"
    )
    add("")

    # Latency per route -------------------------------------------------------------------
    add("## Latency per route (client side, every request)")
    add("")
    add("| route | requests | req/s | p50 | p95 | p99 | max | failures |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in requests:
        by_name[f"{r['method']} {r['name']}"].append(r)
    for name in sorted(by_name):
        rows = by_name[name]
        ms = [r["ms"] for r in rows]
        add(
            f"| `{name}` | {len(rows)} | {len(rows) / duration:.2f} | {fmt_ms(percentile(ms, 50))}"
            f" | {fmt_ms(percentile(ms, 95))} | {fmt_ms(percentile(ms, 99))} | "
            f"{fmt_ms(max(ms))} | {sum(not r['ok'] for r in rows)} |"
        )
    add("")
    add(
        "Rows with `[invalid]` are the deliberate mistakes (400/401), `[free plan]` the "
        "over-limit client (mostly 429). p99 of fewer than 100 requests is close to the max."
    )
    add("")

    # Latency per image size --------------------------------------------------------------
    add("## Remove-watermark 200s by image size")
    add("")
    add("| size | images | p50 | p95 | p99 | server time p50 (X-Processing-Time) |")
    add("|---|---:|---:|---:|---:|---:|")
    by_size: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in inpainted:
        by_size[r.get("size", "?")].append(r)
    for size in sorted(by_size, key=lambda s: SIZE_ORDER.index(s) if s in SIZE_ORDER else 99):
        rows = by_size[size]
        ms = [r["ms"] for r in rows]
        server = [1000 * r["processing_s"] for r in rows if "processing_s" in r]
        add(
            f"| {size} | {len(rows)} | {fmt_ms(percentile(ms, 50))} | {fmt_ms(percentile(ms, 95))}"
            f" | {fmt_ms(percentile(ms, 99))} | {fmt_ms(percentile(server, 50))} |"
        )
    add("")
    add(
        "Client time minus server time is upload, queueing in the HTTP worker and download; "
        "server time includes waiting for the runner."
    )
    add("")

    # Statuses ------------------------------------------------------------------------------
    add("## Responses by status")
    add("")
    statuses = sorted({r["status"] for r in requests})
    add("| route | " + " | ".join(str(s) if s else "no response" for s in statuses) + " |")
    add("|---|" + "---:|" * len(statuses))
    for name in sorted(by_name):
        counts = Counter(r["status"] for r in by_name[name])
        bad = Counter(r["status"] for r in by_name[name] if not r["ok"])
        cells = [
            (f"{counts[s]}" + (f" (**{bad[s]} unexpected**)" if bad[s] else ""))
            if counts[s]
            else ""
            for s in statuses
        ]
        add(f"| `{name}` | " + " | ".join(cells) + " |")
    add("")
    add(
        "Expected and not failures: 400/401 on `[invalid]`, 429 on any non-enterprise key. "
        "Every other non-200, and any error body that is not the envelope, is a failure."
    )
    add("")

    if failures:
        add("### Contract failures")
        add("")
        add("| count | route | why |")
        add("|---:|---|---|")
        reasons = Counter((r["name"], r.get("why", "?")) for r in failures)
        for (name, why), count in reasons.most_common(15):
            add(f"| {count} | `{name}` | {why.replace('|', '/')} |")
        add("")

    # Memory --------------------------------------------------------------------------------
    add("## Memory (RSS of the service's process tree)")
    add("")
    memory = summarize_rss(rss, start, end, meta["rss_slope_threshold"])
    lines.extend(memory["lines"])
    add("")

    # Usage accounting ---------------------------------------------------------------------
    if meta.get("stats"):
        add("## Usage accounting: `/stats` against what was sent")
        add("")
        add("| plan | field | service says | client saw |")
        add("|---|---|---:|---:|")
        for plan, found in sorted(meta["stats"].items()):
            sent = [
                r
                for r in requests
                if r.get("plan") == plan and r["name"].startswith(NAME_REMOVE) and r["status"]
            ]
            admitted = [r for r in sent if r["status"] not in (401, 429)]
            seen = {
                "total": len(admitted),
                "success": sum(r["status"] == 200 for r in admitted),
                "failed": sum(r["status"] != 200 for r in admitted),
                "rate_limited": sum(r["status"] == 429 for r in sent),
            }
            body = found["body"] if isinstance(found["body"], dict) else {}
            for name, value in seen.items():
                said = body.get(name, f"HTTP {found['status']}" if not body else "-")
                mark = "" if said == value else " ⚠"
                add(f"| {plan} | {name} | {said}{mark} | {value} |")
        add("")
        add(
            "Client counts exclude requests without a response (timeouts): the service may "
            "have counted those. ⚠ marks a difference."
            + (
                ""
                if meta["own_service"]
                else " External service: the keys' earlier traffic is in the service's figures too."
            )
        )
        add("")

    add("## Plots")
    add("")
    plot_latency(report, start, end)
    add("- `latency.png`: p50/p95 per route over a 10 s sliding window; requests/s; users.")
    if rss:
        plot_rss(report, rss, start, end, memory)
        add("- `rss.png`: RSS per process, total and its floor; load period; floor trend line.")
    add("")
    add("Raw data: `requests.jsonl` (one line per request), `locust_stats*.csv`, `rss.csv`.")
    (report / "summary.md").write_text("\n".join(lines) + "\n")


def rss_floor(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rolling minimum over the previous `FLOOR_WINDOW_S` seconds."""
    return np.array([values[(times > t - FLOOR_WINDOW_S) & (times <= t)].min() for t in times])


def second_half_slope(times: np.ndarray, values: np.ndarray) -> tuple[float, float] | None:
    """(slope per second, intercept) of a line through the second half, if enough samples."""
    half = times >= times[0] + (times[-1] - times[0]) / 2
    if half.sum() < 10:
        return None
    slope, intercept = np.polyfit(times[half], values[half], 1)
    return float(slope), float(intercept)


def summarize_rss(
    rss: dict[float, dict[int, tuple[str, float, float]]],
    start: float,
    end: float,
    threshold: float,
) -> dict[str, Any]:
    if not rss:
        return {"lines": ["Not sampled (external service without `--pid`)."], "fit": None}
    times = np.array(list(rss))
    totals = np.array([sum(v[1] for v in sample.values()) for sample in rss.values()])
    during = (times >= start) & (times <= end)
    if not during.any():
        during = np.ones_like(times, dtype=bool)
    load_t, load_mb = times[during], totals[during]
    # RSS follows large images up and down within a second: the last 10 s, not one sample.
    end_mb = float(np.median(load_mb[load_t >= load_t[-1] - 10]))
    lines = [
        f"- total RSS: start **{load_mb[0]:.0f} MB**, end **{end_mb:.0f} MB** (median of the "
        f"last 10 s), max **{load_mb.max():.0f} MB**; idle before the load {totals[0]:.0f} MB, "
        f"5 s after it {totals[-1]:.0f} MB",
    ]
    minutes = (load_t[-1] - load_t[0]) / 120  # length of the second half
    roles = sorted({(role, pid) for sample in rss.values() for pid, (role, _, _) in sample.items()})
    per_process = []
    for role, pid in roles:
        points = [(t, s[pid][1]) for t, s in rss.items() if pid in s and start <= t <= end]
        if not points:
            continue
        pt, mb = np.array([p[0] for p in points]), np.array([p[1] for p in points])
        fitted = second_half_slope(pt, rss_floor(pt, mb))
        slope = f", floor {round(60 * fitted[0], 1) + 0.0:+.1f} MB/min" if fitted else ""
        per_process.append(
            f"{role} (pid {pid}) {mb[0]:.0f} → {mb[-1]:.0f} MB, max {mb.max():.0f}{slope}"
        )
    lines.append(
        "- per process (start → end, max, second-half floor slope): " + "; ".join(per_process)
    )
    cpu = [sum(v[2] for v in sample.values()) for t, sample in rss.items() if start <= t <= end]
    if cpu:
        lines.append(f"- service CPU during load: mean {np.mean(cpu):.0f}% (200% = both cores)")
    pids_before = set(rss[float(times[0])])
    appeared = {pid for sample in rss.values() for pid in sample} - pids_before
    vanished = pids_before - set(rss[float(times[-1])])
    if appeared or vanished:
        lines.append(
            f"- **process tree changed** (a worker crashed or restarted?): "
            f"new pids {sorted(appeared) or '-'}, gone {sorted(vanished) or '-'}"
        )
    floor = rss_floor(load_t, load_mb)
    fitted = second_half_slope(load_t, floor)
    raw = second_half_slope(load_t, load_mb)
    fit = None
    if fitted and raw:
        slope = 60 * fitted[0]
        if minutes < MIN_MINUTES_FOR_VERDICT:
            verdict = (
                f"not judged: the second half is {minutes:.1f} min, under "
                f"{MIN_MINUTES_FOR_VERDICT:.0f} min (use `--profile soak`)"
            )
        else:
            half_start = float(load_t[0] + (load_t[-1] - load_t[0]) / 2)
            fit = (fitted[0], fitted[1], half_start, float(load_t[-1]))
            if slope > threshold:
                verdict = f"**memory grows** (over the {threshold:g} MB/min threshold)"
            else:
                verdict = f"**flat** (under the {threshold:g} MB/min threshold)"
        lines.append(
            f"- second half ({minutes:.1f} min): total RSS floor ({FLOOR_WINDOW_S} s rolling "
            f"minimum) **{slope:+.2f} MB/min**, raw samples {60 * raw[0]:+.2f} MB/min: {verdict}"
        )
    return {"lines": lines, "fit": fit, "floor": (load_t, floor)}


def plot_latency(report: Path, start: float, end: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = report / "locust_stats_history.csv"
    if not path.exists():
        return
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    users: dict[float, float] = {}
    with path.open() as source:
        for row in csv.DictReader(source):
            t = float(row["Timestamp"]) - start
            if t > end - start + 2:
                continue  # locust shutting down: the windows only repeat stale figures
            name = row["Name"]
            users[t] = float(row["User Count"])
            data = series[name]
            data["t"].append(t)
            for column in ("50%", "95%", "Requests/s", "Failures/s"):
                raw = row.get(column, "N/A")
                value = float(raw) if raw not in ("N/A", "") else float("nan")
                # A 0 percentile means "no request in the window", not "0 ms".
                if column.endswith("%") and value == 0:
                    value = float("nan")
                data[column].append(value)

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    shown = [
        (NAME_REMOVE, "remove-watermark (valid)", "tab:blue"),
        (NAME_INVALID, "remove-watermark [invalid]", "tab:orange"),
        (NAME_OVER_LIMIT, "remove-watermark [free plan]", "tab:red"),
        ("/api/v1/health", "health", "tab:green"),
    ]
    for name, label, color in shown:
        if name not in series:
            continue
        data = series[name]
        top.plot(data["t"], data["50%"], color=color, lw=1.8, label=f"{label} p50")
        top.plot(data["t"], data["95%"], color=color, lw=1.2, ls="--", label=f"{label} p95")
        bottom.plot(data["t"], data["Requests/s"], color=color, lw=1.5, label=label)
    if "Aggregated" in series:
        bottom.plot(
            series["Aggregated"]["t"],
            series["Aggregated"]["Failures/s"],
            color="black",
            lw=1.2,
            ls=":",
            label="failures/s (all)",
        )
    top.set_yscale("log")
    top.set_ylabel("latency, ms (log)")
    top.set_title(f"{report.name}: latency p50 (solid) / p95 (dashed), 10 s window")
    top.grid(True, which="both", alpha=0.3)
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bottom.set_ylabel("requests/s")
    bottom.set_xlabel("seconds since load start")
    bottom.grid(True, alpha=0.3)
    twin = bottom.twinx()
    ts = sorted(users)
    twin.step(ts, [users[t] for t in ts], color="gray", lw=1, where="post", label="users")
    twin.set_ylabel("users", color="gray")
    twin.set_ylim(0, max(users.values() or [1]) * 1.2)
    handles, labels = bottom.get_legend_handles_labels()
    twin_handles, twin_labels = twin.get_legend_handles_labels()
    bottom.legend(
        handles + twin_handles,
        labels + twin_labels,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.08, 1.0),
    )
    fig.tight_layout()
    fig.savefig(report / "latency.png", dpi=110)
    plt.close(fig)


def plot_rss(
    report: Path,
    rss: dict[float, dict[int, tuple[str, float, float]]],
    start: float,
    end: float,
    memory: dict[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.array(list(rss)) - start
    fig, ax = plt.subplots(figsize=(13, 5))
    totals = [sum(v[1] for v in sample.values()) for sample in rss.values()]
    ax.plot(times, totals, color="black", lw=2, label="total")
    pids = sorted({pid for sample in rss.values() for pid in sample})
    for pid in pids:
        role = next(s[pid][0] for s in rss.values() if pid in s)
        points = [(t - start, s[pid][1]) for t, s in rss.items() if pid in s]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2, label=f"{role} ({pid})")
    ax.axvspan(0, end - start, color="tab:blue", alpha=0.06, label="load")
    if memory.get("floor") is not None:
        floor_t, floor_mb = memory["floor"]
        ax.plot(
            floor_t - start,
            floor_mb,
            color="gray",
            lw=1.2,
            label=f"total floor ({FLOOR_WINDOW_S} s min)",
        )
    fit = memory.get("fit")
    if fit:
        slope, intercept, t0, t1 = fit
        xs = np.array([t0, t1])
        ax.plot(
            xs - start,
            slope * xs + intercept,
            color="tab:red",
            lw=2,
            ls="--",
            label=f"second-half floor trend {60 * slope:+.2f} MB/min",
        )
    ax.set_xlabel("seconds since load start")
    ax.set_ylabel("RSS, MB")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{report.name}: RSS of the service process tree (1 s samples)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(report / "rss.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
