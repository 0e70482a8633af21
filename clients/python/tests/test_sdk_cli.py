"""The `iopaint` command line against the scripted API (end-to-end runs are in tests/sdk/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_api import (
    BASE_URL,
    FAST_RETRY,
    KEY,
    FakeApi,
    error,
    image_response,
    json_response,
    multipart_parts,
    png_bytes,
)
from test_sdk_client import DETECTION

from iopaint_sdk import IOPaintClient, cli


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setenv("IOPAINT_API_KEY", KEY)

    def client_on_fake(**options: Any) -> IOPaintClient:
        options.pop("timeout", None)
        options.pop("base_url", None)
        return IOPaintClient(
            base_url=BASE_URL,
            retry=FAST_RETRY,
            http_client=httpx.Client(transport=httpx.MockTransport(fake)),
            **options,
        )

    monkeypatch.setattr(cli, "IOPaintClient", client_on_fake)
    return fake


def test_remove_one_image(api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image, mask = tmp_path / "photo.jpg", tmp_path / "mask.png"
    image.write_bytes(png_bytes())
    mask.write_bytes(png_bytes())
    api.replies = [image_response()]
    assert cli.main(["remove", str(image), "-m", str(mask), "-o", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in multipart_parts(api.requests[0])] == ["image", "mask"]
    assert "out.png" in capsys.readouterr().out


def test_remove_default_output_never_overwrites_the_input(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes())
    api.replies = [image_response()]
    assert cli.main(["remove", str(image)]) == 0
    assert (tmp_path / "photo-clean.png").exists()
    assert cli.main(["remove", str(image), "-o", str(image)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err


def test_batch_summary_and_exit_status(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["a.png", "bad.png", "c.png"]
    for name in names:
        (tmp_path / name).write_bytes(png_bytes())

    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/stats"):
            return json_response({})
        if multipart_parts(request)[0].filename == "bad.png":
            return error(400, "Invalid image format: cannot identify image file")
        return image_response()

    api.default = reply
    out = tmp_path / "cleaned"
    status = cli.main(["remove", *(str(tmp_path / n) for n in names), "-o", f"{out}/"])
    captured = capsys.readouterr()
    assert status == 1  # one image failed
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    lines = captured.out.splitlines()
    assert lines[0].split() == ["image", "result", "output", "or", "error"]
    assert any("bad.png" in line and "FAILED" in line and "Invalid image" in line for line in lines)
    assert sum(" ok " in line for line in lines[1:4]) == 2
    assert lines[-1].startswith("3 images: 2 ok, 1 failed in")
    assert "Traceback" not in captured.err


def test_errors_are_one_line(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.default = lambda request: error(401, "Invalid API Key")
    assert cli.main(["stats"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("iopaint: error: 401 Unauthorized")
    assert KEY not in err
    assert cli.main(["remove", str(tmp_path / "nope.jpg")]) == 1
    err = capsys.readouterr().err
    assert err == f"iopaint: error: no such file: {tmp_path / 'nope.jpg'}\n"


def test_usage_errors_exit_2(api: FakeApi) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["remove"])
    assert caught.value.code == 2


def test_health_stats_and_detect(
    api: FakeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes())
    api.replies = [
        json_response(
            {"status": "healthy", "model": "opencv", "device": "cpu", "gpu_available": False}
        ),
        json_response(
            {
                "status": "unhealthy",
                "model": "lama",
                "device": "cpu",
                "gpu_available": False,
                "detail": "loading",
            },
            status=503,
        ),
        json_response(
            {
                "total": 3,
                "success": 2,
                "failed": 1,
                "total_processing_time": 2.5,
                "avg_processing_time": 1.25,
                "plan": "free",
                "quota": {"used": 3, "limit": 10, "period": "day", "resets_at": 1764028800},
                "rate_limited": 0,
            },
            X_RateLimit_Limit="5",
            X_RateLimit_Remaining="2",
        ),
        json_response(DETECTION),
        httpx.Response(200, content=png_bytes(), headers={"Content-Type": "image/png"}),
    ]
    assert cli.main(["health"]) == 0
    assert capsys.readouterr().out.startswith("healthy: model opencv on cpu")
    assert cli.main(["health"]) == 1
    assert "unhealthy" in capsys.readouterr().out
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "plan:            free" in out and "3 of 10 this day" in out and "2 of 5" in out
    assert cli.main(["detect", str(image)]) == 0
    assert "1 regions, 4.2% of the 64x48 image" in capsys.readouterr().out
    assert cli.main(["detect", str(image), "-o", str(tmp_path / "mask.png")]) == 0
    assert (tmp_path / "mask.png").exists()
    assert api.requests[-1].headers["accept"] == "image/png"
