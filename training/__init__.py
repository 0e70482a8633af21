"""Offline tooling for the watermark detector: photo sources, the synthetic watermark generator,
the segmentation network's definition and its training script.

Nothing under `runners/` imports this package: the service runs only the exported ONNX file.
Benchmarks and tests import it.
"""
