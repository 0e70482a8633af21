"""The files of one load-test report, named once: the run writes them, the report reads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReportFiles:
    """`load_tests/reports/<timestamp>-<profile>/` and every file in it."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def meta(self) -> Path:
        """How the run was made (command, target, timings, `/stats` answers): `run.py`."""
        return self.root / "meta.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.md"

    @property
    def requests(self) -> Path:
        """One JSON line per request, written by the locustfile's `--request-log`."""
        return self.root / "requests.jsonl"

    @property
    def locust_csv_prefix(self) -> Path:
        """Locust's `--csv` prefix: `locust_stats.csv`, `locust_stats_history.csv`, …"""
        return self.root / "locust"

    @property
    def locust_history(self) -> Path:
        return self.root / "locust_stats_history.csv"

    @property
    def locust_log(self) -> Path:
        return self.root / "locust.log"

    @property
    def locust_console(self) -> Path:
        return self.root / "locust-console.txt"

    @property
    def rss(self) -> Path:
        return self.root / "rss.csv"

    @property
    def service_log(self) -> Path:
        return self.root / "service.log"

    @property
    def latency_plot(self) -> Path:
        return self.root / "latency.png"

    @property
    def rss_plot(self) -> Path:
        return self.root / "rss.png"
