"""The API contract the service serves: `docs/openapi.yaml`, read once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@lru_cache(maxsize=1)
def load_contract() -> dict[str, Any]:
    with CONTRACT_PATH.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)
