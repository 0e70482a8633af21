"""Code samples out of Markdown documents, and running them as written against a service."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import PROJECT_ROOT, RunningService

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
REFERENCE_DOC = "shared/reference/RESTFUL_API_DOCUMENTATION.md"


@dataclass(frozen=True)
class Sample:
    language: str
    code: str
    line: int  # 1-based line of the opening fence


def samples(text: str, language: str) -> list[Sample]:
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        found.append(
            Sample(
                language=language,
                code=match.group(2),
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def section(text: str, heading: str) -> str:
    """The text under `heading` (a whole Markdown heading line) up to the next heading of
    the same or a higher level; lines inside code fences are never headings."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.split("\n")
    start = lines.index(heading) + 1
    in_fence = False
    for number in range(start, len(lines)):
        line = lines[number]
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and re.match(rf"#{{1,{level}}} ", line):
            return "\n".join(lines[start:number])
    return "\n".join(lines[start:])


def reference_document() -> Path | None:
    """The API document in the shared reference folder beside the checkout, if any."""
    for folder in [PROJECT_ROOT, *PROJECT_ROOT.parents]:
        candidate = folder / REFERENCE_DOC
        if candidate.exists():
            return candidate
    return None


def sdk_env(service: RunningService, api_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOPAINT_")}
    env.update(IOPAINT_API_KEY=api_key, IOPAINT_BASE_URL=service.base_url)
    return env


def run_python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, (
        f"{code}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )
    return completed


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is missing in CI: scripts/test installs nodejs")
        pytest.skip("node (Node.js) is not installed")
    return found


def run_node(code: str, cwd: Path, env: dict[str, str], *, module: bool = False) -> str:
    """Run `code` with the repository's JS SDK installed as `iopaint-sdk` in `cwd`."""
    modules = cwd / "node_modules"
    modules.mkdir(exist_ok=True)
    link = modules / "iopaint-sdk"
    if not link.exists():
        link.symlink_to(PROJECT_ROOT / "clients" / "js", target_is_directory=True)
    script = cwd / ("sample.mjs" if module else "sample.cjs")
    script.write_text(code)
    completed = subprocess.run(
        [node(), str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert completed.returncode == 0, (
        f"{code}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )
    return completed.stdout
