"""Imported first by the benchmarks: one BLAS thread, set before NumPy loads OpenBLAS.

A threaded BLAS spins on the small matrices of the NumPy agents (L²NAS) and, on a loaded
machine, makes them tens of times slower; worker processes inherit the setting.
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
