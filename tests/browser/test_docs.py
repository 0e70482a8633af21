"""`/docs` in a real browser: every route of the served contract is rendered, from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.server import RunningService

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

METHODS = ("get", "put", "post", "delete", "patch")


def test_docs_render_every_v1_route(page: Page, service: RunningService, screenshot: Path) -> None:
    contract: dict[str, Any] = httpx.get(f"{service.base_url}/api/v1/openapi.json").json()
    page.goto(f"{service.base_url}/docs")
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    expect(page.locator("h1")).to_contain_text(contract["info"]["title"])

    operations = [
        (method, path, operation)
        for path, item in contract["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert operations
    assert page.locator("section.operation").count() == len(operations)
    for method, path, operation in operations:
        section = page.locator(f'section.operation[data-method="{method}"][data-path="{path}"]')
        expect(section).to_be_visible()
        expect(section.locator("h3")).to_have_text(f"{method.upper()} {path}")
        if "summary" in operation:
            expect(section.locator(".summary")).to_have_text(operation["summary"])
        public = operation.get("security", contract.get("security", [])) == []
        expect(section.locator(".auth")).to_contain_text("Public" if public else "X-API-Key")
        for status in operation["responses"]:
            expect(section.locator(f'details.response[data-status="{status}"]')).to_have_count(1)
        link = page.locator(f'#toc a[href="#{section.get_attribute("id")}"]')
        expect(link).to_have_count(1)

    for name in contract["components"]["schemas"]:
        expect(page.locator(f"#schema-{name} h3")).to_contain_text(name)
    # Error responses start folded; opened, a $ref in their body links to its schema.
    remove = page.locator('section.operation[data-path="/api/v1/remove-watermark"]')
    bad_request = remove.locator('details.response[data-status="400"]')
    bad_request.locator("summary").click()
    expect(bad_request.locator('a[href="#schema-Error"]')).to_be_visible()
    expect(bad_request).to_contain_text("Invalid image format")
    expect(remove.locator(".curl pre")).to_contain_text('-F "image=@photo.jpg"')
    screenshot("01-reference")
