"""Time from opening the playground to its first result, in headless Chromium.

    .venv/bin/python benchmarks/playground_first_result.py                   # OpenCV
    .venv/bin/python benchmarks/playground_first_result.py --model lama --weights big-lama.pt
    .venv/bin/python benchmarks/playground_first_result.py --url URL --key KEY

Each run opens the page in a fresh browser context (nothing cached), enters the key, picks
the image and loads its mask (as a visitor with both files at hand would, at machine
speed), presses Remove and waits for the result on screen. It prints, per run and as
medians, from navigation start: the page ready (load event), Remove pressed and the first
result on screen (the page's own `iopaint:remove-pressed` and `iopaint:first-result`
marks); then the request's round trip as the page measured it (upload, processing,
download) and the server's X-Processing-Time.

Defaults to the 1500x1004 reference sample `../shared/reference/samples/watermark.jpg` and
its `watermark_mask.png`. It starts its own service (own stores, own key) unless `--url`
and `--key` are given. Debian's chromium drives it (CHROMIUM_PATH to use another).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.conftest import CHROMIUM_ARGS, VIEWPORT, chromium_path
from tests.server import (
    PROJECT_ROOT,
    UNLIMITED,
    RunningService,
    create_key,
    service_env,
    start_service,
)

SAMPLES = PROJECT_ROOT.parent / "shared" / "reference" / "samples"
RESULT_TIMEOUT_MS = 600_000
FIELDS = (
    "page ready s",
    "remove pressed s",
    "mask encoded s",
    "answer s",
    "first result s",
    "round trip s",
    "server s",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=SAMPLES / "watermark.jpg")
    parser.add_argument("--mask", type=Path, default=SAMPLES / "watermark_mask.png")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="opencv", choices=["opencv", "lama"])
    parser.add_argument("--weights", default=None, help="IOPAINT_LAMA_WEIGHTS for --model lama")
    parser.add_argument("--url", default=None, help="use a running service instead")
    parser.add_argument("--key", default=None, help="API key for --url")
    args = parser.parse_args()
    for path in (args.image, args.mask):
        if not path.is_file():
            parser.error(f"{path} does not exist")
    executable = chromium_path()
    if executable is None:
        parser.error("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH")

    service: RunningService | None = None
    with tempfile.TemporaryDirectory(prefix="playground-timing-") as scratch:
        if args.url:
            if not args.key:
                parser.error("--url needs --key")
            base_url, key = args.url.rstrip("/"), args.key
        else:
            overrides = {"IOPAINT_MODEL": args.model}
            if args.weights:
                overrides["IOPAINT_LAMA_WEIGHTS"] = str(Path(args.weights).resolve())
            env = service_env(Path(scratch), **overrides)
            key = create_key(env, plan="enterprise", name="playground-timing", limits=UNLIMITED)
            service = start_service(Path(scratch), env)
            base_url = service.base_url
        try:
            rows = measure(base_url, key, args.image, args.mask, args.runs, executable)
        finally:
            if service is not None:
                service.stop()

    print(f"image {args.image.name}, mask {args.mask.name}, model {rows[0]['model']}")
    header = ("run", *FIELDS)
    print("  ".join(f"{name:>16}" for name in header))
    for index, row in enumerate(rows, start=1):
        print(f"{index:>16}  " + "  ".join(f"{row[name]:>16.3f}" for name in FIELDS))
    medians = {name: statistics.median(float(row[name]) for row in rows) for name in FIELDS}
    print(f"{'median':>16}  " + "  ".join(f"{medians[name]:>16.3f}" for name in FIELDS))


def measure(
    base_url: str, key: str, image: Path, mask: Path, runs: int, executable: str
) -> list[dict[str, float | str]]:
    rows: list[dict[str, float | str]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport=VIEWPORT)
                try:
                    rows.append(one_run(context.new_page(), base_url, key, image, mask))
                finally:
                    context.close()
        finally:
            browser.close()
    return rows


def one_run(page: Page, base_url: str, key: str, image: Path, mask: Path) -> dict[str, float | str]:
    page.goto(f"{base_url}/playground")
    page.wait_for_selector("html[data-ready='true']")
    page.fill("#api-key", key)
    page.set_input_files("#image-input", str(image))
    page.wait_for_selector("#canvas-wrap:not([hidden])")
    page.set_input_files("#mask-input", str(mask))
    page.wait_for_function("() => !document.getElementById('clear-mask').disabled")
    page.click("#remove")
    page.wait_for_selector("#download:not([hidden])", timeout=RESULT_TIMEOUT_MS)
    timings = page.evaluate(
        """() => {
            const at = (name) => performance.getEntriesByName(name).at(-1).startTime;
            return {
                ready: performance.getEntriesByType("navigation")[0].loadEventEnd,
                pressed: at("iopaint:remove-pressed"),
                encoded: at("iopaint:mask-encoded"),
                answered: at("iopaint:answer-received"),
                result: at("iopaint:first-result"),
            };
        }"""
    )
    answer = page.locator("#response")
    round_trip = answer.locator("[data-field='Round trip'] dd").inner_text().split()[0]
    server = answer.locator("[data-field='Processing time'] dd").inner_text().split()[0]
    return {
        "page ready s": timings["ready"] / 1000,
        "remove pressed s": timings["pressed"] / 1000,
        "mask encoded s": timings["encoded"] / 1000,
        "answer s": timings["answered"] / 1000,
        "first result s": timings["result"] / 1000,
        "round trip s": float(round_trip),
        "server s": float(server),
        "model": answer.locator("[data-field='Model'] dd").inner_text(),
    }


if __name__ == "__main__":
    main()
