"""A headless Chromium (Debian's `chromium`) driven by Playwright, against the real service.

Playwright only drives the browser: it never downloads one (`playwright install` is never
run). The browser is found at ``$CHROMIUM_PATH``, else `chromium` on PATH; without one
the browser tests skip and say so (`scripts/test` installs it with apt).

Each test's screenshots go to ``tests/artifacts/browser/`` (git-ignored), emptied at the
start of a session; the path is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from tests.server import PROJECT_ROOT, RunningService

ARTIFACTS_DIR = PROJECT_ROOT / "tests" / "artifacts" / "browser"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if Path(configured).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Per module, not per session: while Playwright's sync API is open, its event loop counts as
# running in this thread, and every later asyncio test of the session would fail to start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "no Chromium to drive: install Debian's `chromium` (scripts/test does, with apt) "
            "or point CHROMIUM_PATH at one"
        )
    with sync_playwright() as playwright:
        # launch() gives the browser a fresh temporary profile (user-data-dir) of its own.
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageWatch:
    """What a page did that a test must not let pass: foreign requests, script errors."""

    foreign_requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    policy_violations: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Browser, service: RunningService) -> Iterator[Page]:
    """A page in a fresh browser context that may only talk to the service under test."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, accept_downloads=True)
    watch = PageWatch()
    origin = service.base_url

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith((f"{origin}/", "blob:", "data:")) or url == origin:
            route.continue_()
        else:
            watch.foreign_requests.append(url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            watch.policy_violations.append(message.text)

    context.route("**/*", guard)
    opened = context.new_page()
    opened.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    opened.on("console", on_console)
    yield opened
    context.close()
    assert watch.foreign_requests == [], "the page fetched from another origin"
    assert watch.page_errors == [], "uncaught script errors on the page"
    assert watch.policy_violations == [], "the page broke its Content-Security-Policy"


_artifacts_prepared = False


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """``screenshot("02-painted")`` saves the page as a test artefact and returns its path."""
    global _artifacts_prepared
    if not _artifacts_prepared:
        shutil.rmtree(ARTIFACTS_DIR, ignore_errors=True)
        _artifacts_prepared = True
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    test_name = request.node.name.removeprefix("test_")

    def take(step: str) -> Path:
        path = ARTIFACTS_DIR / f"{test_name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _artifacts_prepared and ARTIFACTS_DIR.is_dir():
        shots = sorted(ARTIFACTS_DIR.glob("*.png"))
        terminalreporter.write_line(f"browser screenshots ({len(shots)}): {ARTIFACTS_DIR}")
