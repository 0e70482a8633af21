"""Everything model-side: the Inpainter seam, OpenCV and LaMa, the runner service."""

import os

# OpenMP threads that finish a parallel region spin, waiting for more work; in the runner
# they compete for the cores with BentoML's threads and the HTTP worker. Two runs of
# `benchmarks/service_latency.py --size 512 --model lama` with passive waiting gave 3.7 s
# and 4.1 s median against 4.2 s without: a gain within this machine's noise, kept because
# idle threads should not burn a shared CPU. Read when torch loads OpenMP, so it is set
# here, before any module of this package imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
