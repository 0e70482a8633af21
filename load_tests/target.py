"""The service under load: our own `bentoml serve` with fresh keys, or one already running."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from load_tests.report_files import ReportFiles
from load_tests.traffic import HEALTH, STATS, UNLIMITED_PLANS
from tests.server import UNLIMITED, RunningService, create_key, service_env, start_service

# The enterprise key must never be the bottleneck: far above what 2 cores can serve. The
# other plans keep their own limits: a few customers, who may see 429, and the free client.
KEY_PLANS: list[tuple[str, tuple[str, ...]]] = [
    (plan, UNLIMITED if plan in UNLIMITED_PLANS else ())
    for plan in ("enterprise", "basic", "pro", "free")
]


@dataclass
class Target:
    host: str
    keys: dict[str, str]
    """plan -> API key; empty when requests go unauthenticated."""
    keys_file: Path | None
    """The keys as a JSON file for locust's `--keys-file`."""
    root_pid: int | None
    """The process whose tree's RSS is sampled; None: not sampled."""
    service: RunningService | None = None
    """Set when this run started the service, and so stops it."""
    notes: list[str] = field(default_factory=list)
    """What the summary must say about how the target was set up."""

    @property
    def own_service(self) -> bool:
        return self.service is not None

    def health(self) -> Any:
        """Health's JSON body, or its text when it is not 200."""
        response = httpx.get(f"{self.host}{HEALTH}", timeout=30)
        return response.json() if response.status_code == 200 else response.text

    def usage_stats(self) -> dict[str, Any]:
        """Each key's `/stats` answer: {plan: {"status", "body"}} (status 0: no answer)."""
        found: dict[str, Any] = {}
        for plan, key in self.keys.items():
            try:
                response = httpx.get(f"{self.host}{STATS}", headers={"X-API-Key": key}, timeout=30)
                found[plan] = {"status": response.status_code, "body": response.json()}
            except (httpx.HTTPError, ValueError) as exc:
                found[plan] = {"status": 0, "body": str(exc)}
        return found

    def stop(self, files: ReportFiles) -> None:
        """Stop the service if it is ours, keeping its log in the report."""
        if self.service:
            self.service.stop()
            shutil.copy(self.service.log_path, files.service_log)


def external_service(host: str, keys_file: str | None, pid: int | None) -> Target:
    """A service someone else started: its keys from `keys_file`, its RSS from `pid`'s tree."""
    keys: dict[str, str] = {}
    path = None
    if keys_file:
        path = Path(keys_file).resolve()
        keys = json.loads(path.read_text())
    return Target(host.rstrip("/"), keys, path, pid)


def start_own_service(
    workdir: Path, *, model: str, weights: str | None, settings: list[str], no_keys: bool
) -> Target:
    """`bentoml serve` on stores in `workdir`, with one key per plan of `KEY_PLANS`.

    `settings` are extra `IOPAINT_NAME=VALUE` items for the service's environment.
    """
    overrides = {"IOPAINT_MODEL": model}
    if weights:
        overrides["IOPAINT_LAMA_WEIGHTS"] = str(Path(weights).resolve())
    for item in settings:
        name, _, value = item.partition("=")
        overrides[name] = value
    env = service_env(workdir, **overrides)
    notes: list[str] = []
    keys: dict[str, str] = {}
    if no_keys:
        notes.append("Run with `--no-keys`: every request was unauthenticated.")
    else:
        keys = create_keys(env)
    print(f"starting bentoml serve (model {model}, stores in {workdir}) ...")
    service = start_service(workdir, env)
    keys_file = write_keys_file(workdir, keys) if keys else None
    return Target(service.base_url, keys, keys_file, service.process.pid, service, notes)


def create_keys(env: dict[str, str]) -> dict[str, str]:
    return {
        plan: create_key(env, plan=plan, name=f"load-{plan}", limits=limits)
        for plan, limits in KEY_PLANS
    }


def write_keys_file(workdir: Path, keys: dict[str, str]) -> Path:
    path = workdir / "keys.json"
    path.write_text(json.dumps(keys))
    path.chmod(0o600)
    return path
