"""Does the service's memory grow under load? The RSS floor, its slope, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from load_tests.rss import RssSamples, process_series, total_rss_mb

RSS_SLOPE_THRESHOLD_MB_PER_MIN = 2.0
"""Second-half slope of the RSS floor above which the report says memory grows."""
FLOOR_WINDOW_S = 30
"""The RSS floor is the minimum over this many seconds: what stays once the buffers of
large images are freed. A leak raises the floor; a burst of 2048 px uploads only spikes."""
MIN_MINUTES_FOR_VERDICT = 4.0
"""Second halves shorter than this are reported but not judged: warm-up noise dominates."""


@dataclass(frozen=True)
class FloorTrend:
    """The line fitted through the total's floor over the second half of the load."""

    slope_mb_per_s: float
    intercept_mb: float
    start: float
    end: float


@dataclass(frozen=True)
class MemorySummary:
    lines: list[str]
    """The summary's bullet points."""
    trend: FloorTrend | None = None
    """Only when the run is long enough to be judged."""
    floor: tuple[np.ndarray, np.ndarray] | None = None
    """(times, MB) of the total's floor during the load."""


def rss_floor(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rolling minimum over the previous `FLOOR_WINDOW_S` seconds."""
    return np.array([values[(times > t - FLOOR_WINDOW_S) & (times <= t)].min() for t in times])


def second_half_start(times: np.ndarray) -> float:
    return float(times[0] + (times[-1] - times[0]) / 2)


def second_half_slope(times: np.ndarray, values: np.ndarray) -> tuple[float, float] | None:
    """(slope per second, intercept) of a line through the second half, if enough samples."""
    half = times >= second_half_start(times)
    if half.sum() < 10:
        return None
    slope, intercept = np.polyfit(times[half], values[half], 1)
    return float(slope), float(intercept)


def summarize_memory(rss: RssSamples, start: float, end: float, threshold: float) -> MemorySummary:
    """The memory section of the summary for the load between `start` and `end`."""
    if not rss:
        return MemorySummary(["Not sampled (external service without `--pid`)."])
    times = np.array(list(rss))
    totals = np.array(total_rss_mb(rss))
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
        "- per process (start → end, max, second-half floor slope): "
        + "; ".join(per_process_lines(rss, start, end)),
    ]
    cpu = [
        sum(process.cpu_percent for process in sample.values())
        for t, sample in rss.items()
        if start <= t <= end
    ]
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
    trend = None
    if fitted and raw:
        slope = 60 * fitted[0]
        minutes = (load_t[-1] - load_t[0]) / 120  # length of the second half
        if minutes < MIN_MINUTES_FOR_VERDICT:
            verdict = (
                f"not judged: the second half is {minutes:.1f} min, under "
                f"{MIN_MINUTES_FOR_VERDICT:.0f} min (use `--profile soak`)"
            )
        else:
            trend = FloorTrend(fitted[0], fitted[1], second_half_start(load_t), float(load_t[-1]))
            if slope > threshold:
                verdict = f"**memory grows** (over the {threshold:g} MB/min threshold)"
            else:
                verdict = f"**flat** (under the {threshold:g} MB/min threshold)"
        lines.append(
            f"- second half ({minutes:.1f} min): total RSS floor ({FLOOR_WINDOW_S} s rolling "
            f"minimum) **{slope:+.2f} MB/min**, raw samples {60 * raw[0]:+.2f} MB/min: {verdict}"
        )
    return MemorySummary(lines, trend, (load_t, floor))


def per_process_lines(rss: RssSamples, start: float, end: float) -> list[str]:
    """Each process during the load: start → end, max, and its floor's second-half slope."""
    found = []
    roles = sorted({(process.role, pid) for s in rss.values() for pid, process in s.items()})
    for role, pid in roles:
        points = [
            (t, mb) for t, mb in zip(*process_series(rss, pid), strict=True) if start <= t <= end
        ]
        if not points:
            continue
        pt, mb = np.array([p[0] for p in points]), np.array([p[1] for p in points])
        fitted = second_half_slope(pt, rss_floor(pt, mb))
        slope = f", floor {round(60 * fitted[0], 1) + 0.0:+.1f} MB/min" if fitted else ""
        found.append(f"{role} (pid {pid}) {mb[0]:.0f} → {mb[-1]:.0f} MB, max {mb.max():.0f}{slope}")
    return found
