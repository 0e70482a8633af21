"""Everything model-side: the Inpainter seam, OpenCV and LaMa, the runner service."""

import os

# OpenMP threads that finish a parallel region spin, waiting for more work. In the runner
# they take the cores from BentoML's threads and the HTTP worker: a 512x512 LaMa forward
# took 4.2 s in the runner and 3.7 s with passive waiting
# (`benchmarks/service_latency.py --size 512 --model lama`). Read when torch loads OpenMP,
# so it is set here, before any module of this package imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
