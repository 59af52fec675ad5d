"""``nbody-step``: one softened gravitational n-body step, a custom Numba kernel (CPU, CUDA)."""

from collections.abc import Mapping

import numpy as np
from numba import cuda

from offchain.workers.kernels.nbody_kernels import step_cpu, step_cuda
from offchain.workers.verifiers import NBODY_SAMPLE, nbody_check
from offchain.workers.workload_errors import InvalidInput
from offchain.workers.workloads.base import Tensors, Verdict, Workload, check_finite
from offchain.workers.workloads.schema import Dim, Schema, TensorSpec

EPS2 = 1e-3  # softening length squared, fixed by this workload version
# Operations per pair: 3 subtractions, 3 squares and 3 adds, sqrt, multiply, divide, 3 FMAs.
OPS_PER_PAIR = 20
_DIMS = (Dim("n", 1, 65536),)


class NBodyStep(Workload):
    """Positions and velocities of n bodies after one kick-drift step of ``dt``."""

    id = "nbody-step"
    version = 1
    eps2 = EPS2
    input_schema = Schema(
        tensors=(
            TensorSpec("pos", "float64", ("n", 3)),
            TensorSpec("vel", "float64", ("n", 3)),
            TensorSpec("mass", "float64", ("n",)),
            TensorSpec("dt", "float64", ()),
        ),
        dims=_DIMS,
        max_elements=7 * 65536 + 1,
    )
    output_schema = Schema(
        tensors=(TensorSpec("pos", "float64", ("n", 3)), TensorSpec("vel", "float64", ("n", 3))),
        dims=_DIMS,
        max_elements=6 * 65536,
    )
    price_units = 1
    catch_statement = (
        "drift x' = x + dt v' checked for every body, total momentum checked against its "
        "rounding bound (both: probability 1 for errors above the bound); accelerations of "
        f"{NBODY_SAMPLE} sampled bodies recomputed: q wrong of n caught with 1 - C(n-q,s)/C(n,s)"
    )

    def __init__(self, sample: int = NBODY_SAMPLE):
        self.sample = sample

    def _check_values(self, inputs: Tensors, sizes: dict[str, int]) -> None:
        """Refuse non-finite values, negative masses and a non-positive or huge step."""
        for name in ("pos", "vel", "mass", "dt"):
            check_finite(name, inputs[name])
        if (inputs["mass"] < 0).any():
            raise InvalidInput("mass: values must be non-negative")
        if not 0 < float(inputs["dt"]) <= 1.0:
            raise InvalidInput("dt: must lie in (0, 1]")

    def ops(self, sizes: Mapping[str, int]) -> int:
        """Return about 20 operations per ordered pair of bodies."""
        return OPS_PER_PAIR * sizes["n"] * sizes["n"]

    def cuda_available(self) -> bool:
        """Return whether numba.cuda sees a device."""
        return cuda.is_available()

    def _run_cpu(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the step computed by the parallel Numba kernel."""
        pos, vel = step_cpu(
            inputs["pos"], inputs["vel"], inputs["mass"], float(inputs["dt"]), self.eps2
        )
        return {"pos": pos, "vel": vel}

    def _run_cuda(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the step computed by the numba.cuda kernel."""
        pos, vel = step_cuda(
            inputs["pos"], inputs["vel"], inputs["mass"], float(inputs["dt"]), self.eps2
        )
        return {"pos": pos, "vel": vel}

    def _verify(
        self, inputs: Tensors, outputs: Tensors, sizes: dict[str, int], rng: np.random.Generator
    ) -> Verdict:
        """Return the verdict of the drift, momentum and sampled-acceleration checks."""
        return nbody_check(inputs, outputs, self.eps2, rng, self.sample)
