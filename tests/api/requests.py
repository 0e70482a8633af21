"""What the route-contract tests send and how they check an error answer."""

from __future__ import annotations

import httpx

ROUTE = "/api/v1/remove-watermark"


def assert_error(response: httpx.Response, status: int, detail: str | None = None) -> str:
    """The documented envelope with `status` (and `detail`, when given); returns the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail", "status_code"}, body
    assert body["status_code"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    return str(body["detail"])


def upload(image: bytes, mask: bytes | None = None) -> dict[str, tuple[str, bytes, str]]:
    files = {"image": ("image", image, "application/octet-stream")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return files
