"""Validators of the contract's schemas (`docs/openapi.yaml`), for tests that check bodies."""

from __future__ import annotations

from typing import Any

import jsonschema

from api.openapi import load_contract


def contract_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator of `components/schemas/NAME`, OpenAPI 3.0's `nullable` read as JSON
    Schema's `"null"` type (jsonschema alone ignores it)."""
    components = _with_null_types(load_contract()["components"])
    return jsonschema.Draft7Validator(
        {"$ref": f"#/components/schemas/{name}", "components": components}
    )


def _with_null_types(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _with_null_types(value) for key, value in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            else:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_with_null_types(item) for item in node]
    return node
