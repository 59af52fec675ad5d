"""Compute workloads: a registry of runners, meters and verifiers (see registry.py)."""

from offchain.workers.workload_errors import (
    DeviceUnavailable,
    EncodingError,
    InvalidInput,
    UnknownWorkload,
    WorkloadError,
)
from offchain.workers.workloads.base import OPS_PER_UNIT, Plan, Verdict, Workload
from offchain.workers.workloads.codec import TensorHeader, decode, digest, encode, read_header
from offchain.workers.workloads.registry import get_workload, workload_ids

__all__ = [
    "OPS_PER_UNIT",
    "DeviceUnavailable",
    "EncodingError",
    "InvalidInput",
    "Plan",
    "TensorHeader",
    "UnknownWorkload",
    "Verdict",
    "Workload",
    "WorkloadError",
    "decode",
    "digest",
    "encode",
    "get_workload",
    "read_header",
    "workload_ids",
]
