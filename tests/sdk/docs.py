"""Code samples out of Markdown documents, for tests that run them as written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tests.server import PROJECT_ROOT

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.DOTALL | re.MULTILINE)
REQUIRES = re.compile(r"<!--\s*requires:\s*([\w-]+)\s*-->\s*$")
REFERENCE_DOC = "shared/reference/RESTFUL_API_DOCUMENTATION.md"


@dataclass(frozen=True)
class Sample:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    requires: str | None  # from a `<!-- requires: NAME -->` line right above the fence


def samples(text: str, language: str) -> list[Sample]:
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) != language:
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        requirement = REQUIRES.search(before)
        found.append(
            Sample(
                language=language,
                code=match.group(2),
                line=text.count("\n", 0, match.start()) + 1,
                requires=requirement.group(1) if requirement else None,
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
