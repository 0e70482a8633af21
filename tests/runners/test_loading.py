"""Where the runner's weights come from, in order, and what happens without any."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.hd_strategy import HdInpainter
from runners.lama.inpainter import LamaInpainter
from runners.lama.store import import_weights, latest_weights
from runners.lama.weights import WeightsFormat
from runners.loading import (
    NO_WEIGHTS_MESSAGE,
    ModelUnavailable,
    WeightsOrigin,
    find_weights,
    iopaint_cache_path,
    load_inpainter,
)
from settings import Settings
from tests.runners.file_server import FileServer, serve_file


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """IOPaint's cache inside the test's directory (torch.hub reads TORCH_HOME at each call)."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def store(model_store: Path) -> Iterator[Path]:
    yield model_store


def _settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "lama_config": "tiny",
        "lama_download": False,
        "device": "cpu",
        "lama_download_url": "http://127.0.0.1:9/big-lama.pt",
    }
    return Settings(**{**base, **values})  # type: ignore[arg-type]


def _put_in_cache(source: Path) -> Path:
    cache = iopaint_cache_path("https://example.invalid/models/big-lama.pt")
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, cache)
    return cache


def _lama_of(inpainter: object) -> LamaInpainter:
    assert isinstance(inpainter, HdInpainter)
    assert isinstance(inpainter.inner, LamaInpainter)
    return inpainter.inner


def test_cache_path_is_iopaints(torch_home: Path) -> None:
    url = "https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt"
    assert iopaint_cache_path(url) == torch_home / "hub" / "checkpoints" / "big-lama.pt"


def test_without_weights_auto_serves_opencv_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        inpainter = load_inpainter(_settings(model="auto"))
    assert inpainter.name == "opencv"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and NO_WEIGHTS_MESSAGE in warnings[0].getMessage()


def test_without_weights_lama_refuses_to_start() -> None:
    with pytest.raises(ModelUnavailable) as refused:
        load_inpainter(_settings(model="lama"))
    assert NO_WEIGHTS_MESSAGE in str(refused.value)


def test_opencv_never_looks_for_weights(tiny_torchscript: Path) -> None:
    settings = _settings(model="opencv", lama_weights=str(tiny_torchscript))
    assert load_inpainter(settings).name == "opencv"


def test_order_setting_then_store_then_cache(tiny_torchscript: Path, tiny_checkpoint: Path) -> None:
    cache = _put_in_cache(tiny_torchscript)
    settings = _settings(lama_download_url="https://example.invalid/models/big-lama.pt")
    location = find_weights(settings)
    assert location is not None and (location.origin, location.path) == (
        WeightsOrigin.IOPAINT_CACHE,
        cache,
    )
    stored = import_weights(tiny_checkpoint, fmt=WeightsFormat.LIGHTNING_CHECKPOINT, config="tiny")
    location = find_weights(settings)
    assert location is not None and location.origin is WeightsOrigin.MODEL_STORE
    assert location.md5 == hashlib.md5(tiny_checkpoint.read_bytes()).hexdigest() == stored.md5
    explicit = find_weights(_settings(lama_weights=str(tiny_torchscript)))
    assert explicit is not None and explicit.origin is WeightsOrigin.SETTING


def test_weights_from_the_store_are_served_as_lama(tiny_checkpoint: Path) -> None:
    import_weights(tiny_checkpoint, fmt=WeightsFormat.LIGHTNING_CHECKPOINT, config="tiny")
    stored = latest_weights()
    assert stored is not None and stored.tag.startswith("lama:") and stored.path.is_file()
    inpainter = load_inpainter(_settings(model="lama", lama_config="big-lama"))
    # The store records the architecture it was imported with: tiny, whatever the setting.
    assert _lama_of(inpainter).name == "lama"


def test_a_store_copy_that_changed_since_import_is_refused(tiny_torchscript: Path) -> None:
    stored = import_weights(tiny_torchscript, fmt=WeightsFormat.TORCHSCRIPT, config="tiny")
    with stored.path.open("ab") as file:
        file.write(b"\0")
    with pytest.raises(ModelUnavailable, match="import the weights again"):
        load_inpainter(_settings(model="auto"))


def test_explicit_path_that_does_not_exist_is_an_error_even_under_auto(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no such file"):
        load_inpainter(_settings(model="auto", lama_weights=str(tmp_path / "nope.pt")))


def test_weights_that_do_not_load_are_an_error_even_under_auto(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        load_inpainter(_settings(lama_weights=str(tiny_checkpoint), lama_config="big-lama"))


def test_missing_weights_are_downloaded_into_iopaints_cache(
    tiny_torchscript: Path, torch_home: Path
) -> None:
    payload = tiny_torchscript.read_bytes()
    with serve_file(FileServer(payload)) as server:
        settings = _settings(
            model="lama",
            lama_download=True,
            lama_download_url=server.url,
            lama_download_md5=hashlib.md5(payload).hexdigest(),
        )
        location = find_weights(settings)
        assert location is not None and location.origin is WeightsOrigin.DOWNLOAD
        inpainter = load_inpainter(settings)
    assert _lama_of(inpainter).name == "lama"
    assert (torch_home / "hub" / "checkpoints" / "big-lama.pt").read_bytes() == payload
    assert find_weights(settings).origin is WeightsOrigin.IOPAINT_CACHE  # type: ignore[union-attr]


def test_a_failed_download_under_auto_falls_back_with_the_reason(
    tiny_torchscript: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with serve_file(FileServer(tiny_torchscript.read_bytes())) as server:
        settings = _settings(
            lama_download=True, lama_download_url=server.url, lama_download_md5="0" * 32
        )
        with caplog.at_level(logging.WARNING):
            inpainter = load_inpainter(settings)
        assert inpainter.name == "opencv"
        assert "md5" in caplog.records[-1].getMessage()
        with pytest.raises(ModelUnavailable, match="md5"):
            load_inpainter(settings.model_copy(update={"model": "lama"}))


def test_explicit_url_is_downloaded(tiny_torchscript: Path) -> None:
    with serve_file(FileServer(tiny_torchscript.read_bytes())) as server:
        inpainter = load_inpainter(_settings(model="lama", lama_weights=server.url))
    assert _lama_of(inpainter).name == "lama"


def test_an_explicit_url_that_fails_is_an_error_even_under_auto() -> None:
    refused = pytest.raises(ModelUnavailable, match="HTTP 404")
    with serve_file(FileServer(b"", faults=["404"])) as server, refused:
        load_inpainter(_settings(model="auto", lama_weights=server.url))
