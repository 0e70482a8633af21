"""The browser pages' routes: what they serve, with which headers, and what they refuse."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from api.app import create_app
from api.model_client import InProcessModels
from api.pages import PAGE_ASSETS, PAGES_DIR
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings
from tests.server import RunningService


class Pages:
    """GET requests to the HTTP app in-process (Starlette 1.x's TestClient wants httpx2)."""

    def __init__(self) -> None:
        runner = InProcessModels(OpenCVInpainter())
        self.app = create_app(runner, accounts=None, settings=Settings())  # type: ignore[arg-type]

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://pages") as client:
                return await client.get(path)

        return asyncio.run(fetch())


@pytest.fixture
def pages() -> Pages:
    return Pages()


def test_home_redirects_to_the_playground(pages: Pages) -> None:
    response = pages.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == "playground"


@pytest.mark.parametrize("page", ["playground", "docs"])
def test_pages_are_html_with_a_same_origin_policy(pages: Pages, page: str) -> None:
    response = pages.get(f"/{page}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in policy, "no other origin may be allowed"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("page", ["playground", "docs"])
def test_everything_a_page_loads_is_served_from_its_own_path(pages: Pages, page: str) -> None:
    html = (PAGES_DIR / f"{page}.html").read_text()
    loaded = re.findall(r'(?:src|href)="([^"#:]+\.(?:js|css))"', html)
    assert loaded, "the page loads its script and styles"
    for path in loaded:
        assert path.startswith(f"{page}/"), path
        response = pages.get(f"/{path}")
        assert response.status_code == 200, path
        expected = "text/javascript" if path.endswith(".js") else "text/css"
        assert response.headers["content-type"].startswith(expected)
    assert {path.removeprefix(f"{page}/") for path in loaded} == PAGE_ASSETS[page]


def test_no_page_reaches_for_another_origin() -> None:
    for file in PAGES_DIR.iterdir():
        text = file.read_text()
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", text), file.name
        assert not re.search(r"""(?:fetch|open)\(\s*["'`](?:https?:)?//""", text), file.name


@pytest.mark.parametrize(
    "path", ["/playground/pages.py", "/playground/..%2Fpages.py", "/docs/playground.js", "/docs/x"]
)
def test_only_listed_files_are_served(pages: Pages, path: str) -> None:
    response = pages.get(path)
    assert response.status_code == 404
    assert response.json()["status_code"] == 404


@pytest.mark.e2e
def test_the_service_serves_its_own_pages_not_bentomls(service: RunningService) -> None:
    home = httpx.get(f"{service.base_url}/", follow_redirects=True)
    assert home.status_code == 200
    assert str(home.url) == f"{service.base_url}/playground"
    assert "swagger" not in home.text.lower()
    docs = httpx.get(f"{service.base_url}/docs")
    assert docs.status_code == 200 and "docs/docs.js" in docs.text
    # Public: no key asked, none needed.
    assert httpx.get(f"{service.base_url}/playground/playground.js").status_code == 200
