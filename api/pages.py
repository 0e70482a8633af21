"""The pages a person opens in a browser: the playground and the API reference.

- ``GET /``: redirects to the playground.
- ``GET /playground``: pick an image, detect or paint the mask, remove, compare, download.
- ``GET /docs``: the v1 reference, rendered in the browser from ``/api/v1/openapi.json``.
- ``GET /playground/{file}``, ``GET /docs/{file}``: the pages' scripts and styles.

Plain files under ``api/pages/``: no build step, no framework, nothing from another origin
(the Content-Security-Policy tells the browser so). Every page route is public: the
playground asks for the API key and sends it only with the API calls it makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from api.routing import PUBLIC, PolicyRoute
from errors import NotFound

Endpoint = Callable[[Request], Awaitable[Response]]

PAGES_DIR = Path(__file__).resolve().parent / "pages"

PAGE_ASSETS: dict[str, frozenset[str]] = {
    "playground": frozenset({"common.css", "playground.css", "playground.js"}),
    "docs": frozenset({"common.css", "docs.css", "docs.js"}),
}
"""Files each page may load, by page: anything else under its path is a 404."""

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}

# Same-origin only: images the page makes itself are blob: URLs; nothing else may load.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Fetched again on every load (the files are small), so a redeploy is seen at once.
    "Cache-Control": "no-cache",
}


def page_routes() -> list[PolicyRoute]:
    """The routes of the browser pages, to add to the HTTP app (all public)."""
    pages = [
        ("/", _home),
        ("/playground", _page("playground")),
        ("/playground/{file}", _asset("playground")),
        ("/docs", _page("docs")),
        ("/docs/{file}", _asset("docs")),
    ]
    return [PolicyRoute(path, endpoint, method="GET", policy=PUBLIC) for path, endpoint in pages]


async def _home(request: Request) -> Response:
    return RedirectResponse("playground", status_code=302)


def _page(name: str) -> Endpoint:
    async def serve_page(request: Request) -> Response:
        return _file_response(f"{name}.html")

    return serve_page


def _asset(page: str) -> Endpoint:
    allowed = PAGE_ASSETS[page]

    async def serve_asset(request: Request) -> Response:
        file = request.path_params["file"]
        if file not in allowed:
            raise NotFound(f"No file {request.url.path}")
        return _file_response(file)

    return serve_asset


def _file_response(file: str) -> Response:
    path = PAGES_DIR / file
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=PAGE_HEADERS)
