"""Text marks: PaddleOCR's DB text detector, filtered by its CRNN recogniser's confidence.

Both networks are the ONNX files inside the `rapidocr` wheel, run here with onnxruntime and
our own pre- and post-processing (rapidocr's pipeline is not used: it adds a direction
classifier, per-box rotation logic and logging we do not need).

The detector alone boxes texture (flowers, fur, grass) as text; a box is kept only when the
recogniser reads it with a mean character confidence of at least `min_confidence`
(default 0.8), which is what separates real lettering from texture, and reads at least
`min_characters` letters or digits (default 2): a lone "1" or "X" is what texture most often
passes for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime

from runners.detection.model_files import ModelFile, ModelFileError, onnx_session

__all__ = ["TEXT_DETECTOR_FILE", "TEXT_RECOGNISER_FILE", "TextDetector", "TextLine"]

TEXT_DETECTOR_FILE = ModelFile(
    name="PP-OCRv6_det_small",
    package="rapidocr",
    relative_path="models/PP-OCRv6_det_small.onnx",
    sha256="090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
)
TEXT_RECOGNISER_FILE = ModelFile(
    name="PP-OCRv6_rec_small",
    package="rapidocr",
    relative_path="models/PP-OCRv6_rec_small.onnx",
    sha256="6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
)

RECOGNISER_HEIGHT = 48
RECOGNISER_BATCH = 8
MAX_LINE_RATIO = 40
"""Longest line the recogniser reads in one piece, as width / height."""


@dataclass(frozen=True)
class TextLine:
    """One line of text, in image pixels."""

    corners: np.ndarray
    """(4, 2) float32 corners of its rotated box, clockwise from the top-left."""
    detector_score: float
    text: str
    confidence: float
    """Mean probability of the recognised characters."""


class TextDetector:
    """DB detection at `long_side` pixels, CTC recognition of every box, confidence filter."""

    def __init__(
        self,
        *,
        threads: int = 1,
        device: str = "cpu",
        long_side: int = 960,
        min_confidence: float = 0.8,
        min_characters: int = 2,
        pixel_threshold: float = 0.3,
        box_threshold: float = 0.5,
        unclip_ratio: float = 1.6,
        max_lines: int = 200,
    ) -> None:
        self.long_side = long_side
        self.min_confidence = min_confidence
        self.min_characters = min_characters
        self.pixel_threshold = pixel_threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = unclip_ratio
        self.max_lines = max_lines
        self._detector = onnx_session(
            TEXT_DETECTOR_FILE.read_verified(), threads=threads, device=device
        )
        self._recogniser = onnx_session(
            TEXT_RECOGNISER_FILE.read_verified(), threads=threads, device=device
        )
        self._characters = _characters(self._recogniser)

    @staticmethod
    def models() -> list[dict[str, str]]:
        return [TEXT_DETECTOR_FILE.describe(), TEXT_RECOGNISER_FILE.describe()]

    def find(self, image: np.ndarray) -> list[TextLine]:
        """Lines read with at least `min_confidence` and `min_characters`. `image`: RGB uint8."""
        bgr = np.ascontiguousarray(image[..., ::-1])  # PaddleOCR's models were trained on BGR
        candidates = self.candidates(bgr)
        if not candidates:
            return []
        readings = self._recognise([_crop_line(bgr, corners) for corners, _ in candidates])
        lines = []
        for (corners, score), (text, confidence) in zip(candidates, readings, strict=True):
            letters = sum(character.isalnum() for character in text)
            if confidence >= self.min_confidence and letters >= self.min_characters:
                lines.append(TextLine(corners, score, text, confidence))
        return lines

    def candidates(self, bgr: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Rotated boxes of the DB detector and their mean text probability (no filter)."""
        height, width = bgr.shape[:2]
        scale = min(1.0, self.long_side / max(height, width))
        net_h = max(32, round(height * scale / 32) * 32)
        net_w = max(32, round(width * scale / 32) * 32)
        resized = cv2.resize(bgr, (net_w, net_h), interpolation=cv2.INTER_AREA)
        x = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        probability = self._detector.run(None, {"x": x})[0][0, 0]
        binary = (probability > self.pixel_threshold).astype(np.uint8)
        binary = cv2.dilate(binary, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        contours = sorted(contours, key=cv2.contourArea, reverse=True)[: self.max_lines]
        ratio_x, ratio_y = width / net_w, height / net_h
        boxes = []
        for contour in contours:
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            if min(w, h) < 3:
                continue
            score = _mean_inside(probability, contour)
            if score < self.box_threshold:
                continue
            # DB shrinks text regions in training; grow the box back by area * ratio / perimeter.
            distance = w * h * self.unclip_ratio / (2 * (w + h))
            corners = cv2.boxPoints(((cx, cy), (w + 2 * distance, h + 2 * distance), angle))
            corners[:, 0] = np.clip(corners[:, 0] * ratio_x, 0, width - 1)
            corners[:, 1] = np.clip(corners[:, 1] * ratio_y, 0, height - 1)
            boxes.append((_order_corners(corners), score))
        return boxes

    def _recognise(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence) per crop; crops of similar width share a batch."""
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
        for start in range(0, len(order), RECOGNISER_BATCH):
            chunk = order[start : start + RECOGNISER_BATCH]
            widths = [_recogniser_width(crops[i]) for i in chunk]
            batch = np.zeros((len(chunk), 3, RECOGNISER_HEIGHT, max(widths)), np.float32)
            for row, (index, width) in enumerate(zip(chunk, widths, strict=True)):
                resized = cv2.resize(crops[index], (width, RECOGNISER_HEIGHT))
                batch[row, :, :, :width] = (resized.astype(np.float32) / 127.5 - 1).transpose(
                    2, 0, 1
                )
            probabilities = self._recogniser.run(None, {"x": batch})[0]
            for row, index in enumerate(chunk):
                # Padding columns read as blanks; only the crop's own columns count.
                steps = max(1, math.ceil(widths[row] / 8))
                results[index] = self._decode(probabilities[row, :steps])
        return results

    def _decode(self, probabilities: np.ndarray) -> tuple[str, float]:
        """Greedy CTC: best class per step, repeats merged, blanks (class 0) dropped."""
        best = probabilities.argmax(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        if not keep.any():
            return "", 0.0
        text = "".join(self._characters[i] for i in best[keep])
        confidence = float(probabilities[keep, best[keep]].mean())
        return text, confidence


def _characters(session: onnxruntime.InferenceSession) -> list[str]:
    """The recogniser's alphabet, stored in the ONNX file: blank, the dictionary, a space."""
    dictionary = session.get_modelmeta().custom_metadata_map.get("character")
    if not dictionary:
        raise ModelFileError("the text recogniser's ONNX file carries no character dictionary")
    characters = ["", *dictionary.splitlines(), " "]
    classes = session.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != len(characters):
        raise ModelFileError(
            f"the text recogniser has {classes} classes but its dictionary {len(characters)}"
        )
    return characters


def _mean_inside(probability: np.ndarray, contour: np.ndarray) -> float:
    x, y, w, h = cv2.boundingRect(contour)
    window = probability[y : y + h, x : x + w]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(window, mask)[0])


def _order_corners(corners: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left."""
    by_x = corners[np.argsort(corners[:, 0])]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left], np.float32)


def _crop_line(bgr: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The box straightened to a horizontal strip; tall strips are turned to read sideways."""
    width = max(
        1,
        round(
            max(np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[2] - corners[3]))
        ),
    )
    height = max(
        1,
        round(
            max(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[1] - corners[2]))
        ),
    )
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    transform = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    strip = cv2.warpPerspective(
        bgr,
        transform,
        (width, height),
        borderMode=cv2.BORDER_REPLICATE,
        flags=cv2.INTER_CUBIC,
    )
    if height >= 1.5 * width:
        strip = np.rot90(strip)
    return np.ascontiguousarray(strip)


def _recogniser_width(crop: np.ndarray) -> int:
    ratio = min(crop.shape[1] / max(crop.shape[0], 1), MAX_LINE_RATIO)
    return max(8, math.ceil(RECOGNISER_HEIGHT * ratio))
