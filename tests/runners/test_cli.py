"""`iopaint-api models …` through typer's test runner, against a temporary model store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from runners.cli import models_app
from runners.lama.configs import TINY
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import load_network, read_export_metadata
from settings import get_settings


@pytest.fixture(autouse=True)
def environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_store: Path
) -> Iterator[None]:
    for name in ("IOPAINT_LAMA_WEIGHTS", "IOPAINT_MODEL", "IOPAINT_LAMA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("IOPAINT_LAMA_DOWNLOAD", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(models_app, list(args))
    return result.exit_code, result.output


def test_export_with_random_weights_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    assert _run("export", "--config", "tiny", "--random-seed", "3", "-o", str(first))[0] == 0
    assert _run("export", "--config", "tiny", "--random-seed", "3", "-o", str(second))[0] == 0
    assert read_export_metadata(first) == {"config": "tiny", "random_seed": 3, "weight_scale": 1.0}
    image, mask = torch.rand(1, 3, 32, 40), torch.ones(1, 1, 32, 40)
    with torch.inference_mode():
        a = load_network(first, TINY, torch.device("cpu"))(image, mask)
        b = load_network(second, TINY, torch.device("cpu"))(image, mask)
    assert torch.equal(a, b)


def test_export_from_a_lightning_checkpoint(
    tmp_path: Path, tiny_checkpoint: Path, tiny_network: InpaintingNetwork
) -> None:
    output = tmp_path / "from-ckpt.pt"
    code, text = _run(
        "export", "--config", "tiny", "--weights", str(tiny_checkpoint), "-o", str(output)
    )
    assert code == 0, text
    image, mask = torch.rand(2, 3, 48, 48), torch.ones(2, 1, 48, 48)
    with torch.inference_mode():
        exported = load_network(output, TINY, torch.device("cpu"))(image, mask)
        assert torch.allclose(exported, tiny_network(image, mask), atol=1e-6)


def test_export_needs_exactly_one_source(tmp_path: Path, tiny_checkpoint: Path) -> None:
    code, text = _run("export", "--config", "tiny", "-o", str(tmp_path / "x.pt"))
    assert code != 0 and "exactly one" in text
    both = ["--weights", str(tiny_checkpoint), "--random-seed", "1"]
    assert _run("export", "--config", "tiny", *both, "-o", str(tmp_path / "x.pt"))[0] != 0


def test_import_then_where_and_list(tiny_torchscript: Path) -> None:
    code, text = _run("import", str(tiny_torchscript), "--config", "tiny")
    assert code == 0, text
    assert text.startswith("Imported") and "lama:" in text and "torchscript" in text
    code, text = _run("where", "--json")
    assert code == 0, text
    where = json.loads(text)
    assert where["origin"] == "model store" and where["config"] == "tiny"
    assert Path(where["path"]).read_bytes() == tiny_torchscript.read_bytes()
    code, text = _run("list", "--json")
    rows = json.loads(text)
    assert [row["origin"] for row in rows] == ["model store", "IOPaint cache"]
    assert [row["present"] for row in rows] == [True, False]


def test_import_refuses_files_that_do_not_load(tmp_path: Path, tiny_checkpoint: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    assert _run("import", str(junk))[0] == 1
    code, text = _run("import", str(tiny_checkpoint), "--config", "big-lama")
    assert code == 1 and "does not load as big-lama" in text
    assert _run("where")[0] == 1  # nothing was stored


def test_where_without_weights_says_how_to_provide_them() -> None:
    code, text = _run("where")
    assert code == 1 and "IOPAINT_LAMA_WEIGHTS" in text and "serves OpenCV" in text
