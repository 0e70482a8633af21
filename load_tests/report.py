"""`summary.md` of a load test, built from the raw files of its report (and its figures).

Each section is one function returning its lines; `write_report` puts them in order. The
per-route tables group by request name, so a new route shows up in them by itself.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from load_tests.memory import MemorySummary, summarize_memory
from load_tests.plots import plot_latency, plot_rss
from load_tests.report_files import ReportFiles
from load_tests.rss import read_rss
from load_tests.traffic import METERED_NAMES, NAME_REMOVE, SIZE_LABELS, SUBMIT_NAMES

Record = dict[str, Any]
"""One line of `requests.jsonl`."""


def read_requests(files: ReportFiles) -> list[Record]:
    if not files.requests.exists():
        return []
    with files.requests.open() as source:
        return [json.loads(line) for line in source if line.strip()]


def load_span(requests: list[Record], meta: dict[str, Any]) -> tuple[float, float]:
    """Start and end of the load: the span of the requests, not locust's own start-up."""
    if requests:
        return min(r["t"] for r in requests), max(r["t"] + r["ms"] / 1000 for r in requests)
    return meta.get("load_start", 0.0), meta.get("load_end", 1.0)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.0f} ms"


def percentile_cells(ms: list[float]) -> str:
    """`p50 | p95 | p99` of these latencies, for a table row."""
    return " | ".join(fmt_ms(percentile(ms, q)) for q in (50, 95, 99))


def by_route(requests: list[Record]) -> dict[str, list[Record]]:
    """The requests under `METHOD name`, the key of every per-route table."""
    grouped: dict[str, list[Record]] = defaultdict(list)
    for r in requests:
        grouped[f"{r['method']} {r['name']}"].append(r)
    return grouped


def write_report(files: ReportFiles) -> None:
    """Write `summary.md`, `latency.png` and `rss.png` from the report's raw files."""
    meta = json.loads(files.meta.read_text())
    requests = read_requests(files)
    rss = read_rss(files.rss)
    start, end = load_span(requests, meta)
    duration = max(end - start, 1e-9)
    routes = by_route(requests)
    failures = [r for r in requests if not r["ok"]]
    memory = summarize_memory(rss, start, end, meta["rss_slope_threshold"])

    plot_latency(files, start, end)
    if rss:
        plot_rss(files, rss, start, end, memory)
    lines = [
        *run_section(files, meta, duration),
        *throughput_section(requests, failures, duration),
        *route_latency_section(routes, duration),
        *size_latency_section(requests),
        *status_section(routes),
        *failure_section(failures),
        *memory_section(memory),
        *accounting_section(meta, requests),
        *plots_section(plotted_rss=bool(rss)),
    ]
    files.summary.write_text("\n".join(lines) + "\n")


def run_section(files: ReportFiles, meta: dict[str, Any], duration: float) -> list[str]:
    health = meta.get("health")
    model = health.get("model", "?") if isinstance(health, dict) else "?"
    device = health.get("device", "?") if isinstance(health, dict) else "?"
    target = "own `bentoml serve`" if meta["own_service"] else "external"
    lines = [
        f"# Load test {files.name}",
        "",
        f"- command: `{meta['command']}`",
        f"- profile **{meta['profile']}**: {meta['users']} users, spawn {meta['spawn_rate']}/s, "
        f"run time {meta['run_time']} (measured {duration:.0f} s incl. ramp-up and stop)",
        f"- target: {meta['host']} ({target}),"
        f" model **{model}** on {device}; keys for plans: {', '.join(meta['plans']) or 'none'}",
        f"- code: {meta['git']}; machine: {meta['machine']} (client and service share it)",
    ]
    if meta.get("locust_cpu_s") is not None and meta.get("load_start"):
        span = meta["load_end"] - meta["load_start"]
        lines.append(
            f"- load generator (locust) CPU: {meta['locust_cpu_s']:.0f} s over {span:.0f} s "
            f"= {100 * meta['locust_cpu_s'] / span:.0f}% of one core (near 100%: the client, "
            "not the service, limits the figures)"
        )
    lines += [f"- **note**: {note}" for note in meta.get("notes", [])]
    return [*lines, ""]


def cleaned_images(requests: list[Record]) -> list[Record]:
    """Remove-watermark requests that came back with a result."""
    return [r for r in requests if r["name"] == NAME_REMOVE and r["status"] == 200]


def throughput_section(
    requests: list[Record], failures: list[Record], duration: float
) -> list[str]:
    total = len(requests)
    inpainted = cleaned_images(requests)
    megapixels = sum(
        int(w) * int(h) for w, h in (r["size"].split("x") for r in inpainted if "size" in r)
    )
    return [
        "## Throughput",
        "",
        f"- {total} requests in {duration:.0f} s: **{total / duration:.2f} req/s** overall",
        f"- {len(inpainted)} images cleaned (remove-watermark 200): "
        f"**{len(inpainted) / duration:.2f} images/s**, {megapixels / 1e6 / duration:.2f} MP/s",
        f"- contract failures (unexpected status, bad body, no response): **{len(failures)}** "
        f"({100 * len(failures) / max(total, 1):.1f}%)",
        "",
    ]


