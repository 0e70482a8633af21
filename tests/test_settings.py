"""Settings come from IOPAINT_* variables, and the README documents every one of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table_and_nothing_else_is() -> None:
    documented = set(re.findall(r"^\| `IOPAINT_([A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOPAINT_MAX_UPLOAD_MB", "3")
    monkeypatch.setenv("IOPAINT_MODEL", "opencv")
    monkeypatch.setenv("IOPAINT_REDIS_URL", "redis://user:secret@localhost:6379/0")
    settings = Settings()
    assert settings.max_upload_mb == 3
    assert settings.model == "opencv"
    assert "secret" not in repr(settings)  # secrets never print


def test_invalid_values_are_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IOPAINT_MODEL", "sdxl")
    with pytest.raises(ValidationError, match="model"):
        Settings()


def test_every_deadline_derives_from_the_request_timeout_innermost_first() -> None:
    deadlines = Settings(request_timeout_s=120).deadlines
    assert deadlines.batch_budget_ms == 120_000
    assert (
        deadlines.batch_budget_ms / 1000
        < deadlines.model_call_s
        < deadlines.runner_traffic_s
        < deadlines.http_traffic_s
    )


def test_the_embedded_store_does_not_depend_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IOPAINT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    first = Settings().data_dir
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert Settings().data_dir == first == tmp_path / "xdg" / "iopaint-api"


def test_profiles_may_be_estimated_from_as_many_images_as_an_estimate_needs() -> None:
    from runners.deblend.estimation import MIN_IMAGES

    assert Settings(watermark_estimate_max_images=MIN_IMAGES).watermark_estimate_max_images
    with pytest.raises(ValidationError):
        Settings(watermark_estimate_max_images=MIN_IMAGES - 1)
