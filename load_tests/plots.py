"""The report's figures: `latency.png` from locust's stats history, `rss.png` from `rss.csv`."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

import numpy as np

from load_tests.memory import FLOOR_WINDOW_S, MemorySummary
from load_tests.report_files import ReportFiles
from load_tests.rss import RssSamples, process_series, total_rss_mb
from load_tests.traffic import (
    HEALTH,
    NAME_BATCH_SUBMIT,
    NAME_INVALID,
    NAME_JOB_SUBMIT,
    NAME_OVER_LIMIT,
    NAME_REMOVE,
)

LATENCY_LINES: list[tuple[str, str, str]] = [
    (NAME_REMOVE, "remove-watermark (valid)", "tab:blue"),
    (NAME_INVALID, "remove-watermark [invalid]", "tab:orange"),
    (NAME_OVER_LIMIT, "remove-watermark [free plan]", "tab:red"),
    (NAME_JOB_SUBMIT, "job submission", "tab:purple"),
    (NAME_BATCH_SUBMIT, "batch submission", "tab:brown"),
    (HEALTH, "health", "tab:green"),
]
"""(request name, label, colour) of each route drawn on `latency.png`."""
HISTORY_COLUMNS = ("50%", "95%", "Requests/s", "Failures/s")
DPI = 110


def _pyplot() -> Any:
    """pyplot on the Agg backend (no display), imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _legend_beside(axes: Any, x: float = 1.01, **kwargs: Any) -> None:
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(x, 1.0), **kwargs)


def read_history(
    files: ReportFiles, start: float, end: float
) -> tuple[dict[str, dict[str, list[float]]], dict[float, float]]:
    """Locust's 10 s-window figures per request name over time, and the user count."""
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    users: dict[float, float] = {}
    with files.locust_history.open() as source:
        for row in csv.DictReader(source):
            t = float(row["Timestamp"]) - start
            if t > end - start + 2:
                continue  # locust shutting down: the windows only repeat stale figures
            name = row["Name"]
            users[t] = float(row["User Count"])
            data = series[name]
            data["t"].append(t)
            for column in HISTORY_COLUMNS:
                raw = row.get(column, "N/A")
                value = float(raw) if raw not in ("N/A", "") else float("nan")
                # A 0 percentile means "no request in the window", not "0 ms".
                if column.endswith("%") and value == 0:
                    value = float("nan")
                data[column].append(value)
    return series, users


def plot_latency(files: ReportFiles, start: float, end: float) -> None:
    if not files.locust_history.exists():
        return
    series, users = read_history(files, start, end)
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    for name, label, color in LATENCY_LINES:
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
    top.set_title(f"{files.name}: latency p50 (solid) / p95 (dashed), 10 s window")
    top.grid(True, which="both", alpha=0.3)
    _legend_beside(top)
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
    # Further right than the top legend: the user-count axis sits in between.
    _legend_beside(bottom, 1.08, handles=handles + twin_handles, labels=labels + twin_labels)
    fig.tight_layout()
    fig.savefig(files.latency_plot, dpi=DPI)
    plt.close(fig)


def plot_rss(
    files: ReportFiles, rss: RssSamples, start: float, end: float, memory: MemorySummary
) -> None:
    plt = _pyplot()
    times = np.array(list(rss)) - start
    fig, ax = plt.subplots(figsize=(13, 5))
    ax.plot(times, total_rss_mb(rss), color="black", lw=2, label="total")
    pids = sorted({pid for sample in rss.values() for pid in sample})
    for pid in pids:
        role = next(s[pid].role for s in rss.values() if pid in s)
        pid_times, pid_mb = process_series(rss, pid)
        ax.plot([t - start for t in pid_times], pid_mb, lw=1.2, label=f"{role} ({pid})")
    ax.axvspan(0, end - start, color="tab:blue", alpha=0.06, label="load")
    if memory.floor is not None:
        floor_t, floor_mb = memory.floor
        ax.plot(
            floor_t - start,
            floor_mb,
            color="gray",
            lw=1.2,
            label=f"total floor ({FLOOR_WINDOW_S} s min)",
        )
    trend = memory.trend
    if trend:
        xs = np.array([trend.start, trend.end])
        ax.plot(
            xs - start,
            trend.slope_mb_per_s * xs + trend.intercept_mb,
            color="tab:red",
            lw=2,
            ls="--",
            label=f"second-half floor trend {60 * trend.slope_mb_per_s:+.2f} MB/min",
        )
    ax.set_xlabel("seconds since load start")
    ax.set_ylabel("RSS, MB")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{files.name}: RSS of the service process tree (1 s samples)")
    ax.grid(True, alpha=0.3)
    _legend_beside(ax)
    fig.tight_layout()
    fig.savefig(files.rss_plot, dpi=DPI)
    plt.close(fig)
