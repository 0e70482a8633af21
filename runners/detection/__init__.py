"""Watermark detection, model side: the `Detector` seam and the models behind it.

`load_detector` builds the detector the service runs (`combined.CombinedDetector`): the text
detector and recogniser from the `rapidocr` wheel, our mark segmenter, and the repeat detector,
all on onnxruntime/NumPy in the model process.
"""

from runners.detection.combined import CombinedDetector, DetectorConfig, load_detector
from runners.detection.detector import Detection, Detector, Region, RegionKind
from runners.detection.model_files import ModelFileError

__all__ = [
    "CombinedDetector",
    "Detection",
    "Detector",
    "DetectorConfig",
    "ModelFileError",
    "Region",
    "RegionKind",
    "load_detector",
]
