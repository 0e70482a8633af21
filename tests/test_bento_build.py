"""`bentoml build` as CI runs it: the Bento carries what the container needs, and only that.

Builds the GPU Bento (bentofile.yaml) and, when the CPU wheel can be had, the CPU one
(bentofile.cpu.yaml), each into a temporary BENTOML_HOME, then reads what they hold:
bento.yaml, the copied sources, the locked requirements and the generated Dockerfile.
Locking asks PyPI for versions, so this needs the package index; ~30 s in all.
The image itself is built by scripts/container-smoke.sh, on demand.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.server import PROJECT_ROOT, service_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CPU_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
# Source trees the service imports or serves; each of their files must reach the Bento.
SHIPPED_TREES = ("api", "auth", "jobs", "profiles", "runners", "docs")
SHIPPED_FILES = (
    "service.py",
    "settings.py",
    "errors.py",
    "sqlite_connection.py",
    "redis_connection.py",
    "cli.py",
)
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
MODEL_NAME = "lama"


@dataclass
class Bento:
    path: Path
    tag: str

    @property
    def info(self) -> dict:
        return yaml.safe_load((self.path / "bento.yaml").read_text())

    @property
    def dockerfile(self) -> str:
        return (self.path / "env" / "docker" / "Dockerfile").read_text()

    def lock(self) -> dict[str, str]:
        """Locked requirement name -> its line (`name==version`, or a path)."""
        pins: dict[str, str] = {}
        for line in (self.path / "env/python/requirements.lock.txt").read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "-")):
                continue
            name = Path(line).name.split("-")[0] if line.startswith("./") else line
            pins[re.split(r"[=<>\[ @;]", name, maxsplit=1)[0].lower().replace("_", "-")] = line
        return pins

    def source_files(self) -> set[str]:
        src = self.path / "src"
        return {
            p.relative_to(src).as_posix()
            for p in src.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }


def build(bentofile: str, env: dict[str, str]) -> Bento:
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", "-f", bentofile, "--output", "tag"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"bentoml build -f {bentofile} failed:\n{result.stderr}"
    tag = next(
        line.removeprefix("__tag__:")
        for line in result.stdout.splitlines()
        if line.startswith("__tag__:")
    )
    name, version = tag.split(":")
    return Bento(Path(env["BENTOML_HOME"]) / "bentos" / name / version, tag)


def import_tiny_model(env: dict[str, str], workdir: Path) -> str:
    """Tiny random LaMa weights, imported as an operator does (`iopaint-api models import`)
    into the temporary store; returns the stored tag."""
    weights = workdir / "tiny-lama.pt"
    write_weights = (
        "import sys\n"
        "from runners.lama.configs import TINY\n"
        "from pathlib import Path\n"
        "from runners.lama.weights import export_torchscript, random_network\n"
        "export_torchscript(random_network(TINY, seed=7), Path(sys.argv[1]))\n"
    )
    python = [sys.executable]
    run = {"cwd": PROJECT_ROOT, "env": env, "capture_output": True, "text": True, "check": True}
    subprocess.run([*python, "-c", write_weights, str(weights)], **run)
    wired = subprocess.run([*python, "cli.py", "models", "--help"], **{**run, "check": False})
    command = (
        [*python, "cli.py", "models"]
        if wired.returncode == 0
        else [*python, "-c", "from runners.cli import models_app; models_app()"]
    )
    subprocess.run([*command, "import", str(weights), "--config", "tiny"], **run)
    tag = subprocess.run(
        [*python, "-c", f"import bentoml; print(bentoml.models.get('{MODEL_NAME}:latest').tag)"],
        **run,
    )
    return tag.stdout.strip()


@pytest.fixture(scope="module")
def build_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    # Building imports service.py: keep its stores, and any IOPAINT_* of the caller, out.
    return service_env(tmp_path_factory.mktemp("bento-build"))


@pytest.fixture(scope="module")
def model_tag(build_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    return import_tiny_model(build_env, tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def gpu_bento(build_env: dict[str, str], model_tag: str) -> Bento:
    return build("bentofile.yaml", build_env)


@pytest.fixture(scope="module")
def cpu_bento(build_env: dict[str, str], model_tag: str) -> Iterator[Bento]:
    fetched = subprocess.run(
        ["scripts/fetch-cpu-wheel"],
        cwd=PROJECT_ROOT,
        env={
            **build_env,
            "TORCH_CPU_INDEX_URL": "",
            "PIP": str(Path(sys.executable).parent / "pip"),
        },
        capture_output=True,
        text=True,
    )
    if fetched.returncode != 0:
        pytest.skip(f"the CPU torch wheel is not available here: {fetched.stderr[-300:]}")
    yield build("bentofile.cpu.yaml", build_env)


# --- what the Bento is ------------------------------------------------------------------


def test_bento_serves_the_watermark_removal_service(gpu_bento: Bento) -> None:
    info = gpu_bento.info
    assert gpu_bento.tag.startswith("watermark-removal:")
    assert info["service"] == "service:WatermarkRemoval"
    assert info["entry_service"] == "watermark-removal"
    assert {s["name"] for s in info["services"]} == {"watermark-removal", "model-runner"}
    assert info["labels"] == {"project": "iopaint-api", "variant": "gpu"}
    paths = info["schema"]["paths"]
    assert {"/api/v1/remove-watermark", "/api/v1/health"} <= set(paths)


def test_bento_carries_every_source_file_and_nothing_else(gpu_bento: Bento) -> None:
    shipped = gpu_bento.source_files()
    expected = set(SHIPPED_FILES) | {
        p.relative_to(PROJECT_ROOT).as_posix()
        for tree in SHIPPED_TREES
        for p in (PROJECT_ROOT / tree).rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix not in (".pyc", *WEIGHT_SUFFIXES)
    }
    assert expected - shipped == set(), "files the service needs are missing from the Bento"
    assert shipped - expected == {"bentofile.yaml"}, "unexpected files in the Bento"
    for needed in (
        "auth/lua/limit.lua",
        "jobs/lua/jobs.lua",
        "profiles/lua/create.lua",
        "docs/openapi.yaml",
        "runners/model_runner.py",
    ):
        assert needed in shipped
    if (PROJECT_ROOT / "runners" / "lama").is_dir():
        assert any(f.startswith("runners/lama/") for f in shipped)


def test_gpu_bento_locks_torch_from_pypi_with_cuda(gpu_bento: Bento) -> None:
    requested = (gpu_bento.path / "env/python/requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in requested
    lock = gpu_bento.lock()
    assert lock["torch"] == "torch==2.13.0"
    assert lock["bentoml"] == "bentoml==1.4.40"
    assert any(name.startswith("nvidia-cu") for name in lock), "PyPI's torch brings CUDA wheels"
    for line in lock.values():  # every package pinned to one version
        assert "==" in line or line.startswith("./wheels/"), line


def test_bento_installs_every_project_dependency(gpu_bento: Bento) -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[=<>\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert names - set(gpu_bento.lock()) == set()


def test_bento_references_the_imported_lama_model(gpu_bento: Bento, model_tag: str) -> None:
    info = gpu_bento.info
    declared = [m for s in info["services"] for m in s["models"]] + info["models"]
    assert declared, "runners/model_runner.py declares no BentoModel: the Bento carries no weights"
    assert {m["tag"] for m in declared} == {model_tag}


# --- the Dockerfile it generates ----------------------------------------------------------


def test_dockerfile_runs_as_a_numeric_non_root_user(gpu_bento: Bento) -> None:
    users = re.findall(r"^USER\s+(\S+)", gpu_bento.dockerfile, re.MULTILINE)
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"last USER is {users[-1]}"


def test_dockerfile_exposes_one_port_and_the_service_listens_on_it(gpu_bento: Bento) -> None:
    dockerfile = gpu_bento.dockerfile
    assert re.findall(r"^EXPOSE\s+(.+)$", dockerfile, re.MULTILINE) == ["3000"]
    assert re.search(r"IOPAINT_PORT=3000\b", dockerfile)


def test_dockerfile_checks_health_on_the_health_route(gpu_bento: Bento) -> None:
    healthchecks = re.findall(r"^HEALTHCHECK .*?(?<!\\)$", gpu_bento.dockerfile, re.M | re.S)
    assert len(healthchecks) == 1
    assert "/api/v1/health" in healthchecks[0]
    assert "IOPAINT_PORT" in healthchecks[0]


def test_dockerfile_puts_the_operator_command_on_path(gpu_bento: Bento) -> None:
    assert "/app/.venv/bin/iopaint-api" in gpu_bento.dockerfile


# --- the CPU variant ------------------------------------------------------------------------


def test_cpu_bentofile_differs_only_in_torch() -> None:
    gpu = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    cpu = yaml.safe_load((PROJECT_ROOT / "bentofile.cpu.yaml").read_text())
    wheel = f"./wheels/{CPU_WHEEL}"
    assert cpu["labels"] == {**gpu["labels"], "variant": "cpu"}
    assert cpu["python"].pop("wheels") == [wheel]
    assert cpu["python"]["packages"] == [
        wheel if p == "torch==2.13.0" else p for p in gpu["python"]["packages"]
    ]
    for section in ("labels", "python"):
        del cpu[section], gpu[section]
    assert cpu == gpu


def test_cpu_bento_locks_the_cpu_wheel_and_no_cuda(cpu_bento: Bento) -> None:
    lock = cpu_bento.lock()
    assert lock["torch"] == f"./wheels/{CPU_WHEEL}"
    assert (cpu_bento.path / "env/python/wheels" / CPU_WHEEL).is_file()
    # nvidia-ml-py is BentoML's pure-Python GPU monitor, not a CUDA library.
    cuda = [n for n in lock if n.startswith(("nvidia-cu", "cuda-", "triton")) or "cudnn" in n]
    assert cuda == []
    assert (
        str(PROJECT_ROOT) not in (cpu_bento.path / "env/python/requirements.lock.txt").read_text()
    )
    assert cpu_bento.info["labels"]["variant"] == "cpu"
