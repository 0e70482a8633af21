"""The package version, and the User-Agent every request carries."""

from __future__ import annotations

import platform

__version__ = "0.1.0"
USER_AGENT = f"iopaint-sdk-python/{__version__} (Python {platform.python_version()})"
