"""Test-session setup: one BLAS thread per process.

The suite runs one worker per core (pytest-xdist, ``-n auto`` in pyproject.toml); BLAS
threads on top of that compete for the same cores, and OpenBLAS's threaded small
products slow down by orders of magnitude under that contention. Set before numpy loads
in any worker (the workers inherit this environment); an explicit setting wins.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