def route_latency_section(routes: dict[str, list[Record]], duration: float) -> list[str]:
    lines = [
        "## Latency per route (client side, every request)",
        "",
        "| route | requests | req/s | p50 | p95 | p99 | max | failures |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(routes):
        rows = routes[name]
        ms = [r["ms"] for r in rows]
        lines.append(
            f"| `{name}` | {len(rows)} | {len(rows) / duration:.2f} | {percentile_cells(ms)} | "
            f"{fmt_ms(max(ms))} | {sum(not r['ok'] for r in rows)} |"
        )
    return [
        *lines,
        "",
        "Rows with `[invalid]` are the deliberate mistakes (400/401), `[free plan]` the "
        "over-limit client (mostly 429). p99 of fewer than 100 requests is close to the max.",
        "",
    ]


def size_latency_section(requests: list[Record]) -> list[str]:
    lines = [
        "## Remove-watermark 200s by image size",
        "",
        "| size | images | p50 | p95 | p99 | server time p50 (X-Processing-Time) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_size: dict[str, list[Record]] = defaultdict(list)
    for r in cleaned_images(requests):
        by_size[r.get("size", "?")].append(r)
    order = {size: index for index, size in enumerate(SIZE_LABELS)}
    for size in sorted(by_size, key=lambda s: order.get(s, 99)):
        rows = by_size[size]
        server = [1000 * r["processing_s"] for r in rows if "processing_s" in r]
        lines.append(
            f"| {size} | {len(rows)} | {percentile_cells([r['ms'] for r in rows])} | "
            f"{fmt_ms(percentile(server, 50))} |"
        )
    return [
        *lines,
        "",
        "Client time minus server time is upload, queueing in the HTTP worker and download; "
        "server time includes waiting for the runner.",
        "",
    ]


def status_section(routes: dict[str, list[Record]]) -> list[str]:
    statuses = sorted({r["status"] for rows in routes.values() for r in rows})
    lines = [
        "## Responses by status",
        "",
        "| route | " + " | ".join(str(s) if s else "no response" for s in statuses) + " |",
        "|---|" + "---:|" * len(statuses),
    ]
    for name in sorted(routes):
        counts = Counter(r["status"] for r in routes[name])
        bad = Counter(r["status"] for r in routes[name] if not r["ok"])
        cells = [
            (f"{counts[s]}" + (f" (**{bad[s]} unexpected**)" if bad[s] else ""))
            if counts[s]
            else ""
            for s in statuses
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        "Expected and not failures: 400/401 on `[invalid]`, 429 on any non-enterprise key. "
        "Every other non-200, and any error body that is not the envelope, is a failure.",
        "",
    ]


def failure_section(failures: list[Record]) -> list[str]:
    if not failures:
        return []
    lines = ["### Contract failures", "", "| count | route | why |", "|---:|---|---|"]
    reasons = Counter((r["name"], r.get("why", "?")) for r in failures)
    for (name, why), count in reasons.most_common(15):
        lines.append(f"| {count} | `{name}` | {why.replace('|', '/')} |")
    return [*lines, ""]


def memory_section(memory: MemorySummary) -> list[str]:
    return ["## Memory (RSS of the service's process tree)", "", *memory.lines, ""]


def client_usage(requests: list[Record], plan: str) -> dict[str, int]:
    """What the client saw of one plan's metered requests, in `/stats`'s fields."""
    sent = [
        r for r in requests if r.get("plan") == plan and r["name"] in METERED_NAMES and r["status"]
    ]
    admitted = [r for r in sent if r["status"] not in (401, 429)]
    mine = [r for r in requests if r.get("plan") == plan]
    # Jobs count when they end, as the polls that saw them end recorded; a batch of N, N.
    ended = [r["job_outcome"] for r in mine if isinstance(r.get("job_outcome"), dict)]
    jobs_succeeded = sum(int(outcome.get("succeeded", 0)) for outcome in ended)
    jobs_failed = sum(int(outcome.get("failed", 0)) for outcome in ended)
    refused_submissions = sum(r["name"] in SUBMIT_NAMES and r["status"] == 429 for r in mine)
    return {
        "total": len(admitted) + jobs_succeeded + jobs_failed,
        "success": sum(r["status"] == 200 for r in admitted) + jobs_succeeded,
        "failed": sum(r["status"] != 200 for r in admitted) + jobs_failed,
        "rate_limited": sum(r["status"] == 429 for r in sent) + refused_submissions,
    }


def accounting_section(meta: dict[str, Any], requests: list[Record]) -> list[str]:
    if not meta.get("stats"):
        return []
    lines = [
        "## Usage accounting: `/stats` against what was sent",
        "",
        "| plan | field | service says | client saw |",
        "|---|---|---:|---:|",
    ]
    for plan, found in sorted(meta["stats"].items()):
        body = found["body"] if isinstance(found["body"], dict) else {}
        for name, value in client_usage(requests, plan).items():
            said = body.get(name, f"HTTP {found['status']}" if not body else "-")
            mark = "" if said == value else " ⚠"
            lines.append(f"| {plan} | {name} | {said}{mark} | {value} |")
    external = (
        ""
        if meta["own_service"]
        else " External service: the keys' earlier traffic is in the service's figures too."
    )
    return [
        *lines,
        "",
        "Client counts exclude requests without a response (timeouts): the service may "
        "have counted those. Jobs count when the client saw them end: one still running "
        "when the load stopped is counted by the service once it ends, not here. "
        "⚠ marks a difference." + external,
        "",
    ]


def plots_section(*, plotted_rss: bool) -> list[str]:
    lines = [
        "## Plots",
        "",
        "- `latency.png`: p50/p95 per route over a 10 s sliding window; requests/s; users.",
    ]
    if plotted_rss:
        lines.append(
            "- `rss.png`: RSS per process, total and its floor; load period; floor trend line."
        )
    return [
        *lines,
        "",
        "Raw data: `requests.jsonl` (one line per request), `locust_stats*.csv`, `rss.csv`.",
    ]
