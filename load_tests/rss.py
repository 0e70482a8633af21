"""RSS and CPU of the service's process tree, sampled once a second into `rss.csv`.

`RssSampler` writes the file while the load runs; `read_rss` reads it back for the report.
"""

from __future__ import annotations

import contextlib
import csv
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import psutil

COLUMNS = ["t", "pid", "role", "rss_mb", "cpu_percent"]


class ProcessSample(NamedTuple):
    role: str
    rss_mb: float
    cpu_percent: float


RssSamples = dict[float, dict[int, ProcessSample]]
"""{t: {pid: sample}} in time order."""


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
            writer.writerow(COLUMNS)
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


def read_rss(path: Path) -> RssSamples:
    """The samples `RssSampler` wrote to `path`; none if it was not sampled."""
    samples: dict[float, dict[int, ProcessSample]] = defaultdict(dict)
    if path.exists():
        with path.open() as source:
            for row in csv.DictReader(source):
                samples[float(row["t"])][int(row["pid"])] = ProcessSample(
                    row["role"], float(row["rss_mb"]), float(row["cpu_percent"])
                )
    return dict(sorted(samples.items()))


def total_rss_mb(samples: RssSamples) -> list[float]:
    """The RSS of the whole tree at each sample time."""
    return [sum(process.rss_mb for process in sample.values()) for sample in samples.values()]


def process_series(samples: RssSamples, pid: int) -> tuple[list[float], list[float]]:
    """(times, RSS in MB) of one process, over the samples it appears in."""
    points = [(t, sample[pid].rss_mb) for t, sample in samples.items() if pid in sample]
    return [t for t, _ in points], [mb for _, mb in points]
