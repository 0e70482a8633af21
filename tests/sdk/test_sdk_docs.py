"""Every code sample of the SDK READMEs, and the API document's SDK examples, run as written
against the real service.

The API document's Python example runs with its one import line changed (``iopaint`` is the
upstream application's package; see clients/python/README.md) and its placeholder key
``"your_api_key"`` replaced by a real one; its JavaScript example runs unchanged, inside an
async function (the document uses ``await`` at the top level of a CommonJS script, which
Node only allows inside one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.images import decode
from tests.sdk.conftest import (
    HEIGHT,
    WIDTH,
)
from tests.sdk.docs import (
    Sample,
    reference_document,
    run_node,
    run_python,
    samples,
    sdk_env,
    section,
)
from tests.server import PROJECT_ROOT, RunningService

pytestmark = pytest.mark.e2e

PYTHON_README = PROJECT_ROOT / "clients" / "python" / "README.md"
JS_README = PROJECT_ROOT / "clients" / "js" / "README.md"
DOC_IMPORT = "from iopaint import IOPaintClient"
SDK_IMPORT = "from iopaint_sdk import IOPaintClient"
DOC_KEY_PLACEHOLDER = '"your_api_key"'


def assert_png(path: Path) -> None:
    assert path.exists(), f"{path.name} was not written"
    picture = decode(path.read_bytes())
    assert picture.format == "PNG" and picture.size == (WIDTH, HEIGHT)


# --- the Python README -------------------------------------------------------------------

PYTHON_SAMPLES = samples(PYTHON_README.read_text(), "python")


def test_the_python_readme_has_samples() -> None:
    assert len(PYTHON_SAMPLES) >= 6


@pytest.mark.parametrize("sample", PYTHON_SAMPLES, ids=lambda s: f"line{s.line}")
def test_python_readme_sample(
    sample: Sample, service: RunningService, api_key: str, samples: Path
) -> None:
    run_python(sample.code, samples, sdk_env(service, api_key))


# --- the API document's Python example ---------------------------------------------------


def document_sdk_example(language_heading: str, language: str) -> str:
    document = reference_document()
    if document is None:
        pytest.skip("the reference API document is not beside this checkout")
    sdks = section(document.read_text(), "## SDKs & Libraries")
    (example,) = [s for s in samples(section(sdks, language_heading), language)]
    return example.code


def python_document_example(api_key: str) -> str:
    code = document_sdk_example("#### Python", "python")
    assert code.count(DOC_IMPORT) == 1 and code.count(DOC_KEY_PLACEHOLDER) == 1
    return code.replace(DOC_IMPORT, SDK_IMPORT).replace(DOC_KEY_PLACEHOLDER, repr(api_key))


def test_document_python_example_runs(service: RunningService, api_key: str, samples: Path) -> None:
    code = python_document_example(api_key)
    run_python(code, samples, sdk_env(service, api_key))
    assert_png(samples / "result.png")
    assert_png(samples / "results" / "img1.png")
    assert_png(samples / "results" / "img2.png")


def test_document_python_example_with_mask_writes_result_png(
    service: RunningService, api_key: str, samples: Path
) -> None:
    """The example's set-up and its "With options" call (the one naming a mask), as written."""
    code = python_document_example(api_key)
    setup = code[: code.index("# Simple usage")]
    options = code[code.index("# With options") :]
    options = options[: options.index("\n\n")]
    assert 'mask="mask.png"' in options and 'output="result.png"' in options
    run_python(setup + options, samples, sdk_env(service, api_key))
    assert_png(samples / "result.png")


# --- the JavaScript README and the document's JavaScript example ------------------------


def js_samples() -> list[Sample]:
    if not JS_README.exists():
        return []
    return samples(JS_README.read_text(), "javascript")


def test_the_js_readme_has_samples() -> None:
    assert len(js_samples()) >= 4


@pytest.mark.parametrize("sample", js_samples(), ids=lambda s: f"line{s.line}")
def test_js_readme_sample(
    sample: Sample, service: RunningService, api_key: str, samples: Path
) -> None:
    module = "import " in sample.code and "require(" not in sample.code
    run_node(sample.code, samples, sdk_env(service, api_key), module=module)


def wrapped(code: str) -> str:
    return (
        "(async () => {\n"
        + code
        + "\n})().catch((error) => { console.error(error); process.exit(1); });\n"
    )


def test_document_js_example_runs_unchanged(
    service: RunningService, api_key: str, samples: Path
) -> None:
    code = document_sdk_example("#### JavaScript/TypeScript", "javascript")
    run_node(wrapped(code), samples, sdk_env(service, api_key))
    assert_png(samples / "result.png")


def test_document_js_example_with_mask_writes_result_png(
    service: RunningService, api_key: str, samples: Path
) -> None:
    code = document_sdk_example("#### JavaScript/TypeScript", "javascript")
    setup = code[: code.index("// Simple usage")]
    with_mask = code[code.index("// With mask") :]
    assert "mask: 'mask.png'" in with_mask
    run_node(wrapped(setup + with_mask), samples, sdk_env(service, api_key))
    assert_png(samples / "result.png")
