"""Every code sample of the README and of docs/ runs as written against the real service.

A sample that cannot run here (it builds images, starts long-lived servers, needs weights
this machine cannot download) says why in a `<!-- not run: REASON -->` line right above
its fence; the test refuses any other sample that does not run, so a doc example cannot rot
silently. `text` blocks are output (log lines, HTTP transcripts, command synopses), not
code; `json` blocks must parse. (The SDK READMEs are run by tests/sdk/test_sdk_docs.py.)

Samples run in a folder holding the files they name (photo.jpg with a watermark, mask.png;
beach.jpg, city.jpg and beach-mask.png for the batch example),
with `IOPAINT_API_KEY` and `IOPAINT_BASE_URL` set for the session's service, `localhost:8080`
pointing at it and `.venv/bin/` at this checkout's virtualenv.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.images import box_mask, encode, text_on_photo
from tests.sdk.docs import run_node, run_python
from tests.server import PROJECT_ROOT, RunningService

pytestmark = pytest.mark.e2e

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$")
RUNNABLE = {"bash", "python", "javascript"}
NOT_CODE = {"text", "json"}


@dataclass(frozen=True)
class DocSample:
    document: str
    line: int
    language: str
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"


def doc_samples() -> list[DocSample]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            reason = NOT_RUN.search(before)
            found.append(
                DocSample(
                    document=path.relative_to(PROJECT_ROOT).as_posix(),
                    line=text.count("\n", 0, match.start()) + 1,
                    language=match.group(1),
                    code=match.group(2),
                    not_run=reason.group(1) if reason else None,
                )
            )
    return found


SAMPLES = doc_samples()
TO_RUN = [sample for sample in SAMPLES if sample.language in RUNNABLE and not sample.not_run]


def test_every_sample_runs_or_says_why_not() -> None:
    undeclared = [
        sample.id
        for sample in SAMPLES
        if sample.language not in RUNNABLE | NOT_CODE and not sample.not_run
    ]
    assert undeclared == [], "fences without a language (bash, python, text, ...) or a reason"
    assert sum(sample.document == "README.md" for sample in TO_RUN) >= 5, "README: calling it"
    skipped = [(sample.id, sample.not_run) for sample in SAMPLES if sample.not_run]
    print(f"{len(TO_RUN)} samples run; {len(skipped)} not run, each with its reason:")
    for where, why in skipped:
        print(f"  {where}: {why}")


@pytest.mark.parametrize(
    "sample", [s for s in SAMPLES if s.language == "json"], ids=lambda sample: sample.id
)
def test_json_samples_parse(sample: DocSample) -> None:
    json.loads(sample.code)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "photo.jpg").write_bytes(encode(text_on_photo(640, 400, "STOCK PHOTO"), "JPEG"))
    (tmp_path / "mask.png").write_bytes(encode(box_mask(640, 400, (60, 190, 600, 260)), "PNG"))
    # The batch example's pair: a mask for one of them, detection for the other.
    (tmp_path / "beach.jpg").write_bytes(encode(text_on_photo(320, 200, "BEACH"), "JPEG"))
    (tmp_path / "city.jpg").write_bytes(encode(text_on_photo(320, 200, "CITY PHOTO"), "JPEG"))
    (tmp_path / "beach-mask.png").write_bytes(encode(box_mask(320, 200, (20, 80, 300, 130)), "PNG"))
    return tmp_path


@pytest.mark.parametrize("sample", TO_RUN, ids=lambda sample: sample.id)
def test_sample_runs_as_written(
    sample: DocSample,
    service: RunningService,
    api_key: str,
    e2e_env: dict[str, str],
    workdir: Path,
) -> None:
    env = {**e2e_env, "IOPAINT_API_KEY": api_key, "IOPAINT_BASE_URL": service.base_url}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    code = sample.code.replace("http://localhost:8080", service.base_url).replace(
        ".venv/bin/", f"{Path(sys.executable).parent}/"
    )
    if sample.language == "python":
        run_python(code, workdir, env)
    elif sample.language == "javascript":
        run_node(code, workdir, env)
    else:
        completed = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, (
            f"{sample.id}\n{code}\n--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
        )
