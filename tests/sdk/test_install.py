"""Both SDKs install from the repository into fresh environments, as a new user would:
`pip install ./clients/python` into a new venv, `npm install` of `npm pack`'s tarball."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def run(*command: str, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_pip_install_into_a_fresh_venv(tmp_path: Path) -> None:
    run(sys.executable, "-m", "venv", str(tmp_path / "venv"), cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    run(
        str(python),
        "-m",
        "pip",
        "install",
        "-q",
        str(PROJECT_ROOT / "clients" / "python"),
        cwd=tmp_path,
    )
    installed = json.loads(run(str(python), "-m", "pip", "list", "--format=json", cwd=tmp_path))
    names = {package["name"].lower() for package in installed}
    assert {"iopaint-sdk", "httpx"} <= names
    assert not names & {"pillow", "numpy", "iopaint"}  # httpx is the only dependency
    version = run(str(tmp_path / "venv" / "bin" / "iopaint"), "--version", cwd=tmp_path)
    assert version.strip() == "iopaint-sdk 0.1.0"
    probe = (
        "import iopaint_sdk, sys; print(iopaint_sdk.IOPaintClient.__name__, 'PIL' in sys.modules)"
    )
    assert run(str(python), "-c", probe, cwd=tmp_path).split() == ["IOPaintClient", "False"]


def test_npm_install_of_the_packed_package(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("npm is missing in CI: scripts/test installs nodejs and npm")
        pytest.skip("npm (Node.js) is not installed")
    packed = run(
        npm, "pack", "--pack-destination", str(tmp_path), cwd=PROJECT_ROOT / "clients" / "js"
    )
    tarball = tmp_path / packed.strip().splitlines()[-1]
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    run(npm, "install", "--no-audit", "--no-fund", str(tarball), cwd=app)
    manifest = json.loads((app / "node_modules" / "iopaint-sdk" / "package.json").read_text())
    assert manifest.get("dependencies") in (None, {})  # no runtime dependency
    assert sorted(
        p.name for p in (app / "node_modules").iterdir() if not p.name.startswith(".")
    ) == ["iopaint-sdk"]
    required = "const { IOPaintClient } = require('iopaint-sdk'); console.log(typeof IOPaintClient)"
    assert run("node", "-e", required, cwd=app).strip() == "function"
    imported = "import { IOPaintClient } from 'iopaint-sdk'; console.log(typeof IOPaintClient)"
    assert run("node", "--input-type=module", "-e", imported, cwd=app).strip() == "function"
    assert (app / "node_modules" / "iopaint-sdk" / "src" / "index.d.ts").exists()
