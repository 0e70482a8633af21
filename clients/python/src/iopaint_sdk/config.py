"""Where the client's settings come from: arguments first, then environment variables.

- ``IOPAINT_API_KEY``: the API key (``X-API-Key``);
- ``IOPAINT_BASE_URL``: the service, default ``http://localhost:8080``.

The key is kept out of every ``repr``, log line and exception: `describe_key` is the only
form of it this package ever prints.
"""

from __future__ import annotations

import os

import httpx

API_KEY_ENV = "IOPAINT_API_KEY"
BASE_URL_ENV = "IOPAINT_BASE_URL"
DEFAULT_BASE_URL = "http://localhost:8080"
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
DEFAULT_CONCURRENCY = 4
MISSING_KEY_HINT = f"no API key configured: pass api_key= or set {API_KEY_ENV}"


def resolve_api_key(api_key: str | None) -> str | None:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    key = (key or "").strip()
    return key or None


def resolve_base_url(base_url: str | None) -> str:
    url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, not {url!r}")
    return url.rstrip("/")


def describe_key(api_key: str | None) -> str:
    """A printable stand-in for the key: its kind (``sk_live_``/``sk_test_``), never its secret."""
    if not api_key:
        return "None"
    for prefix in ("sk_live_", "sk_test_"):
        if api_key.startswith(prefix):
            return f"'{prefix}***'"
    return "'***'"
