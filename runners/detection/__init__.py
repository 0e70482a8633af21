"""Watermark detection, model side: the `Detector` seam and the models behind it.

- `detector.py`: the protocol and its records (`Region`, `Detection`); the HTTP side imports
  only this module, so it stays light there
- `combined.py`: `load_detector` and the detector the service runs, joining:
  `text.py` (text detector and recogniser from the `rapidocr` wheel, on onnxruntime),
  `segmenter.py` (our mark segmenter, `weights/`), `repeat.py` (tiled patterns, from the
  image's self-similarity), and `refine.py` (masks cut down to the mark's strokes)
- `model_files.py`: every model file found and checked (SHA-256) before it loads
"""
