"""The Postman collections, run by newman against the real service, must pass: the
reference one as written (its basic request sends no mask: detection finds the watermark),
and the project's copy in docs/postman/, which adds the routes built since (detection,
watermark profiles)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.api.watermark_images import clean_photo, mark_rgba, stamped
from tests.images import box_mask, encode, text_on_photo
from tests.server import PROJECT_ROOT, RunningService

pytestmark = pytest.mark.e2e

REFERENCE = PROJECT_ROOT.parent / "shared" / "reference"
COLLECTIONS = {
    "reference": (REFERENCE / "IOPaint_API.postman_collection.json", 4),
    "ours": (PROJECT_ROOT / "docs" / "postman" / "iopaint-api.postman_collection.json", 10),
}
NEWMAN = "newman@6"


def collection_with_files(
    collection: dict[str, Any], image: Path, mask: Path, marks: tuple[Path, Path] | None = None
) -> dict[str, Any]:
    """A copy whose empty file fields point at real files; nothing else changes (a disabled
    field stays disabled, so the basic request sends no mask, as written). `marks`: a
    watermark profile's RGBA PNG and a photo carrying it, for the watermark requests."""
    filled = copy.deepcopy(collection)

    def visit(items: list[dict[str, Any]]) -> None:
        for item in items:
            visit(item.get("item", []))
            body = item.get("request", {}).get("body", {})
            profiled = any(field["key"] == "watermark" for field in body.get("formdata", []))
            for field in body.get("formdata", []):
                if field.get("type") != "file":
                    continue
                if profiled and marks is not None:
                    logo, marked = marks
                    field["src"] = str(logo if field["key"] == "watermark" else marked)
                else:
                    field["src"] = str(image if field["key"] == "image" else mask)

    visit(filled["item"])
    return filled


@pytest.mark.parametrize("name", COLLECTIONS)
def test_postman_collection_passes(
    service: RunningService, api_key: str, tmp_path: Path, name: str
) -> None:
    path, requests = COLLECTIONS[name]
    if not path.exists():
        pytest.skip(f"{path} is not beside the repo")
    npx = shutil.which("npx")
    if npx is None:
        if os.environ.get("CI"):
            pytest.fail("npx is missing in CI: scripts/test installs nodejs and npm")
        pytest.skip("npx (Node.js) is not installed")
    samples = REFERENCE / "samples"
    image, mask = samples / "watermark.jpg", samples / "watermark_mask.png"
    if not image.exists():
        image, mask = tmp_path / "photo.jpg", tmp_path / "mask.png"
        image.write_bytes(encode(text_on_photo(640, 480), "JPEG"))
        mask.write_bytes(encode(box_mask(640, 480, (100, 100, 300, 200)), "PNG"))
    logo, marked = tmp_path / "logo.png", tmp_path / "marked.png"
    rgba = mark_rgba()
    logo.write_bytes(encode(rgba, "PNG"))
    marked.write_bytes(encode(stamped(clean_photo(), rgba), "PNG"))
    collection = collection_with_files(json.loads(path.read_text()), image, mask, (logo, marked))
    filled_path = tmp_path / "collection.json"
    filled_path.write_text(json.dumps(collection))

    completed = subprocess.run(
        [
            npx,
            "--yes",
            NEWMAN,
            "run",
            str(filled_path),
            "--env-var",
            f"base_url={service.base_url}",
            "--env-var",
            f"api_key={api_key}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(tmp_path / "run.json"),
            "--color",
            "off",
            "--disable-unicode",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(completed.stdout[-4000:])
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    stats = json.loads((tmp_path / "run.json").read_text())["run"]["stats"]
    assert stats["requests"] == {"total": requests, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 10  # every test script ran
