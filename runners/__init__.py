"""Everything model-side: the Inpainter seam, OpenCV and LaMa, the model runner service.

Nothing here imports the HTTP edge or the accounts layer: failures are plain exceptions."""

import os

# OpenMP threads that finish a parallel region spin, waiting for more work; in the runner
# they compete for the cores with BentoML's threads and the HTTP worker. Passive waiting is
# kept because idle threads should not burn a shared CPU (the measured gain is within noise:
# docs/testing.md, "Measured choices"). Read when torch loads OpenMP, so it is set here,
# before any module of this package imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
