"""The playground in a real browser, against a real `bentoml serve` (OpenCV inpainter).

A visitor's path: open the service, enter a key, pick an image, paint over the mark,
remove, compare, zoom, download; a watermark profile uploaded in the form and used on
remove; and the errors they would meet (bad key, GIF).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.api.watermark_images import clean_photo, mark_rgba, stamped
from tests.images import decode, encode, photo, text_on_photo
from tests.server import PROJECT_ROOT, RunningService

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

Screenshot = Callable[[str], Path]
Point = tuple[float, float]

SAMPLES = PROJECT_ROOT.parent / "shared" / "reference" / "samples"
RESULT_TIMEOUT_MS = 60_000
TIMES = "\N{MULTIPLICATION SIGN}"  # as the page writes sizes

# A wide image, so the page shows it scaled down and "zoom to 100 %" means something.
WIDTH, HEIGHT = 1600, 900
BAR = (300, 440, 1300, 460)  # left, top, right, bottom: the "watermark", a white bar
BRUSH = 40
STROKE = ((BAR[0], 450.0), (BAR[2], 450.0))


def marked_photo(width: int, height: int, bar: tuple[int, int, int, int]) -> np.ndarray:
    pixels = photo(width, height, seed=3)
    left, top, right, bottom = bar
    pixels[top:bottom, left:right] = 255
    return pixels


def open_playground(page: Page, service: RunningService, key: str) -> None:
    page.goto(f"{service.base_url}/")
    expect(page).to_have_url(f"{service.base_url}/playground")
    expect(page.locator("html")).to_have_attribute("data-ready", "true")
    page.fill("#api-key", key)


def load_image(page: Page, path: Path, width: int, height: int) -> None:
    page.set_input_files("#image-input", str(path))
    expect(page.locator("#image-info")).to_contain_text(f"{width} {TIMES} {height} px")
    expect(page.locator("#canvas-wrap")).to_be_visible()


def to_page(page: Page, size: tuple[int, int], point: Point) -> Point:
    """Where an image pixel is on the page, as the pointer sees it."""
    box = page.locator("#canvas-wrap").bounding_box()
    assert box is not None
    return (
        box["x"] + point[0] * box["width"] / size[0],
        box["y"] + point[1] * box["height"] / size[1],
    )


def set_range(page: Page, selector: str, value: int) -> None:
    page.locator(selector).fill(str(value))


def paint(page: Page, size: tuple[int, int], start: Point, end: Point) -> None:
    page.mouse.move(*to_page(page, size, start))
    page.mouse.down()
    page.mouse.move(*to_page(page, size, end), steps=25)
    page.mouse.up()


def mask_alpha(page: Page, point: Point) -> int:
    """Opacity of the painted-mask layer at an image pixel (0 where nothing is painted)."""
    return int(
        page.evaluate(
            """([x, y]) => document.getElementById("mask-view").getContext("2d")
                 .getImageData(x, y, 1, 1).data[3]""",
            [int(point[0]), int(point[1])],
        )
    )


def distance_to_segment(width: int, height: int, start: Point, end: Point) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))


def test_paint_remove_compare_zoom_download(
    page: Page, service: RunningService, api_key: str, screenshot: Screenshot, tmp_path: Path
) -> None:
    source = tmp_path / "marked.jpg"
    source.write_bytes(encode(marked_photo(WIDTH, HEIGHT, BAR), "JPEG", quality=92))
    # What the service decodes: the page must send the file itself, not a re-encoded copy.
    original = np.asarray(decode(source.read_bytes()).convert("RGB"))
    size = (WIDTH, HEIGHT)

    open_playground(page, service, api_key)
    screenshot("01-opened")
    load_image(page, source, WIDTH, HEIGHT)
    box = page.locator("#canvas-wrap").bounding_box()
    assert box is not None and box["width"] < WIDTH, "a wide image is shown scaled to fit"
    screenshot("02-loaded")

    set_range(page, "#brush-size", BRUSH)
    expect(page.locator("#brush-size-value")).to_have_text(str(BRUSH))
    paint(page, size, *STROKE)
    assert mask_alpha(page, (800, 450)) > 0

    # Brush, eraser and undo on a second stroke, away from the bar.
    page.click("#tool-brush")
    paint(page, size, (300, 750), (700, 750))
    assert mask_alpha(page, (400, 750)) > 0 and mask_alpha(page, (650, 750)) > 0
    page.click("#tool-eraser")
    expect(page.locator("#tool-eraser")).to_have_attribute("aria-pressed", "true")
    paint(page, size, (600, 700), (600, 800))
    assert mask_alpha(page, (600, 750)) == 0 and mask_alpha(page, (400, 750)) > 0
    page.click("#undo")
    assert mask_alpha(page, (600, 750)) > 0
    page.click("#undo")
    assert mask_alpha(page, (400, 750)) == 0 and mask_alpha(page, (800, 450)) > 0
    page.click("#tool-brush")
    screenshot("03-painted")

    page.click("#remove")
    expect(page.locator("#download")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#view-compare")).to_have_attribute("aria-pressed", "true")
    answer = page.locator("#response")
    expect(answer).to_contain_text("opencv")
    expect(answer).to_contain_text(f"{WIDTH} {TIMES} {HEIGHT} px")
    expect(answer).to_contain_text("requests left")
    expect(answer.locator("[data-field='Processing time'] dd")).to_contain_text(" s (server)")
    screenshot("04-result-compare")

    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == "marked-clean.png"
    result = Image.open(io.BytesIO(Path(download.path()).read_bytes()))
    assert result.format == "PNG" and result.size == size
    pixels = np.asarray(result.convert("RGB"))

    distance = distance_to_segment(WIDTH, HEIGHT, *STROKE)
    outside = distance > BRUSH / 2 + 6  # past the brush edge and its antialiasing
    assert np.array_equal(pixels[outside], original[outside]), "pixels outside the mask changed"
    left, top, right, bottom = BAR
    inside_bar = (slice(top + 2, bottom - 2), slice(left + 25, right - 25))
    change = np.abs(pixels[inside_bar].astype(int) - original[inside_bar].astype(int)).mean()
    assert change > 40, f"the painted bar is still there (mean change {change:.1f})"

    # Before/after: dragging across the image moves the split; the slider follows.
    page.mouse.move(*to_page(page, size, (WIDTH / 2, HEIGHT / 2)))
    page.mouse.down()
    page.mouse.move(*to_page(page, size, (WIDTH / 4, HEIGHT / 2)), steps=5)
    page.mouse.up()
    split = int(page.locator("#compare-position").input_value())
    assert 23 <= split <= 27, split
    expect(page.locator("#result")).to_have_css("clip-path", f"inset(0px 0px 0px {split}%)")
    page.locator("#compare-position").focus()
    page.keyboard.press("ArrowRight")
    assert int(page.locator("#compare-position").input_value()) == split + 1
    screenshot("05-compare-dragged")

    page.click("#zoom")
    expect(page.locator("#zoom")).to_have_attribute("aria-pressed", "true")
    box = page.locator("#canvas-wrap").bounding_box()
    assert box is not None and round(box["width"]) == WIDTH and round(box["height"]) == HEIGHT
    scrolls = page.evaluate(
        "() => { const v = document.getElementById('viewport');"
        " return v.scrollWidth > v.clientWidth; }"
    )
    assert scrolls, "at 100 % the image is larger than the stage and scrolls"
    screenshot("06-zoom-100")
    page.click("#zoom")
    box = page.locator("#canvas-wrap").bounding_box()
    assert box is not None and box["width"] < WIDTH


def test_invalid_key_is_explained(
    page: Page, service: RunningService, screenshot: Screenshot, tmp_path: Path
) -> None:
    source = tmp_path / "small.jpg"
    source.write_bytes(encode(photo(320, 240, seed=4), "JPEG"))
    open_playground(page, service, "")
    load_image(page, source, 320, 240)
    paint(page, (320, 240), (60, 120), (260, 120))

    page.click("#remove")
    expect(page.locator("#error")).to_contain_text("Enter an API key first")
    expect(page.locator("#api-key")).to_be_focused()

    page.fill("#api-key", "sk_live_not_a_real_key")
    page.click("#remove")
    error = page.locator("#error")
    expect(error).to_contain_text("The API key was not accepted")
    expect(error).to_contain_text("(HTTP 401)")
    expect(error).to_contain_text("Server said: Invalid API Key")
    expect(page.locator("#response")).to_contain_text("401")
    expect(page.locator("#download")).to_be_hidden()
    screenshot("01-401")


def test_gif_gets_the_format_message(
    page: Page, service: RunningService, api_key: str, screenshot: Screenshot, tmp_path: Path
) -> None:
    source = tmp_path / "animated-not.gif"
    source.write_bytes(encode(Image.fromarray(photo(320, 240, seed=5)).convert("P"), "GIF"))
    open_playground(page, service, api_key)
    load_image(page, source, 320, 240)
    paint(page, (320, 240), (60, 120), (260, 120))
    page.click("#remove")
    error = page.locator("#error")
    expect(error).to_contain_text("The service could not use this request. (HTTP 400)")
    expect(error).to_contain_text("GIF is not supported (use JPEG, PNG or WebP)")
    screenshot("01-gif")


def test_progress_is_shown_while_a_large_upload_is_sent(
    page: Page, service: RunningService, api_key: str, screenshot: Screenshot, tmp_path: Path
) -> None:
    source = tmp_path / "large.png"
    source.write_bytes(encode(marked_photo(WIDTH, HEIGHT, BAR), "PNG"))
    open_playground(page, service, api_key)
    load_image(page, source, WIDTH, HEIGHT)
    paint(page, (WIDTH, HEIGHT), *STROKE)

    # A slow uplink, so the upload lasts long enough to be watched.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": source.stat().st_size / 3,
        },
    )
    page.click("#remove")
    expect(page.locator("#progress-box")).to_be_visible()
    expect(page.locator("#cancel")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("Removing: uploading", timeout=5_000)
    expect(page.locator("#status")).to_contain_text("%")
    # The page stays usable meanwhile: the brush still answers its keys.
    page.keyboard.press("]")
    expect(page.locator("#brush-size-value")).to_have_text("50")
    screenshot("01-uploading")
    expect(page.locator("#download")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#progress-box")).to_be_hidden()


def test_detect_draws_regions_and_fills_the_mask(
    page: Page, service: RunningService, api_key: str, screenshot: Screenshot, tmp_path: Path
) -> None:
    sample = SAMPLES / "watermark.jpg"
    if not sample.exists():
        sample = tmp_path / "text.png"
        sample.write_bytes(encode(text_on_photo(640, 360, "SAMPLE WATERMARK"), "PNG"))
    with Image.open(sample) as picture:
        width, height = picture.size
    open_playground(page, service, api_key)
    load_image(page, sample, width, height)
    page.click("#detect")
    expect(page.locator("#status")).to_contain_text("Detected", timeout=RESULT_TIMEOUT_MS)
    regions = page.locator("#regions g")
    assert regions.count() > 0
    expect(page.locator("#regions-list li")).to_have_count(regions.count())
    expect(page.locator("#clear-mask")).to_be_enabled()
    answer = page.locator("#response")
    for field in ("Detected regions", "Coverage", "Processing time"):
        expect(answer.locator(f"[data-field='{field}']")).to_have_count(1)
    painted = page.evaluate(
        """() => { const c = document.getElementById("mask-view");
             const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
             let n = 0; for (let i = 3; i < data.length; i += 4) if (data[i]) n++; return n; }"""
    )
    assert painted > 0, "the detected mask was not loaded into the brush layer"
    screenshot("01-detected")
    page.click("#remove")
    expect(page.locator("#download")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#response")).to_contain_text("uploaded")
    screenshot("02-removed")


def test_a_profile_uploaded_in_the_form_is_inverted_on_remove(
    page: Page, service: RunningService, api_key: str, screenshot: Screenshot, tmp_path: Path
) -> None:
    rgba = mark_rgba(opacity=0.4)
    clean = clean_photo(seed=5)
    logo, marked = tmp_path / "logo.png", tmp_path / "marked.png"
    logo.write_bytes(encode(rgba, "PNG"))
    marked.write_bytes(encode(stamped(clean, rgba), "PNG"))
    height, width = clean.shape[:2]
    open_playground(page, service, api_key)
    load_image(page, marked, width, height)
    page.set_input_files("#profile-input", str(logo))
    expect(page.locator("#status")).to_contain_text("Mark kept as logo.png", timeout=20_000)
    chosen = page.locator("#watermark-profile").input_value()
    assert chosen.startswith("wm_")
    expect(page.locator("#watermark-profile option:checked")).to_contain_text("logo.png")
    screenshot("01-profile-chosen")
    page.click("#remove")
    expect(page.locator("#download")).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    answer = page.locator("#response")
    expect(answer.locator("[data-field='Mask source'] dd")).to_have_text("profile")
    expect(answer.locator("[data-field='Removal'] dd")).to_have_text(re.compile("deblend|mixed"))
    screenshot("02-profile-removed")
    # The profile survives a reload of the list, and None sends none.
    page.click("#refresh-profiles")
    expect(page.locator("#profile-note")).to_contain_text("kept for this key")
    assert page.locator("#watermark-profile").input_value() == chosen
