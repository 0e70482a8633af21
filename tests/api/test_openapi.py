"""The served contract is `docs/openapi.yaml`, and it describes exactly the routes that exist."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml
from starlette.routing import Route

from api.app import create_app
from api.model_client import InProcessModels
from api.openapi import CONTRACT_PATH, load_contract
from api.pages import page_routes
from runners.opencv_inpainter import OpenCVInpainter
from settings import Settings
from tests.api.contract_schemas import contract_validator
from tests.server import RunningService

REFERENCE = CONTRACT_PATH.parent.parent.parent / "shared" / "reference" / "openapi.yaml"


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    app = create_app(InProcessModels(OpenCVInpainter()), accounts=None, settings=Settings())  # type: ignore[arg-type]
    # The browser pages (playground, docs) are not part of the API contract.
    pages = {route.path for route in page_routes()}
    served = {
        (method.lower(), route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path not in pages
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = {
        (method, path)
        for path, operations in load_contract()["paths"].items()
        for method in operations
    }
    assert served == documented


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference contract not beside the repo")
def test_the_reference_contract_is_kept() -> None:
    """Everything the v1 reference promises is still promised: paths, fields, statuses."""
    reference = yaml.safe_load(REFERENCE.read_text())
    ours = load_contract()
    for path, operations in reference["paths"].items():
        for method, operation in operations.items():
            mine = ours["paths"][path][method]
            assert set(operation["responses"]) <= set(mine["responses"]), (path, method)
    for name in ("Error", "HealthResponse", "StatsResponse"):
        theirs: dict[str, Any] = reference["components"]["schemas"][name]
        assert set(theirs["required"]) == set(ours["components"]["schemas"][name]["required"])
        assert set(theirs["properties"]) <= set(ours["components"]["schemas"][name]["properties"])


@pytest.mark.e2e
def test_the_service_serves_the_contract_file(service: RunningService) -> None:
    served = httpx.get(f"{service.base_url}/api/v1/openapi.json").json()
    assert served == yaml.safe_load(CONTRACT_PATH.read_text())


@pytest.mark.e2e
def test_live_responses_match_the_documented_schemas(
    service: RunningService, client: httpx.Client
) -> None:
    contract_validator("HealthResponse").validate(
        httpx.get(f"{service.base_url}/api/v1/health").json()
    )
    contract_validator("StatsResponse").validate(client.get("/api/v1/stats").json())
    contract_validator("Error").validate(client.get("/api/v1/unknown").json())
    contract_validator("Error").validate(
        httpx.get(f"{service.base_url}/api/v1/stats").json()  # no key
    )
