"""The workload registry: the API the compute node agent calls.

Use: ``w = get_workload("matmul-modp")`` (``UnknownWorkload`` for anything else);
``w.validate(inputs)`` (``InvalidInput`` before any work starts); ``outputs = w.run(inputs)``
(CUDA when present, else CPU); ``w.units(inputs)`` and ``w.price(inputs)`` for metering;
``digest(outputs)`` (keccak256 of the canonical bytes) for the receipt's output hash;
``w.verify(inputs, outputs, rng)`` for a ``Verdict(accepted, reason)``.
"""

from offchain.workers.workload_errors import UnknownWorkload
from offchain.workers.workloads.base import Workload
from offchain.workers.workloads.cnn import CnnInfer
from offchain.workers.workloads.matmul_f32 import MatmulF32
from offchain.workers.workloads.matmul_modp import MatmulModP
from offchain.workers.workloads.mlp import MlpInfer
from offchain.workers.workloads.nbody import NBodyStep

_REGISTRY: dict[str, Workload] = {
    w.id: w for w in (MatmulF32(), MatmulModP(), MlpInfer(), CnnInfer(), NBodyStep())
}


def get_workload(workload_id: str, version: int | None = None) -> Workload:
    """Return the registered workload ``workload_id`` (of ``version`` when given)."""
    workload = _REGISTRY.get(workload_id) if isinstance(workload_id, str) else None
    if workload is None:
        raise UnknownWorkload(f"unknown workload {workload_id!r}; known: {sorted(_REGISTRY)}")
    if version is not None and version != workload.version:
        raise UnknownWorkload(
            f"{workload_id} version {version} is not served (version {workload.version} is)"
        )
    return workload


def workload_ids() -> list[str]:
    """Return the ids of every registered workload, sorted."""
    return sorted(_REGISTRY)
