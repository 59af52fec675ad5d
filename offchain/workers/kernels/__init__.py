"""Numba kernels (CPU and CUDA) that workloads, verifiers and proof of compute share."""
