"""The real model files: the packaged text models read text, checksums are enforced, the
committed segmenter loads, and the combining detector returns masks of the image's size."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest

from runners.detection import segmenter as segmenter_module
from runners.detection.combined import DetectorConfig, load_detector
from runners.detection.detector import Detector
from runners.detection.model_files import ModelFile, ModelFileError
from runners.detection.segmenter import SEGMENTER_FILE, MarkSegmenter
from runners.detection.text import TEXT_DETECTOR_FILE, TextDetector
from tests.runners.detection_images import gradient, with_text


@pytest.fixture(scope="module")
def text_detector() -> TextDetector:
    return TextDetector(threads=1)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return load_detector(DetectorConfig(threads=1))


@pytest.fixture(scope="module")
def text_only() -> Detector:
    return load_detector(DetectorConfig(threads=1, segmenter=False, repeat=False))


def test_packaged_text_models_read_rendered_text(text_detector: TextDetector) -> None:
    image, strokes = with_text(gradient(160, 480), "SAMPLE WATERMARK", xy=(30, 50), size=40)
    lines = text_detector.find(image)
    assert len(lines) >= 1
    best = max(lines, key=lambda line: line.confidence)
    assert "WATERMARK" in best.text.upper()
    assert best.confidence >= 0.8
    ys, xs = np.nonzero(strokes)
    left, top = best.corners.min(axis=0)
    right, bottom = best.corners.max(axis=0)
    assert left <= xs.min() + 4 and right >= xs.max() - 4
    assert top <= ys.min() + 4 and bottom >= ys.max() - 4


def test_nothing_read_on_a_plain_gradient(text_detector: TextDetector) -> None:
    assert text_detector.find(gradient(160, 480)) == []


def test_text_models_report_name_version_and_checksum() -> None:
    models = TextDetector.models()
    assert [m["name"] for m in models] == ["PP-OCRv6_det_small", "PP-OCRv6_rec_small"]
    for model in models:
        assert model["version"].startswith("rapidocr ")
        assert len(model["sha256"]) == 64


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    altered = tmp_path / "models" / "PP-OCRv6_det_small.onnx"
    altered.parent.mkdir()
    data = bytearray(TEXT_DETECTOR_FILE.path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    altered.write_bytes(bytes(data))
    wrong = dataclasses.replace(
        SEGMENTER_FILE, relative_path=str(altered), sha256=TEXT_DETECTOR_FILE.sha256
    )
    with pytest.raises(ModelFileError, match="SHA-256"):
        wrong.read_verified()


def test_segmenter_with_an_altered_file_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "mark_segmenter.onnx"
    copy.write_bytes(SEGMENTER_FILE.path().read_bytes() + b"\0")
    altered = dataclasses.replace(SEGMENTER_FILE, relative_path=str(copy))
    monkeypatch.setattr(segmenter_module, "SEGMENTER_FILE", altered)
    with pytest.raises(ModelFileError, match="refusing to load"):
        MarkSegmenter(model_file=altered)


def test_missing_package_is_a_clear_error() -> None:
    absent = ModelFile(name="x", package="no_such_package_here", relative_path="m.onnx", sha256="0")
    with pytest.raises(ModelFileError, match="not installed"):
        absent.read_verified()


def test_committed_segmenter_weights_load_and_match_their_checksum() -> None:
    path = SEGMENTER_FILE.path()
    assert path.stat().st_size < 5 * 1024 * 1024
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SEGMENTER_FILE.sha256
    segmenter = MarkSegmenter(threads=1)
    probability = segmenter.probability(gradient(120, 200))
    assert probability.shape == (230, 384)
    assert probability.dtype == np.float32
    assert probability.min() >= 0.0 and probability.max() <= 1.0


def test_text_regions_are_masked_to_their_strokes(text_only: Detector) -> None:
    image, strokes = with_text(gradient(200, 520), "Photo by Somebody", xy=(40, 70), size=40)
    detection = text_only.detect(image)
    assert detection.mask.shape == image.shape[:2]
    assert detection.mask.dtype == np.uint8
    assert set(np.unique(detection.mask)) <= {0, 255}
    texts = [r for r in detection.regions if r.kind == "text"]
    assert texts and texts[0].text and 0.8 <= texts[0].score <= 1.0
    masked = detection.mask > 0
    assert (masked & strokes).sum() / strokes.sum() > 0.95
    # Tight: far fewer pixels than the text's bounding box would take.
    ys, xs = np.nonzero(strokes)
    box_area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert masked.sum() < 0.8 * box_area
    assert 0 < detection.coverage < 0.2


def test_combined_detector_masks_rendered_text(detector: Detector) -> None:
    image, strokes = with_text(gradient(200, 520), "Photo by Somebody", xy=(40, 70), size=40)
    detection = detector.detect(image)
    assert detection.mask.shape == image.shape[:2]
    assert any(r.kind == "text" and r.text for r in detection.regions)
    assert ((detection.mask > 0) & strokes).sum() / strokes.sum() > 0.95


def test_detector_leaves_a_plain_gradient_alone(detector: Detector) -> None:
    (detection,) = detector.detect_batch([gradient(240, 320)])
    assert detection.regions == ()
    assert detection.coverage == 0.0


def test_batch_keeps_order_and_sizes(detector: Detector) -> None:
    images = [gradient(100, 150), with_text(gradient(180, 400), "HELLO", xy=(20, 60), size=48)[0]]
    detections = detector.detect_batch(images)
    assert [d.mask.shape for d in detections] == [(100, 150), (180, 400)]
    assert detections[0].coverage == 0 and detections[1].coverage > 0


def test_detector_reports_every_model(detector: Detector) -> None:
    names = [m["name"] for m in detector.models()]
    assert names == ["PP-OCRv6_det_small", "PP-OCRv6_rec_small", "mark-segmenter"]
    assert detector.device == "cpu"


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((50, 50), np.uint8),
        np.zeros((50, 50, 4), np.uint8),
        np.zeros((50, 50, 3), np.float32),
    ],
)
def test_bad_images_are_refused_clearly(detector: Detector, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"image|uint8"):
        detector.detect(image)


def test_an_image_too_small_to_hold_a_mark_has_nothing_in_it(detector: Detector) -> None:
    tiny, normal = np.full((4, 50, 3), 200, np.uint8), np.full((40, 50, 3), 200, np.uint8)
    found = detector.detect_batch([tiny, normal, tiny])
    assert [len(d.regions) for d in found] == [0, 0, 0]
    assert [d.mask.shape for d in found] == [(4, 50), (40, 50), (4, 50)]
    assert not any(d.mask.any() for d in found)


def test_a_lone_character_is_not_taken_for_a_watermark() -> None:
    image, _ = with_text(gradient(160, 240), "X", xy=(100, 40), size=60)
    assert TextDetector(threads=1).find(image) == []
    assert TextDetector(threads=1, min_characters=1).find(image) != []
